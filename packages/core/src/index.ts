/**
 * tsray core: Ray's verbs for TypeScript — run functions as tasks and
 * classes as actors in other processes, share objects through a
 * shared-memory object store.
 *
 * ```ts
 * import * as ray from '@tsray/core';
 *
 * export const square = ray.remote((x: number) => x * x);
 * class Counter { n = 0; inc(k = 1) { return (this.n += k); } }
 * export const CounterActor = ray.remote(Counter);
 *
 * if (require.main === module) {
 *   (async () => {
 *     await ray.init();
 *     console.log(await ray.get([1, 2, 3].map((x) => square.remote(x)))); // [1, 4, 9]
 *     const c = CounterActor.remote();
 *     await ray.get(c.inc.remote(5));                                     // 5
 *     const cube = ray.remote((x: number) => x ** 3);                     // inline: shipped by value
 *     await ray.get(cube.remote(2));                                      // 8
 *     await ray.shutdown();
 *   })();
 * }
 * ```
 * A remote function or actor class defined at the top level of a module (or
 * exported by it) is found by workers by importing that module, and may use
 * the module's other top-level names. One defined anywhere else — inside
 * `main`, a test, a callback — is shipped by value: its source text travels,
 * and it may use only globals, its arguments and what it defines or
 * `require`s itself (a captured variable is an error at `ray.remote()`).
 * Libraries take user code the same way with {@link util.shippable}.
 *
 * @packageDocumentation
 */
import { ActorNotFoundError, NotInitializedError, RayError } from './errors';
import { ObjectRef as ObjectRefImpl, ObjectRefGenerator as ObjectRefGeneratorImpl } from './internal/api/object-ref';
import { ActorHandle } from './internal/api/actor-handle';
import { ObjectRef, ObjectRefGenerator } from './internal/api/public-refs';
import { currentRuntime, runtime, setRuntime } from './internal/api/context';
import {
  compileCancelOptions,
  compileGetActorOptions,
  compileGetOptions,
  compileInitOptions,
  compileKillOptions,
  compileWaitOptions,
  describeValue,
} from './internal/api/options';
import { makeRemote } from './internal/api/remote';
import type {
  ActorClass,
  ActorOptions,
  AnyClass,
  AnyFunction,
  CancelOptions,
  GetActorOptions,
  GetOptions,
  InitOptions,
  KillOptions,
  MultiReturnRemoteFunction,
  NodeInfo,
  RemoteFunction,
  RuntimeContext,
  StreamingRemoteFunction,
  TaskOptions,
  WaitOptions,
} from './internal/api/types';
import { MT, type ActorInfo, type NodeInfo as WireNode } from './internal/protocol/messages';
import { isActorHandle, isRef } from './internal/serialization/brands';
import { currentTask } from './internal/runtime/executor';
import { ValueState, type RefEntry } from './internal/runtime/refs';

export {
  RayError,
  TaskError,
  ActorDiedError,
  WorkerCrashedError,
  ObjectLostError,
  ObjectFreedError,
  OwnerDiedError,
  GetTimeoutError,
  TaskCancelledError,
  ObjectStoreFullError,
  RemoteDefinitionError,
  ActorNotFoundError,
  ActorNameTakenError,
  RuntimeEnvSetupError,
  TaskUnschedulableError,
  PlacementGroupRemovedError,
  PlacementGroupNotFoundError,
  NotInitializedError,
  RaySystemError,
  NodeDiedError,
} from './errors';
export { ActorHandle, ObjectRef, ObjectRefGenerator };
export {
  PlacementGroup,
  placementGroup,
  removePlacementGroup,
  getPlacementGroup,
  placementGroupTable,
  type PlacementGroupOptions,
  type PlacementGroupState,
  type PlacementGroupTableEntry,
  type PlacementStrategy,
} from './internal/api/placement-group';
export * as util from './util';
export { Cluster, type ClusterNode, type ClusterNodeObjectStats, type ClusterNodeOptions, type ClusterStartOptions } from './cluster';
export type {
  ActorClass,
  ActorHandleBase,
  ActorHandleOf,
  ActorMethod,
  ActorMethodOptions,
  ActorMethods,
  ActorOptions,
  AnyClass,
  AnyFunction,
  CancelOptions,
  GetActorOptions,
  GetOptions,
  InitOptions,
  KillOptions,
  MethodNames,
  MultiRefs,
  MultiReturnRemoteFunction,
  NodeInfo,
  NpmRuntimeEnv,
  RemoteArgs,
  RemoteFunction,
  RuntimeContext,
  RuntimeEnv,
  SchedulingStrategy,
  NodeAffinity,
  StreamingActorMethod,
  StreamingRemoteFunction,
  TaskOptions,
  WaitOptions,
  YieldOf,
} from './internal/api/types';

