import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { MemberActor, gpusSeen, holdUntilKilled, nestedInGroup, nodeOf } from './fixtures/placement';
import { until } from './helpers/poll';

let tmp: string;
const warnings: string[] = [];
const stderrWrite = process.stderr.write.bind(process.stderr);

beforeAll(async () => {
  // warnings are written to stderr: keep them for the tests that look for one
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    warnings.push(String(chunk));
    return (stderrWrite as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-pg-'));
  await ray.init({ numCpus: 4, numGpus: 2, resources: { custom: 2 }, logToDriver: false });
});

afterAll(async () => {
  await ray.shutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
  process.stderr.write = stderrWrite;
});

async function stateOf(pg: ray.PlacementGroup): Promise<ray.PlacementGroupTableEntry> {
  return ray.placementGroupTable(pg);
}

test('a PACK group is created on the node; its bundles become group resources and return at removal', async () => {
  const pg = ray.placementGroup([{ CPU: 1, GPU: 1 }, { CPU: 1 }], { strategy: 'PACK' });
  expect(pg.id).toMatch(/^[0-9a-f]+$/);
  expect(pg.bundleSpecs).toEqual([{ CPU: 1, GPU: 1 }, { CPU: 1 }]);
  await pg.ready();
  const entry = await stateOf(pg);
  expect(entry.state).toBe('CREATED');
  expect(entry.strategy).toBe('PACK');
  expect(entry.bundlesToNodeId).toEqual([ray.getRuntimeContext().nodeId, ray.getRuntimeContext().nodeId]);
  const total = await ray.clusterResources();
  expect(total[`CPU_group_${pg.id}`]).toBe(2);
  expect(total[`CPU_group_0_${pg.id}`]).toBe(1);
  expect(total[`GPU_group_0_${pg.id}`]).toBe(1);
  expect(total[`bundle_group_1_${pg.id}`]).toBe(1000);
  await until(async () => (await ray.availableResources()).CPU === 2, 'the bundles to be taken from the free CPUs');
  await ray.removePlacementGroup(pg);
  expect((await stateOf(pg)).state).toBe('REMOVED');
  await until(async () => (await ray.availableResources()).CPU === 4, 'the CPUs to come back');
  const after = await ray.clusterResources();
  expect(Object.keys(after).filter((k) => k.includes(pg.id))).toEqual([]);
});

test('tasks run inside a bundle, in any bundle, and see the GPUs of their bundle', async () => {
  const pg = ray.placementGroup([{ CPU: 1, GPU: 1 }, { CPU: 1 }], { strategy: 'STRICT_PACK' });
  await pg.ready();
  const here = ray.getRuntimeContext().nodeId;
  expect(await ray.get(nodeOf.options({ placementGroup: pg, placementGroupBundleIndex: 1 }).remote())).toBe(here);
  expect(await ray.get(nodeOf.options({ placementGroup: pg }).remote())).toBe(here);
  expect(await ray.get(nodeOf.options({ placementGroup: pg, numCpus: 0 }).remote())).toBe(here);
  const g = await ray.get(gpusSeen.options({ placementGroup: pg, placementGroupBundleIndex: 0, numGpus: 1 }).remote());
  expect(g.ids).toHaveLength(1);
  expect(g.cuda).toBe(g.ids[0]);
  // a task passed the group as an argument runs its own task in it
  expect(await ray.get(nestedInGroup.options({ numCpus: 0 }).remote(pg))).toBe(here);
  await ray.removePlacementGroup(pg);
});

test('an actor in a bundle lives there and dies with the group, naming it', async () => {
  const pg = ray.placementGroup([{ CPU: 1 }], { strategy: 'STRICT_PACK' });
  await pg.ready();
  const a = MemberActor.options({ placementGroup: pg, placementGroupBundleIndex: 0, numCpus: 1 }).remote();
  expect(await ray.get(a.node.remote())).toBe(ray.getRuntimeContext().nodeId);
  const b = MemberActor.options({ placementGroup: pg }).remote();
  await ray.get(b.pid.remote());
  await ray.removePlacementGroup(pg);
  for (const x of [a, b]) {
    // removal kills the actors soon after it returns (as in Ray): a call made in between may still answer
    let err: unknown;
    await until(async () => (err = await ray.get(x.node.remote()).catch((e: unknown) => e)) instanceof Error, 'the actor to die with its group');
    expect(err).toBeInstanceOf(ray.ActorDiedError);
    expect((err as Error).message).toContain(`placement group ${pg.id} was removed`);
  }
  // an actor created for a removed group dies at once, saying why
  const late = MemberActor.options({ placementGroup: pg }).remote();
  const err = await ray.get(late.node.remote()).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ray.ActorDiedError);
  expect((err as Error).message).toMatch(/placement group .* was removed/);
});

