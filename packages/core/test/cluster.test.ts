import * as ray from '@tsray/core';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gpuInfo, holdTogether } from './fixtures/tasks';
import { GpuUserActor } from './fixtures/actors';
import { busyWhere, nestedWhere, whereAmI, WhereActor } from './fixtures/cluster';
import { until } from './helpers/poll';
import { startCluster, stopCluster } from './helpers/cluster';

let cluster: ray.Cluster;
let a: ray.ClusterNode;
let b: ray.ClusterNode;

beforeAll(async () => {
  ({ cluster, nodes: [a, b] } = await startCluster({ numCpus: 1 }, [{ numCpus: 2, resources: { special: 1 } }, { numCpus: 2, numGpus: 2, resources: { 'accelerator_type:H100': 1 } }]));
}, 60_000);

afterAll(() => stopCluster(cluster));

test('every node is listed, and the driver runs on the head node', async () => {
  const nodes = await ray.nodes();
  expect(nodes.map((n) => n.nodeId).sort()).toEqual([cluster.head.nodeId, a.nodeId, b.nodeId].sort());
  expect(nodes.every((n) => n.alive)).toBe(true);
  expect(nodes.find((n) => n.isHead)?.nodeId).toBe(cluster.head.nodeId);
  expect(ray.getRuntimeContext().nodeId).toBe(cluster.head.nodeId);
  const total = await ray.clusterResources();
  expect(total.CPU).toBe(5);
  expect(total.GPU).toBe(2);
  expect(total.special).toBe(1);
  expect(total['accelerator_type:H100']).toBe(1);
});

test('a task needing a resource only one node has runs on that node', async () => {
  expect(await ray.get(whereAmI.options({ resources: { special: 1 } }).remote())).toBe(a.nodeId);
  expect(await ray.get(whereAmI.options({ resources: { 'accelerator_type:H100': 0.01 } }).remote())).toBe(b.nodeId);
  expect(await ray.get(whereAmI.options({ numGpus: 1 }).remote())).toBe(b.nodeId);
});

test('node affinity puts a task on its node; ids match getRuntimeContext().nodeId there', async () => {
  for (const n of [cluster.head, a, b]) {
    expect(await ray.get(whereAmI.options({ scheduling: { nodeId: n.nodeId } }).remote())).toBe(n.nodeId);
  }
});

test('hard affinity to a node that is not in the cluster fails with TaskUnschedulableError; soft runs elsewhere', async () => {
  const err = await ray.get(whereAmI.options({ scheduling: { nodeId: 'no-such-node' } }).remote()).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ray.TaskUnschedulableError);
  expect((err as Error).message).toMatch(/no-such-node.*no such node/);
  const ran = await ray.get(whereAmI.options({ scheduling: { nodeId: 'no-such-node', soft: true } }).remote());
  expect([cluster.head.nodeId, a.nodeId, b.nodeId]).toContain(ran);
});

test('soft affinity runs elsewhere while its node is full, and on its node again once it has room', async () => {
  const busy = [0, 1].map(() => busyWhere.options({ scheduling: { nodeId: a.nodeId } }).remote(1500));
  await until(async () => (await ray.availableResources()).special === 1 && (await ray.nodes()).some((n) => n.nodeId === a.nodeId && (n.available.CPU ?? 0) === 0), 'node a to be full');
  const meanwhile = await ray.get(busyWhere.options({ scheduling: { nodeId: a.nodeId, soft: true } }).remote(0));
  expect(meanwhile).not.toBe(a.nodeId);
  expect(await ray.get(busy)).toEqual([a.nodeId, a.nodeId]);
  // the lease that ran it elsewhere is not reused for the next soft task: that one goes back to node a
  let where = '';
  await until(async () => (where = await ray.get(busyWhere.options({ scheduling: { nodeId: a.nodeId, soft: true } }).remote(0))) === a.nodeId, 'a soft task to run on its node again', 10_000);
  expect(where).toBe(a.nodeId);
});

test('tasks spill to other nodes when the local node is busy', async () => {
  // the head node has 1 CPU: five 1 s tasks at once cannot all run there
  const where = await ray.get(Array.from({ length: 5 }, () => busyWhere.remote(800)));
  expect(new Set(where).size).toBeGreaterThanOrEqual(2);
  expect(where.filter((n) => n === cluster.head.nodeId).length).toBeLessThanOrEqual(2);
});

test('SPREAD puts tasks on every node', async () => {
  const where = await ray.get(Array.from({ length: 6 }, () => whereAmI.options({ scheduling: 'SPREAD' }).remote()));
  expect(new Set(where)).toEqual(new Set([cluster.head.nodeId, a.nodeId, b.nodeId]));
});

test('nested tasks submitted on another node run and return', async () => {
  const [outer, inner] = await ray.get(nestedWhere.options({ resources: { special: 1 } }).remote());
  expect(outer).toBe(a.nodeId);
  expect([cluster.head.nodeId, a.nodeId, b.nodeId]).toContain(inner);
});

test('actors are placed by resources, SPREAD and node affinity', async () => {
  const special = WhereActor.options({ resources: { special: 1 } }).remote();
  expect(await ray.get(special.node.remote())).toBe(a.nodeId);
  const pinned = WhereActor.options({ scheduling: { nodeId: b.nodeId } }).remote();
  expect(await ray.get(pinned.node.remote())).toBe(b.nodeId);
  const spread = Array.from({ length: 3 }, () => WhereActor.options({ scheduling: 'SPREAD', numCpus: 0 }).remote());
  const nodes = await ray.get(spread.map((x) => x.node.remote()));
  expect(new Set(nodes).size).toBe(3);
  const dead = WhereActor.options({ scheduling: { nodeId: 'no-such-node' } }).remote();
  const err = await ray.get(dead.node.remote()).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ray.ActorDiedError);
  expect((err as Error).message).toMatch(/no such node/);
  for (const x of [special, pinned, ...spread]) ray.kill(x);
});

