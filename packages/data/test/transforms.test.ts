import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import * as arrow from 'apache-arrow';
import { collect } from './helpers';

beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
});

const ids = (rows: data.Row[], col = 'id'): number[] => rows.map((r) => r[col] as number);
const seq = (n: number): number[] => [...Array(n).keys()];

describe('row and batch transforms', () => {
  test('map, flatMap and filter run user functions inline, with fnArgs', async () => {
    const rows = await data
      .range(10)
      .map((r, k: number) => ({ id: r.id, y: (r.id as number) * k }), { fnArgs: [3] })
      .flatMap((r) => [r, { id: (r.id as number) + 100, y: 0 }])
      .filter((r) => (r.id as number) % 2 === 0)
      .takeAll();
    expect(ids(rows)).toEqual([0, 100, 2, 102, 4, 104, 6, 106, 8, 108]);
    expect(rows[1]).toEqual({ id: 100, y: 0 });
    expect(rows[2]).toEqual({ id: 2, y: 6 });
  });

  test('mapBatches with a function gets each batch format', async () => {
    const cols = await data.range(8, { overrideNumBlocks: 2 }).mapBatches((b: { id: Float64Array }) => ({ id: b.id, double: b.id.map((x) => x * 2) }), { batchSize: 3 }).takeAll();
    expect(cols.map((r) => r.double)).toEqual(seq(8).map((x) => x * 2));
    const rows = await data.range(4).mapBatches((b: data.Row[]) => b.map((r) => ({ s: `row ${r.id}` })), { batchFormat: 'rows' }).takeAll();
    expect(rows.map((r) => r.s)).toEqual(['row 0', 'row 1', 'row 2', 'row 3']);
    const t = await data.range(4).mapBatches((b: { numRows: number }) => b, { batchFormat: 'arrow' }).count();
    expect(t).toBe(4);
  });

  test('mapBatches with a class constructs it once per actor and calls call(batch, ...fnArgs)', async () => {
    class AddThenTag {
      readonly add: number;
      readonly pid = process.pid;
      constructor(add: number) {
        this.add = add;
      }
      call(b: { id: Float64Array }, tag: string): Record<string, unknown> {
        return { v: b.id.map((x) => x + this.add), tag: Array.from(b.id, () => `${tag}${this.pid}`) };
      }
    }
    const rows = await data.range(40, { overrideNumBlocks: 8 }).mapBatches(AddThenTag, { fnConstructorArgs: [1000], fnArgs: ['pid'], concurrency: 2, batchSize: 5 }).takeAll();
    expect(rows.map((r) => r.v)).toEqual(seq(40).map((x) => x + 1000));
    const pids = new Set(rows.map((r) => r.tag));
    expect(pids.size).toBeGreaterThanOrEqual(1);
    expect(pids.size).toBeLessThanOrEqual(2);
  });

  test('an autoscaling pool [1, 2] processes every block', async () => {
    class Id {
      call(b: unknown): unknown {
        return b;
      }
    }
    expect(await data.range(100, { overrideNumBlocks: 10 }).mapBatches(Id, { concurrency: [1, 2] }).count()).toBe(100);
  });

  test('addColumn takes a default batch and returns the column; drop, select and rename shape the columns', async () => {
    const ds = data
      .range(5)
      .addColumn('sq', (b: Record<string, unknown>) => (b.id as Float64Array).map((x) => x * x))
      .addColumn('name', (b: Record<string, unknown>) => Array.from(b.id as Float64Array, (x) => `n${x}`));
    expect(await ds.take(2)).toEqual([
      { id: 0, sq: 0, name: 'n0' },
      { id: 1, sq: 1, name: 'n1' },
    ]);
    expect(await ds.dropColumns('sq').columns()).toEqual(['id', 'name']);
    expect(await ds.selectColumns(['name', 'id']).take(1)).toEqual([{ name: 'n0', id: 0 }]);
    expect(await ds.renameColumns({ sq: 'square' }).columns()).toEqual(['id', 'square', 'name']);
  });

  test('integer columns come back as numbers; values beyond 2^53 as bigints', async () => {
    const rows = await data.fromItems([{ a: 1, b: 2n ** 60n }, { a: 2, b: 3n }]).takeAll();
    expect(rows).toEqual([
      { a: 1, b: 2n ** 60n },
      { a: 2, b: 3 },
    ]);
  });
});

