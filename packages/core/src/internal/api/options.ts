/**
 * Options are validated at the public boundary and compiled here, in one
 * place, into complete configurations. Every message names the option and
 * what is wrong with it.
 * @internal
 */
import * as path from 'node:path';
import type { Resources, Scheduling } from '../protocol/messages';
import { describe, fits } from '../raylet/resources';
import { inPlacementGroup } from '../placement/resource-names';
import type { WorkingDirSpec } from '../runtime-env/working-dir';
import { compileNpmEnv, npmEnvKey, type NpmEnvSpec } from '../runtime-env/npm-spec';
import { tokenProblem } from '../cluster/token';
import type { ActorMethodOptions, ActorOptions, CancelOptions, GetActorOptions, GetOptions, InitOptions, KillOptions, RuntimeEnv, TaskOptions, WaitOptions } from './types';

type Kind = 'init' | 'task' | 'actor' | 'method' | 'get' | 'wait' | 'cancel' | 'kill' | 'getActor';

const KNOWN: Record<Kind, readonly string[]> = {
  init: ['address', 'numCpus', 'numGpus', 'resources', 'objectStoreMemory', 'namespace', 'runtimeEnv', 'logToDriver', 'ignoreReinitError', 'objectSpillingDirectory', 'token'],
  task: ['numCpus', 'numGpus', 'memory', 'resources', 'maxRetries', 'retryExceptions', 'name', 'runtimeEnv', 'numReturns', 'scheduling', 'placementGroup', 'placementGroupBundleIndex'],
  actor: [
    'name',
    'namespace',
    'lifetime',
    'getIfExists',
    'maxRestarts',
    'maxTaskRetries',
    'maxConcurrency',
    'numCpus',
    'numGpus',
    'memory',
    'resources',
    'runtimeEnv',
    'scheduling',
    'placementGroup',
    'placementGroupBundleIndex',
  ],
  method: ['numReturns', 'name'],
  get: ['timeoutMs'],
  wait: ['numReturns', 'timeoutMs', 'fetchLocal'],
  cancel: ['force', 'recursive'],
  kill: ['noRestart'],
  getActor: ['namespace'],
};

const WHERE: Record<Kind, string> = {
  init: 'init()',
  task: 'remote function',
  actor: 'actor',
  method: 'actor method',
  get: 'get()',
  wait: 'wait()',
  cancel: 'cancel()',
  kill: 'kill()',
  getActor: 'getActor()',
};

function checkObject(o: unknown, kind: Kind): Record<string, unknown> {
  if (o === undefined) return {};
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new TypeError(`${WHERE[kind]} options must be an object, got ${o === null ? 'null' : Array.isArray(o) ? 'an array' : typeof o}`);
  }
  const rec = o as Record<string, unknown>;
  for (const k of Object.keys(rec)) {
    if (!KNOWN[kind].includes(k)) {
      const close = closest(k, KNOWN[kind]);
      throw new TypeError(
        `unknown ${WHERE[kind]} option '${k}'` + (close ? ` (did you mean '${close}'?)` : '') + `; valid options: ${KNOWN[kind].join(', ')}`,
      );
    }
  }
  return rec;
}

/** The known option `k` was probably meant as: same letters ignoring case and `_`, or a prefix (`timeout` for `timeoutMs`). */
function closest(k: string, known: readonly string[]): string | undefined {
  const norm = (x: string): string => x.toLowerCase().replace(/_/g, '');
  const n = norm(k);
  return known.find((x) => norm(x) === n) ?? (n.length >= 4 ? known.find((x) => norm(x).startsWith(n) || n.startsWith(norm(x))) : undefined);
}

function nonNegative(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new RangeError(`options.${name} must be a non-negative number, got ${describeValue(v)}`);
  }
  return v;
}

function integer(v: unknown, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new RangeError(`options.${name} must be an integer >= ${min}, got ${describeValue(v)}`);
  }
  return v;
}

function bool(v: unknown, name: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new TypeError(`options.${name} must be a boolean, got ${describeValue(v)}`);
  return v;
}

