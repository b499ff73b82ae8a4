/**
 * The wire form of errors: name, message, stack, cause and own properties,
 * rebuilt on the other side as an instance of the same class when it is a
 * built-in or a tsray error.
 * @internal
 */
import { Packr } from 'msgpackr';
import { ERROR_CLASSES, RayError, brandError, errorKinds } from '../../errors';

const probe = new Packr({ useRecords: false, moreTypes: true });

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
  k?: readonly string[];
  n: string;
  m: string;
  s?: string;
  c?: unknown;
  p?: Record<string, unknown>;
}

const ERROR_OWN_SKIP = new Set(['message', 'stack', 'name', 'cause']);

/** The wire form of an error; never throws. */
export function errorToWire(e: Error, depth = 0): ErrorWire {
  const w: ErrorWire = { n: String(e.name ?? 'Error'), m: String(e.message ?? '') };
  const kinds = errorKinds(e);
  if (kinds) w.k = kinds;
  if (typeof e.stack === 'string') w.s = e.stack;
  const cause = (e as { cause?: unknown }).cause;
  if (cause !== undefined && depth < 8) w.c = cause instanceof Error ? cause : safeValue(cause);
  const props: Record<string, unknown> = {};
  let any = false;
  for (const k of Object.keys(e)) {
    if (ERROR_OWN_SKIP.has(k)) continue;
    props[k] = safeValue((e as unknown as Record<string, unknown>)[k]);
    any = true;
  }
  if (any) w.p = props;
  return w;
}

/** `v` if it can be serialized on its own, else a description of it. */
function safeValue(v: unknown): unknown {
  if (v === null || v === undefined || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  try {
    probe.pack(v);
    return v;
  } catch {
    return `[unserializable ${typeof v}]`;
  }
}

/** Rebuilds an error from its wire form, as an instance of the same class when known. */
export function errorFromWire(w: ErrorWire): Error {
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
  if (w.c !== undefined) Object.defineProperty(e, 'cause', { value: w.c, writable: true, configurable: true, enumerable: false });
  if (w.p) Object.assign(e, w.p);
  return e;
}

