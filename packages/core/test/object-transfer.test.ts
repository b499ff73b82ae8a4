import * as ray from '@tsray/core';
import { makeArray, makeTable, nodeOf, sumNested, sumOn, sumsOn, SummerActor, tableSumOn } from './fixtures/transfer';
import { collectGarbage, until } from './helpers/poll';
import { startCluster, stopCluster } from './helpers/cluster';

const MiB = 1024 * 1024;

let cluster: ray.Cluster;
let a: ray.ClusterNode;
let b: ray.ClusterNode;

beforeAll(async () => {
  ({ cluster, nodes: [a, b] } = await startCluster({ numCpus: 1, objectStoreMemory: 128 * MiB }, [{ numCpus: 2, objectStoreMemory: 256 * MiB }, { numCpus: 2, objectStoreMemory: 256 * MiB }]));
}, 60_000);

afterAll(() => stopCluster(cluster));

const on = (n: ray.ClusterNode): { scheduling: { nodeId: string } } => ({ scheduling: { nodeId: n.nodeId } });

/** A Float64Array of `mib` MiB whose element i is i % 7. */
function pattern(mib: number): Float64Array {
  const x = new Float64Array((mib * MiB) / 8);
  for (let i = 0; i < x.length; i++) x[i] = i % 7;
  return x;
}

function sum(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] as number;
  return s;
}

test('when the last ref goes, the primary copy and every copy are freed', async () => {
  const stats = async (): Promise<[number, number, number]> => {
    const [h, sa, sb] = await Promise.all([cluster.head, a, b].map((n) => cluster.objectStats(n)));
    return [h?.copies ?? -1, sa?.primaries ?? -1, sb?.copies ?? -1];
  };
  // first in this file: no garbage of other tests may be freed meanwhile (idle workers collect garbage at any time)
  const [h0, pa0, cb0] = await stats();
  const reader = SummerActor.options(on(b)).remote();
  await (async () => {
    const ref = makeArray.options(on(a)).remote(MiB, 2);
    expect((await ray.get(ref))[0]).toBe(2); // a copy on the driver's node
    expect((await ray.get(reader.sum.remote(ref)))[0]).toBe(2 * MiB); // a copy on b
    const [h, pa, cb] = await stats();
    expect(h).toBe(h0 + 1);
    expect(pa).toBe(pa0 + 1);
    expect(cb).toBe(cb0 + 1);
  })();
  let seen: number[] = [];
  await until(async () => {
    await ray.get(reader.collect.remote());
    await collectGarbage();
    seen = await stats();
    return seen.join() === [h0, pa0, cb0].join();
  }, 'the primary copy on a and the copies on the head node and b to be freed').catch((e: Error) => {
    throw new Error(`${e.message}: [head copies, a primaries, b copies] are [${seen.join(', ')}], were [${[h0, pa0, cb0].join(', ')}] before`);
  });
  ray.kill(reader);
}, 30_000);

test('a large object put by the driver is read by a task pinned to another node', async () => {
  const x = pattern(24);
  const before = await cluster.objectStats(a);
  const [s, where] = await ray.get(sumOn.options(on(a)).remote(ray.put(x)));
  expect(where).toBe(a.nodeId);
  expect(s).toBe(sum(x));
  const after = await cluster.objectStats(a);
  expect(after.pulls - before.pulls).toBe(1);
  expect(after.pulledBytes - before.pulledBytes).toBeGreaterThanOrEqual(x.byteLength);
}, 30_000);

test('a large return made on one node is read by the driver and by a task on a third node', async () => {
  const ref = makeArray.options(on(a)).remote(MiB, 3); // 8 MiB, kept on node a for the driver
  const v = await ray.get(ref);
  expect(v).toBeInstanceOf(Float64Array);
  expect(v.length).toBe(MiB);
  expect(v[MiB - 1]).toBe(3);
  expect((await cluster.objectStats(a)).primaries).toBeGreaterThanOrEqual(1);
  const before = await cluster.objectStats(b);
  const [s, where] = await ray.get(sumOn.options(on(b)).remote(ref));
  expect([s, where]).toEqual([3 * MiB, b.nodeId]);
  expect((await cluster.objectStats(b)).pulls - before.pulls).toBe(1);
  // a ref nested in a value, read with ray.get in the task, and an actor call's argument
  expect(await ray.get(sumNested.options(on(b)).remote({ ref }))).toEqual([3 * MiB, b.nodeId]);
  const summer = SummerActor.options(on(b)).remote();
  expect(await ray.get(summer.sum.remote(ref))).toEqual([3 * MiB, b.nodeId]);
  ray.kill(summer);
}, 30_000);

