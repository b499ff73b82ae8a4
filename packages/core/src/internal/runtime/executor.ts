/**
 * The worker side: runs the tasks an owner pushes (one at a time, in order)
 * or hosts one actor and runs its method calls (in order per caller, up to
 * `maxConcurrency` at once). Results go back to each task's owner in
 * batches.
 * @internal
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  MT,
  TaskStatus,
  type ActorCall,
  type ActorSpec,
  type Address,
  type CodeRef,
  type Dep,
  type MessageOf,
  type ReturnObject,
  type TaskResult,
  type TaskSpec,
} from '../protocol/messages';
import type { Endpoint, Peer } from '../transport/endpoint';
import { returnId } from '../ids';
import { findDefinition } from './definitions';

/** What a running task or call sees (getRuntimeContext, logs, nested calls). */
export interface TaskContext {
  readonly taskId: string;
  readonly name: string;
  readonly actorId: string | undefined;
  readonly gpus: string[];
  /** tasks this one submitted, for recursive cancel */
  readonly children: Set<string>;
  /** borrow registrations to finish before replying */
  readonly regs: Array<Promise<void>>;
  /** aborted when the task is cancelled */
  readonly abort: AbortController;
  /** set for normal tasks: the lease it runs under */
  readonly leaseId: string | undefined;
}

/** What the executor needs from the runtime. */
export interface ExecutorHooks {
  readonly self: Address;
  readonly endpoint: Endpoint;
  readonly rayletAddress: string;
  readonly headAddress: string;
  readonly testGlobals: boolean;
  /** this worker's unpacked working directory (runtimeEnv.workingDir), if any */
  readonly workingDir: string | undefined;
  decodeArgs(args: Uint8Array, deps: Dep[] | undefined, ctx: TaskContext): unknown[];
  /** pulls arguments that live on another node; undefined when none do */
  prepareArgs(deps: Dep[] | undefined, ctx: TaskContext): Promise<unknown> | undefined;
  encodeReturn(value: unknown, id: string, owner: Address, ctx: TaskContext): ReturnObject;
  encodeError(e: unknown, name: string): Uint8Array;
  cancelChildren(ctx: TaskContext): void;
  /** called when the worker starts hosting an actor */
  onActorCreated(spec: ActorSpec, numRestarts: number): void;
}

const als = new AsyncLocalStorage<TaskContext>();

/** The context of the task running in the current async scope. */
export function currentTask(): TaskContext | undefined {
  return als.getStore();
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> | Iterable<unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    (typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function')
  );
}

class SystemFailure extends Error {}

interface QueuedTask {
  spec: TaskSpec;
  owner: Address;
  leaseId: string;
  peer: Peer;
}

interface QueuedCall {
  call: ActorCall;
  caller: Address;
  peer: Peer;
  /** set once its arguments on other nodes were pulled */
  ctx?: TaskContext;
}

interface CallerState {
  incarnation: number;
  expected: number;
  buffer: Map<number, QueuedCall>;
}

function taskName(spec: TaskSpec): string {
  return spec.fn.name;
}

/** See the module comment. */
export class Executor {
  private readonly queue: QueuedTask[] = [];
  private running = false;
  private current: { spec: TaskSpec; ctx: TaskContext } | undefined;
  private readonly cancelled = new Set<string>();
  private blocked = 0;
  private readonly out = new Map<string, { peer: Peer; results: TaskResult[] }>();
  private flushScheduled = false;
  /** the definition def() found last, by the module and key it was asked for */
  private lastDef: { module: string; key: string; def: unknown } | undefined;
  // actor
  private actorSpec: ActorSpec | undefined;
  private instance: Record<string, unknown> | undefined;
  private readonly callers = new Map<string, CallerState>();
  private readonly callQueue: QueuedCall[] = [];
  private runningCalls = 0;
  private readonly runningCtx = new Map<string, TaskContext>();
  /** name shown in front of this worker's output */
  logName = 'worker';
  /** GPUs assigned to the actor hosted here */
  actorGpus: string[] = [];

  constructor(private readonly h: ExecutorHooks) {}

  /** Whether nothing runs or waits to run here (an actor may be hosted, between calls). */
  get quiet(): boolean {
    return !this.running && this.queue.length === 0 && this.runningCalls === 0 && this.callQueue.length === 0;
  }

