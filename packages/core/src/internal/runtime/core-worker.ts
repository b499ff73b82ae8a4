/**
 * The runtime inside every driver and worker process: it owns objects and
 * the tasks it submits, borrows references from other owners, reads and
 * writes the node's object store, and (in workers) runs tasks and actors.
 * @internal
 */
import { GetTimeoutError, NotInitializedError, ObjectFreedError, ObjectLostError, OwnerDiedError, RayError, TaskError } from '../../errors';
import { makeActorHandle, type ActorCallSink } from '../api/actor-handle';
import { ObjectRef, ObjectRefGenerator } from '../api/object-ref';
import type { ActorMethodOptions } from '../api/types';
import { IdGenerator, randomId, returnId } from '../ids';
import { log } from '../log';
import type { ObjectStoreClient } from '../objects/object-store';
import {
  MT,
  TaskStatus,
  type ActorInfo,
  type ActorSpec,
  type Address,
  type Dep,
  type Message,
  type ObjectValue,
  type Resources,
  type ReturnObject,
  type TaskResult,
} from '../protocol/messages';
import { isActorHandle, isRef, type ActorLike, type ActorWire, type RefLike } from '../serialization/brands';
import { INLINE_MAX, decodeValue, encodeValue, maxBlobSize, toInlineBlob, type Encoded, type RefFactory } from '../serialization/value-codec';
import type { Endpoint, Peer } from '../transport/endpoint';
import { ActorSubmitter, type ActorCallTask } from './actor-submitter';
import { Borrowing } from './borrowing';
import { Executor, currentTask, type TaskContext } from './executor';
import type { CodeLocation } from './functions';
import { RefEntry, RefKind, ReferenceTable, ValueState } from './refs';
import { StreamState, TaskManager, type PendingTask } from './task-manager';
import { TaskSubmitter, type NormalTask } from './task-submitter';

/** How a process's runtime is set up. */
export interface CoreWorkerConfig {
  mode: 'driver' | 'worker';
  self: Address;
  jobId: string;
  namespace: string;
  endpoint: Endpoint;
  headAddress: string;
  rayletAddress: string;
  store: ObjectStoreClient;
  testGlobals: boolean;
  /** the job's environment (merged into task environments) */
  jobEnv: Record<string, string>;
  /** print a warning to the user */
  warn: (msg: string) => void;
  /** prints workers' output (drivers) */
  onLogs?: ((lines: Array<[number, string, string]>) => void) | undefined;
}

/** A task ready to submit, as the API layer describes it. */
export interface TaskRequest {
  code: CodeLocation;
  args: unknown[];
  resources: Resources;
  env: Record<string, string> | undefined;
  schedKey: string;
  maxRetries: number;
  retryExceptions: boolean | readonly string[];
  numReturns: number | 'streaming';
}

/** An actor to create, as the API layer describes it. */
export interface ActorRequest {
  code: CodeLocation;
  args: unknown[];
  methods: string[];
  name: string | undefined;
  namespace: string;
  detached: boolean;
  getIfExists: boolean;
  maxRestarts: number;
  maxTaskRetries: number;
  maxConcurrency: number;
  placement: Resources;
  hold: Resources;
  env: Record<string, string> | undefined;
}

interface EncodedArgs {
  blob: Uint8Array;
  deps: Array<{ i: number; entry: RefEntry }>;
  holds: RefEntry[];
}

/** See the module comment. */
export class CoreWorker implements ActorCallSink {
  readonly self: Address;
  readonly refs: ReferenceTable;
  readonly tm: TaskManager;
  readonly submitter: TaskSubmitter;
  readonly actors: ActorSubmitter;
  readonly executor: Executor | undefined;
  readonly ids: IdGenerator;
  readonly borrowing: Borrowing;
  private readonly fetching = new Set<RefEntry>();
  private busyCount = 0;
  private closed = false;
  /** set in an actor process */
  actorRestarted = false;
  readonly factory: RefFactory;

