/**
 * The streaming physical operators: input blocks, reads, task maps, limit,
 * union. (Barriers — all-to-all, zip — are in `barriers.ts`, the actor pool
 * in `actor-pool.ts`.)
 * @internal
 */
import type { Block } from '../block';
import type { ReadOptions } from '../io';
import type { ReadSpec, Step } from '../plan';
import { SchemaMismatchError } from '../../errors';
import { type ExecBundle, type ExecContext, PhysicalOp } from './operator';
import { mapTask, readTask, sliceTask } from './tasks';

/** Blocks already in the store (fromItems, fromArrow, a materialized dataset). */
export class InputOp extends PhysicalOp {
  private readonly pending: ExecBundle[];

  constructor(name: string, bundles: readonly ExecBundle[], ctx: ExecContext) {
    super(name, [], ctx);
    this.pending = [...bundles];
  }

  get maxConcurrency(): number {
    return Number.POSITIVE_INFINITY;
  }

  hasWork(): boolean {
    return this.pending.length > 0 && !this.cancelled;
  }

  protected override pendingWork(): boolean {
    return this.pending.length > 0;
  }

  startOne(): void {
    const b = this.pending.shift() as ExecBundle;
    this.stats.passed(b.meta);
    this.complete(this.reserve(), [b]);
  }
}

/** Task resources of a map or read operator. */
export interface TaskResources {
  numCpus: number;
  numGpus: number;
  concurrency: number | undefined;
}

function concurrencyOf(r: TaskResources, ctx: ExecContext): number {
  const byCpu = r.numCpus > 0 ? Math.floor(ctx.cpus / r.numCpus) : Number.POSITIVE_INFINITY;
  const byGpu = r.numGpus > 0 ? Math.floor(ctx.gpus / r.numGpus) : Number.POSITIVE_INFINITY;
  const n = Math.max(1, Math.min(byCpu, byGpu, r.concurrency ?? Number.POSITIVE_INFINITY));
  return Number.isFinite(n) ? n : Math.max(1, ctx.cpus);
}

/** Read tasks (range or files), each with the steps fused into it. */
export class ReadOp extends PhysicalOp {
  private readonly pending: ReadSpec[];

  constructor(
    name: string,
    specs: readonly ReadSpec[],
    private readonly options: ReadOptions,
    private readonly steps: Step[],
    private readonly resources: TaskResources,
    ctx: ExecContext,
  ) {
    super(name, [], ctx);
    this.pending = [...specs];
  }

  get maxConcurrency(): number {
    return concurrencyOf(this.resources, this.ctx);
  }

  hasWork(): boolean {
    return this.pending.length > 0 && !this.cancelled;
  }

  protected override pendingWork(): boolean {
    return this.pending.length > 0 && !this.cancelled;
  }

  startOne(): void {
    const spec = this.pending.shift() as ReadSpec;
    const refs = readTask.options({ numReturns: 2, numCpus: this.resources.numCpus, numGpus: this.resources.numGpus, name: this.name }).remote(spec, this.options, this.steps);
    this.track(this.reserve(), refs, []);
  }
}

/** A fused chain of steps, one task per input block. */
export class TaskMapOp extends PhysicalOp {
  constructor(
    name: string,
    input: PhysicalOp,
    private readonly steps: Step[],
    private readonly resources: TaskResources,
    ctx: ExecContext,
  ) {
    super(name, [input], ctx);
  }

  get maxConcurrency(): number {
    return concurrencyOf(this.resources, this.ctx);
  }

  hasWork(): boolean {
    return (this.queues[0] as ExecBundle[]).length > 0 && !this.cancelled;
  }

  startOne(): void {
    const b = this.take() as ExecBundle;
    const refs = mapTask.options({ numReturns: 2, numCpus: this.resources.numCpus, numGpus: this.resources.numGpus, name: this.name }).remote(this.steps, b.ref);
    this.track(this.reserve(), refs, [b]);
  }
}

/** The first `n` rows; tells the executor when it has them (upstream stops). */
export class LimitOp extends PhysicalOp {
  private rows = 0;

  constructor(
    input: PhysicalOp,
    readonly n: number,
    ctx: ExecContext,
  ) {
    super(`Limit[${n}]`, [input], ctx);
  }

  get maxConcurrency(): number {
    return Number.POSITIVE_INFINITY;
  }

  /** All the rows it lets through have arrived. */
  satisfied(): boolean {
    return this.rows >= this.n;
  }

  hasWork(): boolean {
    return (this.queues[0] as ExecBundle[]).length > 0 && !this.satisfied();
  }

  override finished(): boolean {
    return (this.satisfied() || super.finished()) && this.inFlight === 0 && (this.satisfied() || this.inputsDone.every(Boolean));
  }

  startOne(): void {
    const b = this.take() as ExecBundle;
    const want = this.n - this.rows;
    if (b.meta.numRows <= want) {
      this.rows += b.meta.numRows;
      this.stats.passed(b.meta);
      this.complete(this.reserve(), [b]);
      return;
    }
    this.rows = this.n;
    const refs = sliceTask.options({ numReturns: 2, numCpus: 0, name: this.name }).remote([[0, 0, want]], b.ref as unknown as Block);
    this.track(this.reserve(), refs, [b]);
  }
}

/** The rows of each input in turn (all of the first, then the second, …). */
export class UnionOp extends PhysicalOp {
  private current = 0;
  private columns: string | undefined;

  constructor(inputs: PhysicalOp[], ctx: ExecContext) {
    super('Union', inputs, ctx);
  }

  get maxConcurrency(): number {
    return Number.POSITIVE_INFINITY;
  }

  hasWork(): boolean {
    while (this.current < this.inputs.length - 1 && this.inputsDone[this.current] && (this.queues[this.current] as ExecBundle[]).length === 0) this.current++;
    return (this.queues[this.current] as ExecBundle[]).length > 0;
  }

  startOne(): void {
    const b = this.take(this.current) as ExecBundle;
    const cols = b.meta.columns.map(([n]) => n).sort().join(', ');
    if (b.meta.numRows > 0 && b.meta.columns.length > 0) {
      if (this.columns === undefined) this.columns = cols;
      else if (cols !== this.columns) {
        this.ctx.fail(
          new SchemaMismatchError(
            `union: the datasets have different columns ([${this.columns}] and [${cols}]); union needs the same columns in every dataset: select or rename columns first`,
          ),
        );
        return;
      }
    }
    this.stats.passed(b.meta);
    this.complete(this.reserve(), [b]);
  }
}
