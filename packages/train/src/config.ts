/**
 * A trainer's configuration (Ray Train's ScalingConfig, RunConfig,
 * CheckpointConfig, FailureConfig and DataConfig in camelCase). Each is a
 * plain object type and a class of the same name: pass `{ numWorkers: 2 }`
 * or `new ScalingConfig({ numWorkers: 2 })`.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type * as ray from '@tsray/core';

/** How many workers, and what each holds. */
export class ScalingConfig {
  /** Training workers (actors), one per bundle of the group's placement group. @default 1 */
  numWorkers?: number;
  /** Give each worker a GPU (and use tfjs's GPU backend). @default false */
  useGpu?: boolean;
  /** What each worker holds: `{ CPU: 1 }` by default, plus `GPU: 1` with useGpu. */
  resourcesPerWorker?: Record<string, number>;
  /** The placement group's strategy. @default 'PACK' */
  placementStrategy?: ray.PlacementStrategy;
  constructor(options: ScalingConfig = {}) {
    Object.assign(this, options);
  }
}

/** Which checkpoints to keep. */
export class CheckpointConfig {
  /** Checkpoints kept on disk (the latest is always kept too). @default all */
  numToKeep?: number;
  /** The metric that ranks checkpoints for numToKeep. @default the order they were made */
  checkpointScoreAttribute?: string;
  /** @default 'max' */
  checkpointScoreOrder?: 'min' | 'max';
  constructor(options: CheckpointConfig = {}) {
    Object.assign(this, options);
  }
}

/** What to do when a worker dies or the training loop throws. */
export class FailureConfig {
  /** Restarts of the whole group from the latest checkpoint before fit() rejects (-1: forever). @default 0 */
  maxFailures?: number;
  constructor(options: FailureConfig = {}) {
    Object.assign(this, options);
  }
}

/** Where a run's results go. */
export class RunConfig {
  /** The run's name: its directory under storagePath. @default `<TrainerName>_<date>` */
  name?: string;
  /** Where runs are kept (`~` is the home directory). @default '~/tsray_results' */
  storagePath?: string;
  checkpointConfig?: CheckpointConfig;
  failureConfig?: FailureConfig;
  /** One line per report on a TTY: 1 (the default) or 0 (silent). Silent anyway when stdout is not a TTY. */
  verbose?: 0 | 1;
  constructor(options: RunConfig = {}) {
    Object.assign(this, options);
  }
}

/** Which datasets are split among the workers. */
export class DataConfig {
  /** Names of `datasets` that each worker reads a disjoint shard of; the others are read whole by every worker. @default 'all' */
  datasetsToSplit?: string[] | 'all';
  constructor(options: DataConfig = {}) {
    Object.assign(this, options);
  }
}

/** Fully resolved options (internal). */
export interface ResolvedConfig {
  numWorkers: number;
  useGpu: boolean;
  resourcesPerWorker: Record<string, number>;
  placementStrategy: ray.PlacementStrategy;
  name: string;
  storagePath: string;
  numToKeep: number | undefined;
  scoreAttribute: string | undefined;
  scoreOrder: 'min' | 'max';
  maxFailures: number;
  verbose: 0 | 1;
  datasetsToSplit: string[] | 'all';
}

const STRATEGIES = ['PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD'];

/** Throws a TypeError naming the first key of `o` not in `allowed`. */
export function checkKeys(what: string, o: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (o === undefined || o === null) return {};
  if (typeof o !== 'object' || Array.isArray(o)) throw new TypeError(`${what} must be an object, got ${typeof o}`);
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new TypeError(`${what}: unknown option '${k}' (known: ${allowed.join(', ')})`);
  }
  return o as Record<string, unknown>;
}