  constructor(readonly cfg: CoreWorkerConfig) {
    this.self = cfg.self;
    this.ids = new IdGenerator(cfg.self.workerId);
    this.refs = new ReferenceTable(cfg.self, {
      freeOwned: (e) => this.freeOwned(e),
      releaseBorrowed: (e) => this.releaseBorrowed(e),
      makeInstance: (e) => (e.kind === RefKind.Actor ? makeActorHandle(e, this) : new ObjectRef(e)),
      freeLarge: (loc) => {
        if (loc.node === this.self.nodeId) this.cfg.store.free(loc);
        this.cfg.store.account(-loc.size);
      },
    });
    this.borrowing = new Borrowing(cfg.endpoint, cfg.self, (lost) => this.markLost(lost, 'its owner no longer has it'), (d) => this.busy(d));
    this.tm = new TaskManager({
      storeReturn: (e, r) => this.storeValue(e, r.val),
      streamEntry: (t, i) => {
        const e = this.refs.createLocal(returnId(t.taskId, i));
        e.taskId = t.taskId;
        return e;
      },
      errorName: (err) => {
        try {
          const e = this.decodeError(err);
          return e instanceof TaskError ? e.cause?.name : e.name;
        } catch {
          return undefined;
        }
      },
      release: (holds) => {
        for (const h of holds) this.refs.removeSubmitted(h);
      },
      freeLate: (e) => this.refs.maybeRelease(e),
    });
    const hooks = {
      self: cfg.self,
      jobId: cfg.jobId,
      endpoint: cfg.endpoint,
      rayletAddress: cfg.rayletAddress,
      headAddress: cfg.headAddress,
      fetch: (e: RefEntry) => this.fetch(e),
      depValue: (e: RefEntry) => this.depValue(e),
      busy: (d: number) => this.busy(d),
      warn: cfg.warn,
      decodeError: (b: Uint8Array) => this.decodeError(b),
    };
    this.submitter = new TaskSubmitter(hooks, this.tm);
    this.actors = new ActorSubmitter(hooks, this.tm);
    this.factory = {
      ref: (id, owner) => this.materialize(id, owner, RefKind.Object, undefined),
      actor: (wire, owner) => this.materialize(wire.id, owner, RefKind.Actor, wire),
    };
    if (cfg.mode === 'worker') {
      this.executor = new Executor({
        self: cfg.self,
        endpoint: cfg.endpoint,
        rayletAddress: cfg.rayletAddress,
        headAddress: cfg.headAddress,
        testGlobals: cfg.testGlobals,
        decodeArgs: (a, d) => this.decodeArgs(a, d),
        encodeReturn: (v, id, owner, ctx) => this.encodeReturn(v, id, owner, ctx),
        encodeError: (e, name) => this.encodeTaskError(e, name),
        cancelChildren: (ctx) => this.cancelChildren(ctx),
        onActorCreated: (_spec: ActorSpec, n: number) => {
          this.actorRestarted = n > 0;
        },
      });
    }
  }

  get endpoint(): Endpoint {
    return this.cfg.endpoint;
  }

  // ------------------------------------------------------------------ liveness

  /** Counts work that needs replies; the driver stops listening when there is none. */
  busy(delta: number): void {
    this.busyCount += delta;
    this.cfg.endpoint.keepAlive(delta);
  }

  // ------------------------------------------------------------------ messages

