/**
 * Public types: options of init, tasks and actors, and the typed shapes of
 * remote functions, actor classes and actor handles.
 */
import type { PlacementGroup } from './placement-group';

declare const VALUE_TYPE: unique symbol;

/**
 * A reference to an object in the cluster: the future result of a task or
 * actor call, or a value stored with `put`. Pass it to `get` for the value,
 * or to other tasks (it is resolved to its value when it is a top-level
 * argument, and stays a reference when nested inside a value).
 *
 * ObjectRef is deliberately not thenable: `await ref` does not wait for the
 * value; use `await ray.get(ref)`. Refs are made by the runtime only.
 *
 * @typeParam T - the type of the value.
 */
export interface ObjectRef<T = unknown> {
  /** The object's id, unique in the cluster. */
  readonly id: string;
  /** `ObjectRef(<id>)`. */
  toString(): string;
  /** Type-level only: the type of the value (never set). */
  readonly [VALUE_TYPE]?: T;
}

/**
 * The result of a streaming task (`numReturns: 'streaming'`): an async
 * iterable of ObjectRefs, one per value the generator yields, available as
 * soon as each value is produced.
 *
 * ```ts
 * for await (const ref of gen.options({ numReturns: 'streaming' }).remote(10)) {
 *   console.log(await ray.get(ref));
 * }
 * ```
 * If the task fails, the next ref yielded holds the error (its `get` rejects).
 * Leaving the loop early (`break`, `return`, a throw) cancels the task; refs
 * already received stay valid.
 */
export interface ObjectRefGenerator<T = unknown> extends AsyncIterableIterator<ObjectRef<T>> {
  /** The next ref, or `done` when the generator finished. */
  next(): Promise<IteratorResult<ObjectRef<T>, undefined>>;
  /** Stops reading: cancels the task when it still runs (`for await` calls it on `break`). */
  return(): Promise<IteratorResult<ObjectRef<T>, undefined>>;
  [Symbol.asyncIterator](): ObjectRefGenerator<T>;
}

/**
 * Keeps a task or actor on one node (Ray's NodeAffinitySchedulingStrategy).
 * With `soft: false` (the default) it runs there or fails with
 * TaskUnschedulableError when that node is gone; with `soft: true` it runs
 * elsewhere when that node is gone or has no room.
 */
export interface NodeAffinity {
  /** a node id, from `ray.nodes()` or `getRuntimeContext().nodeId` */
  nodeId: string;
  /** @default false */
  soft?: boolean;
}

/**
 * Where tasks and actors run: 'DEFAULT' (the local node while it has room,
 * then other nodes), 'SPREAD' (over all nodes, round-robin), or a node.
 */
export type SchedulingStrategy = 'DEFAULT' | 'SPREAD' | NodeAffinity;

/**
 * Environment a job (`init`), task or actor runs with. A task's or actor's
 * fields override the job's: `env` key by key, `workingDir` (with its
 * `excludes`) and `npm` each as a whole.
 *
 * ```ts
 * await ray.init({ runtimeEnv: { workingDir: './src', excludes: ['*.test.ts'] } });
 * const f = g.options({ runtimeEnv: { env: { LOG_LEVEL: 'debug' }, npm: ['lodash@4.17.21'] } });
 * ```
 */
