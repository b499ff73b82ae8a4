import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import type { Row } from '@tsray/data';

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
  // each task waits until tasks on two nodes have started: this completes only if the executor runs them on both at once
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-data-nodes-'));
  try {
    const rows = await data
      .range(8, { overrideNumBlocks: 4 })
      .map(
        async (r: Row, where: string) => {
          const fsm = require('node:fs') as typeof fs;
          const node = (require('@tsray/core') as typeof ray).getRuntimeContext().nodeId;
          fsm.writeFileSync(`${where}/${node}`, '');
          const deadline = Date.now() + 30_000;
          while (fsm.readdirSync(where).length < 2) {
            if (Date.now() > deadline) throw new Error(`only node ${node} ran tasks`);
            await new Promise((res) => setTimeout(res, 20));
          }
          return { id: r.id, node };
        },
        { fnArgs: [dir] },
      )
      .takeAll();
    expect(rows.map((r) => r.id)).toEqual([...Array(8).keys()]);
    const nodes = new Set(rows.map((r) => r.node));
    expect(nodes.size).toBe(2);
    expect([...nodes].sort()).toEqual((await ray.nodes()).filter((n) => n.alive).map((n) => n.nodeId).sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test('a sort and a groupBy shuffle blocks between the nodes', async () => {
  const ds = data.range(2000, { overrideNumBlocks: 8 }).map((r) => ({ id: r.id, k: (r.id as number) % 7 }));
  const sorted = await ds.sort('id', { descending: true }).take(3);
  expect(sorted.map((r) => r.id)).toEqual([1999, 1998, 1997]);
  const counts = await ds.groupBy('k').count().takeAll();
  expect(counts.map((r) => r['count()'])).toEqual([286, 286, 286, 286, 286, 285, 285]);
}, 60_000);