test('removing a group kills its running tasks, and later tasks for it fail clearly', async () => {
  const pg = ray.placementGroup([{ CPU: 1 }]);
  await pg.ready();
  const file = path.join(tmp, 'held');
  const ref = holdUntilKilled.options({ placementGroup: pg, maxRetries: 0 }).remote(file, 60_000);
  await until(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').length > 0, 'the task to start');
  const pid = Number(fs.readFileSync(file, 'utf8'));
  await ray.removePlacementGroup(pg);
  const err = await ray.get(ref).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ray.RayError);
  expect((err as Error).message).toContain(`placement group ${pg.id}`);
  await until(() => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 'the worker to be killed');
  const late = await ray.get(nodeOf.options({ placementGroup: pg }).remote()).catch((e: unknown) => e);
  expect(late).toBeInstanceOf(ray.TaskUnschedulableError);
  expect((late as Error).message).toMatch(new RegExp(`placement group ${pg.id}.*was removed`));
  await expect(pg.ready()).rejects.toBeInstanceOf(ray.PlacementGroupRemovedError);
  // removal is idempotent
  await ray.removePlacementGroup(pg);
  await ray.removePlacementGroup(pg);
});

test('STRICT_SPREAD with two bundles stays pending on one node, says why once, and ready() keeps waiting', async () => {
  const before = warnings.length;
  const pg = ray.placementGroup([{ CPU: 1 }, { CPU: 1 }], { strategy: 'STRICT_SPREAD' });
  expect(await pg.wait(300)).toBe(false);
  const entry = await stateOf(pg);
  expect(entry.state).toBe('PENDING');
  expect(entry.reason).toMatch(/STRICT_SPREAD needs 2 nodes \(one per bundle\), but the cluster has 1/);
  await until(() => warnings.slice(before).some((w) => w.includes(pg.id)), 'the warning');
  expect(warnings.slice(before).filter((w) => w.includes(pg.id))).toHaveLength(1);
  // SPREAD falls back to one node
  const spread = ray.placementGroup([{ CPU: 1 }, { CPU: 1 }], { strategy: 'SPREAD' });
  expect(await spread.wait(10_000)).toBe(true);
  const ready = pg.ready();
  await ray.removePlacementGroup(pg);
  await expect(ready).rejects.toThrow(/was removed/);
  await ray.removePlacementGroup(spread);
});

test('infeasible groups stay pending with a reason: a bundle no node holds, STRICT_PACK beyond a node', async () => {
  const big = ray.placementGroup([{ CPU: 8 }]);
  const packed = ray.placementGroup([{ CPU: 3 }, { CPU: 3 }], { strategy: 'STRICT_PACK' });
  await until(async () => (await stateOf(big)).reason !== undefined && (await stateOf(packed)).reason !== undefined, 'reasons');
  expect((await stateOf(big)).reason).toMatch(/bundle 0 \{CPU: 8\} does not fit on any node/);
  expect((await stateOf(packed)).reason).toMatch(/STRICT_PACK needs all its bundles on one node, \{CPU: 6\} together/);
  await ray.removePlacementGroup(big);
  await ray.removePlacementGroup(packed);
});

test('a group waiting for resources in use is created once they are free', async () => {
  const first = ray.placementGroup([{ custom: 2 }]);
  await first.ready();
  const second = ray.placementGroup([{ custom: 1.5 }]);
  expect(await second.wait(200)).toBe(false);
  expect((await stateOf(second)).reason).toMatch(/in use/);
  await ray.removePlacementGroup(first);
  await second.ready();
  await ray.removePlacementGroup(second);
});

