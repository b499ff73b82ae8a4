import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as ray from '@tsray/core';
import { WaiterActor, plusOne, spin, waitFor } from './fixtures/cluster-death';
import { Child, alive, descendantsRunning } from './helpers/procs';
import { until } from './helpers/poll';
import { freePort } from './helpers/net';
import { ownTsrayTmpdir } from './helpers/files';

// this file's clusters keep their sessions under a root of their own
const tmpdir = ownTsrayTmpdir('tsray-death', 'suite');
afterEach(async () => {
  await ray.shutdown();
});

const lines = (file: string): number[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map(Number) : []);
const sessions = (): string[] => (fs.existsSync(path.join(tmpdir(), 'tsray')) ? fs.readdirSync(path.join(tmpdir(), 'tsray')).filter((d) => d.startsWith('session_')) : []);

/** Settles `p`, failing when that takes longer than `ms`. */
async function beforeDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pending calls of every kind: a running task, one waiting for a lease, a wait, an actor call. */
async function pendingCalls(file: string): Promise<Array<Promise<unknown>>> {
  const actor = WaiterActor.remote();
  await ray.get(actor.pid.remote());
  const running = waitFor.remote(file, 60_000);
  await until(() => lines(file).length === 1, 'the task to start');
  // the node's only CPU is taken: this one waits for a lease
  const queued = plusOne.remote(1);
  return [ray.get(running), ray.get(queued), ray.wait([running, queued], { numReturns: 2 }), ray.get(actor.wait.remote(60_000))];
}

function expectAllFailedWith(settled: Array<PromiseSettledResult<unknown>>, check: (e: ray.NodeDiedError) => void): void {
  for (const r of settled) {
    expect(r.status).toBe('rejected');
    const e = (r as PromiseRejectedResult).reason as ray.NodeDiedError;
    expect(e).toBeInstanceOf(ray.NodeDiedError);
    expect(e).toBeInstanceOf(ray.RaySystemError);
    check(e);
  }
}