// ---------------------------------------------------------------------------
// lifecycle

let starting: Promise<void> | undefined;

/**
 * Starts tsray in this process (the driver). Without `address`, it starts a
 * local cluster — a head and one node whose workers run your tasks — that
 * stops at `shutdown()` or when this process exits.
 *
 * @throws RayError when already initialized (unless `ignoreReinitError`).
 * @throws TypeError / RangeError for invalid options, naming the option.
 */
export async function init(options?: InitOptions): Promise<void> {
  const cfg = compileInitOptions(options);
  const cur = currentRuntime();
  if (cur || starting) {
    if (cfg.ignoreReinitError) {
      await starting;
      return;
    }
    if (cur?.mode === 'worker') {
      throw new RayError(
        'ray.init() was called in a worker process. init() belongs in the driver only: if a module that defines remote functions ' +
          'also starts the driver, guard that code with `if (require.main === module)` (or move it to its own file).',
      );
    }
    throw new RayError('tsray is already initialized in this process; call ray.shutdown() first, or pass ignoreReinitError: true');
  }
  starting = (async () => {
    // the driver's half of the runtime loads here: workers, which import this module too, never need it
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { DriverRuntime } = require('./internal/api/driver') as typeof import('./internal/api/driver');
    const rt = await DriverRuntime.start(cfg);
    setRuntime(rt);
    rt.watch();
  })();
  try {
    await starting;
  } finally {
    starting = undefined;
  }
}

/**
 * Whether `init()` has run and the driver is connected (always true inside
 * workers). False again after `shutdown()`, and once the cluster died under
 * the driver (NodeDiedError): `init()` may then run again.
 */
export function isInitialized(): boolean {
  return currentRuntime() !== undefined;
}

/**
 * Stops this driver's job: its workers and actors (except detached ones)
 * end, and a local cluster started by `init()` stops. A no-op when not
 * initialized (after the cluster died under this driver, it forgets that:
 * calls throw NotInitializedError again instead of NodeDiedError).
 */
export async function shutdown(): Promise<void> {
  await starting?.catch(() => undefined);
  const rt = currentRuntime();
  if (!rt) {
    setRuntime(undefined);
    return;
  }
  if (rt.mode !== 'driver') return;
  setRuntime(undefined);
  await rt.shutdown();
}

// ---------------------------------------------------------------------------
// remote

/**
 * Makes a remote function from a function, or an actor class from a class.
 * At the top level of a module, workers import that module to find the
 * definition again (it may use the module's other names). Anywhere else
 * (inside a function) the function or class is shipped by value: its
 * source text, compiled once per worker, with `require()`/`import()`
 * resolving from its file; it may use only globals and what it defines or
 * requires itself.
 *
 * ```ts
 * export const square = ray.remote((x: number) => x * x);
 * export const Heavy = ray.remote({ numCpus: 2, maxRetries: 1 }, heavyFn);
 * export const Counter = ray.remote(CounterClass);
 *
 * async function main() {
 *   const double = ray.remote((x: number) => x * 2);            // by value
 *   const Box = ray.remote(class { v = 0; set(v: number) { this.v = v; } });
 * }
 * ```
 * @throws RemoteDefinitionError when a definition shipped by value captures a
 * variable from outside it (the message names it and the fix).
 * @throws TypeError for something that is not a function or class, or bad options.
 */