  /** Handles every message that is not a reply to a request of ours. */
  onMessage(m: Message, from: Peer): void {
    switch (m.t) {
      case MT.TaskResults:
        for (const r of m.results) this.onResult(r);
        break;
      case MT.StreamItem: {
        const t = this.tm.get(m.taskId);
        if (t && t.attempt === m.att) this.tm.streamItem(t, m.index, m.obj);
        break;
      }
      case MT.GetObject:
        this.onGetObject(m.reqId, m.id, m.wait, from);
        break;
      case MT.AddBorrower: {
        const missing: string[] = [];
        for (const id of m.ids) {
          const e = this.refs.entries.get(id);
          if (e && e.owned && e.state !== ValueState.Freed) this.refs.addBorrower(e, m.borrower);
          else missing.push(id);
        }
        this.cfg.endpoint.respond(from, m.reqId, true, missing);
        break;
      }
      case MT.RemoveBorrower:
        for (const id of m.ids) {
          const e = this.refs.entries.get(id);
          if (e) this.refs.removeBorrower(e, m.borrowerId);
        }
        break;
      case MT.LeaseGranted:
        this.submitter.onLeaseGranted(m.leaseReqId, m.leaseId, m.worker, m.gpus);
        break;
      case MT.LeaseInfeasible:
        this.submitter.onLeaseInfeasible(m.leaseReqId, m.message);
        break;
      case MT.ReturnIdleLeases:
        this.submitter.onReturnIdleLeases();
        break;
      case MT.LeaseWorkerDied:
        this.submitter.onLeaseWorkerDied(m.leaseId, m.reason);
        break;
      case MT.ActorUpdate:
        this.actors.onUpdate(m.info, m.as);
        break;
      case MT.ProcessDied:
        this.onProcessDied(m.workerId, m.reason);
        break;
      case MT.PushTasks:
        this.executor?.onPushTasks(m, from);
        break;
      case MT.PushActorTasks:
        this.executor?.onPushActorTasks(m, from);
        break;
      case MT.CreateActor:
        this.executor?.onCreateActor(m, from);
        break;
      case MT.CancelTask:
        this.executor?.onCancel(m);
        break;
      case MT.Logs:
        this.cfg.onLogs?.(m.lines);
        break;
      default:
        log.debug(`core worker ignored a message of type ${m.t}`);
    }
  }

  private onResult(r: TaskResult): void {
    const t = this.tm.get(r.id);
    if (!t || t.attempt !== r.att) return;
    if (t.kind === 'normal') this.submitter.onResult(t as NormalTask, r);
    else this.actors.onResult(t as ActorCallTask, r);
  }

  private onProcessDied(workerId: string, reason: string): void {
    this.refs.dropBorrower(workerId);
    const lost = this.refs.ownedBy(workerId);
    if (lost.length) this.markLost(lost, undefined, workerId);
    this.borrowing.forgetOwner(workerId);
    void reason;
  }

  private markLost(entries: RefEntry[], reason: string | undefined, ownerId?: string): void {
    for (const e of entries) {
      if (e.state === ValueState.Ready && e.blob) continue; // we still have the value
      if (e.state !== ValueState.Pending && e.state !== ValueState.Ready) continue;
      e.state = ValueState.Lost;
      e.errObj = ownerId ? new OwnerDiedError(e.id, ownerId) : new ObjectLostError(e.id, reason ?? 'it was lost');
      this.fetching.delete(e);
      e.notify();
    }
  }

  // ------------------------------------------------------------------ objects

  private storeValue(e: RefEntry, v: ObjectValue): void {
    if (v.blob) e.blob = v.blob;
    else if (v.loc) {
      e.loc = v.loc;
      if (e.owned) this.ownLarge(e);
    }
    e.state = ValueState.Ready;
    if (v.refs && v.refs.length > 0) {
      const inner: RefEntry[] = [];
      for (const w of v.refs) {
        const { entry, created } = this.refs.getOrCreate(w.id, w.owner, RefKind.Object);
        if (created && !entry.owned) entry.registered = true;
        inner.push(entry);
      }
      this.refs.setContains(e, inner);
    }
  }

  /** The value of an object as it travels to a worker that runs a task. */
  private depValue(e: RefEntry): Dep['val'] {
    return e.blob ? { blob: e.blob } : e.loc ? { loc: e.loc } : {};
  }

  /** An owned object's value is in shared memory: count it, and free it with its entry. */
  private ownLarge(e: RefEntry): void {
    if (!e.loc) return;
    this.cfg.store.account(e.loc.size);
    this.refs.trackLarge(e);
  }

  private freeOwned(e: RefEntry): void {
    if (e.kind === RefKind.Actor) {
      if (!this.closed) this.cfg.endpoint.send(this.cfg.headAddress, { t: MT.ActorOutOfScope, actorId: e.id });
      this.actors.forget(e.id);
      return;
    }
    if (e.loc) {
      if (e.loc.node === this.self.nodeId) this.cfg.store.free(e.loc);
      this.cfg.store.account(-e.loc.size);
    }
    e.blob = undefined;
    e.loc = undefined;
    if (e.state === ValueState.Ready) e.state = ValueState.Freed;
  }

