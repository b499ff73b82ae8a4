/**
 * The loader helpers code shipped by value may call: compiled code refers
 * to helpers its loader defined once at the top of the module (esbuild's
 * `__name` under tsx, TypeScript's `__awaiter` under ts-node or ts-jest with
 * an old target, istanbul's coverage counters under `jest --coverage`).
 * The shipped text carries no module top, so the worker defines them. Only
 * loaded for code that needs one of them.
 * @internal
 */
import { COVERAGE_COUNTER, ESBUILD_HELPERS, TSLIB_IMPORT, TS_HELPERS } from './names';

type Fn = (...a: never[]) => unknown;
type Decorator = (target: unknown, key?: PropertyKey, desc?: unknown) => unknown;

const defProp = Object.defineProperty;
const getOwnPropDesc = Object.getOwnPropertyDescriptor;

/** esbuild's helpers, as esbuild calls them (same arguments, same effect). */
const esbuild: Record<string, unknown> = {
  __defProp: defProp,
  __getOwnPropDesc: getOwnPropDesc,
  __name: (target: object, value: string): unknown => defProp(target, 'name', { value, configurable: true }),
  __defNormalProp: (obj: object, key: PropertyKey, value: unknown): unknown =>
    key in obj ? defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : ((obj as Record<PropertyKey, unknown>)[key] = value),
  __publicField: (obj: object, key: PropertyKey, value: unknown): unknown => {
    const k = typeof key === 'symbol' ? key : String(key);
    if (k in obj) defProp(obj, k, { enumerable: true, configurable: true, writable: true, value });
    else (obj as Record<PropertyKey, unknown>)[k] = value;
    return value;
  },
  // kind: 0 class, 1 method/accessor (descriptor), 2 field (no descriptor)
  __decorateClass: (decorators: Array<Decorator | undefined>, target: object, key?: PropertyKey, kind?: number): unknown => {
    let result: unknown = kind !== undefined && kind > 1 ? undefined : kind ? getOwnPropDesc(target, key as PropertyKey) : target;
    for (let i = decorators.length - 1; i >= 0; i--) {
      const d = decorators[i];
      if (d) result = (kind ? d(target, key, result) : d(result)) ?? result;
    }
    if (kind && result) defProp(target, key as PropertyKey, result as PropertyDescriptor);
    return result;
  },
  __decorateParam:
    (index: number, decorator: (t: unknown, k: unknown, i: number) => unknown) =>
    (target: unknown, key: unknown): unknown =>
      decorator(target, key, index),
};

/** A stand-in for istanbul's counters: every property read, call and increment is a no-op. */
function coverageSink(): unknown {
  const sink: unknown = new Proxy(function counters() {}, {
    get: (_t, k) => (k === Symbol.toPrimitive ? () => 0 : sink),
    set: () => true,
    apply: () => sink,
  });
  return () => sink;
}

let tslib: Record<string, unknown> | undefined;
function tslibModule(): Record<string, unknown> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  tslib ??= require('tslib') as Record<string, unknown>;
  return tslib;
}

/** The value the worker binds to helper `name` (one of those names.ts lists). */
export function helper(name: string): unknown {
  if (ESBUILD_HELPERS.has(name)) return esbuild[name];
  if (TS_HELPERS.has(name)) return tslibModule()[name] as Fn;
  if (TSLIB_IMPORT.test(name)) return tslibModule();
  if (COVERAGE_COUNTER.test(name)) return coverageSink();
  throw new Error(`no loader helper is named ${name}`);
}
