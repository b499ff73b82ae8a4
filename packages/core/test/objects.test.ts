import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tableFromArrays, type Table } from 'apache-arrow';
import * as ray from '@tsray/core';
import { echo, fill, getNested, makeRefWithPid, makeRefs, pokeArrow, sumArray, typeName } from './fixtures/tasks';
import { HolderActor } from './fixtures/actors';
import { collectGarbage, settled, until } from './helpers/poll';

const MiB = 1024 * 1024;

beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false, objectStoreMemory: 64 * MiB });
});

afterAll(async () => {
  await ray.shutdown();
});

describe('put and get', () => {
  test('small values round-trip through put and get', async () => {
    for (const v of [0, 'text', null, undefined, [1, [2]], { a: { b: 1 } }, new Map([[1, 2]]), 10n]) {
      expect(await ray.get(ray.put(v))).toEqual(v);
    }
  });

  test('put is synchronous and returns an ObjectRef that is not thenable', () => {
    const ref = ray.put(1);
    expect(ref).toBeInstanceOf(ray.ObjectRef);
    expect((ref as unknown as { then?: unknown }).then).toBeUndefined();
    expect(String(ref)).toMatch(/^ObjectRef\(/);
  });

  test('a large typed array goes to shared memory and is read in place', async () => {
    const a = new Float64Array(2 * MiB).fill(3); // 16 MiB
    const before = ray.objectStoreStats().usedBytes;
    const ref = ray.put(a);
    expect(ray.objectStoreStats().usedBytes - before).toBeGreaterThanOrEqual(a.byteLength);
    const b = await ray.get(ref);
    expect(b).toBeInstanceOf(Float64Array);
    expect(b.length).toBe(a.length);
    expect(b[123]).toBe(3);
    // zero-copy: two gets see the same shared memory
    const c = await ray.get(ref);
    b[0] = 42;
    expect(c[0]).toBe(42);
    // and a task in another process reads it too
    expect(await ray.get(sumArray.remote(ref))).toBe(3 * a.length - 3 + 42);
  });

  test('a large result made by a task is read from shared memory', async () => {
    const r = await ray.get(fill.remote(1_000_000, 2));
    expect(r).toBeInstanceOf(Float64Array);
    expect(r.length).toBe(1_000_000);
    expect(r[999_999]).toBe(2);
  });

  test('large arguments travel through the object store', async () => {
    const big = new Float64Array(500_000).fill(1);
    expect(await ray.get(sumArray.remote(big))).toBe(500_000);
  });

  test('Arrow tables round-trip and arrive as tables', async () => {
    const n = 100_000;
    const t = tableFromArrays({ x: Float64Array.from({ length: n }, (_, i) => i), name: Array.from({ length: n }, (_, i) => `r${i % 7}`) });
    const ref = ray.put(t);
    const back = (await ray.get(ref)) as Table;
    expect(back.numRows).toBe(n);
    expect(back.getChild('x')?.get(n - 1)).toBe(n - 1);
    expect(back.getChild('name')?.get(8)).toBe('r1');
    expect(await ray.get(typeName.remote(ref))).toBe('Table');
  });

  test('refs nested inside a stored value stay refs and keep their objects alive', async () => {
    const base = await settled(() => ray.objectStoreStats().objects);
    // the inner ref is dropped as soon as the outer value holds it: only the outer value keeps it alive
    const outer = ((): ray.ObjectRef<{ list: ray.ObjectRef<Float64Array>[] }> => ray.put({ list: [ray.put(new Float64Array(200_000).fill(6))] }))();
    for (let i = 0; i < 3; i++) await collectGarbage();
    expect(ray.objectStoreStats().objects).toBe(base + 1);
    const got = await ray.get(outer);
    expect(got.list[0]).toBeInstanceOf(ray.ObjectRef);
    const inner = await ray.get(got.list[0] as ray.ObjectRef<Float64Array>);
    expect(inner[199_999]).toBe(6);
  });

  test('an Arrow table put by the driver is read in place (zero-copy) by a task', async () => {
    const n = 200_000;
    const ref = ray.put(tableFromArrays({ x: Float64Array.from({ length: n }, (_, i) => i) }));
    // the task writes into the column it was given; the driver sees the write in the stored object
    expect(await ray.get(pokeArrow.remote(ref, -1))).toBe(0);
    const back = (await ray.get(ref)) as Table;
    expect(back.getChild('x')?.get(0)).toBe(-1);
    expect(back.getChild('x')?.get(n - 1)).toBe(n - 1);
  });

  test('an object containing 10,000 refs owned by a worker can be read, and so can each ref', async () => {
    const outer = makeRefs.remote(10_000);
    const refs = await ray.get(outer);
    expect(refs).toHaveLength(10_000);
    expect(await ray.get([refs[0], refs[9_999]] as ray.ObjectRef<number>[])).toEqual([0, 9_999]);
  });
});

describe('reference counting', () => {
  const objects = (): number => ray.objectStoreStats().objects;

  test('an object is freed when its last ref is dropped', async () => {
    const base = await settled(objects);
    (() => {
      ray.put(new Float64Array(1 * MiB));
    })();
    expect(objects()).toBe(base + 1);
    await until(async () => {
      await collectGarbage();
      return objects() === base;
    }, 'the object to be freed');
  });

  test('a zero-copy view keeps its object alive after the ref is gone', async () => {
    const base = await settled(objects);
    let view: Float64Array | undefined = await ray.get(ray.put(new Float64Array(1 * MiB).fill(5)));
    for (let i = 0; i < 3; i++) await collectGarbage();
    expect(ray.objectStoreStats().objects).toBe(base + 1);
    expect(view[10]).toBe(5);
    view = undefined;
    await until(async () => {
      await collectGarbage();
      return ray.objectStoreStats().objects === base;
    }, 'the object to be freed after the view is gone');
  });

  test('an actor holding a ref keeps the object alive after the driver drops it', async () => {
    const h = HolderActor.remote();
    await ray.get(h.keep.remote([ray.put(new Float64Array(300_000).fill(7))]));
    for (let i = 0; i < 3; i++) await collectGarbage();
    const [values] = (await ray.get(h.values.remote())) as [Float64Array];
    expect(values[299_999]).toBe(7);
  });

  test('a task in flight keeps its argument alive', async () => {
    const r = getNested.remote([ray.put('argument')]);
    await collectGarbage();
    expect(await ray.get(r)).toBe('argument');
  });

  test('free() releases an object now and a later get rejects with ObjectFreedError', async () => {
    const ref = ray.put(new Float64Array(100_000));
    ray.free(ref);
    await expect(ray.get(ref)).rejects.toBeInstanceOf(ray.ObjectFreedError);
  });

  test('get of an object whose owner died rejects with OwnerDiedError', async () => {
    const [ref, pid] = await ray.get(makeRefWithPid.remote(5));
    process.kill(pid, 'SIGKILL');
    const err = await ray.get(ref, { timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ray.ObjectLostError);
    expect((err as Error).message).toMatch(/owner/);
  });
});

describe('spilling', () => {
  test('when shared memory is full, objects spill to disk and stay readable', async () => {
    const arrays = Array.from({ length: 4 }, (_, i) => new Float64Array(3 * MiB).fill(i)); // 4 x 24 MiB > 64 MiB
    const refs = arrays.map((a) => ray.put(a));
    const stats = ray.objectStoreStats();
    expect(stats.usedBytes).toBeLessThanOrEqual(stats.capacityBytes);
    for (let i = 0; i < refs.length; i++) {
      const back = await ray.get(refs[i] as ray.ObjectRef<Float64Array>);
      expect(back.length).toBe(3 * MiB);
      expect(back[1000]).toBe(i);
    }
    expect(await ray.get(sumArray.remote(refs[3] as ray.ObjectRef<Float64Array>))).toBe(9 * MiB);
    expect(await ray.get(echo.remote('still working'))).toBe('still working');
  });
});

describe('object store full', () => {
  let dir: string;
  beforeAll(async () => {
    await ray.shutdown();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-full-'));
    const notADir = path.join(dir, 'a-file');
    fs.writeFileSync(notADir, 'x');
    await ray.init({ numCpus: 1, logToDriver: false, objectStoreMemory: 16 * MiB, objectSpillingDirectory: notADir });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('put rejects with ObjectStoreFullError when spilling cannot help, and nothing else is lost', () => {
    const kept = ray.put(new Float64Array(1 * MiB).fill(1));
    let err: unknown;
    try {
      ray.put(new Float64Array(4 * MiB));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ray.ObjectStoreFullError);
    expect((err as Error).message).toMatch(/objectStoreMemory/);
    return expect(ray.get(kept).then((a) => a[0])).resolves.toBe(1);
  });
});