function str(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`options.${name} must be a non-empty string, got ${describeValue(v)}`);
  return v;
}

/** A value as it appears in error messages. */
export function describeValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'function') return /^class[\s{]/.test(Function.prototype.toString.call(v)) ? `the class ${v.name || '(anonymous)'}` : `a function${v.name ? ` (${v.name})` : ''}`;
  if (Array.isArray(v)) return 'an array';
  const proto = Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null;
  const name = proto === null ? undefined : proto.constructor?.name;
  if (proto === null || proto === Object.prototype || typeof name !== 'string' || name === '' || name === 'Object') return 'an object';
  return `an instance of ${name}`;
}

function customResources(v: unknown, name: string): Resources {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`options.${name} must be an object of resource amounts, got ${describeValue(v)}`);
  const out: Resources = {};
  for (const [k, amount] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'CPU' || k === 'GPU' || k === 'memory') {
      throw new TypeError(`options.${name} cannot set '${k}'; use options.${k === 'CPU' ? 'numCpus' : k === 'GPU' ? 'numGpus' : 'memory'}`);
    }
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
      throw new RangeError(`options.${name}.${k} must be a non-negative number, got ${describeValue(amount)}`);
    }
    out[k] = amount;
  }
  return out;
}

const RUNTIME_ENV_FIELDS = ['env', 'workingDir', 'excludes', 'npm'] as const;

/** A validated runtimeEnv: its variables, working directory and npm packages, each absent when not given. */
export interface RuntimeEnvConfig {
  env: Record<string, string> | undefined;
  workingDir: WorkingDirSpec | undefined;
  npm: NpmEnvSpec | undefined;
}

/** Validates `options.runtimeEnv`; a relative workingDir is resolved against the current directory now. */
function runtimeEnv(v: unknown): RuntimeEnvConfig {
  if (v === undefined) return { env: undefined, workingDir: undefined, npm: undefined };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`options.runtimeEnv must be an object like { env: {...}, workingDir: './src' }, got ${describeValue(v)}`);
  }
  const r = v as RuntimeEnv & Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!(RUNTIME_ENV_FIELDS as readonly string[]).includes(k)) {
      const close = closest(k, RUNTIME_ENV_FIELDS);
      throw new TypeError(`unknown runtimeEnv field '${k}'` + (close ? ` (did you mean '${close}'?)` : '') + `; supported: ${RUNTIME_ENV_FIELDS.join(', ')}`);
    }
  }
  let env: Record<string, string> | undefined;
  if (r.env !== undefined) {
    if (typeof r.env !== 'object' || r.env === null || Array.isArray(r.env)) throw new TypeError('options.runtimeEnv.env must be an object of strings');
    for (const [k, val] of Object.entries(r.env)) {
      if (typeof val !== 'string') throw new TypeError(`options.runtimeEnv.env.${k} must be a string, got ${describeValue(val)}`);
    }
    env = { ...r.env };
  }
  const given: unknown = r.workingDir;
  if (given !== undefined && (typeof given !== 'string' || given.length === 0)) {
    throw new TypeError(`options.runtimeEnv.workingDir must be the path of a directory (a non-empty string), got ${describeValue(given)}`);
  }
  const ex: unknown = r.excludes;
  if (ex !== undefined) {
    if (!Array.isArray(ex)) throw new TypeError(`options.runtimeEnv.excludes must be an array of glob patterns like ['node_modules', '*.log'], got ${describeValue(ex)}`);
    ex.forEach((p: unknown, i) => {
      if (typeof p !== 'string' || p.trim().length === 0) throw new TypeError(`options.runtimeEnv.excludes[${i}] must be a non-empty glob pattern, got ${describeValue(p)}`);
    });
    if (given === undefined) throw new TypeError('options.runtimeEnv.excludes only applies with options.runtimeEnv.workingDir: give the directory too');
  }
  const workingDir = given === undefined ? undefined : { dir: path.resolve(given as string), given: given as string, excludes: [...((ex as string[] | undefined) ?? [])] };
  const npm = r.npm === undefined ? undefined : compileNpmEnv(r.npm);
  return { env, workingDir, npm };
}

