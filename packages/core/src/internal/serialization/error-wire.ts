/**
 * The wire form of errors: name, message, stack, cause and own properties,
 * rebuilt on the other side as an instance of the same class when it is a
 * built-in or a tsray error.
 * @internal
 */
import { serialize } from 'node:v8';
import { ERROR_CLASSES, RayError, brandError, errorKinds } from '../../errors';

const BUILTIN_ERRORS: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/** An error as it travels. */
export interface ErrorWire {
  /** tsray error kinds (class chain) */
  k?: readonly string[];
  /** name */
  n: string;
  /** message */
  m: string;
  /** stack */
  s?: string;
  /** a cause that is not an Error */
  c?: unknown;
  /** a cause that is an Error, in wire form */
  ce?: ErrorWire;
  /** other own properties */
  p?: Record<string, unknown>;
}

const ERROR_OWN_SKIP = new Set(['message', 'stack', 'name', 'cause']);
/** Causes deeper than this are dropped. */
export const MAX_CAUSE_DEPTH = 8;

const isError = (v: unknown): v is Error => v instanceof Error || Object.prototype.toString.call(v) === '[object Error]';

/**
 * The wire form of an error; never throws. The cause chain travels up to
 * {@link MAX_CAUSE_DEPTH} deep; a cause that refers back to an error of the
 * chain (a cycle) is cut there.
 */
export function errorToWire(e: Error, depth = 0, chain: Set<unknown> = new Set()): ErrorWire {
  chain.add(e);
  const w: ErrorWire = { n: String(e.name ?? 'Error'), m: String(e.message ?? '') };
  const kinds = errorKinds(e);
  if (kinds) w.k = kinds;
  if (typeof e.stack === 'string') w.s = e.stack;
  const cause = (e as { cause?: unknown }).cause;
  if (cause !== undefined && depth + 1 < MAX_CAUSE_DEPTH && !chain.has(cause)) {
    if (isError(cause)) w.ce = errorToWire(cause, depth + 1, chain);
    else w.c = safeValue(cause);
  }
  const props: Record<string, unknown> = {};
  let any = false;
  for (const k of Object.keys(e)) {
    if (ERROR_OWN_SKIP.has(k)) continue;
    const v = (e as unknown as Record<string, unknown>)[k];
    props[k] = chain.has(v) ? '[circular reference to an error]' : safeValue(v);
    any = true;
  }
  if (any) w.p = props;
  return w;
}

/**
 * `v` if it can be serialized on its own, else a description of it. Probed
 * with V8's serializer: errors are encoded while the value serializer runs,
 * and msgpackr's packers share one output buffer, so packing here would
 * overwrite the value being written.
 */
function safeValue(v: unknown): unknown {
  if (v === null || v === undefined || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  try {
    serialize(v);
    return v;
  } catch {
    return `[unserializable ${typeof v}]`;
  }
}

/** Rebuilds an error from its wire form, as an instance of the same class when known. */
export function errorFromWire(w: ErrorWire, depth = 0): Error {
  let e: Error;
  if (w.k && w.k.length > 0) {
    const cls = ERROR_CLASSES[w.k[w.k.length - 1] as string] ?? RayError;
    e = Object.create(cls.prototype) as Error;
    brandError(e, w.k);
  } else {
    const ctor = BUILTIN_ERRORS[w.n] ?? Error;
    e = Object.create(ctor.prototype) as Error;
  }
  Object.defineProperty(e, 'message', { value: w.m, writable: true, configurable: true, enumerable: false });
  if (e.name !== w.n) Object.defineProperty(e, 'name', { value: w.n, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(e, 'stack', { value: w.s ?? `${w.n}: ${w.m}`, writable: true, configurable: true, enumerable: false });
  const ce = typeof w.ce === 'object' && w.ce !== null && depth + 1 < MAX_CAUSE_DEPTH ? errorFromWire(w.ce, depth + 1) : undefined;
  const cause = ce ?? w.c;
  if (cause !== undefined) Object.defineProperty(e, 'cause', { value: cause, writable: true, configurable: true, enumerable: false });
  if (w.p) Object.assign(e, w.p);
  return e;
}