export function remote<C extends AnyClass>(cls: C): ActorClass<C>;
export function remote<F extends AnyFunction>(fn: F): RemoteFunction<F>;
export function remote<C extends AnyClass>(options: ActorOptions, cls: C): ActorClass<C>;
export function remote<F extends AnyFunction>(options: TaskOptions & { numReturns: 'streaming' }, fn: F): StreamingRemoteFunction<F>;
export function remote<F extends AnyFunction>(options: TaskOptions & { numReturns?: 1 }, fn: F): RemoteFunction<F>;
export function remote<F extends AnyFunction>(options: TaskOptions & { numReturns: number }, fn: F): MultiReturnRemoteFunction<F>;
export function remote<F extends AnyFunction>(options: TaskOptions, fn: F): RemoteFunction<F>;
export function remote(...args: unknown[]): unknown {
  return makeRemote(args, remote as (...args: never[]) => unknown);
}

// ---------------------------------------------------------------------------
// objects

function entriesOf(refs: unknown, what: string): { entries: RefEntry[]; single: boolean } {
  const rt = runtime(`${what}()`);
  const check = (r: unknown, i?: number): RefEntry => {
    if (!isRef(r)) {
      throw new TypeError(
        i === undefined
          ? `${what}() takes an ObjectRef or an array of ObjectRefs, got ${describeValue(r)}`
          : `${what}() takes an array of ObjectRefs; element ${i} is ${describeValue(r)}`,
      );
    }
    const e = (r as unknown as ObjectRefImpl)._entry;
    if (e.table !== rt.core.refs) {
      throw new RayError(`${String(r)} belongs to an earlier tsray session (before shutdown()); its object is gone`);
    }
    return e;
  };
  if (Array.isArray(refs)) return { entries: refs.map((r, i) => check(r, i)), single: false };
  return { entries: [check(refs)], single: true };
}

type Values<T extends readonly unknown[]> = { -readonly [K in keyof T]: T[K] extends ObjectRef<infer V> ? V : never };

/**
 * The value of an object: waits for the task that makes it. With an array,
 * the values of all of them, in order.
 *
 * @throws TaskError when the task failed (its `cause` is your error).
 * @throws GetTimeoutError when `timeoutMs` passes first.
 * @throws TypeError for something that is not an ObjectRef (or array of them).
 */
export async function get<T>(ref: ObjectRef<T>, options?: GetOptions): Promise<T>;
export async function get<T extends readonly ObjectRef<unknown>[]>(refs: T, options?: GetOptions): Promise<Values<T>>;
export async function get<T>(refs: readonly ObjectRef<T>[], options?: GetOptions): Promise<T[]>;
export async function get(refs: unknown, options?: GetOptions): Promise<unknown> {
  const { entries, single } = entriesOf(refs, 'get');
  const { timeoutMs } = compileGetOptions(options);
  const core = runtime('get()').core;
  if (single) {
    const e = entries[0] as RefEntry;
    if (e.state !== ValueState.Pending && core.objects.isHere(e)) return core.objects.valueOf(e);
  }
  const values = await core.objects.get(entries, timeoutMs);
  return single ? values[0] : values;
}

/**
 * Stores a value in the object store and returns a reference to it.
 * Typed arrays and Arrow tables of large values are written once into shared
 * memory and read in place by other processes on the node.
 *
 * Values are copied as data, like `structuredClone`: plain objects, arrays,
 * Map, Set, Date, RegExp, BigInt, errors, typed arrays, Arrow tables, and
 * ObjectRefs / ActorHandles (which stay references). Instances of your own
 * classes arrive as plain objects: their own fields are kept, their
 * prototype (methods, getters, `instanceof`) is not — rebuild them on the
 * other side, or use an actor to keep an object with behaviour in one place.
 * The same holds for task arguments and return values.
 *
 * @throws TypeError for a value that cannot be serialized (functions, Promises,
 * symbols, iterators and generator objects), naming what is wrong.
 */
export function put<T>(value: T): ObjectRef<T> {
  const rt = runtime('put()');
  if (isRef(value)) throw new TypeError('put() of an ObjectRef is not allowed: the ref already refers to a stored object; pass it around as it is');
  const e = rt.core.objects.putValue(value);
  return rt.core.refs.instance<ObjectRef<T>>(e);
}

/**
 * Waits until `numReturns` of `refs` are ready (or `timeoutMs` passes).
 * Returns `[ready, notReady]`, each in the order of `refs`. A failed task's
 * ref counts as ready (its `get` rejects).
 */
