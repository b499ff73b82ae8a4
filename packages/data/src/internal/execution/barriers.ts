/**
 * Operators that need all their input before they produce: the all-to-all
 * operations (sort, shuffles, repartition, aggregations, mapGroups), run as
 * a map stage and a reduce stage of tasks, and zip.
 * @internal
 */
import * as ray from '@tsray/core';
import type { Block } from '../block';
import * as K from '../kernels';
import type { AllToAll } from '../plan';
import { SchemaMismatchError } from '../../errors';
import { type ExecBundle, type ExecContext, PhysicalOp } from './operator';
import { type Reduce, type Slice, type TaskMeta, partialAggTask, partitionRefs, reduceTask, sampleTask, sliceTask, zipTask } from './tasks';

/** Reduce outputs of an all-to-all op aim at this many rows per block… */
const TARGET_ROWS_PER_BLOCK = 1 << 20;
/** …and at most this many bytes (a reduce task holds its inputs and its output at once). */
const TARGET_BYTES_PER_BLOCK = 64 << 20;

/** Base of the barriers: collects every input bundle, then runs `run` once. */
abstract class BarrierOp extends PhysicalOp {
  override readonly barrier = true;
  private started = false;
  private ended = false;

  get maxConcurrency(): number {
    return 1;
  }

  hasWork(): boolean {
    return !this.started && !this.cancelled && this.inputsDone.every(Boolean);
  }

  protected override pendingWork(): boolean {
    return !this.ended;
  }

  startOne(): void {
    this.started = true;
    this.inFlight++;
    this.stats.taskStarted();
    const inputs = this.queues.map((q) => q.splice(0));
    this.run(inputs).then(
      () => {
        this.inFlight--;
        this.ended = true;
        this.ctx.release(inputs.flat());
        this.ctx.pump();
      },
      (e: unknown) => {
        this.inFlight--;
        this.ctx.fail(e);
      },
    );
  }

  /** Does the work; outputs go through `emit`. */
  protected abstract run(inputs: ExecBundle[][]): Promise<void>;

  /** Waits for reduce tasks (in order) and releases their outputs. */
  protected async emitAll(refs: Array<readonly ray.ObjectRef<unknown>[]>): Promise<void> {
    const metas = (await ray.get(refs.map((r) => r[1] as ray.ObjectRef<TaskMeta>))) as TaskMeta[];
    for (const [i, meta] of metas.entries()) {
      this.stats.taskDone(meta);
      this.stats.taskStarted();
      this.complete(this.reserve(), [{ ref: (refs[i] as readonly ray.ObjectRef<unknown>[])[0] as ray.ObjectRef<Block>, meta, owned: true }]);
    }
    this.stats.running--;
  }
}

/** Partitions for `rows` rows in `blocks` input blocks. */
function partitionsFor(rows: number, bytes: number, blocks: number): number {
  return Math.max(1, Math.min(blocks, Math.max(Math.ceil(rows / TARGET_ROWS_PER_BLOCK), Math.ceil(bytes / TARGET_BYTES_PER_BLOCK))) || 1);
}

const seedOf = (seed: number | undefined): number => seed ?? Math.floor(Math.random() * 2 ** 31);

/** An all-to-all operation as map and reduce stages. */
export class AllToAllOp extends BarrierOp {
  constructor(
    name: string,
    input: PhysicalOp,
    private readonly spec: AllToAll,
    ctx: ExecContext,
  ) {
    super(name, [input], ctx);
  }

  protected async run([input]: ExecBundle[][]): Promise<void> {
    const bundles = (input as ExecBundle[]).filter((b) => b.meta.numRows > 0);
    const rows = bundles.reduce((a, b) => a + b.meta.numRows, 0);
    const bytes = bundles.reduce((a, b) => a + b.meta.sizeBytes, 0);
    if (bundles.length === 0) return;
    const spec = this.spec;
    switch (spec.kind) {
      case 'sort':
        return this.rangePartitioned(bundles, spec.key, partitionsFor(rows, bytes, bundles.length), { kind: 'merge', key: spec.key });
      case 'mapGroups': {
        const key = K.compileSortKey(spec.keys);
        return this.rangePartitioned(bundles, key, partitionsFor(rows, bytes, bundles.length), { kind: 'mapGroups', key, fn: spec.fn, op: spec.op, format: spec.format });
      }
      case 'randomShuffle':
      case 'repartition': {
        const seed = seedOf(spec.kind === 'randomShuffle' ? spec.seed : undefined);
        const n = spec.kind === 'repartition' ? spec.n : bundles.length;
        if (spec.kind === 'repartition' && !spec.shuffle) return this.evenSplit(bundles, n);
        const parts = bundles.map((b, i) => partitionRefs({ kind: 'random', n, seed: seed + i }, b.ref, n, `${this.name}.map`));
        const reduce: Reduce = spec.kind === 'randomShuffle' ? { kind: 'shuffle', seed } : { kind: 'concat' };
        return this.reduce(parts, n, (j) => (reduce.kind === 'shuffle' ? { kind: 'shuffle', seed: seed + 7919 * (j + 1) } : reduce));
      }
      case 'aggregate': {
        const final = (): Reduce => ({ kind: 'aggregate', keys: spec.keys, aggs: spec.aggs });
        // with `partial`, the blocks are partial states already (fused into the tasks that made them)
        const out = spec.partial
          ? undefined
          : bundles.map((b) => partialAggTask.options({ numReturns: 2, name: `${this.name}.partial` }).remote(spec.keys, spec.aggs, b.ref) as unknown as [ray.ObjectRef<Block>, ray.ObjectRef<TaskMeta>]);
        const partials = out ? out.map((o) => o[0]) : bundles.map((b) => b.ref);
        if (spec.keys.length === 0) return this.reduce([partials], 1, final, true);
        let partialRows = rows;
        let partialBytes = bytes;
        if (out) {
          const metas = (await ray.get(out.map((o) => o[1]))) as TaskMeta[];
          for (const m of metas) this.stats.taskDone(m, false);
          partialRows = metas.reduce((a, m) => a + m.numRows, 0);
          partialBytes = metas.reduce((a, m) => a + m.sizeBytes, 0);
        }
        // the partials have one row per key of their block: few keys reduce in one task, without sampling and partitioning
        const n = partitionsFor(partialRows, partialBytes, partials.length);
        if (n === 1) return this.reduce([partials], 1, final, true);
        const key = K.compileSortKey(spec.keys);
        const how = await this.boundaries(partials, key, n);
        const parts = partials.map((p) => partitionRefs(how, p, n, `${this.name}.map`));
        return this.reduce(parts, n, final);
      }
      case 'randomizeBlocks':
        for (const b of bundles) this.complete(this.reserve(), [{ ...b, owned: false }]);
        return;
    }
  }