describe('a driver whose cluster dies', () => {
  test('when its node manager is killed, pending gets, waits and actor calls reject with NodeDiedError, and init() starts again', async () => {
    await ray.init({ numCpus: 1, logToDriver: false });
    const file = path.join(tmpdir(), 'nm');
    const pending = await pendingCalls(file);
    const [head] = descendantsRunning(process.pid, 'head/main.js');
    const [raylet] = descendantsRunning(process.pid, 'raylet/main.js');
    const worker = lines(file)[0] as number;
    process.kill(raylet as number, 'SIGKILL');
    const settled = await beforeDeadline(Promise.allSettled(pending), 10_000, 'the pending calls');
    expectAllFailedWith(settled, (e) => {
      expect(e).toMatchObject({ died: 'nodeManager', pid: raylet });
      expect(e.message).toMatch(/^The node manager of this driver's node \w{8} \(pid \d+\) died: its process is gone.*\. This driver is disconnected: .*Call ray\.init\(\) again to start a new cluster or to join another/);
    });
    expect(ray.isInitialized()).toBe(false);
    expect(() => ray.put(1)).toThrow(ray.NodeDiedError);
    // what was left of its cluster stops, the worker with it, and the session directory goes
    await until(() => !alive(head as number) && !alive(worker) && sessions().length === 0, 'the old cluster to be gone', 20_000);
    await ray.init({ numCpus: 1, logToDriver: false });
    expect(await ray.get(plusOne.remote(41))).toBe(42);
  }, 90_000);

  test('when its head is killed, pending calls reject with NodeDiedError naming the head, and nothing is left behind', async () => {
    await ray.init({ numCpus: 1, logToDriver: false });
    const file = path.join(tmpdir(), 'head');
    const pending = await pendingCalls(file);
    const [head] = descendantsRunning(process.pid, 'head/main.js');
    const [raylet] = descendantsRunning(process.pid, 'raylet/main.js');
    process.kill(head as number, 'SIGKILL');
    const settled = await beforeDeadline(Promise.allSettled(pending), 10_000, 'the pending calls');
    expectAllFailedWith(settled, (e) => {
      expect(e).toMatchObject({ died: 'head', pid: head });
      expect(e.message).toMatch(/^The head of this driver's cluster \(pid \d+\) died: its process was killed \(SIGKILL\)/);
    });
    expect(ray.isInitialized()).toBe(false);
    // the head could not clean up: its node manager stops (its parent is gone) and the driver removes the session
    await until(() => !alive(raylet as number) && sessions().length === 0, 'the node manager and the session to be gone', 20_000);
    // shutdown() after the death forgets it: calls say "not initialized" again
    await ray.shutdown();
    expect(() => ray.put(1)).toThrow(ray.NotInitializedError);
  }, 90_000);
});

test('the workers of a node whose node manager is killed exit, even one busy in a synchronous task', async () => {
  const cluster = await ray.Cluster.start({ head: { numCpus: 1 } });
  try {
    const node = await cluster.addNode({ numCpus: 2 });
    await cluster.waitForNodes();
    await ray.init({ address: cluster.address, logToDriver: false });
    const file = path.join(tmpdir(), 'workers');
    const there = { scheduling: { nodeId: node.nodeId }, maxRetries: 0 };
    const refs = [spin.options(there).remote(file, 120_000), waitFor.options(there).remote(file, 120_000)];
    const actor = WaiterActor.options({ scheduling: { nodeId: node.nodeId } }).remote();
    const actorPid = await ray.get(actor.pid.remote());
    await until(() => lines(file).length === 2, 'both tasks to start');
    const pids = [...lines(file), actorPid];
    process.kill(node.pid, 'SIGKILL');
    await until(() => pids.every((p) => !alive(p)), `workers ${pids.join(', ')} to exit`, 10_000);
    // the driver's own node lives: it goes on
    expect(ray.isInitialized()).toBe(true);
    expect(await ray.get(plusOne.remote(1))).toBe(2);
    void refs;
    await cluster.removeNode(node);
  } finally {
    await ray.shutdown();
    await cluster.shutdown();
  }
}, 90_000);

describe('a cluster started with `tsray start --head` and killed with SIGKILL', () => {
  const cli = path.join(__dirname, '..', 'bin', 'tsray.js');
  const drivers = path.join(__dirname, 'drivers');
  let root: string;
  const env = (): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, TSRAY_TMPDIR: root };
    delete e.TSRAY_CLUSTER_TOKEN;
    return e;
  };
  const tsray = (...args: string[]): { code: number | null; out: string } => {
    const r = spawnSync(process.execPath, [cli, ...args], { env: env(), encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout + r.stderr };
  };
  const record = (): { pid: number; sessionDir: string } => JSON.parse(fs.readFileSync(path.join(root, 'tsray', 'cluster.json'), 'utf8')) as { pid: number; sessionDir: string };
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-death-cli-'));
  });
  afterAll(() => {
    tsray('stop');
    fs.rmSync(root, { recursive: true, force: true });
  });

  test("its driver's pending get rejects at once, and the next `tsray start` removes the session it left", async () => {
    const port = await freePort();
    expect(tsray('start', '--head', '--port', String(port), '--num-cpus', '1').code).toBe(0);
    const first = record();
    const driver = new Child(spawn(process.execPath, [path.join(drivers, 'hang-on-get.js')], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      await driver.waitFor(/READY/);
      const raylet = descendantsRunning(first.pid, 'raylet/main.js')[0] as number;
      process.kill(first.pid, 'SIGKILL');
      const { code } = await beforeDeadline(driver.exited, 15_000, 'the driver to exit');
      expect(driver.out).toMatch(/REJECTED NodeDiedError (nodeManager|head) /);
      expect(driver.out).toMatch(/Call ray\.init\(\) again/);
      expect(driver.out).toContain('INITIALIZED false');
      expect(code).toBe(0);
      await until(() => !alive(raylet), 'the head node manager to stop');
    } finally {
      if (driver.proc.exitCode === null) driver.proc.kill('SIGKILL');
    }
    // the head could not remove its session: it is still there, with its sockets
    expect(fs.existsSync(first.sessionDir)).toBe(true);
    expect(tsray('start', '--head', '--port', String(await freePort()), '--num-cpus', '1').code).toBe(0);
    expect(fs.existsSync(first.sessionDir)).toBe(false);
    const second = record();
    expect(second.sessionDir).not.toBe(first.sessionDir);
    expect(fs.existsSync(second.sessionDir)).toBe(true);
    expect(tsray('stop').out).toMatch(/Stopped the tsray cluster/);
  }, 120_000);
});