/** Validates `options.scheduling`: 'DEFAULT', 'SPREAD', or `{ nodeId, soft? }` (node affinity). */
function scheduling(v: unknown): Scheduling | undefined {
  if (v === undefined || v === 'DEFAULT') return undefined;
  if (v === 'SPREAD') return { spread: true };
  const usage = "options.scheduling must be 'DEFAULT', 'SPREAD' or { nodeId: string, soft?: boolean } (node affinity; node ids come from ray.nodes())";
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${usage}, got ${describeValue(v)}`);
  const r = v as Record<string, unknown>;
  for (const k of Object.keys(r)) if (k !== 'nodeId' && k !== 'soft') throw new TypeError(`unknown options.scheduling field '${k}'; ${usage}`);
  if (typeof r.nodeId !== 'string' || r.nodeId.length === 0) throw new TypeError(`options.scheduling.nodeId must be a node id (a non-empty string from ray.nodes()), got ${describeValue(r.nodeId)}`);
  const soft = bool(r.soft, 'scheduling.soft') ?? false;
  return { nodeId: r.nodeId, soft };
}

/** What `options.placementGroup` refers to: a group's id and bundles (a PlacementGroup, or one passed through a task as data). */
function placementGroupOf(v: unknown): { id: string; bundles: Resources[] } | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as { id?: unknown; bundleSpecs?: unknown };
  if (typeof o.id !== 'string' || !/^[0-9a-f]+$/.test(o.id) || !Array.isArray(o.bundleSpecs)) return undefined;
  const bundles = o.bundleSpecs as unknown[];
  if (!bundles.every((b) => typeof b === 'object' && b !== null && Object.values(b).every((x) => typeof x === 'number'))) return undefined;
  return { id: o.id, bundles: bundles as Resources[] };
}

/**
 * Compiles `options.placementGroup` / `placementGroupBundleIndex` over the
 * resources asked for: inside the group they become its resources (Ray's
 * `CPU_group_<i>_<pgid>`), checked against the bundles. Undefined without a group.
 */
function inGroup(r: Record<string, unknown>, asked: Resources, what: string): Resources | undefined {
  const v = r.placementGroup;
  const idx = r.placementGroupBundleIndex;
  if (v === undefined || v === null) {
    if (idx !== undefined && idx !== -1) throw new TypeError('options.placementGroupBundleIndex needs options.placementGroup (the group the bundle belongs to)');
    return undefined;
  }
  const pg = placementGroupOf(v);
  if (!pg) throw new TypeError(`options.placementGroup must be a PlacementGroup (from ray.placementGroup() or ray.getPlacementGroup()), got ${describeValue(v)}`);
  if (r.scheduling !== undefined && r.scheduling !== 'DEFAULT') {
    throw new TypeError('options.scheduling and options.placementGroup cannot be used together: a placement group decides where it runs; drop one of them');
  }
  const index = integer(idx, 'placementGroupBundleIndex', -1) ?? -1;
  const n = pg.bundles.length;
  if (index >= n) {
    throw new RangeError(`options.placementGroupBundleIndex is ${index}, but placement group ${pg.id} has ${n} bundle${n === 1 ? '' : 's'}: use 0 to ${n - 1}, or -1 (the default) for any bundle`);
  }
  const need: Resources = {};
  for (const [k, x] of Object.entries(asked)) if (x > 0) need[k] = x;
  if (index >= 0 && !fits(need, pg.bundles[index] as Resources)) {
    throw new RangeError(
      `${what} asks for ${describe(need)}, more than bundle ${index} of placement group ${pg.id} holds (${describe(pg.bundles[index] as Resources)}); ` +
        'ask for less in .options(), or create the group with a larger bundle',
    );
  }
  if (index < 0 && !pg.bundles.some((b) => fits(need, b))) {
    throw new RangeError(
      `${what} asks for ${describe(need)}, more than any bundle of placement group ${pg.id} holds (${pg.bundles.map(describe).join(', ')}); ` +
        'ask for less in .options(), or create the group with a larger bundle',
    );
  }
  return inPlacementGroup(need, pg.id, index);
}

function gpus(v: unknown): number | undefined {
  const n = nonNegative(v, 'numGpus');
  if (n !== undefined && n > 1 && !Number.isInteger(n)) throw new RangeError(`options.numGpus above 1 must be a whole number, got ${n}`);
  return n;
}

function numReturns(v: unknown): number | 'streaming' | undefined {
  if (v === undefined || v === 'streaming') return v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`options.numReturns must be an integer >= 1 or 'streaming', got ${describeValue(v)}`);
  return v;
}

// ---------------------------------------------------------------------------

/** init() options, complete. */
export interface InitConfig {
  address: string | undefined;
  numCpus: number | undefined;
  numGpus: number | undefined;
  resources: Resources;
  objectStoreMemory: number | undefined;
  namespace: string | undefined;
  env: Record<string, string>;
  /** the job's working directory, if any */
  workingDir: WorkingDirSpec | undefined;
  /** the job's npm packages, if any */
  npm: NpmEnvSpec | undefined;
  logToDriver: boolean;
  ignoreReinitError: boolean;
  spillDir: string | undefined;
  /** the cluster token to join with (absent: chosen by cluster/join.ts) */
  token: string | undefined;
}

/** Validates init() options. */
export function compileInitOptions(o: InitOptions | undefined): InitConfig {
  const r = checkObject(o, 'init');
  const store = nonNegative(r.objectStoreMemory, 'objectStoreMemory');
  if (store !== undefined && store < 1024 * 1024) throw new RangeError(`options.objectStoreMemory must be at least 1 MiB (1048576), got ${store}`);
  const renv = runtimeEnv(r.runtimeEnv);
  return {
    address: str(r.address, 'address'),
    numCpus: nonNegative(r.numCpus, 'numCpus'),
    numGpus: gpus(r.numGpus),
    resources: customResources(r.resources, 'resources'),
    objectStoreMemory: store,
    namespace: str(r.namespace, 'namespace'),
    env: renv.env ?? {},
    workingDir: renv.workingDir,
    npm: renv.npm,
    logToDriver: bool(r.logToDriver, 'logToDriver') ?? true,
    ignoreReinitError: bool(r.ignoreReinitError, 'ignoreReinitError') ?? false,
    spillDir: str(r.objectSpillingDirectory, 'objectSpillingDirectory'),
    token: clusterTokenOption(r.token, r.address),
  };
}

/** Validates init()'s `token`: 64 hex digits, and only with an address (a cluster of its own needs none). */
function clusterTokenOption(v: unknown, address: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new TypeError(`options.token must be a string (the cluster token \`tsray start --head\` printed), got ${describeValue(v)}`);
  const problem = tokenProblem(v.trim());
  if (problem) throw new TypeError(`options.token is not valid: ${problem}`);
  if (address === undefined) throw new TypeError('options.token is for joining a running cluster: pass it with options.address (a cluster init() starts itself needs no token)');
  return v.trim();
}

