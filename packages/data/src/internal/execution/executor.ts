/**
 * The streaming executor: runs a DAG of physical operators, moving each
 * operator's outputs into its consumer's queue and starting work where
 * three limits allow — the operator's concurrency, room downstream (a slow
 * consumer stops upstream work: backpressure), and the memory budget (bytes
 * of blocks waiting in queues plus those expected from work in flight).
 * Event driven: every finished task pumps it; the consumer pulls from the
 * final queue.
 * @internal
 */
import * as ray from '@tsray/core';
import { DataError } from '../../errors';
import { formatStats } from '../stats';
import type { ExecBundle, ExecContext, PhysicalOp } from './operator';
import { LimitOp } from './ops';
import { Progress } from '../progress';

/** How an execution runs. */
export interface ExecutionOptions {
  /** bytes of blocks the execution may hold at once @default half the object store */
  memoryBudgetBytes?: number;
  /** a progress bar per operator on a TTY @default true */
  progress?: boolean;
  /** final outputs that may wait for the consumer @default 2 */
  prefetch?: number;
}

/** Unwraps a task's error to the library error a user's function caused (UserCodeError, BlockValueError…). */
export function userFacingError(e: unknown): unknown {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur instanceof ray.RayError && !(cur instanceof DataError); i++) {
    const c = (cur as { cause?: unknown }).cause;
    if (c === undefined) break;
    cur = c;
  }
  return cur instanceof DataError ? cur : e;
}

/** One run of a plan. */
export class Execution implements ExecContext {
  readonly ops: PhysicalOp[] = [];
  private readonly consumers = new Map<PhysicalOp, Array<{ op: PhysicalOp; index: number }>>();
  private final: PhysicalOp | undefined;
  private readonly finalQueue: ExecBundle[] = [];
  private error: unknown;
  private closed = false;
  private pumping = false;
  private again = false;
  private waiter: (() => void) | undefined;
  private readonly budget: number;
  private readonly prefetch: number;
  private readonly progress: Progress | undefined;
  private readonly t0 = performance.now();
  private tEnd: number | undefined;

  constructor(
    readonly cpus: number,
    readonly gpus: number,
    options: ExecutionOptions = {},
  ) {
    this.budget = options.memoryBudgetBytes ?? Math.max(64 << 20, Math.floor(ray.objectStoreStats().capacityBytes / 2));
    this.prefetch = options.prefetch ?? 2;
    this.progress = options.progress === false ? undefined : Progress.create();
  }

  /** Adds an operator (inputs before their consumers); the last added is the final one. */
  add(op: PhysicalOp): PhysicalOp {
    this.ops.push(op);
    for (const [index, input] of op.inputs.entries()) {
      const list = this.consumers.get(input) ?? [];
      list.push({ op, index });
      this.consumers.set(input, list);
    }
    this.final = op;
    return op;
  }

  /** Starts the work. */
  start(): void {
    this.progress?.start(this.ops.map((o) => o.stats));
    this.pump();
  }

  /** The next output of the final operator, in order; undefined when there are no more. */
  async next(): Promise<ExecBundle | undefined> {
    for (;;) {
      if (this.error !== undefined) throw this.error;
      const b = this.finalQueue.shift();
      if (b) {
        this.pump();
        return b;
      }
      if (this.closed || (this.final as PhysicalOp).finished()) {
        this.end();
        return undefined;
      }
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** Stops the execution: nothing more starts; actors stop. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const op of this.ops) op.cancelled = true;
    this.end();
    this.release(this.finalQueue.splice(0));
    this.wake();
  }

  private end(): void {
    if (this.tEnd !== undefined) return;
    this.tEnd = performance.now();
    for (const op of this.ops) op.shutdown();
    this.progress?.stop();
  }

  /** `ds.stats()` text of this execution. */
  statsText(): string {
    return formatStats(
      this.ops.map((o) => o.stats),
      (this.tEnd ?? performance.now()) - this.t0,
    );
  }

  fail(e: unknown): void {
    if (this.error !== undefined || this.closed) return;
    this.error = userFacingError(e);
    this.close();
  }

  release(bundles: readonly ExecBundle[]): void {
    const refs = bundles.filter((b) => b.owned).map((b) => b.ref);
    if (refs.length === 0) return;
    try {
      ray.free(refs);
    } catch {
      // the cluster is gone: nothing to free
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Bytes of blocks waiting anywhere in the execution. */
  private heldBytes(): number {
    let n = 0;
    for (const op of this.ops) {
      n += op.queuedBytes();
      for (const b of op.out) n += b.meta.sizeBytes;
      n += op.inFlight * op.expectedOutputBytes();
    }
    for (const b of this.finalQueue) n += b.meta.sizeBytes;
    return n;
  }

  /** Outputs of `op` not yet taken by work downstream (through pass-through operators). */
  private waitingBelow(op: PhysicalOp): number {
    let n = op.out.length;
    const cs = this.consumers.get(op);
    if (!cs) return n + this.finalQueue.length;
    for (const c of cs) {
      if (c.op.barrier) return 0;
      n += (c.op.queues[c.index] as ExecBundle[]).length;
      if (!Number.isFinite(c.op.maxConcurrency)) n += this.waitingBelow(c.op);
    }
    return n;
  }

  /** Room for one more unit of `op`'s work downstream. */
  private roomBelow(op: PhysicalOp): boolean {
    if (!Number.isFinite(op.maxConcurrency) || op.barrier) return true;
    const cs = this.consumers.get(op);
    const below = cs?.[0]?.op;
    const slack = below === undefined ? this.prefetch : Number.isFinite(below.maxConcurrency) ? Math.max(2, below.maxConcurrency) : this.prefetch;
    return op.inFlight + this.waitingBelow(op) < op.maxConcurrency + slack;
  }

  private memoryAllows(op: PhysicalOp): boolean {
    if (!Number.isFinite(op.maxConcurrency)) return true;
    if (this.ops.every((o) => o.inFlight === 0)) return true;
    return this.heldBytes() + op.expectedOutputBytes() <= this.budget;
  }

  /** Cancels what feeds a satisfied limit. */
  private cancelAbove(op: PhysicalOp): void {
    for (const input of op.inputs) {
      if (input.cancelled) continue;
      input.cancelled = true;
      for (const q of input.queues) this.release(q.splice(0));
      this.release(input.out.splice(0));
      this.cancelAbove(input);
    }
  }

  pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        for (const op of this.ops) {
          const cs = this.consumers.get(op);
          while (op.out.length > 0) {
            const b = op.out.shift() as ExecBundle;
            if (!cs) this.finalQueue.push(b);
            else for (const c of cs) (c.op.queues[c.index] as ExecBundle[]).push(b);
          }
        }
        for (const op of this.ops) {
          if (op instanceof LimitOp && op.satisfied()) this.cancelAbove(op);
          if (!op.finished()) continue;
          for (const c of this.consumers.get(op) ?? []) c.op.inputsDone[c.index] = true;
        }
        for (let i = this.ops.length - 1; i >= 0; i--) {
          const op = this.ops[i] as PhysicalOp;
          while (!this.closed && op.hasWork() && op.inFlight < op.maxConcurrency && this.roomBelow(op) && this.memoryAllows(op)) {
            op.startOne();
            this.again = true;
          }
        }
      } while (this.again && !this.closed);
    } catch (e) {
      this.pumping = false;
      this.fail(e);
      return;
    }
    this.pumping = false;
    this.progress?.update(this.heldBytes());
    if (this.finalQueue.length > 0 || (this.final as PhysicalOp).finished()) this.wake();
  }
}
