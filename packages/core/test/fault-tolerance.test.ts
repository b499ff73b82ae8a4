import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { SleeperActor, bigOn, killMe, putHere, slowWhere } from './fixtures/fault-tolerance';
import { alive } from './helpers/procs';
import { until } from './helpers/poll';
import { startCluster, stopCluster } from './helpers/cluster';

let cluster: ray.Cluster;
let a: ray.ClusterNode;
let tmp: string;

const lines = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

beforeAll(async () => {
  // the heartbeat timeout itself is under test here (a stopped node, a paused head): short, so that a pause can outlast it
  process.env.TSRAY_NODE_TIMEOUT_MS = '3000';
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-ft-'));
  ({ cluster, nodes: [a] } = await startCluster({ numCpus: 1 }, [{ numCpus: 2 }], { namespace: 'ft' }));
}, 60_000);

afterAll(async () => {
  await stopCluster(cluster);
  delete process.env.TSRAY_NODE_TIMEOUT_MS;
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A node to kill, registered, and known to the node managers (a task that prefers it runs there). */
async function victim(numCpus = 2): Promise<ray.ClusterNode> {
  const n = await cluster.addNode({ numCpus });
  await cluster.waitForNodes();
  // a task that must run there fails until this node's node manager has heard of the new one
  const probe = path.join(tmp, `probe-${n.nodeId}`);
  const runsThere = (): Promise<boolean> => ray.get(slowWhere.options({ scheduling: { nodeId: n.nodeId } }).remote(probe, 0)).then(() => true, () => false);
  await until(runsThere, 'the node managers to know the new node');
  return n;
}

/** Waits for `cond`, asking the head for something meanwhile (an idle driver reads no messages). */
function heard(cond: () => boolean, what: string): Promise<void> {
  return until(async () => {
    await ray.nodes();
    return cond();
  }, what, 20_000);
}

test('a worker killed mid-task on another node is retried, and the task succeeds', async () => {
  const file = path.join(tmp, 'kill-me');
  const ref = killMe.options({ maxRetries: 1, scheduling: { nodeId: a.nodeId } }).remote(file);
  await until(() => lines(file).length === 1, 'the task to start');
  const first = Number(lines(file)[0]);
  process.kill(first, 'SIGKILL');
  const [pid, node] = await ray.get(ref);
  expect(pid).not.toBe(first);
  expect(node).toBe(a.nodeId);
  expect(lines(file)).toHaveLength(2);
}, 30_000);

test('tasks running on a removed node are retried and finish on the other nodes', async () => {
  // room to spare: a soft preference for a node goes elsewhere when the node looks full
  const b = await victim(4);
  const file = path.join(tmp, 'slow');
  const refs = [0, 1].map(() => slowWhere.options({ scheduling: { nodeId: b.nodeId, soft: true } }).remote(file, 1500));
  await until(() => lines(file).filter((n) => n === b.nodeId).length === 2, 'both tasks to start on the node');
  await cluster.removeNode(b);
  const where = await ray.get(refs);
  expect(where.every((n) => n !== b.nodeId)).toBe(true);
  // each started once on the dead node, once elsewhere
  expect(lines(file)).toHaveLength(4);
}, 60_000);

test('actors on a removed node restart elsewhere; calls in flight fail with ActorDiedError or are retried per maxTaskRetries', async () => {
  const b = await victim();
  const noRetry = SleeperActor.options({ maxRestarts: 1, maxTaskRetries: 0, scheduling: { nodeId: b.nodeId, soft: true } }).remote();
  const retry = SleeperActor.options({ maxRestarts: 1, maxTaskRetries: 1, scheduling: { nodeId: b.nodeId, soft: true } }).remote();
  expect(await ray.get([noRetry.node.remote(), retry.node.remote()])).toEqual([b.nodeId, b.nodeId]);
  const failing = noRetry.slow.remote(30_000);
  const retried = retry.slow.remote(500);
  await cluster.removeNode(b);
  const err = await ray.get(failing).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ray.ActorDiedError);
  expect((err as Error).message).toMatch(/died/);
  const ranOn = await ray.get(retried);
  expect(ranOn).not.toBe(b.nodeId);
  // the restarted actor answers on a live node
  const again = await ray.get(noRetry.node.remote());
  expect([cluster.head.nodeId, a.nodeId]).toContain(again);
  ray.kill(noRetry);
  ray.kill(retry);
}, 60_000);

test('a large return that lived only on a removed node is rebuilt by running its task again', async () => {
  const b = await victim(2);
  const file = path.join(tmp, 'big');
  const n = 1 << 18; // 2 MiB: it lives in the object store of the node that made it
  const ref = bigOn.options({ scheduling: { nodeId: b.nodeId, soft: true } }).remote(n, 3, file);
  await ray.wait([ref], { numReturns: 1, timeoutMs: 20_000 });
  expect(lines(file)).toEqual([b.nodeId]);
  await cluster.removeNode(b);
  await cluster.waitForNodes();
  await heard(() => lines(file).length === 2, 'the task to run again');
  // the head node has a free CPU: the default policy rebuilds it there, where the driver reads it
  expect(lines(file)[1]).toBe(cluster.head.nodeId);
  const v = await ray.get(ref, { timeoutMs: 20_000 });
  expect(v.length).toBe(n);
  expect(v[n - 1]).toBe(3);
}, 60_000);

test('objects owned by a process of a removed node fail with OwnerDiedError, an ObjectLostError that says the node died', async () => {
  const b = await victim(1);
  const [small] = await ray.get(putHere.options({ scheduling: { nodeId: b.nodeId } }).remote(4));
  const [large] = await ray.get(putHere.options({ scheduling: { nodeId: b.nodeId } }).remote(1 << 18));
  await cluster.removeNode(b);
  await cluster.waitForNodes();
  for (const ref of [small, large]) {
    const err = await ray.get(ref as ray.ObjectRef<Float64Array>, { timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ray.OwnerDiedError);
    expect(err).toBeInstanceOf(ray.ObjectLostError);
    expect((err as Error).message).toMatch(new RegExp(`died with its node ${b.nodeId}`));
  }
}, 60_000);

test('a node marked dead that still runs is told to exit, and is not used again', async () => {
  const b = await victim(1);
  process.kill(b.pid, 'SIGSTOP');
  try {
    await until(async () => (await ray.nodes()).find((n) => n.nodeId === b.nodeId)?.alive === false, 'the head to mark the stopped node dead', 20_000);
  } finally {
    process.kill(b.pid, 'SIGCONT');
  }
  await until(() => !alive(b.pid), 'the node manager to exit', 20_000);
  expect((await ray.nodes()).find((n) => n.nodeId === b.nodeId)?.alive).toBe(false);
  await cluster.removeNode(b);
}, 60_000);

test('a head that was paused longer than the node timeout does not mark the live nodes dead', async () => {
  // heartbeats sent while the head did not run wait unread in its socket: the pause does not count against the nodes
  process.kill(cluster.head.pid, 'SIGSTOP');
  try {
    // the stimulus is the pause itself: longer than the node timeout (3 s), shorter than a driver's head timeout (5 s)
    await new Promise((r) => setTimeout(r, 4000));
  } finally {
    process.kill(cluster.head.pid, 'SIGCONT');
  }
  // the head checks its nodes' health first thing when it runs again, before it answers
  const after = await ray.nodes();
  expect(after.find((n) => n.nodeId === a.nodeId)?.alive).toBe(true);
  expect(alive(a.pid)).toBe(true);
  const probe = path.join(tmp, 'probe-after-pause');
  await ray.get(slowWhere.options({ scheduling: { nodeId: a.nodeId } }).remote(probe, 0));
  expect(lines(probe)).toEqual([a.nodeId]);
}, 60_000);

test('a restarted head takes the cluster back: a named detached actor on another node answers, and a new driver connects', async () => {
  const keeper = SleeperActor.options({ name: 'keeper', lifetime: 'detached', scheduling: { nodeId: a.nodeId } }).remote();
  expect(await ray.get(keeper.node.remote())).toBe(a.nodeId);
  // a detached placement group with its bundle on node a
  const pg = ray.placementGroup([{ CPU: 0.5 }], { name: 'kept-group', lifetime: 'detached', strategy: 'STRICT_PACK' });
  await pg.ready();
  expect((await ray.placementGroupTable(pg)).state).toBe('CREATED');
  // a working directory stored in the cluster before the crash (this driver uploads it once)
  const app = writeApp();
  expect(await ray.get(app.where.options({ runtimeEnv: { workingDir: path.dirname(app.file) }, scheduling: { nodeId: a.nodeId } }).remote())).toMatchObject({ node: a.nodeId, tag: 'kept' });
  const pidBefore = a.pid;
  const oldHead = cluster.head;
  const head = await cluster.restartHead();
  expect(head.nodeId).not.toBe(oldHead.nodeId);
  expect(alive(pidBefore)).toBe(true);
  // this driver ran on the old head node, which stopped with the head: it was told, and joins again
  await until(() => !ray.isInitialized(), 'the driver to learn that its node died', 10_000);
  await expect(ray.getActor<Sleeper>('keeper')).rejects.toThrow(ray.NodeDiedError);
  await ray.shutdown();
  await ray.init({ address: cluster.address, logToDriver: false, namespace: 'ft' });
  const again = await ray.getActor<Sleeper>('keeper');
  expect(await ray.get(again.node.remote())).toBe(a.nodeId);
  // the placement group is known again (a bundle on the old head node is placed again), and tasks run in it
  const samePg = await ray.getPlacementGroup('kept-group');
  expect(samePg.id).toBe(pg.id);
  await samePg.ready();
  const [pgNode] = (await ray.placementGroupTable(samePg)).bundlesToNodeId;
  expect(pgNode).not.toBe(oldHead.nodeId);
  expect(await ray.get(slowWhere.options({ placementGroup: samePg, numCpus: 0.5 }).remote(path.join(tmp, 'in-group'), 0))).toBe(pgNode);
  await ray.removePlacementGroup(samePg);
  // a node that joins the restarted head gets that working directory from it
  const late = await cluster.addNode({ numCpus: 1 });
  await cluster.waitForNodes();
  const there = await ray.get(app.where.options({ runtimeEnv: { workingDir: path.dirname(app.file) }, scheduling: { nodeId: late.nodeId } }).remote());
  expect(there).toMatchObject({ node: late.nodeId, tag: 'kept' });
  expect(there.file).toContain(path.join('runtime_resources', 'working_dir_files'));
  await cluster.removeNode(late);

  const nodes = await ray.nodes();
  expect(nodes.find((n) => n.nodeId === a.nodeId)?.alive).toBe(true);
  expect(nodes.find((n) => n.nodeId === oldHead.nodeId)?.alive).toBe(false);
  expect(await ray.get(slowWhere.options({ scheduling: { nodeId: a.nodeId } }).remote(path.join(tmp, 'after'), 0))).toBe(a.nodeId);
  ray.kill(again);
}, 90_000);

type Sleeper = import('./fixtures/fault-tolerance').Sleeper;

/** A module only this driver's machine has (a working directory): where() says which copy ran, on which node. */
function writeApp(): { file: string; where: ray.RemoteFunction<() => { file: string; tag: string; node: string }> } {
  const dir = fs.mkdtempSync(path.join(tmp, 'app-'));
  fs.writeFileSync(path.join(dir, 'helper.js'), "exports.tag = 'kept';\n");
  fs.writeFileSync(
    path.join(dir, 'app.js'),
    `const ray = require(${JSON.stringify(require.resolve('@tsray/core'))});
const helper = require('./helper');
exports.where = ray.remote(function where() { return { file: __filename, tag: helper.tag, node: ray.getRuntimeContext().nodeId }; });
`,
  );
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return { file: path.join(dir, 'app.js'), ...(require(path.join(dir, 'app.js')) as { where: ray.RemoteFunction<() => { file: string; tag: string; node: string }> }) };
}
