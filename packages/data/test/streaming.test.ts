import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import { collect, collectGarbage, lines, tempDir, until } from './helpers';

const tmp = tempDir('tsray-data-stream-');
beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
  tmp.remove();
});

const ids = (rows: data.Row[]): number[] => rows.map((r) => r.id as number);
const batchSizes = (batches: data.Batch[]): number[] => batches.map((b) => ((b as data.ColumnBatch).id as Float64Array).length);

describe('iterBatches', () => {
  // 4 blocks of 3 rows
  const ds = (): data.Dataset => data.range(12, { overrideNumBlocks: 4 });

  test.each([
    [2, false, [2, 2, 2, 2, 2, 2]],
    [4, false, [4, 4, 4]],
    [15, false, [12]],
    [5, true, [5, 5]],
    [5, false, [5, 5, 2]],
  ])('batchSize %i (dropLast %s) cuts 4 blocks of 3 rows into batches of %j', async (batchSize, dropLast, sizes) => {
    const batches = await collect(ds().iterBatches({ batchSize, dropLast }));
    expect(batchSizes(batches)).toEqual(sizes);
    const all = batches.flatMap((b) => [...((b as data.ColumnBatch).id as Float64Array)]);
    expect(all).toEqual(dropLast ? [...Array(10).keys()] : [...Array(12).keys()]);
  });

  test('batches come in each format: default columns, an Arrow table, or rows', async () => {
    const [cols] = await collect(ds().iterBatches({ batchSize: 3 }));
    expect((cols as data.ColumnBatch).id).toBeInstanceOf(Float64Array);
    const [table] = await collect(ds().iterBatches({ batchSize: 3, batchFormat: 'arrow' }));
    expect((table as { numRows: number }).numRows).toBe(3);
    const [rows] = await collect(ds().iterBatches({ batchSize: 3, batchFormat: 'rows' }));
    expect(rows).toEqual([{ id: 0 }, { id: 1 }, { id: 2 }]);
  });

  test('a local shuffle changes the order but not the rows, and the same seed gives the same order', async () => {
    const run = async (seed: number): Promise<number[]> =>
      (await collect(data.range(200, { overrideNumBlocks: 4 }).iterBatches({ batchSize: 16, localShuffleBufferSize: 64, localShuffleSeed: seed }))).flatMap((b) => [...((b as data.ColumnBatch).id as Float64Array)]);
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    expect(a).not.toEqual([...Array(200).keys()]);
    expect([...a].sort((x, y) => x - y)).toEqual([...Array(200).keys()]);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  test('unknown options are refused with the valid ones named', async () => {
    await expect(collect(ds().iterBatches({ batchsize: 3 } as unknown as data.IterBatchesOptions))).rejects.toThrow(
      "ds.iterBatches: unknown option 'batchsize'; the valid options are 'batchSize', 'batchFormat', 'prefetchBatches', 'dropLast', 'localShuffleBufferSize', 'localShuffleSeed'",
    );
  });
});

describe('limit', () => {
  test.each([0, 1, 7, 50, 100])('range(100).limit(%i).take(200) is 0..i-1', async (i) => {
    expect(ids(await data.range(100).limit(i).take(200))).toEqual([...Array(i).keys()]);
  });

  test('a limit stops reading early: far fewer read tasks than blocks', async () => {
    const log = path.join(tmp.dir, 'limit-reads');
    const ds = data
      .range(10_000, { overrideNumBlocks: 100 })
      .map(
        (r, file: string) => {
          require('node:fs').appendFileSync(file, `${r.id}\n`);
          return r;
        },
        { fnArgs: [log] },
      )
      .limit(10);
    expect(ids(await ds.take(100))).toEqual([...Array(10).keys()]);
    // the map is row-preserving, so the limit moved into the reads: each reads at most 10 rows
    expect(lines(log).length).toBeLessThanOrEqual(10 * 8);
    const reads = Number(/Operator 0 \S+: (\d+) tasks/.exec(ds.stats())?.[1]);
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThanOrEqual(8);
  });
});

describe('backpressure', () => {
  test('with a paused consumer only a few of 100 map tasks run', async () => {
    const log = path.join(tmp.dir, 'paused');
    const ds = data.range(100, { overrideNumBlocks: 100 }).mapBatches(
      (b: data.ColumnBatch, file: string) => {
        require('node:fs').appendFileSync(file, 'x\n');
        return b;
      },
      { fnArgs: [log], batchSize: null },
    );
    const it = ds.iterBatches({ batchSize: 1, prefetchBatches: 0 })[Symbol.asyncIterator]();
    await it.next();
    // the consumer pauses: upstream stops once the queues below it are full
    await new Promise((r) => setTimeout(r, 1500));
    const ran = lines(log).length;
    expect(ran).toBeGreaterThan(0);
    expect(ran).toBeLessThanOrEqual(10);
    // and it resumes when the consumer does
    let n = 1;
    for (let r = await it.next(); !r.done; r = await it.next()) n++;
    expect(n).toBe(100);
    expect(lines(log).length).toBe(100);
  });
});

describe('memory', () => {
  test("a pipeline's intermediate blocks are freed as it goes, and a materialized dataset's blocks when it is dropped", async () => {
    const base = ray.objectStoreStats().usedBytes;
    let m: data.MaterializedDataset | undefined = await data
      .range(2_000_000, { overrideNumBlocks: 4 })
      .map((r) => ({ id: r.id, x: (r.id as number) * 2 }))
      .materialize();
    expect(await m.count()).toBe(2_000_000);
    const held = ray.objectStoreStats().usedBytes - base;
    // two Int64/Float64 columns of 2M rows: 32 MB in the store (the read blocks before the map were freed)
    expect(held).toBeGreaterThanOrEqual(30e6);
    expect(held).toBeLessThan(50e6);
    m = undefined;
    await until(() => {
      collectGarbage();
      return ray.objectStoreStats().usedBytes - base < 5e6;
    }, 'the dropped dataset to be freed');
  });
});