export async function wait<T>(refs: readonly ObjectRef<T>[], options?: WaitOptions): Promise<[ObjectRef<T>[], ObjectRef<T>[]]> {
  if (!Array.isArray(refs)) throw new TypeError(`wait() takes an array of ObjectRefs, got ${describeValue(refs)}`);
  const { entries } = entriesOf(refs, 'wait');
  const { numReturns: n, timeoutMs } = compileWaitOptions(options, entries.length);
  if (entries.length === 0) return [[], []];
  if (new Set(entries).size !== entries.length) throw new TypeError('wait() needs distinct ObjectRefs; the array has duplicates');
  const core = runtime('wait()').core;
  let ready = 0;
  for (const e of entries) if (e.state !== ValueState.Pending) ready++;
  if (ready < n) {
    const pending = entries.filter((e) => e.state === ValueState.Pending);
    await core.objects.waitFor(pending, n - ready, timeoutMs, false);
  }
  const yes: ObjectRef<T>[] = [];
  const no: ObjectRef<T>[] = [];
  entries.forEach((e, i) => {
    const r = refs[i] as ObjectRef<T>;
    if (e.state !== ValueState.Pending && yes.length < n) yes.push(r);
    else no.push(r);
  });
  return [yes, no];
}

/**
 * Cancels the task that makes `ref`: a task not started yet never runs; a
 * running one has its `signal` aborted and its result dropped, and with
 * `force` its worker is killed. Its `get` then rejects with
 * TaskCancelledError. Cancelled tasks are not retried.
 */
export function cancel(ref: ObjectRef<unknown> | ObjectRefGenerator<unknown>, options?: CancelOptions): void {
  const rt = runtime('cancel()');
  const { force, recursive } = compileCancelOptions(options);
  if (ref instanceof ObjectRefGeneratorImpl) {
    rt.core.cancelTask(ref.taskId, force, recursive);
    return;
  }
  if (Array.isArray(ref)) throw new TypeError('cancel() takes one ObjectRef (or ObjectRefGenerator), got an array; cancel each ref');
  const { entries } = entriesOf(ref, 'cancel');
  const taskId = (entries[0] as RefEntry).taskId;
  if (taskId) rt.core.cancelTask(taskId, force, recursive);
}

/**
 * Frees objects now, whatever still refers to them (Ray's internal `free`).
 * Later `get`s of them reject with ObjectFreedError. Only the owner (the
 * process that created an object) may free it.
 */
export function free(refs: ObjectRef<unknown> | readonly ObjectRef<unknown>[]): void {
  const rt = runtime('free()');
  const { entries } = entriesOf(refs, 'free');
  for (const e of entries) {
    if (!e.owned) throw new TypeError(`free(): ${e.id} is owned by another process; only its owner can free it`);
    rt.core.objects.freeNow(e);
  }
}

// ---------------------------------------------------------------------------
// actors

/**
 * A handle to the live actor named `name` (in `namespace`, default: this
 * job's).
 * @throws ActorNotFoundError when no live actor has that name.
 */
export async function getActor<T = unknown>(name: string, options?: GetActorOptions): Promise<ActorHandle<T>> {
  const rt = runtime('getActor()');
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`getActor() takes a non-empty name, got ${describeValue(name)}`);
  const ns = compileGetActorOptions(options).namespace ?? rt.namespace;
  try {
    const r = await rt.core.endpoint.call(rt.headAddress, { t: MT.GetActor, name, ns });
    return rt.core.handleFor(r.data as ActorInfo) as ActorHandle<T>;
  } catch (e) {
    if ((e as { code?: string }).code === 'NOT_FOUND') {
      throw new ActorNotFoundError(`no live actor is named '${name}' in namespace '${ns}'. Names in use: ray.listNamedActors(); actors of another namespace need getActor(name, { namespace }).`);
    }
    throw e;
  }
}

/**
 * Kills an actor now: calls in flight fail with ActorDiedError. With
 * `noRestart: false` it restarts if it has restarts left.
 */
export function kill(actor: ActorHandle<unknown>, options?: KillOptions): void {
  const rt = runtime('kill()');
  if (!isActorHandle(actor)) throw new TypeError(`kill() takes an ActorHandle, got ${describeValue(actor)}`);
  const { noRestart } = compileKillOptions(options);
  rt.core.endpoint.send(rt.headAddress, { t: MT.KillActor, actorId: (actor as ActorHandle).actorId, noRestart });
}

