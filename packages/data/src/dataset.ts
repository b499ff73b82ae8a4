/**
 * The Dataset: a lazy plan of operators over Arrow blocks. Transformations
 * return a new Dataset at once; consuming one (iterate, take, count, write,
 * materialize) runs the plan on the cluster with the streaming executor.
 */
import * as arrow from 'apache-arrow';
import { EmptyDatasetError } from './errors';
import { type Batch, type BatchFormat, type Block, type Row, BATCH_FORMATS, blockToBatch, concatBlocks } from './internal/block';
import { type LogicalOp, type Step, type AllToAll, type Bundle, type Compute, DEFAULT_COMPUTE, describePlan } from './internal/plan';
import { ROW_FN_OPTIONS, checkColumns, checkInt, checkKeys, compileMapBatches, compileTaskCompute, userFn } from './internal/options';
import { type IterBatchesOptions, type BundleSource, batchesOf, rowsOf } from './internal/iterator';
import { execute } from './internal/planner';
import { planRead } from './internal/io';
import type { Execution, ExecutionOptions } from './internal/execution/executor';
import type { ExecBundle } from './internal/execution/operator';
import * as K from './internal/kernels';
import { GroupedData } from './grouped';
import { writeDataset, type WriteOptions } from './internal/write';
import { splitDataset, splitAtIndices, DataIterator, streamingSplit } from './internal/split';
import { sampleRowsStep } from './internal/sample';

export type { IterBatchesOptions };

/** Options of map, flatMap and filter. */
export interface MapOptions {
  /** extra arguments: the function is called as fn(row, ...fnArgs) */
  fnArgs?: unknown[];
  /** CPUs each task holds @default 1 */
  numCpus?: number;
  /** GPUs each task holds @default 0 */
  numGpus?: number;
  /** the most tasks that run at once @default as many as the cluster's CPUs fit */
  concurrency?: number;
}

/** Options of mapBatches. */
export interface MapBatchesOptions {
  /** rows per batch; null: a whole block @default 1024 */
  batchSize?: number | null;
  /** @default 'default' */
  batchFormat?: BatchFormat;
  /** tasks at once (a function), or actors: a fixed number or [min, max] (a class) */
  concurrency?: number | [number, number];
  numCpus?: number;
  numGpus?: number;
  /** extra arguments of fn / of the class's call */
  fnArgs?: unknown[];
  /** arguments of the class's constructor */
  fnConstructorArgs?: unknown[];
  /** accepted for Ray compatibility; batches are always new objects here */
  zeroCopyBatch?: boolean;
}

/** A dataset's columns and their Arrow types. */
export interface DatasetSchema {
  names: string[];
  types: string[];
}

let nextId = 0;

/** A distributed, lazily executed collection of rows in Arrow blocks. */
export class Dataset {
  /** @internal the logical plan */
  readonly plan: LogicalOp;
  /** @internal */
  protected lastStats: string | undefined;
  /** @internal a name for logs */
  readonly id = `ds${nextId++}`;
  /** @internal the dataset a consuming method derived this one from (its stats are reported there too) */
  private reportTo: Dataset | undefined;

  /** @internal use the creation functions (range, fromItems, readParquet, …) */
  constructor(plan: LogicalOp) {
    this.plan = plan;
  }

  private with(op: LogicalOp): Dataset {
    return new Dataset(op);
  }

  private mapStep(name: string, steps: Step[], compute: Compute = DEFAULT_COMPUTE): Dataset {
    return this.with({ kind: 'Map', name, input: this.plan, steps, compute });
  }

  private rowFn(t: 'map' | 'flatMap' | 'filter', fn: unknown, opts: unknown): Dataset {
    const what = `ds.${t}`;
    const o = checkKeys(what, opts, ROW_FN_OPTIONS);
    const u = userFn(what, fn, o.fnArgs);
    const name = `${t === 'map' ? 'Map' : t === 'flatMap' ? 'FlatMap' : 'Filter'}(${u.fn.name || 'fn'})`;
    return this.mapStep(name, [{ t, op: name, ...u }], compileTaskCompute(what, o));
  }