test('a task whose large argument was made on another node runs on that node', async () => {
  const ref = makeArray.options(on(a)).remote(MiB, 1); // 8 MiB, kept on node a
  await ray.wait([ref]);
  const before = await cluster.objectStats(a);
  expect(await ray.get(sumOn.remote(ref))).toEqual([MiB, a.nodeId]);
  expect((await cluster.objectStats(a)).pulls).toBe(before.pulls);
}, 30_000);

test('an Arrow table made on one node is read on another and by the driver', async () => {
  const n = 1_000_000;
  const t = makeTable.options(on(a)).remote(n);
  const [rows, s, where] = await ray.get(tableSumOn.options(on(b)).remote(t));
  expect([rows, s, where]).toEqual([n, n * (n - 1), b.nodeId]);
  const table = await ray.get(t);
  expect(table.numRows).toBe(n);
  expect(table.getChild('x')?.get(n - 1)).toBe(2 * (n - 1));
}, 30_000);

test('eight tasks on one node reading the same 64 MiB object cause one transfer', async () => {
  const x = pattern(64);
  const ref = ray.put(x);
  const before = await cluster.objectStats(b);
  const out = await ray.get(Array.from({ length: 8 }, () => sumOn.options(on(b)).remote(ref)));
  const want = sum(x);
  for (const [s, where] of out) expect([s, where]).toEqual([want, b.nodeId]);
  const after = await cluster.objectStats(b);
  expect(after.pulls - before.pulls).toBe(1);
  expect(after.dedupedPulls - before.dedupedPulls).toBeGreaterThanOrEqual(1);
}, 60_000);

test('several different objects are transferred at once', async () => {
  const xs = [1, 2, 3, 4].map((v) => new Float64Array(2 * MiB).fill(v)); // 16 MiB each
  const before = await cluster.objectStats(a);
  const [sums, where] = await ray.get(sumsOn.options(on(a)).remote(...xs.map((x) => ray.put(x))));
  expect(where).toBe(a.nodeId);
  expect(sums).toEqual([1, 2, 3, 4].map((v) => v * 2 * MiB));
  expect((await cluster.objectStats(a)).pulls - before.pulls).toBe(4);
}, 30_000);

test('free() of the owner frees the copies on every node', async () => {
  const x = new Float64Array(MiB).fill(5);
  const ref = ray.put(x);
  const readers = [a, b].map((n) => SummerActor.options(on(n)).remote());
  for (const r of readers) expect((await ray.get(r.sum.remote(ref)))[0]).toBe(5 * MiB);
  const copies = async (): Promise<number[]> => Promise.all([a, b].map(async (n) => (await cluster.objectStats(n)).copies));
  const held = await copies();
  // the actors let go of what they read; the copies stay cached until the owner frees the object
  await Promise.all(readers.map((r) => ray.get(r.collect.remote())));
  ray.free(ref);
  await until(async () => (await copies()).every((c, i) => c < (held[i] as number)), 'the copies to be freed on both nodes');
  for (const r of readers) ray.kill(r);
}, 30_000);

test('a spilled object is transferred', async () => {
  // larger than the head node's store: it goes to a spill file
  const x = pattern(160);
  const ref = ray.put(x);
  expect(ray.objectStoreStats().usedBytes).toBeLessThan(x.byteLength);
  const [s, where] = await ray.get(sumOn.options(on(a)).remote(ref));
  expect([s, where]).toEqual([sum(x), a.nodeId]);
  ray.free(ref);
}, 60_000);

test('reading an object whose node was removed gives ObjectLostError naming the object and the node', async () => {
  const c = await cluster.addNode({ numCpus: 1, objectStoreMemory: 64 * MiB });
  await cluster.waitForNodes();
  // the driver's node manager learns of the new node a moment after the head (until then, affinity to it fails)
  await until(async () => (await ray.get(nodeOf.options(on(c)).remote()).catch(() => '')) === c.nodeId, 'a task to run on the new node');
  const ref = makeArray.options(on(c)).remote(MiB, 1);
  await ray.wait([ref]);
  await cluster.removeNode(c);
  await cluster.waitForNodes();
  const err = await ray.get(ref).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ray.ObjectLostError);
  expect((err as Error).message).toContain(ref.id);
  expect((err as Error).message).toContain(c.nodeId);
}, 60_000);
