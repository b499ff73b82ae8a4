/**
 * A small runtime schema language for wire messages: each check is a type
 * guard, and `Infer<typeof schema>` gives the message's TypeScript type, so
 * types and validation come from one definition.
 * @internal
 */

/** A type guard over unknown input. */
export type Check<T> = ((v: unknown) => v is T) & { readonly optional?: boolean };

/** The type a check accepts. */
export type Infer<C> = C extends Check<infer T> ? T : never;

type Shape = Record<string, Check<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends { optional: true } ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
/** The object type a shape describes. */
export type ObjOf<S extends Shape> = { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> };

const str: Check<string> = (v): v is string => typeof v === 'string';
const num: Check<number> = (v): v is number => typeof v === 'number' && Number.isFinite(v);
/** a finite number >= 0 (resource amounts, sizes) */
const nonNeg: Check<number> = (v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const int: Check<number> = (v): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const bool: Check<boolean> = (v): v is boolean => typeof v === 'boolean';
const bin: Check<Uint8Array> = (v): v is Uint8Array => v instanceof Uint8Array;
const any: Check<unknown> = (v): v is unknown => true;

/** A field that may be absent (undefined); null is not absent and must pass `c`. */
function optional<T>(c: Check<T>): Check<T | undefined> & { optional: true } {
  const f = ((v: unknown): v is T | undefined => v === undefined || c(v)) as Check<T | undefined> & {
    optional: true;
  };
  Object.defineProperty(f, 'optional', { value: true });
  return f;
}

/** An array of at most `max` items, each passing `c`. */
function arr<T>(c: Check<T>, max = Infinity): Check<T[]> {
  return (v: unknown): v is T[] => {
    if (!Array.isArray(v) || v.length > max) return false;
    for (let i = 0; i < v.length; i++) if (!c(v[i])) return false;
    return true;
  };
}

/** A fixed-length array whose items pass the checks in order. */
function tuple<T extends Check<unknown>[]>(...cs: T): Check<{ [K in keyof T]: Infer<T[K]> }> {
  return (v: unknown): v is { [K in keyof T]: Infer<T[K]> } => {
    if (!Array.isArray(v) || v.length !== cs.length) return false;
    for (let i = 0; i < cs.length; i++) if (!(cs[i] as Check<unknown>)(v[i])) return false;
    return true;
  };
}

/** A plain object with (at least) the shape's fields. */
function obj<S extends Shape>(shape: S): Check<ObjOf<S>> {
  const keys = Object.keys(shape);
  const checks = keys.map((k) => shape[k] as Check<unknown>);
  return (v: unknown): v is ObjOf<S> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return false;
    const o = v as Record<string, unknown>;
    for (let i = 0; i < keys.length; i++) if (!(checks[i] as Check<unknown>)(o[keys[i] as string])) return false;
    return true;
  };
}

/** A plain object whose every own value passes `c`. */
function record<T>(c: Check<T>): Check<Record<string, T>> {
  return (v: unknown): v is Record<string, T> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return false;
    for (const k in v) if (!c((v as Record<string, unknown>)[k])) return false;
    return true;
  };
}

/** One of the given literal values. */
function oneOf<T extends string | number>(...values: T[]): Check<T> {
  const set = new Set<unknown>(values);
  return (v: unknown): v is T => set.has(v);
}

/** The schema constructors. */
export const S = { str, num, nonNeg, int, bool, bin, any, optional, arr, tuple, obj, record, oneOf };