  /** Applies `fn` to each row: `fn(row, ...fnArgs)` returns the new row. */
  map(fn: (row: Row, ...args: never[]) => Row | Promise<Row>, options?: MapOptions): Dataset {
    return this.rowFn('map', fn, options);
  }

  /** Applies `fn` to each row; it returns any number of rows (an array). */
  flatMap(fn: (row: Row, ...args: never[]) => Row[] | Promise<Row[]>, options?: MapOptions): Dataset {
    return this.rowFn('flatMap', fn, options);
  }

  /** Keeps the rows for which `fn(row, ...fnArgs)` is truthy. */
  filter(fn: (row: Row, ...args: never[]) => unknown, options?: MapOptions): Dataset {
    return this.rowFn('filter', fn, options);
  }

  /**
   * Applies a function to batches (`fn(batch, ...fnArgs)` returns the new
   * batch), or a class in a pool of actors: `new Cls(...fnConstructorArgs)`
   * once per actor, then `call(batch, ...fnArgs)` per batch.
   */
  mapBatches(fnOrClass: ((batch: never, ...args: never[]) => unknown) | (new (...args: never[]) => { call(batch: never, ...args: never[]): unknown }), options?: MapBatchesOptions): Dataset {
    const c = compileMapBatches(fnOrClass, options);
    const name = `MapBatches(${c.fn.fn.name || 'fn'})`;
    const step: Step = c.isClass
      ? { t: 'callBatches', op: name, batchSize: c.batchSize, format: c.format, args: c.fn.args }
      : { t: 'mapBatches', op: name, batchSize: c.batchSize, format: c.format, zeroCopy: false, ...c.fn };
    return this.mapStep(name, [step], c.compute);
  }

  /** Adds (or replaces) column `name`: `fn(batch)` gets a 'default' batch and returns the column's values. */
  addColumn(name: string, fn: (batch: Record<string, unknown>, ...args: never[]) => unknown, options?: { fnArgs?: unknown[] }): Dataset {
    if (typeof name !== 'string' || name === '') throw new TypeError(`ds.addColumn: the column name must be a non-empty string, got ${JSON.stringify(name)}`);
    const o = checkKeys('ds.addColumn', options, ['fnArgs']);
    const op = `AddColumn(${name})`;
    return this.mapStep(op, [{ t: 'addColumn', op, column: name, ...userFn('ds.addColumn', fn, o.fnArgs) }]);
  }

  /** Drops columns. */
  dropColumns(columns: string | string[]): Dataset {
    const cols = checkColumns('ds.dropColumns', columns);
    return this.mapStep(`DropColumns(${cols.join(', ')})`, [{ t: 'drop', op: 'ds.dropColumns', columns: cols }]);
  }

  /** Keeps only these columns, in this order. */
  selectColumns(columns: string | string[]): Dataset {
    const cols = checkColumns('ds.selectColumns', columns);
    return this.mapStep(`SelectColumns(${cols.join(', ')})`, [{ t: 'select', op: 'ds.selectColumns', columns: cols }]);
  }

  /** Renames columns: `{ old: 'new' }`. */
  renameColumns(names: Record<string, string>): Dataset {
    if (names === null || typeof names !== 'object' || Array.isArray(names) || !Object.values(names).every((v) => typeof v === 'string' && v !== '')) {
      throw new TypeError(`ds.renameColumns takes { oldName: 'newName', … }, got ${JSON.stringify(names)}`);
    }
    return this.mapStep('RenameColumns', [{ t: 'rename', op: 'ds.renameColumns', names: { ...names } }]);
  }

  /** @internal an all-to-all operator over this dataset */
  allToAll(name: string, spec: AllToAll): Dataset {
    return this.with({ kind: 'AllToAll', name, input: this.plan, spec });
  }

