import * as path from 'node:path';
import * as ray from '@tsray/core';
import { MemberActor, nodeOf } from './fixtures/placement';
import { Child, alive, descendants } from './helpers/procs';
import { until } from './helpers/poll';
import { startCluster, stopCluster } from './helpers/cluster';

let cluster: ray.Cluster;
let a: ray.ClusterNode;
let b: ray.ClusterNode;
let children: Child[] = [];

beforeAll(async () => {
  ({ cluster, nodes: [a, b] } = await startCluster({ numCpus: 1 }, [{ numCpus: 2 }, { numCpus: 3, numGpus: 1 }]));
}, 60_000);

afterEach(() => {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) {
      const pids = descendants(c.proc.pid as number);
      c.proc.kill('SIGKILL');
      for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    }
  }
  children = [];
});

afterAll(() => stopCluster(cluster));

test('STRICT_SPREAD puts each bundle on a node of its own; tasks and actors in bundle i run on its node', async () => {
  const pg = ray.placementGroup([{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }], { strategy: 'STRICT_SPREAD' });
  await pg.ready();
  const nodes = (await ray.placementGroupTable(pg)).bundlesToNodeId;
  expect(new Set(nodes)).toEqual(new Set([cluster.head.nodeId, a.nodeId, b.nodeId]));
  for (let i = 0; i < 3; i++) {
    expect(await ray.get(nodeOf.options({ placementGroup: pg, placementGroupBundleIndex: i }).remote())).toBe(nodes[i]);
    const actor = MemberActor.options({ placementGroup: pg, placementGroupBundleIndex: i, numCpus: 1 }).remote();
    expect(await ray.get(actor.node.remote())).toBe(nodes[i]);
    ray.kill(actor);
  }
  await ray.removePlacementGroup(pg);
});

test('STRICT_PACK puts every bundle on the one node that can hold them all', async () => {
  const pg = ray.placementGroup([{ CPU: 1 }, { CPU: 2 }], { strategy: 'STRICT_PACK' });
  await pg.ready();
  expect((await ray.placementGroupTable(pg)).bundlesToNodeId).toEqual([b.nodeId, b.nodeId]);
  expect(await ray.get(nodeOf.options({ placementGroup: pg, placementGroupBundleIndex: 1, numCpus: 2 }).remote())).toBe(b.nodeId);
  await ray.removePlacementGroup(pg);
});

test('PACK fills one node when it can; SPREAD uses distinct nodes', async () => {
  const pack = ray.placementGroup([{ CPU: 1 }, { CPU: 1 }], { strategy: 'PACK' });
  await pack.ready();
  const packed = (await ray.placementGroupTable(pack)).bundlesToNodeId;
  expect(packed[0]).toBe(packed[1]);
  await ray.removePlacementGroup(pack);
  const spread = ray.placementGroup([{ CPU: 0.5 }, { CPU: 0.5 }, { CPU: 0.5 }], { strategy: 'SPREAD' });
  await spread.ready();
  expect(new Set((await ray.placementGroupTable(spread)).bundlesToNodeId).size).toBe(3);
  await ray.removePlacementGroup(spread);
});

test('bundles are reserved all or none: a group that does not fit takes nothing', async () => {
  // 4 CPUs on a 3-CPU node plus 2 on another: the GPU bundle fits only on b, which lacks room for both
  const pg = ray.placementGroup([{ CPU: 3, GPU: 1 }, { CPU: 3 }], { strategy: 'STRICT_PACK' });
  expect(await pg.wait(300)).toBe(false);
  expect((await ray.placementGroupTable(pg)).state).toBe('PENDING');
  const free = await ray.availableResources();
  expect(free.CPU).toBe(6);
  expect(free.GPU).toBe(1);
  await ray.removePlacementGroup(pg);
});

test('a pending STRICT_SPREAD group becomes ready when a node joins, and is placed again when that node dies', async () => {
  const pg = ray.placementGroup([{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }, { CPU: 1 }], { strategy: 'STRICT_SPREAD' });
  expect(await pg.wait(200)).toBe(false);
  expect((await ray.placementGroupTable(pg)).reason).toMatch(/STRICT_SPREAD needs 4 nodes \(one per bundle\), but the cluster has 3 alive/);
  const extra = await cluster.addNode({ numCpus: 1 });
  await cluster.waitForNodes();
  await pg.ready();
  const nodes = (await ray.placementGroupTable(pg)).bundlesToNodeId;
  expect(new Set(nodes).size).toBe(4);
  expect(nodes).toContain(extra.nodeId);
  const i = nodes.indexOf(extra.nodeId);
  expect(await ray.get(nodeOf.options({ placementGroup: pg, placementGroupBundleIndex: i }).remote())).toBe(extra.nodeId);
  await cluster.removeNode(extra);
  await until(async () => (await ray.placementGroupTable(pg)).state === 'PENDING', 'the group to lose its bundle', 20_000);
  const entry = await ray.placementGroupTable(pg);
  expect(entry.bundlesToNodeId[i]).toBe('');
  expect(entry.bundlesToNodeId.filter((n) => n !== '')).toHaveLength(3);
  await ray.removePlacementGroup(pg);
  await until(async () => (await ray.availableResources()).CPU === 6, 'the CPUs to come back');
}, 60_000);

test('a bundle on a node that dies is placed again on another node that can hold it', async () => {
  const z1 = await cluster.addNode({ numCpus: 1, resources: { zone: 1 } });
  const z2 = await cluster.addNode({ numCpus: 1, resources: { zone: 1 } });
  await cluster.waitForNodes();
  const pg = ray.placementGroup([{ zone: 1 }, { CPU: 1 }], { strategy: 'SPREAD' });
  await pg.ready();
  const first = (await ray.placementGroupTable(pg)).bundlesToNodeId;
  const lost = first[0] === z1.nodeId ? z1 : z2;
  const other = lost === z1 ? z2 : z1;
  await cluster.removeNode(lost);
  await until(async () => {
    const e = await ray.placementGroupTable(pg);
    return e.state === 'CREATED' && e.bundlesToNodeId[0] === other.nodeId;
  }, 'the bundle to be placed on the other zone node', 20_000);
  // a bundle on a node that lives stays where it was
  const now = (await ray.placementGroupTable(pg)).bundlesToNodeId;
  if (first[1] !== lost.nodeId) expect(now[1]).toBe(first[1]);
  expect(await ray.get(nodeOf.options({ placementGroup: pg, placementGroupBundleIndex: 0, numCpus: 0 }).remote())).toBe(other.nodeId);
  await ray.removePlacementGroup(pg);
  await cluster.removeNode(other);
}, 60_000);

test("a job's groups are removed when it ends, except detached ones", async () => {
  const c = Child.start(process.execPath, [path.join(__dirname, 'drivers', 'pg-job.js'), cluster.address], { TSRAY_CLUSTER_TOKEN: cluster.token });
  children.push(c);
  const [, kept, gone] = await c.waitFor(/READY ([0-9a-f]+) ([0-9a-f]+)/);
  expect((await c.exited).code).toBe(0);
  await until(async () => (await ray.placementGroupTable())[gone as string]?.state === 'REMOVED', 'the job group to be removed');
  expect((await ray.placementGroupTable())[gone as string]?.reason).toMatch(/its job finished/);
  const detached = await ray.getPlacementGroup('kept', 'pgjob');
  expect(detached.id).toBe(kept);
  expect((await ray.placementGroupTable(detached)).state).toBe('CREATED');
  await ray.removePlacementGroup(detached);
}, 60_000);
