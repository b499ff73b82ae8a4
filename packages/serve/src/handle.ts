/**
 * Deployment handles: how a driver, a replica (composition) or the HTTP
 * proxy calls a deployment. `handle.method.remote(...args)` returns a
 * {@link DeploymentResponse} at once; the call runs on a replica the
 * caller's router picks.
 */
import * as ray from '@tsray/core';
import { RequestTimeoutError } from './errors';
import { checkKeys } from './internal/options';
import { HTTP_METHOD, randomId, type CallMeta } from './internal/common';
import { type Dispatch, routerFor } from './internal/router';
import { currentModelId } from './internal/context';

/** Options of `handle.options()`. */
export interface HandleOptions {
  /** the method `handle.remote()` calls @default 'call' */
  methodName?: string;
  /** true: calls return a {@link DeploymentResponseGenerator} of what the method (an async generator) yields */
  stream?: boolean;
  /** the model the request is for (multiplexing: a replica that has it loaded is preferred) */
  multiplexedModelId?: string;
}

/** Options of {@link DeploymentResponse.result}. */
export interface ResultOptions {
  /** reject with RequestTimeoutError after this many milliseconds @default no limit */
  timeoutMs?: number;
}

/** An argument of a handle call: a value, or a response of another call (resolved first). */
type Arg<T> = T | DeploymentResponse<T>;
type Args<P extends unknown[]> = { [K in keyof P]: Arg<P[K]> };
type AnyFn = (...args: never[]) => unknown;
type Yielded<R> = R extends AsyncIterable<infer Y> ? Y : R extends Iterable<infer Y> ? Y : unknown;

/** A method of a deployment, through a handle. */
export interface HandleMethod<F> {
  /** Calls the method on a replica. */
  remote(...args: F extends AnyFn ? Args<Parameters<F>> : never[]): DeploymentResponse<F extends AnyFn ? Awaited<ReturnType<F>> : never>;
}

/** The methods of `T` callable through a handle. */
export type HandleMethods<T> = {
  readonly [K in keyof T as K extends 'constructor' | 'then' ? never : T[K] extends AnyFn ? K : never]: HandleMethod<T[K]>;
};

/** What `handle.remote()` calls: the class's `call`, or a function deployment itself. */
type Callee<T> = T extends AnyFn ? T : T extends { call: infer C } ? C : AnyFn;

/** The common members of a handle. */
export interface DeploymentHandleBase<T> {
  /** the deployment's name */
  readonly deploymentName: string;
  /** its application's name */
  readonly appName: string;
  /** Calls the method set by `options({ methodName })` (default: `call`, or the function of a function deployment). */
  remote(...args: Callee<T> extends AnyFn ? Args<Parameters<Callee<T>>> : never[]): DeploymentResponse<Callee<T> extends AnyFn ? Awaited<ReturnType<Callee<T>>> : unknown>;
  /** A handle with other call options. */
  options(options: HandleOptions & { stream: true }): DeploymentStreamHandle<T>;
  options(options: HandleOptions): DeploymentHandle<T>;
}

/**
 * A handle to a deployment whose class is `T` (or a function deployment
 * `T`): `handle.predict.remote(x)`, `handle.remote(x)` (the `call`
 * method), `handle.options({ methodName, stream, multiplexedModelId })`.
 */
export type DeploymentHandle<T = unknown> = DeploymentHandleBase<T> & HandleMethods<T>;

/** A streaming method through a handle: its calls return generators. */
export interface StreamMethod<F> {
  remote(...args: F extends AnyFn ? Args<Parameters<F>> : never[]): DeploymentResponseGenerator<F extends AnyFn ? Yielded<ReturnType<F>> : unknown>;
}

/** A handle made with `options({ stream: true })`. */
export type DeploymentStreamHandle<T = unknown> = {
  readonly deploymentName: string;
  readonly appName: string;
  remote(...args: Callee<T> extends AnyFn ? Args<Parameters<Callee<T>>> : never[]): DeploymentResponseGenerator<Callee<T> extends AnyFn ? Yielded<ReturnType<Callee<T>>> : unknown>;
  options(options: HandleOptions): DeploymentHandle<T> | DeploymentStreamHandle<T>;
} & { readonly [K in keyof T as K extends 'constructor' | 'then' ? never : T[K] extends AnyFn ? K : never]: StreamMethod<T[K]> };

/** Marks a request cancelled and cancels its call if it was sent. */
function cancelDispatch(d: Dispatch): void {
  d.cancelled = true;
  if (!d.ref) return;
  try {
    ray.cancel(d.ref);
  } catch {
    // already done
  }
}

/**
 * The response of a handle call: awaitable (`await resp`), with a timeout
 * (`resp.result({ timeoutMs })`), cancellable, and passable as an argument to
 * another handle call (resolved before that call is sent).
 */
export class DeploymentResponse<T = unknown> implements PromiseLike<T> {
  readonly #value: Promise<T>;
  readonly #dispatch: Dispatch;

  /** @internal */
  constructor(value: Promise<T>, dispatch: Dispatch) {
    this.#value = value;
    this.#dispatch = dispatch;
    // an unobserved failure must not crash the caller's process
    value.catch(() => undefined);
  }