describe('all-to-all', () => {
  test('randomShuffle changes the order; a sort after it gives 0..n-1', async () => {
    const shuffled = ids(await data.range(1000, { overrideNumBlocks: 5 }).randomShuffle({ seed: 7 }).takeAll());
    expect(shuffled).not.toEqual(seq(1000));
    expect([...shuffled].sort((a, b) => a - b)).toEqual(seq(1000));
    const again = ids(await data.range(1000, { overrideNumBlocks: 5 }).randomShuffle({ seed: 7 }).takeAll());
    expect(again).toEqual(shuffled);
    expect(ids(await data.range(1000, { overrideNumBlocks: 5 }).randomShuffle().sort('id').takeAll())).toEqual(seq(1000));
  });

  test('sort by a column, descending, and by two columns', async () => {
    const ds = data.fromItems(seq(30).map((i) => ({ g: i % 3, v: (i * 7) % 30, s: `k${i % 5}` })));
    expect(ids(await ds.sort('v', { descending: true }).takeAll(), 'v')).toEqual(seq(30).reverse());
    const two = await ds.sort(['g', 'v']).takeAll();
    for (let i = 1; i < two.length; i++) {
      const [a, b] = [two[i - 1] as data.Row, two[i] as data.Row];
      expect((a.g as number) < (b.g as number) || (a.g === b.g && (a.v as number) <= (b.v as number))).toBe(true);
    }
    expect((await ds.sort('s').takeAll()).map((r) => r.s)).toEqual([...Array(6).fill('k0'), ...Array(6).fill('k1'), ...Array(6).fill('k2'), ...Array(6).fill('k3'), ...Array(6).fill('k4')]);
  });

  test('groupBy(x % 3).count() over range(100) is 34/33/33, sorted by key', async () => {
    const rows = await data.range(100).map((r) => ({ x: (r.id as number) % 3 })).groupBy('x').count().takeAll();
    expect(rows).toEqual([
      { x: 0, 'count()': 34 },
      { x: 1, 'count()': 33 },
      { x: 2, 'count()': 33 },
    ]);
  });

  test('groupBy aggregations and whole-dataset aggregates', async () => {
    const ds = data.range(10, { overrideNumBlocks: 3 }).map((r) => ({ k: (r.id as number) < 5 ? 'a' : 'b', v: r.id }));
    expect(await ds.groupBy('k').sum('v').takeAll()).toEqual([
      { k: 'a', 'sum(v)': 10 },
      { k: 'b', 'sum(v)': 35 },
    ]);
    expect(await ds.groupBy('k').mean('v').takeAll()).toEqual([
      { k: 'a', 'mean(v)': 2 },
      { k: 'b', 'mean(v)': 7 },
    ]);
    expect((await ds.groupBy('k').min('v').takeAll()).map((r) => r['min(v)'])).toEqual([0, 5]);
    expect((await ds.groupBy('k').max('v').takeAll()).map((r) => r['max(v)'])).toEqual([4, 9]);
    const std = (await ds.groupBy('k').std('v').takeAll()).map((r) => r['std(v)'] as number);
    expect(std[0]).toBeCloseTo(Math.sqrt(2.5), 10);
    expect(await ds.sum('v')).toBe(45);
    expect(await ds.min('v')).toBe(0);
    expect(await ds.max('v')).toBe(9);
    expect(await ds.mean('v')).toBe(4.5);
    expect(await ds.std('v')).toBeCloseTo(3.0276503540974917, 10);
    expect((await ds.unique('k')).sort()).toEqual(['a', 'b']);
  });

  test('aggregations agree on every path: integer keys read in place, fused into a read, or in tasks of their own', async () => {
    const n = 3000;
    const k = Int32Array.from({ length: n }, (_, i) => ((i * 7) % 11) - 5);
    const v = Float64Array.from({ length: n }, (_, i) => (i % 13) / 3);
    const tables = [0, 1, 2].map((b) => new arrow.Table({ k: arrow.makeVector(k.subarray(b * 1000, (b + 1) * 1000)), v: arrow.makeVector(v.subarray(b * 1000, (b + 1) * 1000)) }));
    const expected = new Map<number, number[]>();
    for (let i = 0; i < n; i++) expected.set(k[i] as number, [...(expected.get(k[i] as number) ?? []), v[i] as number]);
    const keys = [...expected.keys()].sort((a, b) => a - b);
    const mean = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / xs.length;
    const std = (xs: number[]): number => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-data-agg-'));
    try {
      await data.fromArrow(tables).writeParquet(dir);
      const items = Array.from({ length: n }, (_, i) => ({ k: k[i] as number, v: v[i] as number }));
      const paths: Array<[string, data.Dataset]> = [
        ['Arrow blocks, partial tasks', data.fromArrow(tables)],
        ['Parquet, fused into the reads', data.readParquet(dir)],
        ['rows, partial tasks', data.fromItems(items)],
        ['rows, fused into a map', data.fromItems(items).map((r) => r)],
      ];
      for (const [what, ds] of paths) {
        const g = ds.groupBy('k');
        const got = await Promise.all([g.count(), g.sum('v'), g.mean('v'), g.std('v'), g.min('v'), g.max('v')].map((d) => d.takeAll()));
        expect([what, got[0]?.map((r) => r.k)]).toEqual([what, keys]);
        for (const [j, key] of keys.entries()) {
          const xs = expected.get(key) as number[];
          const row = (i: number, col: string): number => (got[i]?.[j] as data.Row)[col] as number;
          expect([what, row(0, 'count()'), row(4, 'min(v)'), row(5, 'max(v)')]).toEqual([what, xs.length, Math.min(...xs), Math.max(...xs)]);
          expect(row(1, 'sum(v)')).toBeCloseTo(xs.reduce((a, x) => a + x, 0), 9);
          expect(row(2, 'mean(v)')).toBeCloseTo(mean(xs), 12);
          expect(row(3, 'std(v)')).toBeCloseTo(std(xs), 12);
        }
      }
      const fused = data.readParquet(dir).groupBy('k').sum('v');
      await fused.takeAll();
      // the map side ran inside the read tasks: no task of its own, one row per key and block reached the store
      expect(fused.stats()).toMatch(/Operator 0 ReadParquet->Aggregate\(k: sum\(v\)\)\.partial: \d+ tasks, \d+ blocks, 33 rows/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('mapGroups runs a function on each group', async () => {
    const rows = await data
      .range(12, { overrideNumBlocks: 3 })
      .map((r) => ({ g: (r.id as number) % 4, v: r.id }))
      .groupBy('g')
      .mapGroups((b: { g: Float64Array; v: Float64Array }) => ({ g: [b.g[0]], total: [b.v.reduce((a, x) => a + x, 0)] }))
      .takeAll();
    expect(rows).toEqual([
      { g: 0, total: 12 },
      { g: 1, total: 15 },
      { g: 2, total: 18 },
      { g: 3, total: 21 },
    ]);
  });

  test('repartition gives n blocks of about equal rows, with or without a shuffle', async () => {
    const m = await data.range(100, { overrideNumBlocks: 3 }).repartition(4).materialize();
    expect(m.numBlocks()).toBe(4);
    expect(m.blocks.map((b) => b.meta.numRows)).toEqual([25, 25, 25, 25]);
    expect(ids(await m.takeAll())).toEqual(seq(100));
    const s = await data.range(100, { overrideNumBlocks: 3 }).repartition(4, { shuffle: true }).materialize();
    expect(s.numBlocks()).toBe(4);
    expect(ids(await s.takeAll()).sort((a, b) => a - b)).toEqual(seq(100));
  });
});

describe('combining and sampling', () => {
  test('union appends; zip puts columns side by side (a clashing name gets _1)', async () => {
    expect(ids(await data.range(3).union(data.range(2), data.range(1)).takeAll())).toEqual([0, 1, 2, 0, 1, 0]);
    const z = await data.range(4, { overrideNumBlocks: 2 }).zip(data.range(4, { overrideNumBlocks: 3 }).map((r) => ({ id: (r.id as number) * 10 }))).takeAll();
    expect(z).toEqual(seq(4).map((i) => ({ id: i, id_1: i * 10 })));
  });

  test('randomSample keeps about the fraction, repeatably with a seed', async () => {
    const a = ids(await data.range(10_000).randomSample(0.1, { seed: 3 }).takeAll());
    expect(a.length).toBeGreaterThan(800);
    expect(a.length).toBeLessThan(1200);
    expect(ids(await data.range(10_000).randomSample(0.1, { seed: 3 }).takeAll())).toEqual(a);
  });

  test('fromItems puts non-objects in column "item"; fromArrow takes tables', async () => {
    expect(await data.fromItems([1, 2, 3]).takeAll()).toEqual([{ item: 1 }, { item: 2 }, { item: 3 }]);
    const t = arrow.tableFromArrays({ a: Float64Array.from([1, 2]), b: ['x', 'y'] });
    expect(await data.fromArrow([t, t]).takeAll()).toEqual([
      { a: 1, b: 'x' },
      { a: 2, b: 'y' },
      { a: 1, b: 'x' },
      { a: 2, b: 'y' },
    ]);
  });
});

describe('consuming', () => {
  test('take, takeAll, takeBatch, count, schema, columns, toArrow, materialize and stats', async () => {
    const ds = data.range(50, { overrideNumBlocks: 5 }).map((r) => ({ id: r.id, half: (r.id as number) / 2 }));
    expect(ids(await ds.take())).toEqual(seq(20));
    expect(await ds.count()).toBe(50);
    expect(((await ds.takeBatch(5)) as data.ColumnBatch).half).toEqual(Float64Array.from([0, 0.5, 1, 1.5, 2]));
    expect(await ds.schema()).toEqual({ names: ['id', 'half'], types: ['Float64', 'Float64'] });
    expect(await ds.columns()).toEqual(['id', 'half']);
    const t = await ds.toArrow();
    expect(t.numRows).toBe(50);
    const m = await ds.materialize();
    expect(m.numBlocks()).toBe(5);
    expect(await m.count()).toBe(50);
    expect(m.stats()).toMatch(/Operator 0 ReadRange->Map\(\w+\): 5 tasks, 5 blocks, 50 rows/);
    expect(m.stats()).toMatch(/task wall time: min .*, median .*, max/);
    expect(m.stats()).toMatch(/CPU time: /);
    expect(m.stats()).toMatch(/throughput: \d+ rows\/s/);
    await expect(ds.takeAll(10)).rejects.toThrow('ds.takeAll: the dataset has more than 10 rows');
    expect((await collect(ds.iterRows())).length).toBe(50);
  });

  test('split, splitAtIndices and trainTestSplit', async () => {
    const m = await data.range(100, { overrideNumBlocks: 10 }).materialize();
    expect(await Promise.all((await m.split(3)).map((d) => d.count()))).toEqual([30, 30, 40]);
    expect(await Promise.all((await m.split(3, { equal: true })).map((d) => d.count()))).toEqual([33, 33, 33]);
    const parts = await m.splitAtIndices([10, 55]);
    expect(await Promise.all(parts.map((d) => d.count()))).toEqual([10, 45, 45]);
    expect(ids(await (parts[1] as data.Dataset).take(2))).toEqual([10, 11]);
    const [train, test] = await data.range(100).trainTestSplit(0.25, { shuffle: true, seed: 1 });
    expect(await train.count()).toBe(75);
    expect(await test.count()).toBe(25);
    const all = [...ids(await train.takeAll()), ...ids(await test.takeAll())].sort((a, b) => a - b);
    expect(all).toEqual(seq(100));
  });
});
