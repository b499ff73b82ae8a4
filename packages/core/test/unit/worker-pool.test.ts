import { launchWorker, type WorkerProc, type WorkerState } from '../../src/internal/raylet/worker-pool';
import type { JobConfig } from '../../src/internal/protocol/messages';
import { until } from '../helpers/poll';

const job = (cwd: string): JobConfig => ({
  jobId: '01000000',
  ns: 'test',
  env: {},
  cwd,
  execArgv: [],
  logToDriver: false,
  driver: { workerId: 'driver', nodeId: 'node', endpoint: 'ipc:///nowhere', slot: -1 },
});

describe('worker processes', () => {
  test('a worker that cannot be spawned ends once, as dead, without waiting for an exit that never comes', async () => {
    const ends: Array<[string, WorkerState]> = [];
    const w: WorkerProc = launchWorker(
      { job: job('/nonexistent/tsray-cwd'), env: undefined, envKey: '', sessionDir: '/nonexistent', nodeId: 'node', rayletEndpoint: 'ipc:///nowhere', headAddress: 'ipc:///nowhere' },
      () => undefined,
      (_w, reason, was) => ends.push([reason, was]),
    );
    expect(w.state).toBe('starting');
    await until(() => ends.length > 0, 'the worker to end');
    // give a late 'exit' a chance to show up twice
    await new Promise((r) => setImmediate(r));
    expect(ends).toEqual([[expect.stringMatching(/could not be started \(spawn .*ENOENT\)/), 'starting']]);
    expect(w.state).toBe('dead');
  });
});
