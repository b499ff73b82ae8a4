/**
 * Deployment options: the public shape, defaults as Ray Serve's, and the
 * checks `serve.deployment()` runs so that a bad option fails there.
 * @internal
 */
import type { RuntimeEnv } from '@tsray/core';

/** Autoscaling policy of a deployment (Ray Serve's `autoscaling_config`). */
export interface AutoscalingConfig {
  /** @default 1 */
  minReplicas?: number;
  /** @default 1 */
  maxReplicas?: number;
  /** replicas to start with @default minReplicas */
  initialReplicas?: number;
  /** ongoing requests per replica the policy aims at @default 2 */
  targetOngoingRequests?: number;
  /** how long the desired count must stay above the current before scaling up @default 30 */
  upscaleDelayS?: number;
  /** how long the desired count must stay below the current before scaling down @default 600 */
  downscaleDelayS?: number;
  /** how often replicas' ongoing requests are sampled @default 10 */
  metricsIntervalS?: number;
  /** the window whose average the policy uses @default 30 */
  lookBackPeriodS?: number;
}

/** Options of the actors that host a deployment's replicas. */
export interface RayActorOptions {
  numCpus?: number;
  numGpus?: number;
  resources?: Record<string, number>;
  runtimeEnv?: RuntimeEnv;
}

/** Options of {@link deployment} and `Deployment.options()` (Ray Serve's, in camelCase). */
export interface DeploymentOptions {
  /** @default the class's or function's name */
  name?: string;
  /** a fixed count, or `'auto'` for autoscaling with the default policy @default 1 */
  numReplicas?: number | 'auto';
  /** requests one replica runs at once; more wait in the callers' routers @default 5 */
  maxOngoingRequests?: number;
  /** requests that may wait in one caller for a replica; beyond it the caller gets BackPressureError (HTTP 503); -1: no limit @default -1 */
  maxQueuedRequests?: number;
  autoscalingConfig?: AutoscalingConfig;
  rayActorOptions?: RayActorOptions;
  /** passed to the instance's `reconfigure()` at start and whenever it changes (in place) */
  userConfig?: unknown;
  /** @default 10 */
  healthCheckPeriodS?: number;
  /** @default 30 */
  healthCheckTimeoutS?: number;
  /** how long a stopping replica may take to finish its requests @default 20 */
  gracefulShutdownTimeoutS?: number;
}

/** Autoscaling options with every default filled in. */
export type ResolvedAutoscaling = Required<AutoscalingConfig>;

/** Deployment options with every default filled in (what travels to the controller). */
export interface ResolvedOptions {
  name: string;
  numReplicas: number;
  autoscaling: ResolvedAutoscaling | null;
  maxOngoingRequests: number;
  maxQueuedRequests: number;
  rayActorOptions: RayActorOptions;
  userConfig: unknown;
  healthCheckPeriodS: number;
  healthCheckTimeoutS: number;
  gracefulShutdownTimeoutS: number;
}

const OPTION_KEYS = ['name', 'numReplicas', 'maxOngoingRequests', 'maxQueuedRequests', 'autoscalingConfig', 'rayActorOptions', 'userConfig', 'healthCheckPeriodS', 'healthCheckTimeoutS', 'gracefulShutdownTimeoutS'] as const;
const AUTOSCALING_KEYS = ['minReplicas', 'maxReplicas', 'initialReplicas', 'targetOngoingRequests', 'upscaleDelayS', 'downscaleDelayS', 'metricsIntervalS', 'lookBackPeriodS'] as const;
const ACTOR_KEYS = ['numCpus', 'numGpus', 'resources', 'runtimeEnv'] as const;

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** Throws TypeError for a key of `o` not in `keys`, naming the valid ones. */
export function checkKeys(o: object, keys: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new TypeError(`unknown ${where} option '${k}'; the options are: ${keys.join(', ')}`);
  }
}