export interface RuntimeEnv {
  /** Environment variables of the worker process; task and actor values override the job's. */
  env?: Record<string, string>;
  /**
   * A directory on the driver's machine (relative paths are resolved
   * against the driver's current directory) that every worker of the task,
   * actor or job runs in: the driver packs it (at `init()`, or at the first
   * `.remote()` that uses it, again only after a file in it changed), stores
   * it in the cluster, and each node unpacks it once, under its session
   * directory. Workers start there (`process.cwd()`), and remote functions
   * and actor classes defined in modules inside it load from that copy, so
   * code that exists only on the driver's machine runs on every node.
   *
   * Everything in it travels (`node_modules` too) unless left out with
   * `excludes`; at most 100 MiB of files. Symbolic links to files travel as
   * those files; links to directories are not followed. Packages that
   * tsray's own installation can resolve on the node (tsray itself,
   * included) are found from modules in the copy, by `require()`.
   *
   * When it cannot be set up (it does not exist, is not a directory, is too
   * large, cannot be unpacked on the node, or is no longer in the cluster),
   * the task fails with RuntimeEnvSetupError naming the reason; so do the
   * calls of an actor; `init()` rejects with it.
   */
  workingDir?: string;
  /**
   * Paths inside `workingDir` to leave out, as .gitignore patterns: `*`
   * matches within a path segment, `**` any number of segments; a pattern
   * without `/` matches that name at any depth (`node_modules`, `*.log`),
   * one with `/` is relative to `workingDir` (`data/raw`); a trailing `/`
   * matches directories only. @default []
   */
  excludes?: string[];
  /**
   * npm packages the workers resolve first: a list of `npm install`
   * arguments (`'lodash@4.17.21'`, `'left-pad'`, `'@scope/pkg@^2'`,
   * `'alias@npm:pkg@1'`, a git or tarball URL), or {@link NpmRuntimeEnv}
   * to name a registry too. Each node installs a list once, on the first
   * task or actor that needs it there (the job's list on the driver's node
   * as soon as the driver connects), with the node's own `npm` client, into a cache keyed by the
   * list's content under its session directory
   * (`runtime_resources/npm/<key>/`); concurrent requests share the install.
   *
   * In the workers, `require()`, `require.resolve()`, `import` and
   * `import()` of a package on the list resolve to the installed copy
   * before any node_modules of the project, from code outside
   * node_modules (your modules, a working directory's, functions shipped by
   * value). Installed libraries keep their own dependency versions and find
   * the list's packages only when Node finds nothing else. Workers of
   * different lists never share a process. Install scripts do not run
   * unless `installScripts` is set. An empty list runs without packages,
   * also when the job has some.
   *
   * A list that cannot be installed fails what needs it with
   * RuntimeEnvSetupError, carrying npm's error lines (the task's `get()`,
   * the actor's calls); other work goes on, and the next request for the
   * list runs npm again. A malformed list throws a TypeError at the call.
   */
  npm?: string[] | NpmRuntimeEnv;
}

/** The object form of {@link RuntimeEnv.npm}. */
export interface NpmRuntimeEnv {
  /** `npm install` arguments, e.g. `['lodash@4.17.21', 'left-pad']`. */
  packages: string[];
  /** Registry to install from (`--registry`). @default npm's configured registry on the node */
  registry?: string;
  /**
   * Run the packages' install scripts (preinstall, install, postinstall),
   * which native addons built at install time need. They run on the node,
   * in the node manager's session, before any task; off by default, as
   * with `npm install --ignore-scripts`. @default false
   */
  installScripts?: boolean;
}

/** Options of {@link init}. */
export interface InitOptions {
  /**
   * Address of a running cluster (`HOST:PORT` of its head, or `'auto'` for
   * the one `tsray start` started on this machine). Without it, `init`
   * starts a local cluster that stops with `shutdown()` or when the
   * process exits.
   */
  address?: string;
  /** CPUs of the local node. @default the machine's cores */
  numCpus?: number;
  /** GPUs of the local node. @default detected with nvidia-smi, else 0 */
  numGpus?: number;
  /** Custom resources of the local node, e.g. `{ custom: 2 }`. */
  resources?: Record<string, number>;
  /** Bytes of shared memory for the object store. @default 30% of RAM, at most 8 GiB */
  objectStoreMemory?: number;
  /** Namespace for named actors. @default a new anonymous namespace */
  namespace?: string;
  /** Environment of every task and actor of this job. */
  runtimeEnv?: RuntimeEnv;
  /** Print workers' output here, prefixed with the task and pid. @default true */
  logToDriver?: boolean;
  /** Make a second `init()` a no-op instead of an error. @default false */
  ignoreReinitError?: boolean;
  /** Directory for objects spilled when the store is full. @default the session directory */
  objectSpillingDirectory?: string;
  /**
   * The cluster token of the cluster at `address` (64 hex digits, as
   * `tsray start --head` prints it). The token belongs to this connection
   * only: a later `init()` to another cluster uses that cluster's.
   * @default TSRAY_CLUSTER_TOKEN, else the token of a `ray.Cluster` of this
   * process at that address, else that of the cluster `tsray start --head`
   * started on this machine (its token file) when `address` is that
   * cluster's or `'auto'`
   * @throws TypeError when it is not 64 hex digits, or given without `address`
   */
  token?: string;
}