  /** `n` blocks of about equal rows (contiguous; with `shuffle`, rows go to random blocks). */
  repartition(n: number, options?: { shuffle?: boolean }): Dataset {
    const o = checkKeys('ds.repartition', options, ['shuffle']);
    return this.allToAll(`Repartition[${n}]`, { kind: 'repartition', n: checkInt('ds.repartition: n', n, 1), shuffle: Boolean(o.shuffle) });
  }

  /** The rows in random order (`seed` makes it repeatable). */
  randomShuffle(options?: { seed?: number }): Dataset {
    const o = checkKeys('ds.randomShuffle', options, ['seed']);
    return this.allToAll('RandomShuffle', { kind: 'randomShuffle', seed: o.seed === undefined ? undefined : checkInt('ds.randomShuffle: seed', o.seed, 0) });
  }

  /** The rows sorted by `key` (a column or columns). */
  sort(key: string | string[], options?: { descending?: boolean | boolean[] }): Dataset {
    const o = checkKeys('ds.sort', options, ['descending']);
    const cols = checkColumns('ds.sort', key);
    return this.allToAll(`Sort(${cols.join(', ')})`, { kind: 'sort', key: K.compileSortKey(cols, o.descending as boolean | boolean[] | undefined) });
  }

  /** Groups rows by `key` for aggregation (count, sum, …) or mapGroups. */
  groupBy(key: string | string[]): GroupedData {
    return new GroupedData(this, checkColumns('ds.groupBy', key));
  }

  private async aggregate1(kind: 'sum' | 'min' | 'max' | 'mean' | 'std', column: string): Promise<number | null> {
    const col = checkColumns(`ds.${kind}`, column);
    if (col.length !== 1) throw new TypeError(`ds.${kind} takes one column name`);
    const spec: K.AggSpec = { kind, column: col[0] as string };
    const rows = await this.derived((d) => d.allToAll(`Aggregate(${K.aggName(spec)})`, { kind: 'aggregate', keys: [], aggs: [spec] })).takeAll();
    const v = rows[0]?.[K.aggName(spec)];
    return v === undefined || v === null ? null : Number(v);
  }

  /** Sum of a column (nulls ignored); null for no rows. */
  sum(column: string): Promise<number | null> {
    return this.aggregate1('sum', column);
  }
  /** Smallest value of a column. */
  min(column: string): Promise<number | null> {
    return this.aggregate1('min', column);
  }
  /** Largest value of a column. */
  max(column: string): Promise<number | null> {
    return this.aggregate1('max', column);
  }
  /** Mean of a column. */
  mean(column: string): Promise<number | null> {
    return this.aggregate1('mean', column);
  }
  /** Sample standard deviation of a column (ddof 1). */
  std(column: string): Promise<number | null> {
    return this.aggregate1('std', column);
  }

  /** The distinct values of a column. */
  async unique(column: string): Promise<unknown[]> {
    const col = checkColumns('ds.unique', column)[0] as string;
    const rows = await this.groupBy(col).count().takeAll();
    return rows.map((r) => r[col]);
  }

  /** The rows of this dataset, then those of each of `others` (same columns). */
  union(...others: Dataset[]): Dataset {
    for (const o of others) if (!(o instanceof Dataset)) throw new TypeError(`ds.union takes Datasets, got ${typeof o}`);
    return this.with({ kind: 'Union', inputs: [this.plan, ...others.map((o) => o.plan)] });
  }

  /** The columns of this dataset and `other` side by side (same number of rows; a clashing name of other's gets `_1`). */
  zip(other: Dataset): Dataset {
    if (!(other instanceof Dataset)) throw new TypeError(`ds.zip takes a Dataset, got ${typeof other}`);
    return this.with({ kind: 'Zip', left: this.plan, right: other.plan });
  }