  private releaseBorrowed(e: RefEntry): void {
    this.fetching.delete(e);
    if (e.kind === RefKind.Actor) this.actors.forget(e.id);
    if (e.weak || this.closed) return;
    this.borrowing.release(e);
  }

  /** A reference found while decoding a value. */
  private materialize(id: string, owner: Address, kind: RefKind, wire: ActorWire | undefined): object {
    const { entry, created } = this.refs.getOrCreate(id, owner, kind);
    if (wire && entry.actorWire === undefined) entry.actorWire = wire;
    if (kind === RefKind.Actor) entry.state = ValueState.Ready;
    if (created && !entry.owned) this.borrowing.register(entry, currentTask());
    return this.refs.instance(entry);
  }

  /** Asks the owner of a borrowed entry for its value. */
  fetch(e: RefEntry): void {
    if (e.owned || e.state !== ValueState.Pending || this.fetching.has(e)) return;
    this.fetching.add(e);
    this.busy(1);
    this.cfg.endpoint
      .request(e.owner.endpoint, { t: MT.GetObject, id: e.id, wait: true })
      .then(
        (r) => {
          if (!this.fetching.delete(e) || e.state !== ValueState.Pending) return;
          if (r.t !== MT.ObjectReply) return;
          if (r.st === 0 && r.val) this.storeValue(e, r.val);
          else if (r.st === 2 && r.err) {
            e.state = ValueState.Error;
            e.err = r.err;
          } else {
            e.state = ValueState.Lost;
            e.errObj = new ObjectLostError(e.id, 'its owner no longer has it (it was freed or its owner restarted)');
          }
          e.notify();
        },
        (err: Error) => {
          if (!this.fetching.delete(e)) return;
          e.state = ValueState.Lost;
          e.errObj = new ObjectLostError(e.id, `its owner could not be reached (${err.message})`);
          e.notify();
        },
      )
      .finally(() => this.busy(-1));
  }

  private onGetObject(reqId: number, id: string, wait: boolean, from: Peer): void {
    const e = this.refs.entries.get(id);
    const answer = (): void => {
      const ep = this.cfg.endpoint;
      if (!e || !e.owned || e.state === ValueState.Freed) ep.reply(from, { t: MT.ObjectReply, reqId, id, st: 3 });
      else if (e.state === ValueState.Ready) ep.reply(from, { t: MT.ObjectReply, reqId, id, st: 0, val: this.wireValue(e) });
      else if (e.state === ValueState.Pending) ep.reply(from, { t: MT.ObjectReply, reqId, id, st: 1 });
      else ep.reply(from, { t: MT.ObjectReply, reqId, id, st: 2, err: e.err ?? this.encodeLocalError(e.errObj) });
    };
    if (e && e.owned && e.state === ValueState.Pending && wait) e.whenSettled(answer);
    else answer();
  }

  private wireValue(e: RefEntry): ObjectValue {
    const v: ObjectValue = e.blob ? { blob: e.blob } : { loc: e.loc as NonNullable<RefEntry['loc']> };
    if (e.contains && e.contains.length > 0) v.refs = e.contains.map((c) => ({ id: c.id, owner: c.owner }));
    return v;
  }

  /** Decodes an object's value (throws its error). */
  valueOf(e: RefEntry): unknown {
    if (e.state !== ValueState.Ready) throw this.errorOf(e);
    if (e.blob) return decodeValue(e.blob, this.factory, false);
    const loc = e.loc;
    if (!loc) throw new ObjectLostError(e.id, 'it has no value');
    if (loc.node !== this.self.nodeId) throw new ObjectLostError(e.id, `it lives on node ${loc.node.slice(0, 8)}, which this process cannot read`);
    const sb = this.cfg.store.read(loc, e.id);
    const v = decodeValue(sb.bytes, this.factory, sb.shared);
    if (sb.pin) this.refs.trackView(e, sb.pin);
    return v;
  }