  private async boundaries(blocks: ray.ObjectRef<Block>[], key: K.SortKey, n: number): Promise<{ kind: 'range'; key: K.SortKey; boundaries: Block }> {
    const samples = await ray.get(blocks.map((b) => sampleTask.options({ name: `${this.name}.sample` }).remote(b, key, Math.max(8, n * 4))));
    return { kind: 'range', key, boundaries: K.boundariesFromSamples(samples, key, n) };
  }

  private async rangePartitioned(bundles: ExecBundle[], key: K.SortKey, n: number, reduce: Reduce): Promise<void> {
    const how = await this.boundaries(
      bundles.map((b) => b.ref),
      key,
      n,
    );
    const parts = bundles.map((b) => partitionRefs(how, b.ref, n, `${this.name}.map`));
    return this.reduce(parts, n, () => reduce);
  }

  /** Reduce task j gets partition j of every map task (or, with `all`, every ref of `parts[0]`). */
  private async reduce(parts: ray.ObjectRef<Block>[][], n: number, how: (j: number) => Reduce, all = false): Promise<void> {
    const refs: Array<readonly ray.ObjectRef<unknown>[]> = [];
    for (let j = 0; j < n; j++) {
      const inputs = all ? (parts[0] as ray.ObjectRef<Block>[]) : parts.map((p) => p[j] as ray.ObjectRef<Block>);
      refs.push(reduceTask.options({ numReturns: 2, name: `${this.name}.reduce` }).remote(how(j), ...inputs));
    }
    await this.emitAll(refs);
  }

  /** repartition(n) without shuffle: contiguous rows, about equal counts. */
  private async evenSplit(bundles: ExecBundle[], n: number): Promise<void> {
    const plans = rowRanges(bundles, evenCuts(bundles.reduce((a, b) => a + b.meta.numRows, 0), n));
    await this.emitAll(plans.map((p) => sliceTask.options({ numReturns: 2, numCpus: 0, name: `${this.name}.split` }).remote(p.slices, ...p.blocks)));
  }
}

/** Row counts of `n` contiguous parts of `rows` rows, the first ones one larger. */
export function evenCuts(rows: number, n: number): number[] {
  const base = Math.floor(rows / n);
  return Array.from({ length: n }, (_, i) => base + (i < rows % n ? 1 : 0));
}

/** For each count, the slices of `bundles` (in order) that make those rows. */
export function rowRanges(bundles: readonly ExecBundle[], counts: readonly number[]): Array<{ slices: Slice[]; blocks: ray.ObjectRef<Block>[] }> {
  const out: Array<{ slices: Slice[]; blocks: ray.ObjectRef<Block>[] }> = [];
  let bi = 0;
  let off = 0;
  for (const count of counts) {
    const slices: Slice[] = [];
    const blocks: ray.ObjectRef<Block>[] = [];
    let need = count;
    while (need > 0 && bi < bundles.length) {
      const b = bundles[bi] as ExecBundle;
      const take = Math.min(need, b.meta.numRows - off);
      if (take > 0) {
        slices.push([blocks.length, off, off + take]);
        blocks.push(b.ref);
      }
      need -= take;
      off += take;
      if (off >= b.meta.numRows) {
        bi++;
        off = 0;
      }
    }
    out.push({ slices, blocks });
  }
  return out;
}

/** zip: the columns of two datasets with the same number of rows, side by side. */
export class ZipOp extends BarrierOp {
  constructor(left: PhysicalOp, right: PhysicalOp, ctx: ExecContext) {
    super('Zip', [left, right], ctx);
  }

  protected async run([left, right]: ExecBundle[][]): Promise<void> {
    const l = (left as ExecBundle[]).filter((b) => b.meta.numRows > 0);
    const r = (right as ExecBundle[]).filter((b) => b.meta.numRows > 0);
    const lr = l.reduce((a, b) => a + b.meta.numRows, 0);
    const rr = r.reduce((a, b) => a + b.meta.numRows, 0);
    if (lr !== rr) {
      throw new SchemaMismatchError(`zip: the datasets have different numbers of rows (${lr} and ${rr}); zip pairs rows one to one: limit the longer one or zip datasets of equal length`);
    }
    const plans = rowRanges(r, l.map((b) => b.meta.numRows));
    await this.emitAll(l.map((b, i) => zipTask.options({ numReturns: 2, numCpus: 0, name: 'Zip' }).remote(b.ref, (plans[i] as { slices: Slice[] }).slices, ...(plans[i] as { blocks: ray.ObjectRef<Block>[] }).blocks)));
  }
}
