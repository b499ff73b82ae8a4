/**
 * Owner-side bookkeeping of submitted tasks and actor calls: what is in
 * flight, where results go, when to retry, and the errors a caller sees.
 * @internal
 */
import { TaskCancelledError, WorkerCrashedError } from '../../errors';
import { TaskStatus, type Dep, type ReturnObject, type TaskResult } from '../protocol/messages';
import { ValueState, type RefEntry } from './refs';

/** A streaming task's state, read by ObjectRefGenerator. */
export class StreamState {
  /** items that arrived and were not consumed yet */
  readonly items: RefEntry[] = [];
  /** index of the next item expected */
  next = 0;
  done = false;
  /** set when the task failed: the next item is an error */
  error: RefEntry | undefined = undefined;
  private waiters: Array<() => void> = [];
  /** Wakes the consumer waiting for the next item. */
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  /** Resolves at the next wake(). */
  wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
}

/** A top-level ObjectRef argument of a task: its position and entry. */
export interface ArgRef {
  i: number;
  entry: RefEntry;
}

/**
 * Waits for a task's top-level ObjectRef arguments. As each becomes ready
 * its value, as it travels to the worker, is added to `out`; `ready()` runs
 * once all are there, or `failed(entry)` for the first that failed (the task
 * then fails with that argument's error). Borrowed arguments are fetched
 * from their owners.
 */
export function whenArgsReady(
  args: ArgRef[],
  t: { depsLeft: number; finished: boolean },
  h: { fetch(e: RefEntry): void; depValue(e: RefEntry): Dep['val'] },
  out: Dep[],
  ready: () => void,
  failed: (e: RefEntry) => void,
): void {
  t.depsLeft = args.length;
  for (const a of args) {
    const onSettled = (): void => {
      if (t.finished || t.depsLeft < 0) return;
      if (a.entry.state !== ValueState.Ready) {
        t.depsLeft = -1;
        failed(a.entry);
        return;
      }
      out.push({ i: a.i, ref: { id: a.entry.id, owner: a.entry.owner }, val: h.depValue(a.entry) });
      if (--t.depsLeft === 0) ready();
    };
    if (a.entry.state === ValueState.Pending && !a.entry.owned) h.fetch(a.entry);
    a.entry.whenSettled(onSettled);
  }
}

/** One task or actor call in flight. */
export interface PendingTask {
  readonly taskId: string;
  attempt: number;
  readonly kind: 'normal' | 'actor';
  /** the name users see: function name or Class.method */
  readonly name: string;
  /** entries of the return values (empty for streaming) */
  readonly returns: RefEntry[];
  readonly stream: StreamState | undefined;
  /** entries held while the task is pending (arguments) */
  readonly holds: RefEntry[];
  retriesLeft: number;
  readonly retryExceptions: boolean | readonly string[];
  cancelled: boolean;
  /** set once the owner gave up on it */
  finished: boolean;
  /** number of times a worker died under it */
  crashes: number;
}

/** What the manager needs from the runtime. */
export interface TaskManagerHooks {
  /** Stores a returned object's value into its entry. */
  storeReturn(entry: RefEntry, ret: ReturnObject): void;
  /** Builds the entry for a streamed item. */
  streamEntry(task: PendingTask, index: number, ret: ReturnObject): RefEntry;
  /** Decodes a serialized error (for retry decisions). */
  errorName(err: Uint8Array): string | undefined;
  /** Releases the argument holds of a finished task. */
  release(holds: RefEntry[]): void;
  /** Frees an owned entry whose refs were all dropped before its value came. */
  freeLate(entry: RefEntry): void;
  /** Frees a returned value nobody will read. */
  discard(ret: ReturnObject): void;
}

/** See the module comment. */
export class TaskManager {
  readonly inflight = new Map<string, PendingTask>();

  constructor(private readonly hooks: TaskManagerHooks) {}

  /** Tracks a submitted task. */
  add(t: PendingTask): void {
    this.inflight.set(t.taskId, t);
  }