  /** The first `n` rows (reads stop early). */
  limit(n: number): Dataset {
    return this.with({ kind: 'Limit', input: this.plan, n: checkInt('ds.limit: n', n, 0) });
  }

  /** About `fraction` of the rows, each kept with that probability. */
  randomSample(fraction: number, options?: { seed?: number }): Dataset {
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) throw new RangeError(`ds.randomSample: fraction must be a number in [0, 1], got ${fraction}`);
    const o = checkKeys('ds.randomSample', options, ['seed']);
    const seed = o.seed === undefined ? undefined : checkInt('ds.randomSample: seed', o.seed, 0);
    return this.mapStep(`RandomSample(${fraction})`, [sampleRowsStep(fraction, seed)]);
  }

  // ------------------------------------------------------------------ execution

  /** A dataset derived for a consuming method (take's limit): its stats count as this one's. */
  private derived(f: (ds: Dataset) => Dataset): Dataset {
    const d = f(this);
    d.reportTo = this;
    return d;
  }

  private setStats(text: string): void {
    for (let d: Dataset | undefined = this; d; d = d.reportTo) d.lastStats = text;
  }

  /** @internal runs the plan; the caller consumes (or closes) it */
  async run(options: ExecutionOptions = {}): Promise<Execution> {
    const exec = await execute(this.plan, options);
    this.lastStats = undefined;
    const ds = this;
    const close = exec.close.bind(exec);
    exec.close = () => {
      close();
      ds.setStats(exec.statsText());
    };
    return exec;
  }

  /** @internal a source of this dataset's blocks for the iterators */
  async source(options: ExecutionOptions = {}): Promise<BundleSource> {
    const exec = await this.run(options);
    const ds = this;
    return {
      async next() {
        const b = await exec.next();
        if (!b) ds.setStats(exec.statsText());
        return b;
      },
      close: () => exec.close(),
    };
  }

  /** @internal every output bundle, in order */
  async bundles(): Promise<ExecBundle[]> {
    const exec = await this.run();
    const out: ExecBundle[] = [];
    try {
      for (let b = await exec.next(); b; b = await exec.next()) out.push(b);
    } finally {
      exec.close();
    }
    return out;
  }

  /** The rows one at a time. */
  async *iterRows(): AsyncGenerator<Row> {
    yield* rowsOf(await this.source());
  }

  /** The rows in batches. */
  async *iterBatches(options?: IterBatchesOptions): AsyncGenerator<Batch> {
    const o = checkIterOptions('ds.iterBatches', options);
    yield* batchesOf(await this.source(), o);
  }

  /** The first `n` rows. */
  async take(n = 20): Promise<Row[]> {
    checkInt('ds.take: n', n, 0);
    const out: Row[] = [];
    if (n === 0) return out;
    for await (const r of this.derived((d) => d.limit(n)).iterRows()) out.push(r);
    return out;
  }

  /** Every row (`limit`: fail when there are more). */
  async takeAll(limit?: number): Promise<Row[]> {
    const out: Row[] = [];
    for await (const r of this.iterRows()) {
      out.push(r);
      if (limit !== undefined && out.length > limit) throw new RangeError(`ds.takeAll: the dataset has more than ${limit} rows; raise the limit or use take(n) / iterRows()`);
    }
    return out;
  }

  /** The first `n` rows as one batch. */
  async takeBatch(n = 20, options?: { batchFormat?: BatchFormat }): Promise<Batch> {
    const o = checkKeys('ds.takeBatch', options, ['batchFormat']);
    const format = (o.batchFormat ?? 'default') as BatchFormat;
    if (!BATCH_FORMATS.includes(format)) throw new TypeError(`ds.takeBatch: batchFormat must be one of ${BATCH_FORMATS.join(', ')}`);
    const blocks: Block[] = [];
    for await (const b of this.derived((d) => d.limit(checkInt('ds.takeBatch: n', n, 1))).iterBatches({ batchSize: null, batchFormat: 'arrow' })) blocks.push(b as Block);
    const all = concatBlocks(blocks);
    if (all.numRows === 0) throw new EmptyDatasetError('ds.takeBatch: the dataset is empty, so there is no batch to take; check the filters and the input paths');
    return blockToBatch(all, format);
  }

  /** Prints the first `n` rows. */
  async show(n = 20): Promise<void> {
    for (const r of await this.take(n)) console.log(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  }

  /** The number of rows (reads only metadata where it can). */
  async count(): Promise<number> {
    const p = this.plan;
    if (p.kind === 'Source' && p.steps.length === 0 && p.limit === undefined) {
      if (p.source.kind === 'blocks') return p.source.bundles.reduce((a, b) => a + b.meta.numRows, 0);
      if (p.source.kind === 'range') return p.source.n;
      if (p.source.kind === 'files' && p.source.format === 'parquet') {
        // Parquet footers hold the row counts: nothing to read
        const tasks = await planRead('parquet', p.source.paths, p.source.options);
        if (tasks.every((t) => t.numRows !== undefined)) return tasks.reduce((a, t) => a + (t.numRows as number), 0);
      }
    }
    const bundles = await this.bundles();
    return bundles.reduce((a, b) => a + b.meta.numRows, 0);
  }

  /** Column names and types. */
  async schema(): Promise<DatasetSchema> {
    const bundles = await this.derived((d) => d.limit(1)).bundles();
    const b = bundles.find((x) => x.meta.columns.length > 0) ?? bundles[0];
    const cols = b?.meta.columns ?? [];
    return { names: cols.map(([n]) => n), types: cols.map(([, t]) => t) };
  }

  /** Column names. */
  async columns(): Promise<string[]> {
    return (await this.schema()).names;
  }

  /** One Arrow table of every row. */
  async toArrow(): Promise<arrow.Table> {
    const blocks: Block[] = [];
    for await (const b of this.iterBatches({ batchSize: null, batchFormat: 'arrow' })) blocks.push(b as Block);
    return concatBlocks(blocks);
  }

  /** Runs the plan and keeps its blocks in the object store. */
  async materialize(): Promise<MaterializedDataset> {
    const bundles = await this.bundles();
    const m = new MaterializedDataset(bundles.map((b) => ({ ref: b.ref, meta: b.meta })));
    m.lastStats = this.lastStats;
    return m;
  }

  /** Per-operator statistics of the last execution. */
  stats(): string {
    return this.lastStats ?? `Dataset ${describePlan(this.plan)}: not executed yet (consume it first: take, iterBatches, count, materialize…)`;
  }

  /** `n` materialized datasets: by blocks, or (`equal`) exactly equal rows (the remainder dropped). */
  async split(n: number, options?: { equal?: boolean }): Promise<MaterializedDataset[]> {
    const o = checkKeys('ds.split', options, ['equal']);
    return (await splitDataset(await this.materialize(), checkInt('ds.split: n', n, 1), Boolean(o.equal))).map((b) => new MaterializedDataset(b));
  }

  /** Splits at row indices: [0, i0), [i0, i1), …, [ik, end). */
  async splitAtIndices(indices: number[]): Promise<MaterializedDataset[]> {
    if (!Array.isArray(indices) || !indices.every((i, k) => Number.isInteger(i) && i >= 0 && (k === 0 || i >= (indices[k - 1] as number)))) {
      throw new TypeError(`ds.splitAtIndices takes increasing non-negative integer row indices, got ${JSON.stringify(indices)}`);
    }
    return (await splitAtIndices(await this.materialize(), indices)).map((b) => new MaterializedDataset(b));
  }

  /** [train, test]: `testSize` a fraction (0-1) or a number of rows; `shuffle` first. */
  async trainTestSplit(testSize: number, options?: { shuffle?: boolean; seed?: number }): Promise<[MaterializedDataset, MaterializedDataset]> {
    const o = checkKeys('ds.trainTestSplit', options, ['shuffle', 'seed']);
    const ds = o.shuffle ? this.randomShuffle(o.seed === undefined ? {} : { seed: o.seed as number }) : this;
    const m = await ds.materialize();
    const total = await m.count();
    if (typeof testSize !== 'number' || !(testSize > 0)) throw new RangeError(`ds.trainTestSplit: testSize must be a fraction in (0, 1) or a number of rows >= 1, got ${testSize}`);
    const test = testSize < 1 ? Math.ceil(total * testSize) : testSize;
    if (!Number.isInteger(test) || test > total) throw new RangeError(`ds.trainTestSplit: testSize ${testSize} is more rows than the dataset has (${total})`);
    const [a, b] = await m.splitAtIndices([total - test]);
    return [a as MaterializedDataset, b as MaterializedDataset];
  }

  /**
   * An iterator over the whole dataset (Ray's `ds.iterator()`): it can be sent
   * to another process (an actor, a task; rebuild it there with
   * `DataIterator.from(value)`), which runs the plan when it iterates.
   */
  iterator(): DataIterator {
    return new DataIterator({ kind: 'dataset', plan: this.plan });
  }

  /** `n` iterators over disjoint parts of the dataset, for `n` consumers (in any processes). */
  streamingSplit(n: number, options?: { equal?: boolean }): DataIterator[] {
    const o = checkKeys('ds.streamingSplit', options, ['equal']);
    return streamingSplit(this, checkInt('ds.streamingSplit: n', n, 1), Boolean(o.equal));
  }

  /** Writes one Parquet file per block into `dir`; resolves to the files written. */
  writeParquet(dir: string, options?: WriteOptions): Promise<string[]> {
    return writeDataset(this, dir, 'parquet', options);
  }
  /** Writes one CSV file per block into `dir`. */
  writeCsv(dir: string): Promise<string[]> {
    return writeDataset(this, dir, 'csv');
  }
  /** Writes one JSON Lines file per block into `dir`. */
  writeJson(dir: string): Promise<string[]> {
    return writeDataset(this, dir, 'json');
  }

  toString(): string {
    return `Dataset(${describePlan(this.plan)})`;
  }
}

