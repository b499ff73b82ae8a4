import { spawn, type ChildProcess } from 'node:child_process';
import { NodeDiedError } from '../../src/errors';
import { Liveness } from '../../src/internal/api/liveness';
import { until } from '../helpers/poll';

let raylet: ChildProcess;
beforeEach(() => {
  // stands in for the driver's node manager: a process that runs until killed
  raylet = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
});
afterEach(() => {
  if (raylet.exitCode === null && raylet.signalCode === null) raylet.kill('SIGKILL');
});

function watch(ping: () => Promise<unknown>, timeoutMs = 5000): { died: NodeDiedError[]; liveness: Liveness } {
  const died: NodeDiedError[] = [];
  const liveness = new Liveness({ nodeId: 'abcdef0123456789', rayletPid: raylet.pid as number, headAddress: 'tcp://10.0.0.1:6380', headProc: undefined, ping }, (e) => died.push(e), timeoutMs);
  liveness.start();
  return { died, liveness };
}

test('a node manager that is gone is reported once, saying whether the head still answers', async () => {
  let headUp = true;
  const { died, liveness } = watch(() => (headUp ? Promise.resolve() : Promise.reject(new Error('no answer'))));
  try {
    raylet.kill('SIGKILL');
    await until(() => died.length > 0, 'the node manager to be reported dead', 5000);
    expect(died[0]).toMatchObject({ died: 'nodeManager', pid: raylet.pid, nodeId: 'abcdef0123456789', reason: 'its process is gone' });
    expect(died[0]?.message).toMatch(/^The node manager of this driver's node abcdef01 \(pid \d+\) died: its process is gone\. /);
  } finally {
    liveness.stop();
  }
  // with the head gone too
  raylet = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  headUp = false;
  const again = watch(() => Promise.reject(new Error('no answer')));
  try {
    raylet.kill('SIGKILL');
    await until(() => again.died.length > 0, 'the node manager to be reported dead', 5000);
    expect(again.died[0]?.reason).toBe("its process is gone, and the head at 10.0.0.1:6380 does not answer either (a head's node manager stops with it)");
    expect(again.died).toHaveLength(1);
  } finally {
    again.liveness.stop();
  }
});

test('a head that stops answering is dead after the head timeout and several missed pings, while the node manager runs', async () => {
  let headUp = true;
  let pings = 0;
  const { died, liveness } = watch(() => {
    pings++;
    return headUp ? Promise.resolve() : Promise.reject(new Error('no answer'));
  }, 1000);
  try {
    await until(() => pings >= 2, 'two pings');
    expect(died).toEqual([]);
    headUp = false;
    await until(() => died.length > 0, 'the head to be reported dead', 10_000);
    expect(died[0]).toMatchObject({ died: 'head', pid: -1 });
    expect(died[0]?.message).toMatch(/^The head of the cluster at 10\.0\.0\.1:6380 died: it has not answered for \d+(\.\d)? s \(the head timeout is 1000 ms, TSRAY_HEAD_TIMEOUT_MS\)\. /);
    // three pings in a row went unanswered
    expect(pings).toBeGreaterThanOrEqual(5);
  } finally {
    liveness.stop();
  }
});