/** Options of a remote function (`remote(options, fn)` or `.options()`). */
export interface TaskOptions {
  /** CPUs the task holds while it runs. @default 1 */
  numCpus?: number;
  /** GPUs the task holds; it sees exactly those in CUDA_VISIBLE_DEVICES. @default 0 */
  numGpus?: number;
  /** Bytes of memory to reserve (a logical resource). @default 0 */
  memory?: number;
  /** Custom resources, e.g. `{ custom: 1 }`. */
  resources?: Record<string, number>;
  /** Retries when the worker process dies. @default 3 */
  maxRetries?: number;
  /**
   * Also retry (up to maxRetries) when the function throws: `true` for any
   * error, or the error names (or classes) to retry. @default false
   */
  retryExceptions?: boolean | ReadonlyArray<string | (new (...args: never[]) => Error)>;
  /** Name in logs and errors. @default the function's name */
  name?: string;
  /** Environment of this task (overrides the job's). */
  runtimeEnv?: RuntimeEnv;
  /** Which node runs it. @default 'DEFAULT' (this node first, another when it is short) */
  scheduling?: SchedulingStrategy;
  /**
   * Run inside this placement group: the task takes its resources from the
   * group's bundles (not from the node's free resources). Not with `scheduling`.
   */
  placementGroup?: PlacementGroup;
  /** The bundle of `placementGroup` to run in; -1: any bundle. @default -1 */
  placementGroupBundleIndex?: number;
  /**
   * How many values the function returns: an integer >= 1 (the function
   * returns an array of that length), or `'streaming'` for (async) generator
   * functions, which must be called this way. @default 1
   */
  numReturns?: number | 'streaming';
}

/** Options of an actor class (`remote(options, Class)` or `.options()`). */
export interface ActorOptions {
  /** Name to find the actor with `getActor`; unique in its namespace. */
  name?: string;
  /** Namespace of the name. @default the job's namespace */
  namespace?: string;
  /** `'detached'` actors outlive their creator until killed. */
  lifetime?: 'detached' | 'non_detached';
  /** With a name: return the existing actor of that name instead of failing. @default false */
  getIfExists?: boolean;
  /** Times to restart the actor when its process dies (-1: forever). @default 0 */
  maxRestarts?: number;
  /** Times to retry a call that was running when the actor died (-1: forever). @default 0 */
  maxTaskRetries?: number;
  /** Calls that may run at once; async methods overlap when > 1. @default 1 */
  maxConcurrency?: number;
  /** CPUs held while the actor lives. @default 0 (it needs 1 to be placed) */
  numCpus?: number;
  /** GPUs held while the actor lives. @default 0 */
  numGpus?: number;
  /** Bytes of memory to reserve. @default 0 */
  memory?: number;
  /** Custom resources held while the actor lives. */
  resources?: Record<string, number>;
  /** Environment of the actor's process (overrides the job's). */
  runtimeEnv?: RuntimeEnv;
  /** Which node hosts it. @default 'DEFAULT' (a node with the resources free) */
  scheduling?: SchedulingStrategy;
  /**
   * Live inside this placement group: the actor takes what it holds from the
   * group's bundles. In a group it needs only the resources it holds to be
   * placed (no extra CPU). Not with `scheduling`.
   */
  placementGroup?: PlacementGroup;
  /** The bundle of `placementGroup` to live in; -1: any bundle. @default -1 */
  placementGroupBundleIndex?: number;
}

/** Options of one actor method call (`handle.method.options({...})`). */
export interface ActorMethodOptions {
  /** How many values the method returns (an integer >= 1), or `'streaming'` for generator methods. @default 1 */
  numReturns?: number | 'streaming';
  /** Name in logs and errors. */
  name?: string;
}

/** Any function. */
export type AnyFunction = (...args: never[]) => unknown;
/** Any class. */
export type AnyClass = new (...args: never[]) => object;

/** Arguments of a remote call: each may be the value or an ObjectRef to it. */
export type RemoteArgs<P extends readonly unknown[]> = { [K in keyof P]: P[K] | ObjectRef<P[K]> };

/** What a generator function yields. */
export type YieldOf<R> = R extends AsyncGenerator<infer Y, unknown, unknown> ? Y : R extends Generator<infer Y, unknown, unknown> ? Y : unknown;

/** ObjectRefs of a function that returns several values. */
export type MultiRefs<R> = R extends readonly unknown[] ? { [K in keyof R]: ObjectRef<R[K]> } : ObjectRef<unknown>[];

/** A remote function: call it with `.remote(...args)`. */
export interface RemoteFunction<F extends AnyFunction> {
  /** Submits a task; returns a ref to its result at once. */
  remote(...args: RemoteArgs<Parameters<F>>): ObjectRef<Awaited<ReturnType<F>>>;
  /** The same function with other options for the calls made through it. */
  options(options: TaskOptions & { numReturns: 'streaming' }): StreamingRemoteFunction<F>;
  options(options: TaskOptions & { numReturns?: 1 }): RemoteFunction<F>;
  options(options: TaskOptions & { numReturns: number }): MultiReturnRemoteFunction<F>;
  options(options: TaskOptions): RemoteFunction<F>;
}

