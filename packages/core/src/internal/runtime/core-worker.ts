/**
 * The runtime inside every driver and worker process: it owns objects and
 * the tasks it submits, borrows references from other owners, reads and
 * writes the node's object store, and (in workers) runs tasks and actors.
 * @internal
 */
import { ActorDiedError, ActorNameTakenError, NotInitializedError, RuntimeEnvSetupError, TaskError } from '../../errors';
import { makeActorHandle, type ActorCallSink } from '../api/actor-handle';
import { ObjectRef, ObjectRefGenerator } from '../api/object-ref';
import type { ActorMethodOptions } from '../api/types';
import { IdGenerator, randomId, returnId } from '../ids';
import { log } from '../log';
import type { ObjectStoreClient } from '../objects/object-store';
import {
  MT,
  type ActorInfo,
  type ActorSpec,
  type Address,
  type CodeRef,
  type Dep,
  type Message,
  type Resources,
  type Scheduling,
  type TaskResult,
} from '../protocol/messages';
import { isRef, type ActorWire } from '../serialization/brands';
import { INLINE_MAX, decodeValue, encodeValue, isArrowTable, maxBlobSize, toInlineBlob, type Encoded, type RefFactory } from '../serialization/value-codec';
import type { Endpoint, Peer } from '../transport/endpoint';
import { ActorSubmitter, type ActorCallTask } from './actor-submitter';
import { Borrowing } from './borrowing';
import { Executor, currentTask, type TaskContext } from './executor';
import { Lineage } from './lineage';
import { ObjectManager } from './objects';
import { findDefinition } from './definitions';
import { RefEntry, RefKind, ReferenceTable, ValueState } from './refs';
import { StreamState, TaskManager, whenArgsReady, type ArgRef, type PendingTask } from './task-manager';
import { TaskSubmitter, type NormalTask } from './task-submitter';
import { portableModule } from '../runtime-env/modules';
import { forceGc } from '../api/gc';
import type { WorkingDirRef } from '../runtime-env/working-dir';
import type { NpmEnvSpec } from '../runtime-env/npm-spec';

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
  /** a worker's unpacked working directory (runtimeEnv.workingDir), where it loads working-directory modules from */
  workingDir?: string | undefined;
  /** print a warning to the user */
  warn: (msg: string) => void;
  /** prints workers' output (drivers) */
  onLogs?: ((lines: Array<[number, string, string]>) => void) | undefined;
}

/** A task ready to submit, as the API layer describes it. */
export interface TaskRequest {
  code: CodeRef;
  args: unknown[];
  resources: Resources;
  env: Record<string, string> | undefined;
  /** its working-directory package, or the packing and upload under way (rejects with the reason) */
  workingDir: WorkingDirRef | Promise<WorkingDirRef> | undefined;
  /** its npm packages (absent: the job's) */
  npm: NpmEnvSpec | undefined;
  /** where it may run (absent: the default policy) */
  sched: Scheduling | undefined;
  schedKey: string;
  maxRetries: number;
  retryExceptions: boolean | readonly string[];
  numReturns: number | 'streaming';
}

/** An actor to create, as the API layer describes it. */
export interface ActorRequest {
  code: CodeRef;
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
  /** its working-directory package, or the packing and upload under way (rejects with the reason) */
  workingDir: WorkingDirRef | Promise<WorkingDirRef> | undefined;
  /** its npm packages (absent: the job's) */
  npm: NpmEnvSpec | undefined;
  /** where it may run (absent: the default policy) */
  sched: Scheduling | undefined;
}

/** Whether an argument is too large to travel inline, judged without encoding it. */
function surelyLarge(v: unknown): boolean {
  const limit = INLINE_MAX / 4;
  if (typeof v === 'string') return v.length > limit;
  if (typeof v !== 'object' || v === null) return false;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v.byteLength > limit;
  if (Array.isArray(v)) return v.length > limit;
  return isArrowTable(v);
}