  /** The pending task `taskId`, if it is still in flight. */
  get(taskId: string): PendingTask | undefined {
    return this.inflight.get(taskId);
  }

  /** Whether a user error should be retried. */
  shouldRetryError(t: PendingTask, r: TaskResult): boolean {
    if (t.retriesLeft <= 0 || t.cancelled || t.stream) return false;
    if (t.retryExceptions === true) return true;
    if (t.retryExceptions === false || !r.err) return false;
    const name = this.hooks.errorName(r.err);
    return name !== undefined && t.retryExceptions.includes(name);
  }

  /** Applies a successful or failed result. The task is finished after this. */
  finish(t: PendingTask, r: TaskResult): void {
    if (r.st === TaskStatus.Ok) {
      const rets = r.rets ?? [];
      for (let i = 0; i < t.returns.length; i++) {
        const e = t.returns[i] as RefEntry;
        const ret = rets[i];
        if (ret) this.settle(e, ret);
        else this.settleError(e, undefined, new Error(`the task returned ${rets.length} values, ${t.returns.length} expected`));
      }
      for (let i = t.returns.length; i < rets.length; i++) this.hooks.discard(rets[i] as ReturnObject);
      if (t.stream) {
        t.stream.done = true;
        t.stream.wake();
      }
    } else if (r.st === TaskStatus.Cancelled) {
      this.fail(t, undefined, new TaskCancelledError(t.taskId, t.name));
    } else {
      this.fail(t, r.err, undefined);
    }
    this.done(t);
  }

  /** Fails every return of `t` with a serialized or a local error. */
  fail(t: PendingTask, err: Uint8Array | undefined, errObj: Error | undefined): void {
    for (const e of t.returns) this.settleError(e, err, errObj);
    if (t.stream) {
      const e = this.hooks.streamEntry(t, t.stream.next + t.stream.items.length, { id: '', val: {} });
      this.settleError(e, err, errObj);
      t.stream.error = e;
      t.stream.done = true;
      t.stream.wake();
    }
  }

  /** Fails `t` with an error and finishes it. */
  abort(t: PendingTask, err: Uint8Array | undefined, errObj: Error | undefined): void {
    this.fail(t, err, errObj);
    this.done(t);
  }

  /** The worker died under `t` and it has no retries left. */
  crashed(t: PendingTask, exitReason: string): void {
    this.fail(t, undefined, t.cancelled ? new TaskCancelledError(t.taskId, t.name) : new WorkerCrashedError({ functionName: t.name, exitReason, attempts: t.crashes }));
    this.done(t);
  }

  /** Cancelled before it ran. */
  cancelled(t: PendingTask): void {
    this.fail(t, undefined, new TaskCancelledError(t.taskId, t.name));
    this.done(t);
  }

  /**
   * A streamed item arrived. A retried generator starts over: the items an
   * earlier attempt already delivered are dropped.
   */
  streamItem(t: PendingTask, index: number, ret: ReturnObject): void {
    const s = t.stream;
    if (!s || s.done || index !== s.next + s.items.length) {
      this.hooks.discard(ret);
      return;
    }
    const e = this.hooks.streamEntry(t, index, ret);
    this.settle(e, ret);
    s.items.push(e);
    s.wake();
  }

  private done(t: PendingTask): void {
    if (t.finished) return;
    t.finished = true;
    this.inflight.delete(t.taskId);
    this.hooks.release(t.holds);
  }

  private settle(e: RefEntry, ret: ReturnObject): void {
    if (e.state !== ValueState.Pending) {
      this.hooks.discard(ret);
      return;
    }
    this.hooks.storeReturn(e, ret);
    e.notify();
    if (e.released) this.hooks.freeLate(e);
  }

  private settleError(e: RefEntry, err: Uint8Array | undefined, errObj: Error | undefined): void {
    if (e.state !== ValueState.Pending) return;
    e.state = ValueState.Error;
    e.err = err;
    e.errObj = errObj;
    e.notify();
    if (e.released) this.hooks.freeLate(e);
  }
}