  errorOf(e: RefEntry): Error {
    if (e.errObj) return e.errObj;
    if (e.state === ValueState.Freed) return (e.errObj = new ObjectFreedError(e.id));
    if (e.err) return (e.errObj = this.decodeError(e.err));
    return new ObjectLostError(e.id, 'its value is not available');
  }

  decodeError(b: Uint8Array): Error {
    const v = decodeValue(b, this.factory, false);
    return v instanceof Error ? v : new RayError(String(v));
  }

  private encodeLocalError(e: Error | undefined): Uint8Array {
    return toInlineBlob(encodeValue(e ?? new RayError('unknown error')));
  }

  /** Frees an owned object now (ray.free): later gets reject with ObjectFreedError. */
  freeNow(e: RefEntry): void {
    this.refs.untrackLarge(e);
    if (e.loc) {
      if (e.loc.node === this.self.nodeId) this.cfg.store.free(e.loc);
      this.cfg.store.account(-e.loc.size);
    }
    e.blob = undefined;
    e.loc = undefined;
    e.err = undefined;
    e.state = ValueState.Freed;
    e.errObj = new ObjectFreedError(e.id);
    e.notify();
    const inner = e.contains;
    e.contains = undefined;
    if (inner) {
      for (const i of inner) {
        i.containedIn--;
        this.refs.maybeRelease(i);
      }
    }
  }

  /** Stores a value; returns the owned entry. */
  putValue(value: unknown): RefEntry {
    return this.storeOwned(encodeValue(value));
  }

  /** Stores an encoded value as a new owned object (nothing is left behind if that fails). */
  private storeOwned(enc: Encoded): RefEntry {
    const id = this.ids.nextPutId();
    let blob: Uint8Array | undefined;
    let loc: RefEntry['loc'];
    if (maxBlobSize(enc) <= INLINE_MAX) blob = toInlineBlob(enc);
    else loc = this.cfg.store.put(enc, id, this.self.slot);
    const e = this.refs.createLocal(id);
    e.blob = blob;
    e.loc = loc;
    if (loc) this.ownLarge(e);
    e.state = ValueState.Ready;
    this.refs.setContains(e, this.entriesOf(enc.refs, enc.actors));
    return e;
  }

  /** The entries of refs a value was serialized with; they are shared from now on. */
  private entriesOf(refs: RefLike[], actors: ActorLike[]): RefEntry[] {
    const out: RefEntry[] = [];
    for (const r of refs) {
      const e = (r as unknown as ObjectRef)._entry;
      this.refs.publish(e, r);
      out.push(e);
    }
    for (const a of actors) out.push((a as unknown as { _entry: RefEntry })._entry);
    return out;
  }

  /** The value of `refs` once ready; rejects with the first error. */
  async get(entries: RefEntry[], timeoutMs: number | undefined): Promise<unknown[]> {
    const pending = entries.filter((e) => e.state === ValueState.Pending);
    if (pending.length > 0) await this.waitFor(pending, pending.length, timeoutMs, true);
    return entries.map((e) => this.valueOf(e));
  }