test('names are unique per namespace; getPlacementGroup finds a group by name', async () => {
  const pg = ray.placementGroup([{ CPU: 0.5 }], { name: 'trainers' });
  await pg.ready();
  const same = await ray.getPlacementGroup('trainers');
  expect(same.id).toBe(pg.id);
  expect(same.bundleSpecs).toEqual([{ CPU: 0.5 }]);
  const ns = ray.getRuntimeContext().namespace;
  expect((await ray.getPlacementGroup('trainers', ns)).id).toBe(pg.id);
  await expect(ray.getPlacementGroup('trainers', 'elsewhere')).rejects.toBeInstanceOf(ray.PlacementGroupNotFoundError);
  const dup = ray.placementGroup([{ CPU: 0.5 }], { name: 'trainers' });
  await expect(dup.ready()).rejects.toThrow(/a placement group named 'trainers' already exists in namespace/);
  const table = await ray.placementGroupTable();
  expect(table[pg.id]?.name).toBe('trainers');
  expect(table[dup.id]).toBeUndefined();
  await ray.removePlacementGroup(pg);
  await expect(ray.getPlacementGroup('trainers')).rejects.toThrow(/no placement group is named 'trainers'/);
  // the name is free again
  const again = ray.placementGroup([{ CPU: 0.5 }], { name: 'trainers' });
  await again.ready();
  await ray.removePlacementGroup(again);
});

test('bad bundles and options are rejected with what to pass instead', async () => {
  expect(() => ray.placementGroup([])).toThrow(/non-empty array of bundles/);
  expect(() => ray.placementGroup([{}])).toThrow(/bundle 0 is empty/);
  expect(() => ray.placementGroup([{ CPU: -1 }])).toThrow(/bundle 0: CPU must be a non-negative number, got -1/);
  expect(() => ray.placementGroup([{ CPU: 1 }, { CPU: 0 }])).toThrow(/bundle 1 asks for nothing/);
  expect(() => ray.placementGroup([{ CPU: 1 }], { strategy: 'TIGHT' as never })).toThrow(/options.strategy must be one of 'PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD', got "TIGHT"/);
  expect(() => ray.placementGroup([{ CPU: 1 }], { lifetime: 'forever' as never })).toThrow(/options.lifetime must be 'detached' or 'non_detached'/);
  expect(() => ray.placementGroup([{ CPU: 1 }], { strategy: 'PACK', bundles: 2 } as never)).toThrow(/unknown placementGroup\(\) option 'bundles'/);
  const pg = ray.placementGroup([{ CPU: 1 }, { CPU: 1, GPU: 1 }]);
  expect(() => nodeOf.options({ placementGroup: pg, placementGroupBundleIndex: 2 })).toThrow(
    /placementGroupBundleIndex is 2, but placement group [0-9a-f]+ has 2 bundles: use 0 to 1, or -1/,
  );
  expect(() => nodeOf.options({ placementGroup: pg, placementGroupBundleIndex: -2 })).toThrow(/placementGroupBundleIndex must be an integer >= -1/);
  expect(() => nodeOf.options({ placementGroup: pg, placementGroupBundleIndex: 0, numGpus: 1 })).toThrow(
    /the task asks for \{CPU: 1, GPU: 1\}, more than bundle 0 of placement group [0-9a-f]+ holds \(\{CPU: 1\}\)/,
  );
  expect(() => nodeOf.options({ placementGroup: pg, numCpus: 2 })).toThrow(/more than any bundle of placement group/);
  expect(() => MemberActor.options({ placementGroup: pg, numGpus: 2 })).toThrow(/the actor asks for \{GPU: 2\}/);
  expect(() => nodeOf.options({ placementGroup: { id: 'x' } as never })).toThrow(/options.placementGroup must be a PlacementGroup/);
  expect(() => nodeOf.options({ placementGroupBundleIndex: 0 })).toThrow(/placementGroupBundleIndex needs options.placementGroup/);
  expect(() => nodeOf.options({ placementGroup: pg, scheduling: 'SPREAD' })).toThrow(/scheduling and options.placementGroup cannot be used together/);
  await expect(pg.wait(-1)).rejects.toThrow(/wait\(\) takes a timeout in milliseconds/);
  await ray.removePlacementGroup(pg);
});

test('100 groups created at once are all ready and all removed', async () => {
  const pgs = Array.from({ length: 100 }, () => ray.placementGroup([{ custom: 0.001 }]));
  await Promise.all(pgs.map((pg) => pg.ready()));
  const table = await ray.placementGroupTable();
  expect(pgs.every((pg) => table[pg.id]?.state === 'CREATED')).toBe(true);
  await Promise.all(pgs.map((pg) => ray.removePlacementGroup(pg)));
  await until(async () => (await ray.availableResources()).custom === 2, 'custom to come back');
});