function int(what: string, v: unknown, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`${what} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/** Expands a leading `~` to the home directory and makes the path absolute. */
export function expandPath(p: string): string {
  const e = p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
  return path.resolve(e);
}

/** Validates a trainer's options (unknown keys, types) and fills in the defaults. */
export function resolveConfig(trainerName: string, scaling: unknown, run: unknown, dataConfig: unknown, datasetNames: readonly string[]): ResolvedConfig {
  const s = checkKeys('scalingConfig', scaling, ['numWorkers', 'useGpu', 'resourcesPerWorker', 'placementStrategy']);
  const r = checkKeys('runConfig', run, ['name', 'storagePath', 'checkpointConfig', 'failureConfig', 'verbose']);
  const c = checkKeys('runConfig.checkpointConfig', r.checkpointConfig, ['numToKeep', 'checkpointScoreAttribute', 'checkpointScoreOrder']);
  const f = checkKeys('runConfig.failureConfig', r.failureConfig, ['maxFailures']);
  const d = checkKeys('datasetConfig', dataConfig, ['datasetsToSplit']);
  const numWorkers = int('scalingConfig.numWorkers', s.numWorkers, 1, 1);
  if (s.useGpu !== undefined && typeof s.useGpu !== 'boolean') throw new TypeError(`scalingConfig.useGpu must be a boolean, got ${JSON.stringify(s.useGpu)}`);
  const useGpu = Boolean(s.useGpu);
  let resourcesPerWorker: Record<string, number>;
  if (s.resourcesPerWorker === undefined) resourcesPerWorker = useGpu ? { CPU: 1, GPU: 1 } : { CPU: 1 };
  else {
    const rw = checkKeys('scalingConfig.resourcesPerWorker', s.resourcesPerWorker, Object.keys(s.resourcesPerWorker as object));
    resourcesPerWorker = {};
    for (const [k, v] of Object.entries(rw)) {
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new RangeError(`scalingConfig.resourcesPerWorker.${k} must be a number >= 0, got ${JSON.stringify(v)}`);
      resourcesPerWorker[k] = v;
    }
    if (useGpu && !(resourcesPerWorker.GPU! > 0)) resourcesPerWorker.GPU = 1;
  }
  const placementStrategy = (s.placementStrategy ?? 'PACK') as ray.PlacementStrategy;
  if (!STRATEGIES.includes(placementStrategy)) throw new TypeError(`scalingConfig.placementStrategy must be one of ${STRATEGIES.join(', ')}, got ${JSON.stringify(s.placementStrategy)}`);
  if (r.name !== undefined && (typeof r.name !== 'string' || r.name === '' || /[/\\]/.test(r.name) || r.name.startsWith('.'))) {
    throw new TypeError(`runConfig.name must be a non-empty string without '/' that does not start with '.', got ${JSON.stringify(r.name)}`);
  }
  if (r.storagePath !== undefined && (typeof r.storagePath !== 'string' || r.storagePath === '')) throw new TypeError(`runConfig.storagePath must be a directory path, got ${JSON.stringify(r.storagePath)}`);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '_');
  const name = (r.name as string | undefined) ?? `${trainerName}_${stamp}`;
  const numToKeep = c.numToKeep === undefined || c.numToKeep === null ? undefined : int('checkpointConfig.numToKeep', c.numToKeep, 0, 1);
  if (c.checkpointScoreAttribute !== undefined && typeof c.checkpointScoreAttribute !== 'string') throw new TypeError('checkpointConfig.checkpointScoreAttribute must be a metric name (a string)');
  const scoreOrder = (c.checkpointScoreOrder ?? 'max') as 'min' | 'max';
  if (scoreOrder !== 'min' && scoreOrder !== 'max') throw new TypeError(`checkpointConfig.checkpointScoreOrder must be 'min' or 'max', got ${JSON.stringify(c.checkpointScoreOrder)}`);
  const maxFailures = f.maxFailures === -1 ? Infinity : int('failureConfig.maxFailures', f.maxFailures, 0, 0);
  const verbose = r.verbose === undefined ? 1 : r.verbose;
  if (verbose !== 0 && verbose !== 1) throw new TypeError(`runConfig.verbose must be 0 or 1, got ${JSON.stringify(r.verbose)}`);
  let datasetsToSplit: string[] | 'all' = 'all';
  if (d.datasetsToSplit !== undefined) {
    if (d.datasetsToSplit !== 'all' && (!Array.isArray(d.datasetsToSplit) || d.datasetsToSplit.some((x) => typeof x !== 'string'))) {
      throw new TypeError(`datasetConfig.datasetsToSplit must be 'all' or a list of dataset names, got ${JSON.stringify(d.datasetsToSplit)}`);
    }
    datasetsToSplit = d.datasetsToSplit as string[] | 'all';
    if (Array.isArray(datasetsToSplit)) {
      for (const n of datasetsToSplit) {
        if (!datasetNames.includes(n)) throw new TypeError(`datasetConfig.datasetsToSplit names '${n}', which is not in datasets (${datasetNames.length ? datasetNames.join(', ') : 'none given'})`);
      }
    }
  }
  return {
    numWorkers,
    useGpu,
    resourcesPerWorker,
    placementStrategy,
    name,
    storagePath: expandPath((r.storagePath as string | undefined) ?? '~/tsray_results'),
    numToKeep,
    scoreAttribute: c.checkpointScoreAttribute as string | undefined,
    scoreOrder,
    maxFailures,
    verbose,
    datasetsToSplit,
  };
}