  /** Resolves when `n` of `entries` settled, or rejects with GetTimeoutError. */
  waitFor(entries: RefEntry[], n: number, timeoutMs: number | undefined, strict: boolean): Promise<void> {
    const ctx = currentTask();
    return new Promise<void>((resolve, reject) => {
      let left = n;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        this.busy(-1);
        this.executor?.exitBlocked(ctx);
        if (err) reject(err);
        else resolve();
      };
      this.busy(1);
      this.executor?.enterBlocked(ctx);
      const onSettle = (): void => {
        if (--left <= 0) finish();
      };
      for (const e of entries) {
        if (!e.owned) this.fetch(e);
        e.whenSettled(onSettle);
      }
      if (done || timeoutMs === undefined) return;
      timer = setTimeout(() => {
        if (strict) finish(new GetTimeoutError(timeoutMs, entries.filter((e) => e.state === ValueState.Pending).length));
        else finish();
      }, timeoutMs);
    });
  }

  // ------------------------------------------------------------------ tasks

  /** Encodes arguments: top-level refs become dependencies, large values go to the store. */
  private encodeArgs(args: unknown[], what: string): EncodedArgs {
    const deps: Array<{ i: number; entry: RefEntry }> = [];
    const values = args.map((a, i) => {
      if (isRef(a)) {
        deps.push({ i, entry: (a as unknown as ObjectRef)._entry });
        return null;
      }
      return a;
    });
    let enc: Encoded;
    try {
      enc = encodeValue(values);
    } catch {
      enc = this.encodeArgsOneByOne(values, what);
    }
    if (maxBlobSize(enc) > INLINE_MAX) {
      // large arguments travel through the object store, like Ray's
      for (let i = 0; i < values.length; i++) {
        if (values[i] === null || isRef(values[i])) continue;
        const one = encodeValue(values[i]);
        if (maxBlobSize(one) <= INLINE_MAX / 4) continue;
        const e = this.storeOwned(one);
        deps.push({ i, entry: e });
        this.refs.instance(e);
        values[i] = null;
      }
      enc = encodeValue(values);
    }
    const holds = [...deps.map((d) => d.entry), ...this.entriesOf(enc.refs, enc.actors)];
    for (const h of holds) this.refs.addSubmitted(h);
    return { blob: toInlineBlob(enc), deps, holds };
  }

  private encodeArgsOneByOne(values: unknown[], what: string): Encoded {
    values.forEach((v, i) => {
      try {
        encodeValue(v);
      } catch (e) {
        throw new TypeError(`argument ${i} of ${what} cannot be serialized: ${(e as Error).message}`);
      }
    });
    return encodeValue(values);
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new NotInitializedError(what);
  }

  /** Submits a normal task; returns the refs (or stream) the caller gets. */
  submitTask(req: TaskRequest): unknown {
    this.assertOpen(`${req.code.name}.remote()`);
    const taskId = this.ids.nextTaskId();
    const { blob, deps, holds } = this.encodeArgs(req.args, req.code.name);
    const streaming = req.numReturns === 'streaming';
    const n = streaming ? 0 : (req.numReturns as number);
    const returns: RefEntry[] = [];
    for (let i = 0; i < n; i++) {
      const e = this.refs.createLocal(returnId(taskId, i));
      e.taskId = taskId;
      returns.push(e);
    }
    const t: NormalTask = {
      taskId,
      attempt: 0,
      kind: 'normal',
      name: req.code.name,
      returns,
      stream: streaming ? new StreamState() : undefined,
      holds,
      retriesLeft: req.maxRetries,
      retryExceptions: req.retryExceptions,
      cancelled: false,
      finished: false,
      crashes: 0,
      spec: { id: taskId, att: 0, fn: req.code, args: blob, nret: streaming ? -1 : n, ...(req.env ? { env: req.env } : {}) },
      key: req.schedKey,
      resources: req.resources,
      env: req.env,
      depsLeft: 0,
      lease: undefined,
      queued: false,
      fnKey: `${req.code.module}\0${req.code.key}`,
      expectedUs: 0,
    };
    currentTask()?.children.add(taskId);
    const out = this.results(t, n, streaming);
    this.submitter.submit(t, deps);
    return out;
  }

  private results(t: PendingTask, n: number, streaming: boolean): unknown {
    if (streaming) return new ObjectRefGenerator(t.stream as StreamState, (e) => this.refs.instance<ObjectRef>(e), t.taskId);
    const refs = t.returns.map((e) => this.refs.instance<ObjectRef>(e));
    return n === 1 ? refs[0] : refs;
  }

  /** Creates an actor; returns its handle at once (creation continues in the background). */
  createActor(req: ActorRequest): object {
    this.assertOpen(`${req.code.name}.remote()`);
    const actorId = `${this.cfg.jobId}${randomId(6)}`;
    const { blob, deps, holds } = this.encodeArgs(req.args, `${req.code.name}.constructor`);
    const e = this.refs.createOwned(actorId, RefKind.Actor);
    e.state = ValueState.Ready;
    e.actorWire = {
      id: actorId,
      className: req.code.name,
      methods: req.methods,
      module: req.code.module,
      key: req.code.key,
      maxTaskRetries: req.maxTaskRetries,
    } satisfies ActorWire;
    const client = this.actors.client(actorId, req.code.name);
    const handle = this.refs.instance(e);
    // the constructor's arguments live as long as the actor (restarts reuse them)
    this.refs.setContains(e, holds);
    for (const h of holds) this.refs.removeSubmitted(h);
    const spec: ActorSpec = {
      id: actorId,
      jobId: this.cfg.jobId,
      cls: req.code,
      ns: req.namespace,
      detached: req.detached,
      maxRestarts: req.maxRestarts,
      maxTaskRetries: req.maxTaskRetries,
      maxConcurrency: req.maxConcurrency,
      placement: req.placement,
      hold: req.hold,
      owner: this.self,
      methods: req.methods,
      args: blob,
      ...(req.name !== undefined ? { name: req.name } : {}),
      ...(req.env ? { env: req.env } : {}),
    };
    this.busy(1);
    this.resolveDeps(deps)
      .then((resolved) => {
        if (resolved.length) spec.deps = resolved;
        return this.cfg.endpoint.call(this.cfg.headAddress, { t: MT.RegisterActor, spec, getIfExists: req.getIfExists });
      })
      .catch((err: Error & { code?: string }) => {
        if (err.code === 'NAME_TAKEN') this.actors.nameTaken(actorId, req.code.name, err.message);
        else this.actors.nameTaken(actorId, req.code.name, `the actor could not be created: ${err.message}`);
      })
      .finally(() => this.busy(-1));
    void client;
    return handle;
  }

  /** Waits for dependencies and returns them as they travel. */
  private async resolveDeps(deps: Array<{ i: number; entry: RefEntry }>): Promise<Dep[]> {
    if (deps.length === 0) return [];
    await this.waitFor(
      deps.map((d) => d.entry),
      deps.length,
      undefined,
      false,
    );
    return deps.map((d) => {
      if (d.entry.state !== ValueState.Ready) throw this.errorOf(d.entry);
      return { i: d.i, ref: { id: d.entry.id, owner: d.entry.owner }, val: this.depValue(d.entry) };
    });
  }

  /** Calls an actor method (ActorCallSink). */
  callActor(entry: RefEntry, method: string, args: unknown[], opts: ActorMethodOptions): unknown {
    this.assertOpen(`${method}.remote()`);
    const wire = entry.actorWire as ActorWire;
    const numReturns = opts.numReturns ?? 1;
    if (numReturns !== 'streaming' && (!Number.isInteger(numReturns) || numReturns < 0)) {
      throw new RangeError(`options.numReturns must be a non-negative integer or 'streaming', got ${String(numReturns)}`);
    }
    const name = opts.name ?? `${wire.className}.${method}`;
    const taskId = this.ids.nextTaskId();
    const { blob, deps, holds } = this.encodeArgs(args, name);
    const streaming = numReturns === 'streaming';
    const n = streaming ? 0 : (numReturns as number);
    const returns: RefEntry[] = [];
    for (let i = 0; i < n; i++) {
      const e = this.refs.createLocal(returnId(taskId, i));
      e.taskId = taskId;
      returns.push(e);
    }
    this.refs.addSubmitted(entry);
    holds.push(entry);
    const client = this.actors.client(entry.id, wire.className);
    const t: ActorCallTask = {
      taskId,
      attempt: 0,
      kind: 'actor',
      name,
      returns,
      stream: streaming ? new StreamState() : undefined,
      holds,
      retriesLeft: wire.maxTaskRetries < 0 ? Infinity : wire.maxTaskRetries,
      retryExceptions: false,
      cancelled: false,
      finished: false,
      crashes: 0,
      call: { id: taskId, att: 0, seq: 0, m: method, args: blob, nret: streaming ? -1 : n },
      client,
      depsLeft: 0,
      sent: false,
    };
    currentTask()?.children.add(taskId);
    const out = this.results(t, n, streaming);
    this.actors.submit(t, deps);
    return out;
  }

  /** An actor handle for an actor found by name (not owned, not borrowed). */
  handleFor(info: ActorInfo): object {
    const { entry, created } = this.refs.getOrCreate(info.id, info.owner, RefKind.Actor);
    if (created) {
      entry.weak = !entry.owned;
      entry.state = ValueState.Ready;
      entry.actorWire = {
        id: info.id,
        className: info.className,
        methods: info.methods,
        module: info.cls.module,
        key: info.cls.key,
        maxTaskRetries: info.maxTaskRetries,
      } satisfies ActorWire;
    }
    this.actors.client(info.id, info.className).info ??= info;
    return this.refs.instance(entry);
  }

  /** Cancels the task that makes `e`. */
  cancel(e: RefEntry, force: boolean, recursive: boolean): void {
    const id = e.taskId;
    const t = id ? this.tm.get(id) : undefined;
    if (!t) return;
    if (t.kind === 'normal') this.submitter.cancel(t as NormalTask, force, recursive);
    else {
      if (force) throw new TypeError('force cancel is not supported for actor calls; use ray.kill(actor) instead');
      this.actors.cancel(t as ActorCallTask, recursive);
    }
  }

  private cancelChildren(ctx: TaskContext): void {
    for (const id of ctx.children) {
      const t = this.tm.get(id);
      if (!t) continue;
      if (t.kind === 'normal') this.submitter.cancel(t as NormalTask, false, true);
      else this.actors.cancel(t as ActorCallTask, true);
    }
  }

  // ------------------------------------------------------------------ worker side

  private decodeArgs(args: Uint8Array, deps: Dep[] | undefined): unknown[] {
    const values = decodeValue(args, this.factory, false) as unknown[];
    if (!Array.isArray(values)) throw new Error('arguments are not a list');
    if (deps) {
      for (const d of deps) {
        const v = d.val;
        if (v?.blob) values[d.i] = decodeValue(v.blob, this.factory, false);
        else if (v?.loc) {
          const sb = this.cfg.store.read(v.loc, d.ref.id);
          values[d.i] = decodeValue(sb.bytes, this.factory, sb.shared);
        } else throw new Error(`argument ${d.i} has no value`);
      }
    }
    return values;
  }

  private encodeReturn(value: unknown, id: string, owner: Address, ctx: TaskContext): ReturnObject {
    const enc = encodeValue(value);
    const val: ObjectValue = {};
    if (maxBlobSize(enc) <= INLINE_MAX) val.blob = toInlineBlob(enc);
    else val.loc = this.cfg.store.put(enc, id, owner.nodeId === this.self.nodeId ? owner.slot : this.self.slot);
    const contained = this.entriesOf(enc.refs, enc.actors);
    if (contained.length > 0) {
      val.refs = [];
      for (const c of contained) {
        val.refs.push({ id: c.id, owner: c.owner });
        if (c.owner.workerId === owner.workerId) continue;
        if (c.owned) this.refs.addBorrower(c, owner);
        else this.borrowing.registerFor(owner, c, ctx);
      }
    }
    return { id, val };
  }

  /** Wraps a user error as the TaskError the caller will see. */
  encodeTaskError(e: unknown, name: string): Uint8Array {
    const ctx = currentTask();
    const cause = e instanceof Error ? e : new Error(typeof e === 'string' ? e : `non-Error value thrown: ${safeString(e)}`);
    const err = new TaskError({ functionName: name, pid: process.pid, nodeId: this.self.nodeId, taskId: ctx?.taskId ?? '', cause });
    try {
      return toInlineBlob(encodeValue(err));
    } catch {
      const plain = new Error(cause.message);
      plain.name = cause.name;
      plain.stack = cause.stack;
      return toInlineBlob(encodeValue(new TaskError({ functionName: name, pid: process.pid, nodeId: this.self.nodeId, taskId: ctx?.taskId ?? '', cause: plain })));
    }
  }

  // ------------------------------------------------------------------ shutdown

  /** Whether anything still waits for replies. */
  get isBusy(): boolean {
    return this.busyCount > 0;
  }

  close(): void {
    this.closed = true;
    this.submitter.returnAll();
  }
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return typeof v;
  }
}

/** Ids of the result of a task (re-exported for the API). */
export { returnId };
export type { TaskStatus };