function plainObject(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${where} must be an object, got ${describe(v)}`);
  return v as Record<string, unknown>;
}

function num(o: Record<string, unknown>, k: string, where: string, def: number, check: { int?: boolean; min: number; minExclusive?: boolean; allow?: number[] }): number {
  const v = o[k];
  if (v === undefined) return def;
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (check.allow?.includes(v) || ((!check.int || Number.isInteger(v)) && (check.minExclusive ? v > check.min : v >= check.min)));
  if (!ok) {
    const what = `${check.int ? 'a whole number' : 'a number'} ${check.minExclusive ? '>' : '≥'} ${check.min}${check.allow ? ` (or ${check.allow.join(', ')})` : ''}`;
    throw new RangeError(`${where}.${k} must be ${what}, got ${describe(v)}`);
  }
  return v as number;
}

/** Checks `options` and fills in the defaults; `fallbackName` is the class's or function's name. */
export function resolveOptions(options: unknown, fallbackName: string, where = 'serve.deployment()'): ResolvedOptions {
  const o = plainObject(options ?? {}, `${where} options`);
  checkKeys(o, OPTION_KEYS, where);
  const name = o.name ?? fallbackName;
  if (typeof name !== 'string' || name.length === 0 || /[#/\s]/.test(name)) {
    throw new TypeError(`${where} name must be a non-empty string without '#', '/' or spaces, got ${describe(name)}${o.name === undefined ? ' (the class or function has no name: pass options.name)' : ''}`);
  }
  const w = `${where} options`;
  let numReplicas = 1;
  let autoscaling: ResolvedAutoscaling | null = null;
  if (o.numReplicas === 'auto' || o.autoscalingConfig !== undefined) {
    if (o.numReplicas !== undefined && o.numReplicas !== 'auto') {
      throw new TypeError(`${w}: numReplicas (${describe(o.numReplicas)}) and autoscalingConfig cannot both be set: a fixed count, or autoscaling between autoscalingConfig.minReplicas and maxReplicas`);
    }
    const a = plainObject(o.autoscalingConfig ?? {}, `${w}.autoscalingConfig`);
    checkKeys(a, AUTOSCALING_KEYS, `${where} autoscalingConfig`);
    const aw = `${w}.autoscalingConfig`;
    const minReplicas = num(a, 'minReplicas', aw, 1, { int: true, min: 0 });
    const maxReplicas = num(a, 'maxReplicas', aw, Math.max(1, minReplicas, o.numReplicas === 'auto' ? 100 : 1), { int: true, min: 1 });
    if (maxReplicas < minReplicas) throw new RangeError(`${aw}.maxReplicas (${maxReplicas}) must be at least minReplicas (${minReplicas})`);
    const initialReplicas = num(a, 'initialReplicas', aw, minReplicas, { int: true, min: 0 });
    if (initialReplicas < minReplicas || initialReplicas > maxReplicas) throw new RangeError(`${aw}.initialReplicas (${initialReplicas}) must be between minReplicas (${minReplicas}) and maxReplicas (${maxReplicas})`);
    autoscaling = {
      minReplicas,
      maxReplicas,
      initialReplicas,
      targetOngoingRequests: num(a, 'targetOngoingRequests', aw, 2, { min: 0, minExclusive: true }),
      upscaleDelayS: num(a, 'upscaleDelayS', aw, 30, { min: 0 }),
      downscaleDelayS: num(a, 'downscaleDelayS', aw, 600, { min: 0 }),
      metricsIntervalS: num(a, 'metricsIntervalS', aw, 10, { min: 0, minExclusive: true }),
      lookBackPeriodS: num(a, 'lookBackPeriodS', aw, 30, { min: 0, minExclusive: true }),
    };
    numReplicas = initialReplicas;
  } else {
    numReplicas = num(o, 'numReplicas', w, 1, { int: true, min: 0 });
  }
  const actor = plainObject(o.rayActorOptions ?? {}, `${w}.rayActorOptions`);
  checkKeys(actor, ACTOR_KEYS, `${where} rayActorOptions`);
  const aw = `${w}.rayActorOptions`;
  const rayActorOptions: RayActorOptions = { ...(actor as RayActorOptions) };
  if (actor.numCpus !== undefined) num(actor, 'numCpus', aw, 0, { min: 0 });
  if (actor.numGpus !== undefined) num(actor, 'numGpus', aw, 0, { min: 0 });
  if (actor.resources !== undefined) plainObject(actor.resources, `${aw}.resources`);
  const maxOngoingRequests = num(o, 'maxOngoingRequests', w, 5, { int: true, min: 1 });
  const healthCheckPeriodS = num(o, 'healthCheckPeriodS', w, 10, { min: 0, minExclusive: true });
  const healthCheckTimeoutS = num(o, 'healthCheckTimeoutS', w, 30, { min: 0, minExclusive: true });
  const gracefulShutdownTimeoutS = num(o, 'gracefulShutdownTimeoutS', w, 20, { min: 0 });
  const maxQueuedRequests = num(o, 'maxQueuedRequests', w, -1, { int: true, min: 0, allow: [-1] });
  return { name, numReplicas, autoscaling, maxOngoingRequests, maxQueuedRequests, rayActorOptions, userConfig: o.userConfig, healthCheckPeriodS, healthCheckTimeoutS, gracefulShutdownTimeoutS };
}
