/**
 * The physical operator base: input queues fed by upstream operators,
 * units of work (usually tasks) in flight, and outputs released in input
 * order. Subclasses say when they have work and how to start one unit.
 * @internal
 */
import * as ray from '@tsray/core';
import type { Block } from '../block';
import type { Bundle } from '../plan';
import type { TaskMeta } from './tasks';
import { OpStats } from '../stats';

/** A bundle the executor moves between operators. */
export interface ExecBundle extends Bundle {
  meta: TaskMeta;
  /** made by this execution (an intermediate): freed once used */
  owned: boolean;
}

/** What operators need from the executor that runs them. */
export interface ExecContext {
  /** something changed: move outputs, start work */
  pump(): void;
  /** the execution failed */
  fail(e: unknown): void;
  /** frees intermediates that are no longer needed */
  release(bundles: readonly ExecBundle[]): void;
  /** CPUs and GPUs of the cluster */
  readonly cpus: number;
  readonly gpus: number;
}

/** A physical operator. */
export abstract class PhysicalOp {
  /** one queue per input operator */
  readonly queues: ExecBundle[][];
  readonly inputsDone: boolean[];
  /** outputs ready for the downstream operator, in order */
  readonly out: ExecBundle[] = [];
  /** units of work running */
  inFlight = 0;
  /** true once a downstream limit has all it needs: start nothing more */
  cancelled = false;
  /** true for operators that need all their input before they produce (the queue cap does not apply to what feeds them) */
  readonly barrier: boolean = false;
  readonly stats: OpStats;
  private nextSeq = 0;
  private emitSeq = 0;
  private readonly ready = new Map<number, ExecBundle[]>();

  protected constructor(
    readonly name: string,
    readonly inputs: PhysicalOp[],
    protected readonly ctx: ExecContext,
  ) {
    this.queues = inputs.map(() => []);
    this.inputsDone = inputs.map(() => false);
    this.stats = new OpStats(name);
  }

  /** How many units of work may run at once. */
  abstract get maxConcurrency(): number;
  /** True when a unit of work could start now. */
  abstract hasWork(): boolean;
  /** Starts one unit of work. */
  abstract startOne(): void;
  /** True while work is waiting that has not started (beyond the queues). */
  protected pendingWork(): boolean {
    return false;
  }

  /** Bytes a unit of work's output is expected to take (the mean so far). */
  expectedOutputBytes(): number {
    return this.stats.blocks > 0 ? this.stats.bytes / this.stats.blocks : 1 << 20;
  }

  /** Every output has been released and none will come. */
  finished(): boolean {
    if (this.cancelled) return this.inFlight === 0;
    return this.inputsDone.every(Boolean) && this.queues.every((q) => q.length === 0) && this.inFlight === 0 && this.ready.size === 0 && !this.pendingWork();
  }

  /** Reserves the next output position. */
  protected reserve(): number {
    return this.nextSeq++;
  }

  /** Output `seq` is ready (none, several or one bundle); releases outputs in order. */
  protected complete(seq: number, bundles: ExecBundle[]): void {
    this.ready.set(seq, bundles);
    while (this.ready.has(this.emitSeq)) {
      const bs = this.ready.get(this.emitSeq) as ExecBundle[];
      this.ready.delete(this.emitSeq);
      this.emitSeq++;
      for (const b of bs) {
        if (this.cancelled) this.ctx.release([b]);
        else if (b.meta.numRows === 0 && b.owned) this.ctx.release([b]);
        else this.out.push(b);
      }
    }
  }

  /**
   * Runs a task that returns [block, meta]: counts it in flight, frees its
   * inputs when it is done, records its stats and releases its output at
   * position `seq`.
   */
  protected track(seq: number, refs: readonly ray.ObjectRef<unknown>[], inputs: readonly ExecBundle[], onSettled?: () => void): void {
    this.inFlight++;
    this.stats.taskStarted();
    (ray.get(refs[1] as ray.ObjectRef<TaskMeta>) as Promise<TaskMeta>).then(
      (meta) => {
        this.inFlight--;
        onSettled?.();
        this.ctx.release(inputs);
        this.stats.taskDone(meta);
        this.complete(seq, [{ ref: refs[0] as ray.ObjectRef<Block>, meta, owned: true }]);
        this.ctx.pump();
      },
      (e: unknown) => {
        this.inFlight--;
        onSettled?.();
        this.ctx.fail(e);
      },
    );
  }

  /** Takes the next bundle of input `i`. */
  protected take(i = 0): ExecBundle | undefined {
    return this.queues[i]?.shift();
  }

  /** Rows and bytes waiting in this operator's input queues. */
  queuedBytes(): number {
    let n = 0;
    for (const q of this.queues) for (const b of q) n += b.meta.sizeBytes;
    return n;
  }

  /** Called when the execution ends (stop actors, …). */
  shutdown(): void {}
}