/** A remote function's options, complete. */
export interface TaskConfig {
  resources: Resources;
  maxRetries: number;
  retryExceptions: boolean | string[];
  name: string | undefined;
  env: Record<string, string> | undefined;
  /** the task's own working directory (absent: the job's, or the submitting worker's) */
  workingDir: WorkingDirSpec | undefined;
  /** the task's own npm packages (absent: the job's, or the submitting worker's) */
  npm: NpmEnvSpec | undefined;
  numReturns: number | 'streaming';
  /** where it may run (absent: the default policy) */
  sched: Scheduling | undefined;
  /** queue key: tasks with the same key share leased workers */
  schedKey: string;
}

function resourceSet(r: Record<string, unknown>, defaultCpu: number): Resources {
  const res: Resources = { CPU: nonNegative(r.numCpus, 'numCpus') ?? defaultCpu };
  const g = gpus(r.numGpus);
  if (g) res.GPU = g;
  const mem = nonNegative(r.memory, 'memory');
  if (mem) res.memory = mem;
  Object.assign(res, customResources(r.resources, 'resources'));
  for (const k of Object.keys(res)) if (res[k] === 0) delete res[k];
  return res;
}

function keyOf(res: Resources, env: Record<string, string> | undefined, sched: Scheduling | undefined, npm: NpmEnvSpec | undefined): string {
  const parts = Object.keys(res)
    .sort()
    .map((k) => `${k}=${res[k]}`);
  const where = sched ? (sched.spread ? 'SPREAD' : `${sched.nodeId ?? ''}${sched.soft ? '~' : ''}`) : '';
  return `${parts.join(',')}|${env ? JSON.stringify(Object.entries(env).sort()) : ''}|${where}${npm ? `|${npmEnvKey(npm)}` : ''}`;
}