/** A dataset whose blocks are in the object store (materialize(), split()). */
export class MaterializedDataset extends Dataset {
  /** @internal */
  constructor(readonly blocks: readonly Bundle[]) {
    super({ kind: 'Source', name: 'InputBlocks', source: { kind: 'blocks', bundles: [...blocks] }, steps: [], compute: DEFAULT_COMPUTE });
  }

  /** The number of blocks. */
  numBlocks(): number {
    return this.blocks.length;
  }
}

/** Validates iterBatches' options. */
export function checkIterOptions(what: string, options: unknown): IterBatchesOptions {
  const o = checkKeys(what, options, ['batchSize', 'batchFormat', 'prefetchBatches', 'dropLast', 'localShuffleBufferSize', 'localShuffleSeed']);
  if (o.batchSize !== undefined && o.batchSize !== null) checkInt(`${what}: batchSize`, o.batchSize, 1);
  if (o.batchFormat !== undefined && !BATCH_FORMATS.includes(o.batchFormat as BatchFormat)) throw new TypeError(`${what}: batchFormat must be one of ${BATCH_FORMATS.map((f) => `'${f}'`).join(', ')}, got ${JSON.stringify(o.batchFormat)}`);
  if (o.prefetchBatches !== undefined) checkInt(`${what}: prefetchBatches`, o.prefetchBatches, 0);
  if (o.localShuffleBufferSize !== undefined) checkInt(`${what}: localShuffleBufferSize`, o.localShuffleBufferSize, 1);
  if (o.localShuffleSeed !== undefined) checkInt(`${what}: localShuffleSeed`, o.localShuffleSeed, 0);
  return o as IterBatchesOptions;
}