/** Encodes one argument, naming it if it cannot be serialized. */
function encodeArg(v: unknown, i: number, what: string): Encoded {
  try {
    return encodeValue(v);
  } catch (e) {
    throw new TypeError(`argument ${i} of ${what} cannot be serialized: ${(e as Error).message}`);
  }
}

/** Points a task at its working-directory package: its queue, and its module as a path inside the package. */
function withWorkingDir(t: NormalTask, ref: WorkingDirRef): void {
  t.pkg = ref.pkg;
  t.key = `${t.key}|${ref.pkg}`;
  const spec = t.spec as { fn: NormalTask['spec']['fn'] };
  spec.fn = { ...spec.fn, module: portableModule(spec.fn.module, ref.roots) };
}

/** Decodes refs as nulls (for reading an error's name without borrowing what it refers to). */
const INERT_REFS: RefFactory = { ref: () => null, actor: () => null };
/** The blob of an empty argument list, made once (encodeArgs). */
let EMPTY_ARGS: Buffer | undefined;

interface EncodedArgs {
  blob: Uint8Array;
  deps: ArgRef[];
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
  /** function keys by module and key (fnKeyOf) */
  private readonly fnKeys = new Map<string, Map<string, string>>();
  readonly borrowing: Borrowing;
  readonly objects: ObjectManager;
  /** rebuilds lost task returns (see lineage.ts) */
  readonly lineage: Lineage;
  private closed = false;
  /** set in an actor process */
  actorRestarted = false;

  constructor(readonly cfg: CoreWorkerConfig) {
    this.self = cfg.self;
    this.ids = new IdGenerator(cfg.self.workerId);
    this.refs = new ReferenceTable(cfg.self, {
      freeOwned: (e) => this.freeOwned(e),
      releaseBorrowed: (e) => this.releaseBorrowed(e),
      makeInstance: (e) => (e.kind === RefKind.Actor ? makeActorHandle(e, this) : new ObjectRef(e)),
      freeLarge: (loc, id) => this.objects.freeLoc(loc, id),
    });
    this.objects = new ObjectManager({
      self: cfg.self,
      endpoint: cfg.endpoint,
      rayletAddress: cfg.rayletAddress,
      store: cfg.store,
      refs: this.refs,
      ids: this.ids,
      borrowing: () => this.borrowing,
      busy: (d) => this.busy(d),
      enterBlocked: (ctx) => this.executor?.enterBlocked(ctx),
      exitBlocked: (ctx) => this.executor?.exitBlocked(ctx),
      recover: (entries, why) => this.lineage.recover(entries, why),
    });
    this.borrowing = new Borrowing(cfg.endpoint, cfg.self, (lost) => this.objects.markLost(lost, 'its owner no longer has it'), (d) => this.busy(d));
    this.tm = new TaskManager({
      storeReturn: (e, r) => this.objects.storeValue(e, r.val),
      streamEntry: (t, i) => this.returnEntry(t.taskId, i),
      errorName: (err) => {
        try {
          // refs inside the error are not needed to learn its name
          const e = decodeValue(err, INERT_REFS, false);
          if (e instanceof TaskError) return e.cause?.name;
          return e instanceof Error ? e.name : undefined;
        } catch {
          return undefined;
        }
      },
      release: (holds) => {
        for (const h of holds) this.refs.removeSubmitted(h);
      },
      freeLate: (e) => this.refs.maybeRelease(e),
      discard: (r) => this.objects.discardValue(r.val, r.id),
    });
    this.lineage = new Lineage({
      self: cfg.self,
      refs: this.refs,
      resubmit: (t) => this.submitter.submit(t, t.args ?? []),
      forgetLoc: (e) => {
        this.refs.untrackLarge(e);
        if (e.loc) this.objects.freeLoc(e.loc, e.id);
      },
    });
    const hooks = {
      self: cfg.self,
      jobId: cfg.jobId,
      endpoint: cfg.endpoint,
      rayletAddress: cfg.rayletAddress,
      headAddress: cfg.headAddress,
      fetch: (e: RefEntry) => this.objects.fetch(e),
      depValue: (e: RefEntry) => this.objects.depValue(e),
      busy: (d: number) => this.busy(d),
      warn: cfg.warn,
      decodeError: (b: Uint8Array) => this.objects.decodeError(b),
      errorOf: (e: RefEntry) => this.objects.errorOf(e),
      keepLineage: (t: NormalTask, r: TaskResult) => this.lineage.keep(t, r),
    };
    this.submitter = new TaskSubmitter(hooks, this.tm);
    this.actors = new ActorSubmitter(hooks, this.tm);
    if (cfg.mode === 'worker') {
      this.executor = new Executor({
        self: cfg.self,
        endpoint: cfg.endpoint,
        rayletAddress: cfg.rayletAddress,
        headAddress: cfg.headAddress,
        testGlobals: cfg.testGlobals,
        workingDir: cfg.workingDir,
        decodeArgs: (a, d, ctx) => this.objects.decodeArgs(a, d, ctx),
        prepareArgs: (d, ctx) => this.objects.prepareArgs(d, ctx),
        encodeReturn: (v, id, owner, ctx) => this.objects.encodeReturn(v, id, owner, ctx),
        encodeError: (e, name) => this.objects.encodeTaskError(e, name),
        cancelChildren: (ctx) => this.cancelChildren(ctx),
        onActorCreated: (_spec: ActorSpec, n: number) => {
          this.actorRestarted = n > 0;
        },
      });
    }
  }