test('GPUs: a node with declared GPUs hands out distinct ids, packs fractions, and CUDA_VISIBLE_DEVICES agrees', async () => {
  const both = await ray.get(gpuInfo.options({ numGpus: 2 }).remote());
  expect(both.ids.sort()).toEqual(['0', '1']);
  expect(both.cuda?.split(',').sort()).toEqual(['0', '1']);
  // two GPU actors at once hold distinct ids
  const actors = [GpuUserActor.options({ numGpus: 1 }).remote(), GpuUserActor.options({ numGpus: 1 }).remote()];
  const infos = await ray.get(actors.map((x) => x.info.remote()));
  expect(new Set(infos.map((i) => i.ids[0])).size).toBe(2);
  for (const i of infos) expect(i.cuda).toBe(i.ids[0]);
  for (const x of actors) ray.kill(x);
  await until(async () => (await ray.availableResources()).GPU === 2, 'the actors\' GPUs to come back');
  // four quarter-GPU tasks running together share one id
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-gpu-'));
  try {
    const quarters = await ray.get(Array.from({ length: 4 }, () => holdTogether.options({ numGpus: 0.25, numCpus: 0 }).remote(dir, 4)));
    expect(quarters.every((q) => q.overlapped)).toBe(true);
    expect(new Set(quarters.map((q) => q.ids.join(','))).size).toBe(1);
    expect(quarters[0]?.cuda).toBe(quarters[0]?.ids[0]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // the accelerator type is a resource of its node
  expect(await ray.get(whereAmI.options({ numGpus: 1, resources: { 'accelerator_type:H100': 0.001 } }).remote())).toBe(b.nodeId);
});

test('bad scheduling options are rejected with what to pass instead', () => {
  expect(() => whereAmI.options({ scheduling: 'EVERYWHERE' as never })).toThrow(/'DEFAULT', 'SPREAD' or \{ nodeId/);
  expect(() => whereAmI.options({ scheduling: { nodeId: '' } })).toThrow(/nodeId must be a node id/);
  expect(() => whereAmI.options({ scheduling: { nodeId: 'x', hard: true } as never })).toThrow(/unknown options.scheduling field 'hard'/);
  expect(() => WhereActor.options({ scheduling: { nodeId: 'x', soft: 'yes' as never } })).toThrow(/soft/);
});

test('removeNode refuses the head and nodes of other clusters', async () => {
  await expect(cluster.removeNode(cluster.head)).rejects.toThrow(/cannot remove the head/);
  await expect(cluster.removeNode({ nodeId: 'x', pid: 1, isHead: false })).rejects.toThrow(/a node of this cluster/);
});

test('a removed node is marked dead; its actor restarts on another node', async () => {
  const extra = await cluster.addNode({ numCpus: 1, resources: { extra: 1 } });
  await cluster.waitForNodes();
  const actor = WhereActor.options({ maxRestarts: 1, scheduling: { nodeId: extra.nodeId, soft: true } }).remote();
  expect(await ray.get(actor.node.remote())).toBe(extra.nodeId);
  await cluster.removeNode(extra);
  await cluster.waitForNodes();
  const info = (await ray.nodes()).find((n) => n.nodeId === extra.nodeId);
  expect(info?.alive).toBe(false);
  expect((await ray.clusterResources()).extra).toBeUndefined();
  // the actor comes back elsewhere (a call made meanwhile may fail with ActorDiedError)
  let where: string | undefined;
  await until(async () => {
    where = await ray.get(actor.node.remote()).catch(() => undefined);
    return where !== undefined;
  }, 'the actor to answer again', 20_000);
  expect(where).not.toBe(extra.nodeId);
  ray.kill(actor);
}, 60_000);

test('a node whose node manager is killed is found dead by its closed connection, not only by the heartbeat timeout', async () => {
  const doomed = await cluster.addNode({ numCpus: 1, resources: { doomed: 1 } });
  await cluster.waitForNodes();
  const actor = WhereActor.options({ numCpus: 0, resources: { doomed: 1 } }).remote();
  expect(await ray.get(actor.node.remote())).toBe(doomed.nodeId);
  await cluster.removeNode(doomed);
  const err = await ray.get(actor.node.remote(), { timeoutMs: 30_000 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ray.ActorDiedError);
  await cluster.waitForNodes();
  const info = (await ray.nodes()).find((n) => n.nodeId === doomed.nodeId);
  expect(info?.alive).toBe(false);
  expect(info?.deathReason).toMatch(/its connection closed and stayed closed .* \(its node manager exited or was killed\)/);
  expect((await ray.nodes()).find((n) => n.nodeId === a.nodeId)?.deathReason).toBeUndefined();
}, 60_000);

test('an actor waiting at a node with no room starts on a node that joins with room', async () => {
  const full = await cluster.addNode({ numCpus: 0, resources: { slot: 1 } });
  await cluster.waitForNodes();
  const first = WhereActor.options({ numCpus: 0, resources: { slot: 1 } }).remote();
  expect(await ray.get(first.node.remote())).toBe(full.nodeId);
  // the only node with a slot is full: this one's request waits there
  const second = WhereActor.options({ numCpus: 0, resources: { slot: 1 } }).remote();
  const roomy = await cluster.addNode({ numCpus: 0, resources: { slot: 1 } });
  expect(await ray.get(second.node.remote(), { timeoutMs: 30_000 })).toBe(roomy.nodeId);
  ray.kill(first);
  ray.kill(second);
  await cluster.removeNode(full);
  await cluster.removeNode(roomy);
}, 60_000);