/** Validates task options and merges them over `base`. */
export function compileTaskOptions(o: TaskOptions | undefined, base?: TaskOptions): { options: TaskOptions; config: TaskConfig } {
  checkObject(o, 'task');
  const merged = { ...(base ?? {}), ...(o ?? {}) } as TaskOptions;
  const r = merged as Record<string, unknown>;
  const asked = resourceSet(r, 1);
  const resources = inGroup(r, asked, 'the task') ?? asked;
  const { env, workingDir, npm } = runtimeEnv(r.runtimeEnv);
  let retryExceptions: boolean | string[] = false;
  const re = r.retryExceptions;
  if (re !== undefined) {
    if (typeof re === 'boolean') retryExceptions = re;
    else if (Array.isArray(re)) {
      retryExceptions = re.map((x, i) => {
        if (typeof x === 'string') return x;
        if (typeof x === 'function' && typeof x.name === 'string' && x.name) return x.name;
        throw new TypeError(`options.retryExceptions[${i}] must be an error name or an error class, got ${describeValue(x)}`);
      });
    } else throw new TypeError(`options.retryExceptions must be a boolean or a list of error names or classes, got ${describeValue(re)}`);
  }
  const sched = scheduling(r.scheduling);
  const config: TaskConfig = {
    resources,
    maxRetries: integer(r.maxRetries, 'maxRetries', -1) ?? 3,
    retryExceptions,
    name: str(r.name, 'name'),
    env,
    workingDir,
    npm,
    numReturns: numReturns(r.numReturns) ?? 1,
    sched,
    schedKey: keyOf(resources, env, sched, npm),
  };
  if (config.maxRetries < 0) config.maxRetries = Number.MAX_SAFE_INTEGER;
  return { options: merged, config };
}

/** An actor class's options, complete. */
export interface ActorConfig {
  name: string | undefined;
  namespace: string | undefined;
  detached: boolean;
  getIfExists: boolean;
  maxRestarts: number;
  maxTaskRetries: number;
  maxConcurrency: number;
  /** needed to place the actor */
  placement: Resources;
  /** held while it lives */
  hold: Resources;
  env: Record<string, string> | undefined;
  /** the actor's own working directory (absent: the job's, or the creating worker's) */
  workingDir: WorkingDirSpec | undefined;
  /** the actor's own npm packages (absent: the job's, or the creating worker's) */
  npm: NpmEnvSpec | undefined;
  /** where it may run (absent: the default policy) */
  sched: Scheduling | undefined;
}