/** A remote generator function run with `numReturns: 'streaming'`. */
export interface StreamingRemoteFunction<F extends AnyFunction> {
  remote(...args: RemoteArgs<Parameters<F>>): ObjectRefGenerator<YieldOf<ReturnType<F>>>;
  options(options: TaskOptions): StreamingRemoteFunction<F>;
}

/** A remote function with `numReturns` > 1. */
export interface MultiReturnRemoteFunction<F extends AnyFunction> {
  remote(...args: RemoteArgs<Parameters<F>>): MultiRefs<Awaited<ReturnType<F>>>;
  options(options: TaskOptions): MultiReturnRemoteFunction<F>;
}

/** An actor class: `.remote(...args)` creates an actor. */
export interface ActorClass<C extends AnyClass> {
  /** Creates an actor; returns its handle at once. */
  remote(...args: RemoteArgs<ConstructorParameters<C>>): ActorHandleOf<InstanceType<C>>;
  /** The same class with other options for the actors made through it. */
  options(options: ActorOptions): ActorClass<C>;
}

/** Names of the methods of `T`. */
export type MethodNames<T> = { [K in keyof T]: T[K] extends AnyFunction ? K : never }[keyof T] & string;

/** A method of an actor handle: call it with `.remote(...args)`. */
export interface ActorMethod<F> {
  remote(...args: F extends AnyFunction ? RemoteArgs<Parameters<F>> : never[]): ObjectRef<F extends AnyFunction ? Awaited<ReturnType<F>> : never>;
  options(options: ActorMethodOptions & { numReturns: 'streaming' }): StreamingActorMethod<F>;
  options(options: ActorMethodOptions): ActorMethod<F>;
}

/** An actor method run with `numReturns: 'streaming'`. */
export interface StreamingActorMethod<F> {
  remote(...args: F extends AnyFunction ? RemoteArgs<Parameters<F>> : never[]): ObjectRefGenerator<F extends AnyFunction ? YieldOf<ReturnType<F>> : never>;
}

/** The methods of a handle to an actor of type `T`. */
export type ActorMethods<T> = { readonly [K in MethodNames<T>]: ActorMethod<T[K]> };

/** Common members of every actor handle. */
export interface ActorHandleBase {
  /** The actor's id. */
  readonly actorId: string;
  /** Name of the actor's class. */
  readonly className: string;
}

/** A handle to an actor of type `T` (see {@link ActorHandle}). */
export type ActorHandleOf<T> = ActorHandleBase & ActorMethods<T>;

/** A node of the cluster, as `nodes()` reports it. */
export interface NodeInfo {
  nodeId: string;
  alive: boolean;
  /** address other nodes reach it at */
  address: string;
  isHead: boolean;
  /** resources in total */
  resources: Record<string, number>;
  /** resources not in use */
  available: Record<string, number>;
  /** why the head marked it dead (Ray's `death_info`); only for dead nodes */
  deathReason?: string;
}

/** What `getRuntimeContext()` returns. */
export interface RuntimeContext {
  readonly jobId: string;
  readonly nodeId: string;
  /** id of the running task or actor call; undefined in the driver */
  readonly taskId: string | undefined;
  /** id of the actor this runs in; undefined outside actors */
  readonly actorId: string | undefined;
  readonly namespace: string;
  /** ids of the GPUs the current task or actor may use */
  getGpuIds(): string[];
  /** true in an actor that was restarted after its process died */
  readonly wasCurrentActorRestarted: boolean;
  /** aborted when the running task is cancelled; undefined in the driver */
  readonly signal: AbortSignal | undefined;
}

/** Options of {@link wait}. */
export interface WaitOptions {
  /** How many ready refs to wait for: an integer from 1 to the number of refs. @default 1 */
  numReturns?: number;
  /** Give up after this many milliseconds and return what is ready. @default no limit */
  timeoutMs?: number;
  /** Accepted for Ray compatibility; objects on this node are always local. @default true */
  fetchLocal?: boolean;
}

/** Options of {@link get}. */
export interface GetOptions {
  /** Reject with GetTimeoutError after this many milliseconds. @default no limit */
  timeoutMs?: number;
}

/** Options of {@link cancel}. */
export interface CancelOptions {
  /** Kill the worker running the task (for tasks stuck in synchronous code). @default false */
  force?: boolean;
  /** Also cancel the tasks this task submitted. @default true */
  recursive?: boolean;
}

/** Options of {@link getActor}. */
export interface GetActorOptions {
  /** Namespace to look the name up in. @default the job's namespace */
  namespace?: string;
}

/** Options of {@link kill}. */
export interface KillOptions {
  /** Do not restart the actor even if it has restarts left. @default true */
  noRestart?: boolean;
}