  then<A = T, B = never>(onfulfilled?: ((value: T) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.#value.then(onfulfilled, onrejected);
  }

  /**
   * The value, waiting at most `timeoutMs`.
   * @throws RequestTimeoutError when it does not arrive in time (the request goes on)
   */
  result(options?: ResultOptions): Promise<T> {
    if (options !== undefined) checkKeys(options, ['timeoutMs'], 'result()');
    const ms = options?.timeoutMs;
    if (ms === undefined) return this.#value;
    if (typeof ms !== 'number' || !(ms >= 0)) throw new RangeError(`result() timeoutMs must be a number of milliseconds ≥ 0, got ${String(ms)}`);
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new RequestTimeoutError(`the response did not arrive within ${ms} ms (the request goes on; cancel() stops it)`)), ms);
    });
    return Promise.race([this.#value, timeout]).finally(() => clearTimeout(t));
  }

  /** Cancels the request: on its replica if it reached one, before it does otherwise. */
  cancel(): void {
    cancelDispatch(this.#dispatch);
  }
}

/** The response of a streaming handle call: `for await (const item of gen)`. */
export class DeploymentResponseGenerator<T = unknown> implements AsyncIterable<T> {
  readonly #it: Promise<AsyncIterator<unknown>>;
  readonly #dispatch: Dispatch;
  #used = false;

  /** @internal */
  constructor(it: Promise<AsyncIterator<unknown>>, dispatch: Dispatch) {
    this.#it = it;
    this.#dispatch = dispatch;
    it.catch(() => undefined);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#used) throw new TypeError('a DeploymentResponseGenerator can be iterated once');
    this.#used = true;
    const src = this.#it;
    return {
      next: async () => (await (await src).next()) as IteratorResult<T>,
      return: async () => {
        const it = await src.catch(() => undefined);
        await it?.return?.();
        return { done: true, value: undefined };
      },
    };
  }

  /** Cancels the stream. */
  cancel(): void {
    cancelDispatch(this.#dispatch);
  }
}

const HANDLE_KEYS = ['methodName', 'stream', 'multiplexedModelId'] as const;
const RESERVED = new Set(['then', 'constructor', 'toJSON', 'inspect', 'deploymentName', 'appName', 'remote', 'options']);

async function resolveArgs(args: unknown[]): Promise<unknown[]> {
  if (!args.some((a) => a instanceof DeploymentResponse)) return args;
  return Promise.all(args.map((a) => (a instanceof DeploymentResponse ? (a as DeploymentResponse<unknown>).result() : a)));
}

function checkHandleOptions(o: HandleOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('handle.options() takes an object');
  checkKeys(o, HANDLE_KEYS, 'handle.options()');
  if (o.methodName !== undefined && (typeof o.methodName !== 'string' || o.methodName === '')) throw new TypeError(`handle.options() methodName must be a method's name, got ${String(o.methodName)}`);
  if (o.stream !== undefined && typeof o.stream !== 'boolean') throw new TypeError(`handle.options() stream must be true or false, got ${String(o.stream)}`);
  if (o.multiplexedModelId !== undefined && typeof o.multiplexedModelId !== 'string') throw new TypeError(`handle.options() multiplexedModelId must be a string, got ${String(o.multiplexedModelId)}`);
}

/** @internal Calls `method` on app/deployment with `opts`; what the proxy and handles use. */
export function callDeployment(app: string, deployment: string, method: string, args: unknown[], opts: { stream?: boolean; multiplexedModelId?: string; requestId?: string; http?: boolean }): DeploymentResponse<unknown> | DeploymentResponseGenerator<unknown> {
  const router = routerFor(app, deployment);
  const d: Dispatch = {};
  const meta: CallMeta = { method, requestId: opts.requestId ?? randomId(), multiplexedModelId: opts.multiplexedModelId ?? currentModelId() ?? '', http: opts.http ?? false };
  if (opts.stream) return new DeploymentResponseGenerator(resolveArgs(args).then((a) => router.stream(meta, a, d)), d);
  return new DeploymentResponse(
    resolveArgs(args).then((a) => router.call(meta, a, d)),
    d,
  );
}

/** @internal Makes a handle to `deployment` of `app`. */
export function makeHandle<T>(app: string, deployment: string, opts: HandleOptions = {}): DeploymentHandle<T> {
  const method = opts.methodName ?? HTTP_METHOD;
  const base = {
    deploymentName: deployment,
    appName: app,
    remote: (...args: unknown[]) => callDeployment(app, deployment, method, args, opts),
    options: (o: HandleOptions) => {
      checkHandleOptions(o);
      return makeHandle<T>(app, deployment, { ...opts, ...o });
    },
    toString: () => `DeploymentHandle(${app}#${deployment})`,
  };
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (typeof prop === 'symbol' || prop in target) return Reflect.get(target, prop, receiver) as unknown;
      if (RESERVED.has(prop)) return undefined;
      return { remote: (...args: unknown[]) => callDeployment(app, deployment, prop, args, opts) };
    },
  }) as unknown as DeploymentHandle<T>;
}
