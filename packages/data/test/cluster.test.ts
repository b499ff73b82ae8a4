import * as ray from '@tsray/core';
import * as data from '@tsray/data';

let cluster: ray.Cluster;
beforeAll(async () => {
  cluster = await ray.Cluster.start({ head: { numCpus: 1 } });
  await cluster.addNode({ numCpus: 1 });
  await cluster.waitForNodes();
  await ray.init({ address: cluster.address, logToDriver: false });
}, 60_000);
afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
});

test("on a 2-node cluster a map's tasks run on both nodes", async () => {
  const rows = await data
    .range(40, { overrideNumBlocks: 20 })
    .map(async (r) => {
      // long enough that both nodes' CPUs are busy at once
      await new Promise((res) => setTimeout(res, 30));
      return { id: r.id, node: (require('@tsray/core') as typeof ray).getRuntimeContext().nodeId };
    })
    .takeAll();
  expect(rows.map((r) => r.id)).toEqual([...Array(40).keys()]);
  const nodes = new Set(rows.map((r) => r.node));
  expect(nodes.size).toBe(2);
  expect([...nodes].sort()).toEqual((await ray.nodes()).filter((n) => n.alive).map((n) => n.nodeId).sort());
}, 60_000);

test('a sort and a groupBy shuffle blocks between the nodes', async () => {
  const ds = data.range(2000, { overrideNumBlocks: 8 }).map((r) => ({ id: r.id, k: (r.id as number) % 7 }));
  const sorted = await ds.sort('id', { descending: true }).take(3);
  expect(sorted.map((r) => r.id)).toEqual([1999, 1998, 1997]);
  const counts = await ds.groupBy('k').count().takeAll();
  expect(counts.map((r) => r['count()'])).toEqual([286, 286, 286, 286, 286, 285, 285]);
}, 60_000);
