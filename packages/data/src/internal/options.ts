/**
 * Validation of the public API's options, in one place: each `compileX`
 * checks its option object (unknown keys name the valid ones) and returns a
 * complete, validated value.
 * @internal
 */
import * as ray from '@tsray/core';
import { BATCH_FORMATS, type BatchFormat } from './block';
import { type Compute, type TaskCompute, type UserFn, DEFAULT_COMPUTE } from './plan';

/** Throws a TypeError for keys of `opts` outside `valid`. */
export function checkKeys(what: string, opts: unknown, valid: readonly string[]): Record<string, unknown> {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new TypeError(`${what}: options must be an object, got ${opts === null ? 'null' : Array.isArray(opts) ? 'an array' : typeof opts}`);
  for (const k of Object.keys(opts)) {
    if (!valid.includes(k)) throw new TypeError(`${what}: unknown option '${k}'; the valid options are ${valid.map((v) => `'${v}'`).join(', ')}`);
  }
  return opts as Record<string, unknown>;
}

/** A whole number ≥ min. */
export function checkInt(what: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`${what} must be an integer >= ${min}, got ${typeof v === 'number' ? v : typeof v}`);
  return v;
}

/** A number ≥ 0. */
export function checkNonNegative(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`${what} must be a number >= 0, got ${typeof v === 'number' ? v : typeof v}`);
  return v;
}

/** A column name, or a non-empty list of them. */
export function checkColumns(what: string, v: unknown): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((c) => typeof c === 'string' && c.length > 0)) {
    throw new TypeError(`${what} takes a column name or a non-empty list of column names, got ${JSON.stringify(v)}`);
  }
  return list as string[];
}

/** True when `f` is a class (mapBatches then runs it in an actor pool). */
export function isClass(f: unknown): boolean {
  return typeof f === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(f));
}

/** A user's function as a shippable value with its arguments. */
export function userFn(what: string, fn: unknown, fnArgs: unknown): UserFn {
  if (typeof fn !== 'function') throw new TypeError(`${what} takes a function, got ${fn === null ? 'null' : typeof fn}`);
  if (fnArgs !== undefined && !Array.isArray(fnArgs)) throw new TypeError(`${what}: fnArgs must be an array of the extra arguments the function gets, got ${typeof fnArgs}`);
  return { fn: ray.util.shippable(fn as (...a: never[]) => unknown, { what }), args: (fnArgs as unknown[] | undefined) ?? [] };
}

/** The options map, flatMap and filter take. */
export const ROW_FN_OPTIONS = ['fnArgs', 'numCpus', 'numGpus', 'concurrency'] as const;

/** Task resources from `numCpus`, `numGpus` and a number `concurrency`. */
export function compileTaskCompute(what: string, o: Record<string, unknown>): TaskCompute {
  const numCpus = o.numCpus === undefined ? DEFAULT_COMPUTE.numCpus : checkNonNegative(`${what}: numCpus`, o.numCpus);
  const numGpus = o.numGpus === undefined ? 0 : checkNonNegative(`${what}: numGpus`, o.numGpus);
  let concurrency: number | undefined;
  if (o.concurrency !== undefined) {
    if (Array.isArray(o.concurrency)) throw new TypeError(`${what}: concurrency [min, max] is for a class (an actor pool); a function's tasks take one number`);
    concurrency = checkInt(`${what}: concurrency`, o.concurrency, 1);
  }
  return { kind: 'tasks', numCpus, numGpus, concurrency };
}

/** The options of mapBatches. */
export const MAP_BATCHES_OPTIONS = ['batchSize', 'batchFormat', 'concurrency', 'numCpus', 'numGpus', 'fnArgs', 'fnConstructorArgs', 'zeroCopyBatch'] as const;

/** The compiled options of mapBatches. */
export interface MapBatchesCompiled {
  batchSize: number | null;
  format: BatchFormat;
  compute: Compute;
  fn: UserFn;
  isClass: boolean;
}

/** Compiles mapBatches' arguments. */
export function compileMapBatches(fnOrClass: unknown, opts: unknown): MapBatchesCompiled {
  const what = 'ds.mapBatches';
  const o = checkKeys(what, opts, MAP_BATCHES_OPTIONS);
  let batchSize: number | null = 1024;
  if (o.batchSize !== undefined) batchSize = o.batchSize === null ? null : checkInt(`${what}: batchSize`, o.batchSize, 1);
  const format = (o.batchFormat ?? 'default') as BatchFormat;
  if (!BATCH_FORMATS.includes(format)) throw new TypeError(`${what}: batchFormat must be one of ${BATCH_FORMATS.map((f) => `'${f}'`).join(', ')}, got ${JSON.stringify(o.batchFormat)}`);
  const cls = isClass(fnOrClass);
  if (!cls && o.fnConstructorArgs !== undefined) throw new TypeError(`${what}: fnConstructorArgs is for a class (its constructor's arguments); this is a function: pass its extra arguments as fnArgs`);
  if (o.fnConstructorArgs !== undefined && !Array.isArray(o.fnConstructorArgs)) throw new TypeError(`${what}: fnConstructorArgs must be an array of the class constructor's arguments`);
  const fn = userFn(what, fnOrClass, o.fnArgs);
  if (!cls) return { batchSize, format, compute: compileTaskCompute(what, o), fn, isClass: false };
  const numCpus = o.numCpus === undefined ? 1 : checkNonNegative(`${what}: numCpus`, o.numCpus);
  const numGpus = o.numGpus === undefined ? 0 : checkNonNegative(`${what}: numGpus`, o.numGpus);
  let min = 1;
  let max = Number.POSITIVE_INFINITY;
  if (typeof o.concurrency === 'number') min = max = checkInt(`${what}: concurrency`, o.concurrency, 1);
  else if (Array.isArray(o.concurrency)) {
    if (o.concurrency.length !== 2) throw new TypeError(`${what}: concurrency for an autoscaling pool is [min, max], got ${JSON.stringify(o.concurrency)}`);
    min = checkInt(`${what}: concurrency[0] (min)`, o.concurrency[0], 1);
    max = checkInt(`${what}: concurrency[1] (max)`, o.concurrency[1], min);
  } else if (o.concurrency !== undefined) throw new TypeError(`${what}: concurrency must be a number of actors or [min, max], got ${typeof o.concurrency}`);
  return { batchSize, format, compute: { kind: 'actors', cls: fn.fn, ctorArgs: (o.fnConstructorArgs as unknown[] | undefined) ?? [], min, max, numCpus, numGpus }, fn, isClass: true };
}