  /** This process's endpoint. */
  get endpoint(): Endpoint {
    return this.cfg.endpoint;
  }

  // ------------------------------------------------------------------ liveness

  /** Counts work that needs replies; the driver stops listening when there is none. */
  busy(delta: number): void {
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
        else this.objects.discardValue(m.obj.val, m.obj.id);
        break;
      }
      case MT.GetObject:
        this.objects.onGetObject(m.reqId, m.id, m.wait, from);
        break;
      case MT.AddBorrower:
        this.objects.onAddBorrower(m.reqId, m.ids, m.borrower, from);
        break;
      case MT.RemoveBorrower:
        this.objects.onRemoveBorrower(m.ids, m.borrowerId);
        break;
      case MT.LeaseGranted:
        this.submitter.onLeaseGranted(m.leaseReqId, m.leaseId, m.worker, m.gpus, from.kind === 'dealer' ? from.address : this.cfg.rayletAddress);
        break;
      case MT.LeaseSpillback:
        this.submitter.onLeaseSpillback(m.leaseReqId, m.raylet);
        break;
      case MT.LeaseFailed:
        this.submitter.onLeaseFailed(m.leaseReqId, m.message, m.kind);
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
        this.onProcessDied(m.workerId, m.endpoint, m.reason);
        break;
      case MT.NodeDied:
        this.onNodeDied(m.nodeId, m.endpoint, m.reason);
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
      case MT.PlacementGroupWarning:
        this.cfg.warn(m.message);
        break;
      default:
        log.debug(`core worker ignored a message of type ${m.t}`);
    }
  }

  private onResult(r: TaskResult): void {
    const t = this.tm.get(r.id);
    if (!t || t.attempt !== r.att) {
      // a late result of a finished, cancelled or retried task
      for (const ret of r.rets ?? []) this.objects.discardValue(ret.val, ret.id);
      return;
    }
    if (t.kind === 'normal') this.submitter.onResult(t as NormalTask, r);
    else this.actors.onResult(t as ActorCallTask, r);
  }

  /** Another process on the node died: what it owned is lost, what it borrowed is released. */
  private onProcessDied(workerId: string, address: string, reason: string): void {
    this.refs.dropBorrower(workerId);
    const lost = this.refs.ownedBy(workerId);
    if (lost.length) this.objects.markLost(lost, undefined, workerId);
    this.borrowing.forgetOwner(workerId);
    this.executor?.forgetCaller(workerId);
    // requests it will never answer fail now; its connection goes
    this.cfg.endpoint.disconnect(address, reason);
  }

  /**
   * A node died: every process there is gone. Tasks on its workers are
   * retried, requests waiting there go elsewhere, objects its processes
   * owned are lost to us (OwnerDiedError), and objects we own whose bytes
   * were there are rebuilt (lineage) or lost.
   */
  private onNodeDied(nodeId: string, raylet: string, reason: string): void {
    this.submitter.onNodeDied(nodeId, raylet, reason);
    for (const w of this.refs.borrowersOn(nodeId)) this.refs.dropBorrower(w);
    const byOwner = new Map<string, RefEntry[]>();
    for (const e of this.refs.borrowedFrom(nodeId)) {
      const list = byOwner.get(e.owner.workerId);
      if (list) list.push(e);
      else byOwner.set(e.owner.workerId, [e]);
    }
    for (const [owner, lost] of byOwner) {
      this.objects.markLost(lost, undefined, owner, `died with its node ${nodeId}`);
      this.borrowing.forgetOwner(owner);
      this.executor?.forgetCaller(owner);
      const first = lost[0];
      if (first) this.cfg.endpoint.disconnect(first.owner.endpoint, reason);
    }
    this.lineage.onNodeDied(nodeId);
    this.cfg.endpoint.disconnect(raylet, reason);
  }

  // ------------------------------------------------------------------ objects

  private freeOwned(e: RefEntry): void {
    if (e.kind === RefKind.Actor) {
      if (!this.closed) this.cfg.endpoint.send(this.cfg.headAddress, { t: MT.ActorOutOfScope, actorId: e.id });
      this.actors.forget(e.id);
      return;
    }
    this.objects.dropOwned(e);
  }

  private releaseBorrowed(e: RefEntry): void {
    if (e.kind === RefKind.Actor) this.actors.forget(e.id);
    this.objects.releaseBorrowed(e, this.closed);
  }

  // ------------------------------------------------------------------ tasks

  /**
   * Encodes arguments: top-level refs become dependencies, large values go
   * to the store (like Ray's), each encoded once where its size shows
   * without encoding (typed arrays, strings, long arrays, Arrow tables).
   */
  private encodeArgs(args: unknown[], what: string, forTask = true): EncodedArgs {
    // no arguments: one shared blob (nothing writes into a blob once made)
    if (args.length === 0) return { blob: (EMPTY_ARGS ??= toInlineBlob(encodeValue([]))), deps: [], holds: [] };
    const deps: ArgRef[] = [];
    const values = args.slice();
    for (let i = 0; i < values.length; i++) {
      const a = values[i];
      if (isRef(a)) {
        const entry = (a as unknown as ObjectRef)._entry;
        // a worker may borrow a large argument (zero-copy views of it): its owner must know it by id
        if (entry.owned && !(entry.state === ValueState.Ready && entry.blob)) this.refs.publish(entry, a);
        deps.push({ i, entry });
        values[i] = null;
      } else if (surelyLarge(a)) {
        this.promoteArg(values, i, encodeArg(a, i, what), deps);
      }
    }
    let enc: Encoded;
    try {
      enc = encodeValue(values);
    } catch {
      enc = this.encodeArgsOneByOne(values, what);
    }
    if (maxBlobSize(enc) > INLINE_MAX) {
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v === null || typeof v !== 'object') continue;
        const one = encodeValue(v);
        if (maxBlobSize(one) > INLINE_MAX / 4) this.promoteArg(values, i, one, deps);
      }
      enc = encodeValue(values);
    }
    const holds = [...deps.map((d) => d.entry), ...this.objects.entriesOf(enc.refs, enc.actors)];
    // a task holds its arguments until it finishes (an actor holds them for its lifetime)
    if (forTask) for (const h of holds) this.refs.addSubmitted(h);
    return { blob: toInlineBlob(enc), deps, holds };
  }

  /** Stores argument `i` as an object of its own; the task gets it as a dependency. */
  private promoteArg(values: unknown[], i: number, enc: Encoded, deps: ArgRef[]): void {
    const e = this.objects.storeOwned(enc);
    this.refs.publish(e, this.refs.instance(e));
    deps.push({ i, entry: e });
    values[i] = null;
  }

  private encodeArgsOneByOne(values: unknown[], what: string): Encoded {
    values.forEach((v, i) => encodeArg(v, i, what));
    return encodeValue(values);
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new NotInitializedError(what);
  }

  /** Submits a normal task; returns the refs (or stream) the caller gets. */
  submitTask(req: TaskRequest): unknown {
    if (this.closed) this.assertOpen(`${req.code.name}.remote()`);
    const taskId = this.ids.nextTaskId();
    const { blob, deps, holds } = this.encodeArgs(req.args, req.code.name);
    const streaming = req.numReturns === 'streaming';
    const n = streaming ? 0 : (req.numReturns as number);
    const returns = this.returnEntries(taskId, n);
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
      pkg: undefined,
      npm: req.npm,
      resources: req.resources,
      env: req.env,
      sched: req.sched,
      depsLeft: 0,
      lease: undefined,
      queued: false,
      fnKey: this.fnKeyOf(req.code.module, req.code.key),
      expectedUs: 0,
    };
    this.addChild(taskId);
    const out = this.results(t, n, streaming);
    const wd = req.workingDir;
    if (wd instanceof Promise) {
      // the task waits (in the task manager, cancellable) until its package is stored in the cluster
      const setup = wd.then(
        (ref) => withWorkingDir(t, ref),
        (e: Error) => {
          throw new RuntimeEnvSetupError(`${req.code.name} cannot run: ${e.message}`);
        },
      );
      this.submitter.submit(t, deps, setup);
    } else {
      if (wd) withWorkingDir(t, wd);
      this.submitter.submit(t, deps);
    }
    return out;
  }

  /** The entries of a task's `n` returns. */
  private returnEntries(taskId: string, n: number): RefEntry[] {
    const out: RefEntry[] = [];
    for (let i = 0; i < n; i++) out.push(this.returnEntry(taskId, i));
    return out;
  }

  /**
   * A function's key for duration estimates, one string per function: the
   * submitter looks it up for every task, and a string kept from one task
   * to the next keeps its hash.
   */
  private fnKeyOf(module: string, key: string): string {
    let byKey = this.fnKeys.get(module);
    if (!byKey) this.fnKeys.set(module, (byKey = new Map()));
    let k = byKey.get(key);
    if (k === undefined) byKey.set(key, (k = `${module}\0${key}`));
    return k;
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
    const { blob, deps, holds } = this.encodeArgs(req.args, `${req.code.name}.constructor`, false);
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
    this.actors.client(actorId, req.code.name);
    const handle = this.refs.instance(e);
    // the constructor's arguments live as long as the actor (restarts reuse them)
    this.refs.setContains(e, holds);
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
      ...(req.npm ? { npm: req.npm } : {}),
      ...(req.sched ? { sched: req.sched } : {}),
    };
    this.busy(1);
    const wd = req.workingDir;
    const packaged = Promise.resolve(wd).then(
      (ref) => {
        if (!ref) return;
        spec.pkg = ref.pkg;
        spec.cls = { ...spec.cls, module: portableModule(spec.cls.module, ref.roots) };
      },
      (e: Error) => {
        throw Object.assign(new RuntimeEnvSetupError(`The actor ${req.code.name} (${actorId}) cannot run: ${e.message}`), { code: 'RUNTIME_ENV' });
      },
    );
    Promise.all([this.resolveDeps(deps), packaged])
      .then(([resolved]) => {
        if (resolved.length) spec.deps = resolved;
        return this.cfg.endpoint.call(this.cfg.headAddress, { t: MT.RegisterActor, spec, getIfExists: req.getIfExists });
      })
      .catch((err: Error & { code?: string }) => {
        if (err.code === 'NAME_TAKEN') this.actors.createFailed(actorId, req.code.name, new ActorNameTakenError(err.message));
        else if (err.code === 'RUNTIME_ENV') this.actors.createFailed(actorId, req.code.name, err);
        else {
          const died = new ActorDiedError({ actorId, className: req.code.name, reason: 'it could not be registered with the head', cause: err });
          this.actors.createFailed(actorId, req.code.name, died);
        }
      })
      .finally(() => this.busy(-1));
    return handle;
  }

  /** Waits for an actor constructor's ObjectRef arguments; rejects with the first one's error. */
  private resolveDeps(deps: ArgRef[]): Promise<Dep[]> {
    if (deps.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const out: Dep[] = [];
      whenArgsReady(deps, { depsLeft: 0, finished: false }, this.objects, out, () => resolve(out), (e) => reject(this.objects.errorOf(e)));
    });
  }

  /** Calls an actor method (ActorCallSink). */
  callActor(entry: RefEntry, method: string, args: unknown[], opts: ActorMethodOptions): unknown {
    if (this.closed) this.assertOpen(`${method}.remote()`);
    const wire = entry.actorWire as ActorWire;
    // validated by compileMethodOptions
    const numReturns = opts.numReturns ?? 1;
    const name = opts.name ?? `${wire.className}.${method}`;
    const taskId = this.ids.nextTaskId();
    const { blob, deps, holds } = this.encodeArgs(args, name);
    const streaming = numReturns === 'streaming';
    const n = streaming ? 0 : (numReturns as number);
    const returns = this.returnEntries(taskId, n);
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
    this.addChild(taskId);
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

  /** The definition `code` names, found (or compiled) in this process; throws or rejects with a DefinitionError. */
  loadDefinition(code: CodeRef): unknown {
    return findDefinition(code, { workingDir: this.cfg.workingDir, testGlobals: this.cfg.testGlobals, nodeId: this.self.nodeId });
  }

  /** The owned entry of return value `i` of task `taskId`. */
  private returnEntry(taskId: string, i: number): RefEntry {
    const e = this.refs.createLocal(returnId(taskId, i));
    e.taskId = taskId;
    return e;
  }

  /** Remembers a task submitted by the running task, for recursive cancel (finished ones are pruned). */
  private addChild(taskId: string): void {
    const c = currentTask()?.children;
    if (!c) return;
    if (c.size >= 1024 && (c.size & 1023) === 0) for (const id of c) if (!this.tm.get(id)) c.delete(id);
    c.add(taskId);
  }

  /** Cancels task `taskId` if it is still pending (see ray.cancel). */
  cancelTask(taskId: string, force: boolean, recursive: boolean): void {
    const t = this.tm.get(taskId);
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

  /**
   * Why this worker cannot go away now, if it cannot (asked to stop for
   * being idle): it runs something, or owns tasks in flight or objects and
   * actors that other processes hold references to.
   */
  ownsWhatOthersUse(): string | undefined {
    if (this.executor && (!this.executor.quiet || this.executor.actorId !== undefined)) return 'it is running a task or hosts an actor';
    if (this.tm.inflight.size > 0) return `it owns ${this.tm.inflight.size} task(s) in flight`;
    // objects only this process knew of and nobody holds are gone anyway: let the collector say so first
    forceGc();
    this.refs.sweepCollected();
    for (const e of this.refs.entries.values()) if (e.owned && !e.dead) return `it owns ${e.kind === RefKind.Actor ? 'an actor' : 'objects'} in use (${e.id})`;
    return undefined;
  }

  // ------------------------------------------------------------------ shutdown

  /** Stops submitting (shutdown): later calls throw NotInitializedError; leases go back. */
  close(): void {
    this.closed = true;
    this.submitter.returnAll();
  }

  /**
   * The cluster is gone under this process (a driver's node manager or head
   * died): every task and actor call in flight, and every get or wait, fails
   * with `err`; nothing more is submitted.
   */
  fail(err: Error): void {
    this.close();
    // waits first: a wait counts failed tasks as ready, and must reject instead
    this.objects.failWaits(err);
    for (const t of [...this.tm.inflight.values()]) this.tm.abort(t, undefined, err);
  }
}