/** Names of the live named actors in this job's namespace (or, with `true`, in all namespaces). */
export async function listNamedActors(): Promise<string[]>;
export async function listNamedActors(allNamespaces: true): Promise<Array<{ name: string; namespace: string }>>;
export async function listNamedActors(allNamespaces?: boolean): Promise<string[] | Array<{ name: string; namespace: string }>> {
  const rt = runtime('listNamedActors()');
  const r = await rt.core.endpoint.call(rt.headAddress, { t: MT.ListNamedActors, ns: rt.namespace, all: allNamespaces === true });
  const list = r.data as Array<{ name: string; namespace: string }>;
  return allNamespaces === true ? list : list.map((x) => x.name);
}

// ---------------------------------------------------------------------------
// cluster

async function clusterNodes(what: string): Promise<WireNode[]> {
  const rt = runtime(`${what}()`);
  const r = await rt.core.endpoint.call(rt.headAddress, { t: MT.GetClusterInfo });
  return r.data as WireNode[];
}

function sum(nodes: WireNode[], pick: (n: WireNode) => Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of nodes) {
    if (!n.alive) continue;
    for (const [k, v] of Object.entries(pick(n))) out[k] = Math.round(((out[k] ?? 0) + v) * 10000) / 10000;
  }
  return out;
}

/** Resources of all live nodes together. */
export async function clusterResources(): Promise<Record<string, number>> {
  return sum(await clusterNodes('clusterResources'), (n) => n.total);
}

/** Resources not in use right now, over all live nodes. */
export async function availableResources(): Promise<Record<string, number>> {
  return sum(await clusterNodes('availableResources'), (n) => n.available);
}

/** The nodes of the cluster. */
export async function nodes(): Promise<NodeInfo[]> {
  return (await clusterNodes('nodes')).map((n) => ({
    nodeId: n.nodeId,
    alive: n.alive,
    address: n.address,
    isHead: n.isHead,
    resources: n.total,
    available: n.available,
    ...(n.deathReason !== undefined ? { deathReason: n.deathReason } : {}),
  }));
}

/** What `objectStoreStats()` reports about this node's object store. */
export interface ObjectStoreStats {
  /** bytes of shared memory for objects */
  capacityBytes: number;
  /** bytes held by objects in shared memory */
  usedBytes: number;
  /** objects in shared memory */
  objects: number;
  /** bytes of the largest object that still fits */
  largestFreeBytes: number;
  /**
   * bytes at the start of the store that the node's processes have faulted
   * in ahead of use (soon after a node starts; `TSRAY_PREFAULT`, default
   * 1 GiB, `0` turns it off): puts into them run at memory speed
   */
  prefaultedBytes: number;
}

/**
 * The local node's object store: capacity and what objects hold right now
 * (like Ray's `ray memory`). Small objects live with their owner and are not
 * counted; objects spilled to disk are not counted either.
 */
export function objectStoreStats(): ObjectStoreStats {
  const s = runtime('objectStoreStats()').core.cfg.store.stats();
  return { capacityBytes: s.capacity, usedBytes: s.used, objects: s.objects, largestFreeBytes: s.largestFree, prefaultedBytes: s.prefaulted };
}

/** Ids of the GPUs the current task or actor may use ([] in the driver). */
export function getGpuIds(): string[] {
  const rt = runtime('getGpuIds()');
  const ctx = currentTask();
  if (ctx && ctx.gpus.length > 0) return [...ctx.gpus];
  return rt.core.executor?.actorGpus ? [...rt.core.executor.actorGpus] : [];
}

/** Where the caller runs: job, node, task, actor. */
export function getRuntimeContext(): RuntimeContext {
  const rt = currentRuntime();
  if (!rt) throw new NotInitializedError('getRuntimeContext()');
  const ctx = currentTask();
  return {
    jobId: rt.jobId,
    nodeId: rt.nodeId,
    taskId: ctx?.taskId,
    actorId: ctx?.actorId ?? rt.core.executor?.actorId,
    namespace: rt.namespace,
    getGpuIds,
    wasCurrentActorRestarted: rt.core.actorRestarted,
    signal: ctx?.abort.signal,
  };
}
