/**
 * Splitting a dataset: `split` and `splitAtIndices` of a materialized
 * dataset (slices of its blocks), and `streamingSplit`: a coordinator actor
 * runs the plan once per epoch and hands each of `n` iterators its part,
 * block by block, so that consumers in other processes (training workers)
 * read disjoint shards while the data streams.
 *
 * Without `equal`, each block goes whole to the split that has the fewest
 * rows so far (ties to the last). With `equal`, each block is cut into `n`
 * equal parts (a consumer slices its part out of the block, no copy), and
 * the remainders are shared equally at the end (what cannot be shared is
 * dropped), so every split gets exactly the same number of rows.
 *
 * The iterators of one streamingSplit must be consumed concurrently (as
 * Ray's): each epoch starts when every split has asked for it.
 * @internal
 */
import * as ray from '@tsray/core';
import type { Dataset, MaterializedDataset } from '../dataset';
import type { Block } from './block';
import type { Batch, Row } from './block';
import { type BundleSource, type IterBatchesOptions, type SourceBundle, batchesOf, rowsOf } from './iterator';
import type { Bundle, LogicalOp } from './plan';
import { evenCuts, rowRanges } from './execution/barriers';
import { sliceTask, type TaskMeta } from './execution/tasks';
import { execute } from './planner';
import type { Execution } from './execution/executor';
import type { ExecBundle } from './execution/operator';
import { DataError } from '../errors';

async function sliced(bundles: readonly Bundle[], counts: readonly number[]): Promise<Bundle[][]> {
  const asExec = bundles.map((b) => ({ ...b, meta: b.meta as TaskMeta, owned: false })) as ExecBundle[];
  const plans = rowRanges(asExec, counts);
  const refs = plans.map((p) => (p.blocks.length === 0 ? undefined : sliceTask.options({ numReturns: 2, numCpus: 0, name: 'Split' }).remote(p.slices, ...p.blocks)));
  const out: Bundle[][] = [];
  for (const r of refs) {
    if (!r) {
      out.push([]);
      continue;
    }
    const meta = (await ray.get(r[1] as ray.ObjectRef<TaskMeta>)) as TaskMeta;
    out.push([{ ref: r[0] as ray.ObjectRef<Block>, meta }]);
  }
  return out;
}

/** The blocks of `m` in `n` parts: whole blocks (rows about equal), or exactly equal rows. */
export async function splitDataset(m: MaterializedDataset, n: number, equal: boolean): Promise<Bundle[][]> {
  const blocks = m.blocks.filter((b) => b.meta.numRows > 0);
  const total = blocks.reduce((a, b) => a + b.meta.numRows, 0);
  if (equal) return sliced(blocks, Array.from({ length: n }, () => Math.floor(total / n)));
  if (blocks.length >= n) {
    // whole blocks, contiguous: part k gets blocks [k·B/n, (k+1)·B/n)
    const B = blocks.length;
    return Array.from({ length: n }, (_, k) => blocks.slice(Math.floor((k * B) / n), Math.floor(((k + 1) * B) / n)));
  }
  return sliced(blocks, evenCuts(total, n));
}

/** The rows of `m` cut at `indices`. */
export async function splitAtIndices(m: MaterializedDataset, indices: readonly number[]): Promise<Bundle[][]> {
  const blocks = m.blocks.filter((b) => b.meta.numRows > 0);
  const total = blocks.reduce((a, b) => a + b.meta.numRows, 0);
  const cuts = [0, ...indices.map((i) => Math.min(i, total)), total];
  return sliced(
    blocks,
    cuts.slice(1).map((c, i) => c - (cuts[i] as number)),
  );
}

// ------------------------------------------------------------------ streaming split

type Piece = { ref: ray.ObjectRef<Block>; meta: Bundle['meta']; slice?: [number, number] };

/** The actor that runs a streamingSplit's plan and deals out its blocks. */
export class SplitCoordinator {
  private epoch = -1;
  private asked: number[];
  private exec: Execution | undefined;
  private queues: Piece[][] = [];
  private rows: number[] = [];
  private leftovers: Piece[] = [];
  private finished = false;
  private pulling: Promise<void> | undefined;
  private epochStarted: { epoch: number; promise: Promise<void>; resolve: () => void } | undefined;

  constructor(
    private readonly plan: LogicalOp,
    private readonly n: number,
    private readonly equal: boolean,
  ) {
    this.asked = Array.from({ length: n }, () => -1);
  }

