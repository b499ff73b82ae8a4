import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { idleWorkersToStop, idleWorkerSoftLimit, refusalBackoffMs } from '../src/internal/raylet/idle-workers';
import type { WorkerProc, WorkerState } from '../src/internal/raylet/worker-pool';
import { ownAnObject, plusOne, waitFor } from './fixtures/cluster-death';
import { alive, descendantsRunning } from './helpers/procs';
import { until } from './helpers/poll';

/** A worker as the policy sees it. */
function worker(id: string, state: WorkerState, idleSince = 0, extra: Partial<WorkerProc> = {}): WorkerProc {
  return { workerId: id, state, idleSince, stopAsked: false, actorId: undefined, killRequested: false, ...extra } as WorkerProc;
}

test('the idle workers beyond the CPU count that idled a second or more are stopped, longest idle first; actor workers do not count', () => {
  const now = 10_000;
  const ws = [
    worker('a', 'idle', now - 5000),
    worker('b', 'idle', now - 1500),
    worker('c', 'idle', now - 500),
    worker('d', 'leased'),
    worker('e', 'actor', 0, { actorId: 'x' }),
    worker('f', 'starting'),
    worker('g', 'idle', now - 9000, { stopAsked: true }),
  ];
  // a, b, c, d, f count: 5 task workers for 2 CPUs; only a and b idled long enough
  expect(idleWorkersToStop(ws, 2, now).map((w) => w.workerId)).toEqual(['a', 'b']);
  expect(idleWorkersToStop(ws, 4, now).map((w) => w.workerId)).toEqual(['a']);
  expect(idleWorkersToStop(ws, 5, now)).toEqual([]);
  expect(idleWorkersToStop(ws, 2, now + 1000).map((w) => w.workerId)).toEqual(['a', 'b', 'c']);
  expect([idleWorkerSoftLimit(0), idleWorkerSoftLimit(2.5), idleWorkerSoftLimit(16)]).toEqual([1, 2, 16]);
});

test('a worker that refused to stop is asked again after 1, 3, 7 ... more idle periods, never more than a minute later', () => {
  expect([0, 1, 2, 3].map((n) => refusalBackoffMs(n))).toEqual([0, 1000, 3000, 7000]);
  expect(refusalBackoffMs(10)).toBe(60_000);
  expect(refusalBackoffMs(1000)).toBe(60_000);
});

describe('a node with more idle workers than CPUs', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-idle-'));
    await ray.init({ numCpus: 1, logToDriver: false });
  });
  afterAll(async () => {
    await ray.shutdown();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('stops those beyond its CPU count once idle, except a worker that owns an object still in use', async () => {
    const file = path.join(tmp, 'pids');
    const raylet = descendantsRunning(process.pid, 'raylet/main.js')[0] as number;
    const workers = (): number[] => descendantsRunning(raylet, 'worker/main.js');
    // tasks that take no CPU run side by side, each in a worker of its own
    const zero = { numCpus: 0 };
    const waits = [0, 1, 2].map(() => waitFor.options(zero).remote(file, 1500));
    const owned = ownAnObject.options(zero).remote(file, 1500);
    await until(() => new Set(fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : []).size === 4, 'four workers to run at once');
    expect(workers().length).toBeGreaterThanOrEqual(4);
    await ray.get(waits);
    const [[inner], owner] = (await ray.get(owned)) as [[ray.ObjectRef<string>], number];
    await until(() => workers().length <= 1, 'the idle workers beyond the one CPU to be stopped', 20_000);
    // the owner refused to go: the object it owns is still there
    expect(workers()).toEqual([owner]);
    expect(alive(owner)).toBe(true);
    expect(await ray.get(inner)).toBe('kept by its owner');
    expect(await ray.get(plusOne.remote(1))).toBe(2);
  }, 60_000);
});
