import * as ray from '@tsray/core';
import * as data from '@tsray/data';

beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
});

describe('bad input gets a clear error', () => {
  test("a user function that throws names the operator and carries the user's error as cause", async () => {
    const err = await data
      .range(10)
      .map(function parse(r) {
        if (r.id === 3) throw new RangeError('bad row 3');
        return r;
      })
      .takeAll()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(data.UserCodeError);
    expect(err).toBeInstanceOf(data.DataError);
    expect(err).toBeInstanceOf(ray.RayError);
    expect((err as data.UserCodeError).operator).toBe('Map(parse)');
    expect((err as Error).message).toBe("Map(parse) failed: the user's function threw RangeError: bad row 3");
    expect(((err as Error).cause as Error).name).toBe('RangeError');
    expect(((err as Error).cause as Error).message).toBe('bad row 3');
  });

  test("a class's constructor that throws fails the pool's operator with the cause", async () => {
    class Broken {
      constructor() {
        throw new Error('no model file');
      }
      call(b: unknown): unknown {
        return b;
      }
    }
    const err = await data.range(4).mapBatches(Broken, { concurrency: 1 }).count().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(data.UserCodeError);
    expect((err as Error).message).toMatch(/^MapBatches\(Broken\) \(constructing Broken\) failed: the user's function threw Error: no model file/);
  });

  test('a captured variable is refused at the call site, naming it and the fix', () => {
    const factor = 3;
    expect(() => data.range(3).map((r) => ({ y: (r.id as number) * factor }))).toThrow(/ds\.map's function captures `factor`.*Pass `factor` as an argument/s);
  });

  test('a value an Arrow block cannot store names the column', async () => {
    const err = await data
      .range(3)
      .map((r) => ({ id: r.id, f: () => 1 }))
      .takeAll()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(data.BlockValueError);
    expect((err as data.BlockValueError).column).toBe('f');
    expect((err as Error).message).toMatch(/^Map\(\w+\) returned a value that cannot be stored: column 'f' holds a function/);
    const mixed = await data
      .range(3, { overrideNumBlocks: 1 })
      .map((r) => ({ v: r.id === 1 ? 'one' : r.id }))
      .takeAll()
      .catch((e: unknown) => e);
    expect((mixed as Error).message).toMatch(/column 'v' mixes number and string values/);
  });

  test('unknown options name the valid ones', () => {
    expect(() => data.range(3).map((r) => r, { numCPUs: 1 } as unknown as data.MapOptions)).toThrow(
      "ds.map: unknown option 'numCPUs'; the valid options are 'fnArgs', 'numCpus', 'numGpus', 'concurrency'",
    );
    expect(() => data.range(3).mapBatches((b: unknown) => b, { batch_size: 3 } as unknown as data.MapBatchesOptions)).toThrow(/ds\.mapBatches: unknown option 'batch_size'; the valid options are 'batchSize'/);
    expect(() => data.range(3, { numBlocks: 2 } as unknown as data.RangeOptions)).toThrow("data.range: unknown option 'numBlocks'; the valid options are 'overrideNumBlocks'");
    expect(() => data.range(3).mapBatches((b: unknown) => b, { batchFormat: 'pandas' as data.BatchFormat })).toThrow("ds.mapBatches: batchFormat must be one of 'default', 'arrow', 'rows', got \"pandas\"");
  });

  test('takeBatch of an empty dataset fails with EmptyDatasetError', async () => {
    await expect(data.range(10).filter(() => false).takeBatch(5)).rejects.toThrow(data.EmptyDatasetError);
    await expect(data.range(0).takeBatch(5)).rejects.toThrow('ds.takeBatch: the dataset is empty, so there is no batch to take');
  });

  test('union of different columns and zip of different row counts fail with SchemaMismatchError', async () => {
    const u = await data.range(3).union(data.range(3).map((r) => ({ other: r.id }))).takeAll().catch((e: unknown) => e);
    expect(u).toBeInstanceOf(data.SchemaMismatchError);
    expect((u as Error).message).toBe('union: the datasets have different columns ([id] and [other]); union needs the same columns in every dataset: select or rename columns first');
    const z = await data.range(3).zip(data.range(4)).takeAll().catch((e: unknown) => e);
    expect(z).toBeInstanceOf(data.SchemaMismatchError);
    expect((z as Error).message).toMatch(/^zip: the datasets have different numbers of rows \(3 and 4\)/);
  });

  test('a failed execution loses no other work: the next one runs', async () => {
    await expect(data.range(3).map(() => { throw new Error('x'); }).count()).rejects.toThrow(data.UserCodeError);
    expect(await data.range(5).map((r) => r).count()).toBe(5);
  });
});