  /** Split `index` starts its next epoch; resolves (to the epoch) once every split has asked for it. */
  async startEpoch(index: number): Promise<number> {
    const e = (this.asked[index] as number) + 1;
    this.asked[index] = e;
    if (!this.epochStarted || this.epochStarted.epoch !== e) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.epochStarted = { epoch: e, promise, resolve };
    }
    const waiting = this.epochStarted;
    if (this.asked.every((a) => a >= e) && this.epoch < e) {
      this.exec?.close();
      this.epoch = e;
      this.queues = Array.from({ length: this.n }, () => []);
      this.rows = Array.from({ length: this.n }, () => 0);
      this.leftovers = [];
      this.finished = false;
      this.exec = await execute(this.plan, { progress: false });
      waiting.resolve();
    }
    await waiting.promise;
    return e;
  }

  /** The next piece of split `index` in `epoch`; null when it has all its rows. */
  async next(index: number, epoch: number): Promise<Piece | null> {
    if (epoch !== this.epoch) throw new DataError(`streamingSplit: split ${index} asked for epoch ${epoch} but the coordinator is at epoch ${this.epoch}; consume every split's iterator once per epoch, concurrently`);
    for (;;) {
      const q = this.queues[index] as Piece[];
      if (q.length > 0) return q.shift() as Piece;
      if (this.finished) return null;
      this.pulling ??= this.pull().finally(() => (this.pulling = undefined));
      await this.pulling;
    }
  }

  private async pull(): Promise<void> {
    const b = await (this.exec as Execution).next();
    if (!b) {
      this.finish();
      return;
    }
    if (b.meta.numRows === 0) return;
    if (!this.equal) {
      let k = this.n - 1;
      for (let i = this.n - 1; i >= 0; i--) if ((this.rows[i] as number) < (this.rows[k] as number)) k = i;
      (this.queues[k] as Piece[]).push({ ref: b.ref, meta: b.meta });
      this.rows[k] = (this.rows[k] as number) + b.meta.numRows;
      return;
    }
    const share = Math.floor(b.meta.numRows / this.n);
    for (let i = 0; i < this.n && share > 0; i++) (this.queues[i] as Piece[]).push({ ref: b.ref, meta: { ...b.meta, numRows: share }, slice: [i * share, (i + 1) * share] });
    if (b.meta.numRows % this.n > 0) this.leftovers.push({ ref: b.ref, meta: b.meta, slice: [share * this.n, b.meta.numRows] });
  }

  /** The end: equal splits share the remainders. */
  private finish(): void {
    this.finished = true;
    if (!this.equal) return;
    const total = this.leftovers.reduce((a, p) => a + ((p.slice as [number, number])[1] - (p.slice as [number, number])[0]), 0);
    const each = Math.floor(total / this.n);
    let li = 0;
    let off = 0;
    for (let i = 0; i < this.n; i++) {
      let need = each;
      while (need > 0 && li < this.leftovers.length) {
        const p = this.leftovers[li] as Piece;
        const [s, e] = p.slice as [number, number];
        const take = Math.min(need, e - s - off);
        (this.queues[i] as Piece[]).push({ ref: p.ref, meta: { ...p.meta, numRows: take }, slice: [s + off, s + off + take] });
        need -= take;
        off += take;
        if (s + off >= e) {
          li++;
          off = 0;
        }
      }
    }
  }
}

/** The coordinator's actor class. */
export const SplitCoordinatorActor = ray.remote(SplitCoordinator);

/** What a DataIterator reads from. */
type IteratorSource = { kind: 'dataset'; plan: LogicalOp } | { kind: 'split'; coordinator: ray.ActorHandleOf<SplitCoordinator>; index: number };

/**
 * An iterator over a dataset or one split of a streamingSplit. It can be
 * sent to another process (an actor, a task): rebuild it there with
 * `DataIterator.from(value)`.
 */
export class DataIterator {
  /** @internal */
  constructor(readonly src: IteratorSource) {}

  /** A DataIterator again, from one that traveled to this process (it arrives as a plain object). */
  static from(value: unknown): DataIterator {
    if (value instanceof DataIterator) return value;
    const src = (value as { src?: IteratorSource } | null)?.src;
    if (!src || (src.kind !== 'split' && src.kind !== 'dataset')) throw new TypeError('DataIterator.from takes a DataIterator (or one that was sent to this process)');
    return new DataIterator(src);
  }

  private async source(): Promise<BundleSource> {
    if (this.src.kind === 'dataset') {
      const exec = await execute(this.src.plan);
      return { next: () => exec.next(), close: () => exec.close() };
    }
    const { coordinator, index } = this.src;
    const epoch = (await ray.get(coordinator.startEpoch.remote(index))) as number;
    return {
      async next(): Promise<SourceBundle | undefined> {
        const p = (await ray.get(coordinator.next.remote(index, epoch))) as Piece | null;
        return p ?? undefined;
      },
      close: () => undefined,
    };
  }

  /** Batches of this iterator's rows (one epoch). */
  async *iterBatches(options?: IterBatchesOptions): AsyncGenerator<Batch> {
    yield* batchesOf(await this.source(), options ?? {});
  }

  /** This iterator's rows (one epoch). */
  async *iterRows(): AsyncGenerator<Row> {
    yield* rowsOf(await this.source());
  }
}

/** `n` iterators over disjoint parts of `ds`, fed by one coordinator actor. */
export function streamingSplit(ds: Dataset, n: number, equal: boolean): DataIterator[] {
  const coordinator = SplitCoordinatorActor.options({ numCpus: 0, maxConcurrency: 1000 }).remote(ds.plan, n, equal) as unknown as ray.ActorHandleOf<SplitCoordinator>;
  return Array.from({ length: n }, (_, index) => new DataIterator({ kind: 'split', coordinator, index }));
}