/** Validates actor options and merges them over `base`. */
export function compileActorOptions(o: ActorOptions | undefined, base?: ActorOptions): { options: ActorOptions; config: ActorConfig } {
  checkObject(o, 'actor');
  const merged = { ...(base ?? {}), ...(o ?? {}) } as ActorOptions;
  const r = merged as Record<string, unknown>;
  const lifetime = r.lifetime;
  if (lifetime !== undefined && lifetime !== 'detached' && lifetime !== 'non_detached') {
    throw new TypeError(`options.lifetime must be 'detached' or 'non_detached', got ${describeValue(lifetime)}`);
  }
  const name = str(r.name, 'name');
  const getIfExists = bool(r.getIfExists, 'getIfExists') ?? false;
  if (getIfExists && name === undefined) throw new TypeError('options.getIfExists needs options.name');
  const asked = resourceSet(r, 0);
  const grouped = inGroup(r, asked, 'the actor');
  const hold = grouped ?? asked;
  // inside a placement group an actor needs only what it holds (its bundle was reserved for it)
  const placement = { ...hold };
  if (r.numCpus === undefined && !grouped) placement.CPU = 1;
  const renv = runtimeEnv(r.runtimeEnv);
  const config: ActorConfig = {
    name,
    namespace: str(r.namespace, 'namespace'),
    detached: lifetime === 'detached',
    getIfExists,
    maxRestarts: integer(r.maxRestarts, 'maxRestarts', -1) ?? 0,
    maxTaskRetries: integer(r.maxTaskRetries, 'maxTaskRetries', -1) ?? 0,
    maxConcurrency: integer(r.maxConcurrency, 'maxConcurrency', 1) ?? 1,
    placement,
    hold,
    env: renv.env,
    workingDir: renv.workingDir,
    npm: renv.npm,
    sched: scheduling(r.scheduling),
  };
  return { options: merged, config };
}

/** Validates actor method options and merges them over `base`. */
export function compileMethodOptions(o: ActorMethodOptions | undefined, base?: ActorMethodOptions): ActorMethodOptions {
  checkObject(o, 'method');
  const r = { ...(base ?? {}), ...(o ?? {}) } as Record<string, unknown>;
  const out: ActorMethodOptions = {};
  const n = numReturns(r.numReturns);
  if (n !== undefined) out.numReturns = n;
  const name = str(r.name, 'name');
  if (name !== undefined) out.name = name;
  return out;
}

// ---------------------------------------------------------------------------
// options of the object and actor verbs

function timeoutMs(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) throw new RangeError(`options.timeoutMs must be a non-negative number, got ${describeValue(v)}`);
  return v;
}

/** get() options, complete. */
export interface GetConfig {
  /** undefined: no limit */
  timeoutMs: number | undefined;
}

/** Validates get() options. */
export function compileGetOptions(o: GetOptions | undefined): GetConfig {
  const r = checkObject(o, 'get');
  return { timeoutMs: timeoutMs(r.timeoutMs) };
}

/** wait() options, complete. */
export interface WaitConfig {
  numReturns: number;
  timeoutMs: number | undefined;
  fetchLocal: boolean;
}

/** Validates wait() options for `count` refs (numReturns between 1 and `count`, as Ray). */
export function compileWaitOptions(o: WaitOptions | undefined, count: number): WaitConfig {
  const r = checkObject(o, 'wait');
  const n = r.numReturns ?? 1;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new RangeError(`options.numReturns must be an integer >= 1, got ${describeValue(n)}`);
  if (count > 0 && n > count) throw new RangeError(`options.numReturns (${n}) is more than the number of refs (${count})`);
  return { numReturns: n, timeoutMs: timeoutMs(r.timeoutMs), fetchLocal: bool(r.fetchLocal, 'fetchLocal') ?? true };
}

/** Validates cancel() options. */
export function compileCancelOptions(o: CancelOptions | undefined): Required<CancelOptions> {
  const r = checkObject(o, 'cancel');
  return { force: bool(r.force, 'force') ?? false, recursive: bool(r.recursive, 'recursive') ?? true };
}

/** Validates kill() options. */
export function compileKillOptions(o: KillOptions | undefined): Required<KillOptions> {
  const r = checkObject(o, 'kill');
  return { noRestart: bool(r.noRestart, 'noRestart') ?? true };
}

/** Validates getActor() options. */
export function compileGetActorOptions(o: GetActorOptions | undefined): GetActorOptions {
  const r = checkObject(o, 'getActor');
  const ns = str(r.namespace, 'namespace');
  return ns === undefined ? {} : { namespace: ns };
}