  /** The id of the actor hosted here, if any. */
  get actorId(): string | undefined {
    return this.actorSpec?.id;
  }

  // ---------------------------------------------------------------- results

  private reply(peer: Peer, r: TaskResult): void {
    const key = peer.kind === 'router' ? peer.key : peer.address;
    let o = this.out.get(key);
    if (!o) this.out.set(key, (o = { peer, results: [] }));
    o.results.push(r);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const { peer, results } of this.out.values()) this.h.endpoint.reply(peer, { t: MT.TaskResults, results });
    this.out.clear();
  }

  // ------------------------------------------------------------ definitions

  private def(code: CodeRef): unknown | Promise<unknown> {
    // a worker usually runs one function over and over: keep the last one found
    const last = this.lastDef;
    if (last && last.module === code.module && last.key === code.key) return last.def;
    const asFailure = (e: unknown): SystemFailure => new SystemFailure(e instanceof Error ? e.message : String(e));
    try {
      const d = findDefinition(code, { workingDir: this.h.workingDir, testGlobals: this.h.testGlobals, nodeId: this.h.self.nodeId });
      if (!isThenable(d)) {
        this.lastDef = { module: code.module, key: code.key, def: d };
        return d;
      }
      return Promise.resolve(d).catch((e: unknown) => {
        throw asFailure(e);
      });
    } catch (e) {
      return Promise.reject(asFailure(e));
    }
  }

  /** The result of a task or call that threw (or was cancelled meanwhile). */
  private failure(id: string, att: number, e: unknown, name: string, start: number): TaskResult {
    if (this.cancelled.delete(id)) return { id, att, st: TaskStatus.Cancelled };
    return {
      id,
      att,
      st: e instanceof SystemFailure ? TaskStatus.SystemError : TaskStatus.UserError,
      err: this.h.encodeError(e, name),
      us: (performance.now() - start) * 1000,
    };
  }

  // ------------------------------------------------------------ normal tasks

  /** An owner pushes tasks under a lease: they run one at a time, in order. */
  onPushTasks(m: MessageOf<MT.PushTasks>, peer: Peer): void {
    for (const spec of m.tasks) {
      // the running task waits in get/wait: what comes now goes back to run elsewhere
      if (this.blocked > 0) this.reply(peer, { id: spec.id, att: spec.att, st: TaskStatus.Requeue });
      else this.queue.push({ spec, owner: m.owner, leaseId: m.leaseId, peer });
    }
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      let q: QueuedTask | undefined;
      while ((q = this.queue.shift()) !== undefined) {
        if (this.cancelled.delete(q.spec.id)) {
          this.reply(q.peer, { id: q.spec.id, att: q.spec.att, st: TaskStatus.Cancelled });
          continue;
        }
        const r = this.runTask(q);
        this.reply(q.peer, isThenable(r) ? await r : r);
      }
    } finally {
      this.running = false;
      this.current = undefined;
    }
  }

  private runTask(q: QueuedTask): TaskResult | Promise<TaskResult> {
    const { spec } = q;
    const start = performance.now();
    const ctx: TaskContext = {
      taskId: spec.id,
      name: taskName(spec),
      actorId: undefined,
      gpus: spec.gpus ?? [],
      children: new Set(),
      regs: [],
      abort: new AbortController(),
      leaseId: q.leaseId,
    };
    this.current = { spec, ctx };
    this.logName = ctx.name;
    setVisibleGpus(ctx.gpus);
    const fail = (e: unknown): TaskResult => this.failure(spec.id, spec.att, e, ctx.name, start);
    const body = (fn: unknown): TaskResult | Promise<TaskResult> => {
      if (typeof fn !== 'function') throw new SystemFailure(`${ctx.name} is not a function in the worker`);
      let args: unknown[];
      try {
        args = this.h.decodeArgs(spec.args, spec.deps, ctx);
      } catch (e) {
        throw new SystemFailure(`the arguments of ${ctx.name} could not be read: ${(e as Error).message}`);
      }
      const out = als.run(ctx, () => (fn as (...a: unknown[]) => unknown)(...args));
      const finish = (value: unknown): TaskResult | Promise<TaskResult> => this.complete(q.peer, spec, q.owner, ctx, value, start);
      return isThenable(out) ? Promise.resolve(out).then(finish) : finish(out);
    };
    try {
      const pulls = this.argsHere(spec.deps, ctx);
      let d = this.def(spec.fn);
      if (pulls) d = Promise.all([d, pulls]).then(([fn]) => fn);
      const r = isThenable(d) ? Promise.resolve(d).then(body) : body(d);
      return isThenable(r) ? Promise.resolve(r).catch(fail) : r;
    } catch (e) {
      return fail(e);
    }
  }

  /** Pulls arguments that live on another node (undefined when none do); its failure fails the task as a system error. */
  private argsHere(deps: Dep[] | undefined, ctx: TaskContext): Promise<unknown> | undefined {
    let p: Promise<unknown> | undefined;
    try {
      p = this.h.prepareArgs(deps, ctx);
    } catch (e) {
      throw new SystemFailure(`the arguments of ${ctx.name} could not be read: ${(e as Error).message}`);
    }
    return p?.catch((e: Error) => {
      throw new SystemFailure(`the arguments of ${ctx.name} could not be read: ${e.message}`);
    });
  }

  /** The result of a task or call that returned `value` (a stream for numReturns 'streaming'). */
  private complete(peer: Peer, spec: { id: string; att: number; nret: number }, owner: Address, ctx: TaskContext, value: unknown, start: number): TaskResult | Promise<TaskResult> {
    if (this.cancelled.delete(spec.id)) return { id: spec.id, att: spec.att, st: TaskStatus.Cancelled };
    if (spec.nret === -1) return this.stream(peer, spec.id, spec.att, owner, ctx, value, start);
    const rets: ReturnObject[] = [];
    if (spec.nret === 1) rets.push(this.h.encodeReturn(value, returnId(spec.id, 0), owner, ctx));
    else if (spec.nret > 1) {
      if (!Array.isArray(value) || value.length !== spec.nret) {
        throw new SystemFailure(`${ctx.name} has numReturns: ${spec.nret} but returned ${Array.isArray(value) ? `an array of ${value.length}` : 'a non-array'}`);
      }
      value.forEach((v, i) => rets.push(this.h.encodeReturn(v, returnId(spec.id, i), owner, ctx)));
    }
    const result: TaskResult = { id: spec.id, att: spec.att, st: TaskStatus.Ok, rets, us: (performance.now() - start) * 1000 };
    if (ctx.regs.length > 0) return Promise.all(ctx.regs).then(() => result);
    return result;
  }

  private async stream(peer: Peer, taskId: string, att: number, owner: Address, ctx: TaskContext, gen: unknown, start: number): Promise<TaskResult> {
    if (!isAsyncIterable(gen)) throw new SystemFailure(`${ctx.name} has numReturns: 'streaming' but did not return a generator`);
    let index = 0;
    const it = gen as AsyncIterable<unknown>;
    const step = async (): Promise<void> => {
      for await (const v of it) {
        if (this.cancelled.has(taskId)) break;
        const obj = this.h.encodeReturn(v, returnId(taskId, index), owner, ctx);
        if (ctx.regs.length > 0) await Promise.all(ctx.regs.splice(0));
        this.h.endpoint.reply(peer, { t: MT.StreamItem, taskId, att, index, obj });
        index++;
      }
    };
    await als.run(ctx, step);
    if (this.cancelled.delete(taskId)) return { id: taskId, att, st: TaskStatus.Cancelled };
    return { id: taskId, att, st: TaskStatus.Ok, rets: [], items: index, us: (performance.now() - start) * 1000 };
  }

  // ------------------------------------------------------------ blocking

  /** A task here waits in get/wait: give its CPU back and hand back queued tasks. */
  enterBlocked(ctx: TaskContext | undefined): void {
    if (!ctx?.leaseId) return;
    if (this.blocked++ > 0) return;
    this.h.endpoint.send(this.h.rayletAddress, { t: MT.TaskBlocked, leaseId: ctx.leaseId });
    // (a queued task is never in `cancelled`: onCancel takes it out of the queue)
    for (const q of this.queue.splice(0)) this.reply(q.peer, { id: q.spec.id, att: q.spec.att, st: TaskStatus.Requeue });
  }

  /** The waiting task resumes (its CPU is taken back). */
  exitBlocked(ctx: TaskContext | undefined): void {
    if (!ctx?.leaseId) return;
    if (--this.blocked > 0) return;
    this.h.endpoint.send(this.h.rayletAddress, { t: MT.TaskUnblocked, leaseId: ctx.leaseId });
  }

  // ------------------------------------------------------------ cancel

  /** Cancels a queued task or call, or aborts a running one (and its children when recursive). */
  onCancel(m: MessageOf<MT.CancelTask>): void {
    const i = this.queue.findIndex((q) => q.spec.id === m.taskId);
    if (i >= 0) {
      const [q] = this.queue.splice(i, 1);
      if (q) this.reply(q.peer, { id: q.spec.id, att: q.spec.att, st: TaskStatus.Cancelled });
      return;
    }
    const ctx = this.current?.spec.id === m.taskId ? this.current.ctx : this.runningCtx.get(m.taskId);
    const queuedCall = this.callQueue.findIndex((c) => c.call.id === m.taskId);
    if (queuedCall >= 0) {
      const [c] = this.callQueue.splice(queuedCall, 1);
      if (c) this.reply(c.peer, { id: c.call.id, att: c.call.att, st: TaskStatus.Cancelled });
      return;
    }
    if (ctx) {
      this.cancelled.add(m.taskId);
      ctx.abort.abort();
      if (m.recursive) this.h.cancelChildren(ctx);
    }
  }

  // ------------------------------------------------------------ actors

  /** A caller process died: forget its call numbering and its out-of-order calls. */
  forgetCaller(workerId: string): void {
    this.callers.delete(workerId);
  }

  /** The head places an actor here: construct it and report back. */
  onCreateActor(m: MessageOf<MT.CreateActor>, peer: Peer): void {
    const spec = m.spec;
    const report = (ok: boolean, err?: Uint8Array): void =>
      this.h.endpoint.reply(peer, { t: MT.ActorCreated, actorId: spec.id, workerId: this.h.self.workerId, ok, pid: process.pid, ...(err ? { err } : {}) });
    if (this.actorSpec) {
      report(false, this.h.encodeError(new Error('this worker already hosts an actor'), spec.cls.name));
      return;
    }
    this.actorSpec = spec;
    this.logName = spec.cls.name;
    this.actorGpus = m.gpus;
    this.h.onActorCreated(spec, m.numRestarts);
    const ctx: TaskContext = {
      taskId: `${spec.id}:ctor`,
      name: spec.cls.name,
      actorId: spec.id,
      gpus: m.gpus,
      children: new Set(),
      regs: [],
      abort: new AbortController(),
      leaseId: undefined,
    };
    setVisibleGpus(ctx.gpus);
    const construct = (cls: unknown): void => {
      if (typeof cls !== 'function') throw new SystemFailure(`${spec.cls.name} is not a class in the worker`);
      const args = this.h.decodeArgs(spec.args, spec.deps, ctx);
      this.instance = als.run(ctx, () => new (cls as new (...a: unknown[]) => Record<string, unknown>)(...args));
    };
    const fail = (e: unknown): void => report(false, this.h.encodeError(e, `${spec.cls.name}.constructor`));
    try {
      const pulls = this.argsHere(spec.deps, ctx);
      let d = this.def(spec.cls);
      if (pulls) d = Promise.all([d, pulls]).then(([cls]) => cls);
      if (isThenable(d))
        Promise.resolve(d)
          .then(construct)
          .then(() => (ctx.regs.length ? Promise.all(ctx.regs) : undefined))
          .then(() => report(true), fail);
      else {
        construct(d);
        if (ctx.regs.length) Promise.all(ctx.regs).then(() => report(true), fail);
        else report(true);
      }
    } catch (e) {
      fail(e);
    }
  }

  /** A caller's method calls: queued in the caller's order (by sequence number), run up to maxConcurrency at once. */
  onPushActorTasks(m: MessageOf<MT.PushActorTasks>, peer: Peer): void {
    if (!this.actorSpec || m.actorId !== this.actorSpec.id || !this.instance) {
      const err = this.h.encodeError(new Error(`actor ${m.actorId} is not (or no longer) hosted by this worker`), 'actor');
      for (const c of m.calls) this.reply(peer, { id: c.id, att: c.att, st: TaskStatus.SystemError, err });
      return;
    }
    let st = this.callers.get(m.caller.workerId);
    if (!st || m.incarnation > st.incarnation) {
      st = { incarnation: m.incarnation, expected: 0, buffer: new Map() };
      this.callers.set(m.caller.workerId, st);
    }
    for (const call of m.calls) st.buffer.set(call.seq, { call, caller: m.caller, peer });
    let next: QueuedCall | undefined;
    while ((next = st.buffer.get(st.expected)) !== undefined) {
      st.buffer.delete(st.expected);
      st.expected++;
      this.callQueue.push(next);
    }
    this.pumpCalls();
  }

  private pumpCalls(): void {
    const max = this.actorSpec?.maxConcurrency ?? 1;
    while (this.runningCalls < max && this.callQueue.length > 0) {
      const c = this.callQueue.shift() as QueuedCall;
      this.runningCalls++;
      const r = this.runCall(c);
      if (isThenable(r)) {
        void Promise.resolve(r).then((res) => {
          this.runningCalls--;
          this.reply(c.peer, res);
          this.pumpCalls();
        });
      } else {
        this.runningCalls--;
        this.reply(c.peer, r);
      }
    }
  }

  private runCall(c: QueuedCall): TaskResult | Promise<TaskResult> {
    const spec = this.actorSpec as ActorSpec;
    const call = c.call;
    const name = `${spec.cls.name}.${call.m}`;
    const start = performance.now();
    const ctx: TaskContext = c.ctx ?? {
      taskId: call.id,
      name,
      actorId: spec.id,
      gpus: [],
      children: new Set(),
      regs: [],
      abort: new AbortController(),
      leaseId: undefined,
    };
    if (call.deps && !c.ctx) {
      let pulls: Promise<unknown> | undefined;
      try {
        pulls = this.argsHere(call.deps, ctx);
      } catch (e) {
        return this.failure(call.id, call.att, e, name, start);
      }
      if (pulls) {
        c.ctx = ctx;
        return pulls.then(
          () => this.runCall(c),
          (e: unknown) => this.failure(call.id, call.att, e, name, start),
        );
      }
    }
    const fail = (e: unknown): TaskResult => this.failure(call.id, call.att, e, name, start);
    try {
      const inst = this.instance as Record<string, unknown>;
      const method = inst[call.m];
      if (typeof method !== 'function') throw new SystemFailure(`${spec.cls.name} has no method ${call.m}`);
      let args: unknown[];
      try {
        args = this.h.decodeArgs(call.args, call.deps, ctx);
      } catch (e) {
        throw new SystemFailure(`the arguments of ${name} could not be read: ${(e as Error).message}`);
      }
      this.runningCtx.set(call.id, ctx);
      const out = als.run(ctx, () => (method as (...a: unknown[]) => unknown).apply(inst, args));
      const finish = (value: unknown): TaskResult | Promise<TaskResult> => this.complete(c.peer, call, c.caller, ctx, value, start);
      const done = (r: TaskResult): TaskResult => {
        this.runningCtx.delete(call.id);
        return r;
      };
      if (isThenable(out))
        return Promise.resolve(out)
          .then(finish)
          .then(done, (e: unknown) => done(fail(e)));
      const r = finish(out);
      return isThenable(r) ? Promise.resolve(r).then(done, (e: unknown) => done(fail(e))) : done(r);
    } catch (e) {
      this.runningCtx.delete(call.id);
      return fail(e);
    }
  }
}

let baseCuda: string | undefined | null = null;
/** what setVisibleGpus last applied (null: nothing yet) */
let lastCuda: string | undefined | null = null;

/**
 * Shows the task exactly its GPUs (restoring the worker's own setting
 * otherwise). Like Ray's, it writes the variable only when the value it
 * wants changes: an access to process.env costs microseconds, a lot for a
 * task that returns at once.
 */
function setVisibleGpus(gpus: string[]): void {
  if (baseCuda === null) baseCuda = process.env.CUDA_VISIBLE_DEVICES;
  const want = gpus.length > 0 ? gpus.join(',') : baseCuda;
  if (want === lastCuda) return;
  lastCuda = want;
  if (want === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
  else process.env.CUDA_VISIBLE_DEVICES = want;
}
