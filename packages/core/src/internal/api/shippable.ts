/**
 * `ray.util.shippable()`: a user function or class as a value that task
 * arguments, actor constructor arguments and return values can carry, and
 * that any process of the cluster can load and call.
 * @internal
 */
import { RemoteDefinitionError } from '../../errors';
import type { CodeRef } from '../protocol/messages';
import { portableModule } from '../runtime-env/modules';
import { SHIPPABLE_BRAND, isShippable as isShippableValue, type ShippableWire } from '../serialization/brands';
import { setShippableFactory } from '../serialization/value-codec';
import { shipmentOf } from '../shipping/code';
import { DefinitionError } from '../runtime/definitions';
import { currentRuntime } from './context';
import { describeValue } from './options';
import { isClass } from './remote';
import type { AnyClass, AnyFunction } from './types';

/**
 * A function or class that travels to other processes (see
 * {@link shippable}). A task that receives one as an argument loads it
 * (the first time in a process: imports its module, or compiles its
 * source) and calls it.
 *
 * ```ts
 * // a library's task, defined at the top level of the library's module
 * const mapBlock = ray.remote(async (fn: ray.util.Shippable<(row: Row) => Row>, rows: Row[]) => {
 *   const f = await fn.load();
 *   return rows.map((r) => f(r));
 * });
 * ```
 */
export interface Shippable<T extends AnyFunction | AnyClass = AnyFunction> {
  /** the function's or class's name, for logs and errors */
  readonly name: string;
  /** what the library called it when it was made (`'ds.map'`), if anything */
  readonly what: string | undefined;
  /** true when it travels as source text; false when workers import its module to find it */
  readonly byValue: boolean;
  /**
   * The function or class in this process: the original in the process that
   * made it; elsewhere loaded once (its module imported, or its source
   * compiled) and cached.
   * @throws RemoteDefinitionError (the promise rejects) when it cannot be loaded here.
   */
  load(): Promise<T>;
  /**
   * Loads the function and calls it with `args`; resolves to what it returns
   * (awaited).
   * @throws TypeError (the promise rejects) when it is a class: `new (await s.load())(...)` instead.
   */
  call(...args: T extends AnyFunction ? Parameters<T> : never): Promise<T extends AnyFunction ? Awaited<ReturnType<T>> : never>;
}

/** Options of {@link shippable}. */
export interface ShippableOptions {
  /**
   * What takes the function, named in error messages: with `'ds.map'`, a
   * function that captures a local variable fails with "ds.map's function
   * captures `x` ...".
   */
  what?: string;
  /** A name for logs and errors (default: the function's own name). */
  name?: string;
}

class ShippableImpl<T extends AnyFunction | AnyClass> implements Shippable<T> {
  readonly [SHIPPABLE_BRAND] = true as const;
  #loaded: Promise<T> | undefined;

  constructor(
    private readonly code: CodeRef,
    private readonly kind: 'function' | 'class',
    readonly what: string | undefined,
    local: T | undefined,
  ) {
    if (local !== undefined) this.#loaded = Promise.resolve(local);
  }

  get name(): string {
    return this.code.name;
  }

  get byValue(): boolean {
    return this.code.src !== undefined;
  }

  load(): Promise<T> {
    this.#loaded ??= this.find();
    return this.#loaded;
  }

  private async find(): Promise<T> {
    const rt = currentRuntime();
    const subject = this.what !== undefined ? `${this.what}'s ${this.kind} ${this.code.name}` : `the ${this.kind} ${this.code.name}`;
    if (!rt) {
      throw new RemoteDefinitionError(`${subject} arrived in a process where tsray is not initialized; call ray.init() before loading it`);
    }
    try {
      return (await rt.core.loadDefinition(this.code)) as T;
    } catch (e) {
      this.#loaded = undefined;
      if (e instanceof DefinitionError) throw new RemoteDefinitionError(`${subject} could not be loaded: ${e.message}`);
      throw e;
    }
  }

  call(...args: T extends AnyFunction ? Parameters<T> : never): Promise<T extends AnyFunction ? Awaited<ReturnType<T>> : never> {
    type R = T extends AnyFunction ? Awaited<ReturnType<T>> : never;
    if (this.kind === 'class') {
      return Promise.reject(new TypeError(`${this.code.name} is a class: construct it with new (await s.load())(...args)`));
    }
    return this.load().then((f) => (f as unknown as (...a: unknown[]) => R)(...(args as unknown[])));
  }

  /** @internal the wire form; a file inside the job's working directory travels relative to it (as task specs do) */
  __wire(): ShippableWire {
    const roots = currentRuntime()?.workingDir?.roots;
    const code = roots ? { ...this.code, module: portableModule(this.code.module, roots) } : this.code;
    return { code, kind: this.kind, what: this.what };
  }

  toString(): string {
    return `Shippable(${this.code.name}${this.byValue ? ', by value' : ''})`;
  }
}

setShippableFactory((w) => new ShippableImpl(w.code, w.kind, w.what, undefined));

const OPTION_KEYS = new Set(['what', 'name']);

/**
 * Makes a user's function or class shippable: a value that travels in task
 * and actor arguments (and return values) and that the receiving process
 * loads and calls. This is how libraries take user code inline
 * (`ds.map((row) => ...)`, a Tune trainable, a training loop, an env
 * creator).
 *
 * A definition is **located** when it can be found again by importing its
 * module: made at the top level of a module (for a library call such as
 * `registerEnv('Corridor-v0', (c) => new Corridor(c))` at a module's top
 * level, the first caller outside tsray's own packages counts), or
 * exported by the calling module (`export function preprocess(row)`, then
 * `ds.map(preprocess)` inside `main`). Such code may use its module's other
 * top-level names. Anything else is shipped **by value**: its source text,
 * compiled once per worker process, with `require()` and `import()`
 * resolving from the file it was written in. It may use globals and what it
 * defines or requires itself; a captured variable or a module-level import
 * fails here, at once, naming the identifier.
 *
 * ```ts
 * export function map<R, S>(fn: (row: R) => S): Dataset<S> {
 *   const f = ray.util.shippable(fn, { what: 'ds.map' });   // checked now
 *   return this.addStage((block) => mapBlock.remote(f, block));
 * }
 * ```
 * @throws RemoteDefinitionError when `fn` must be shipped by value and captures
 * variables from outside it (or its source is not available: a native or bound function).
 * @throws TypeError for something that is not a function or class, or bad options.
 */
export function shippable<T extends AnyFunction | AnyClass>(fn: T, options?: ShippableOptions): Shippable<T> {
  const o = compileShippableOptions(options);
  if (isShippableValue(fn)) return fn as unknown as Shippable<T>;
  if (typeof fn !== 'function') {
    throw new TypeError(`${o.what ?? 'shippable()'} takes a function or a class, got ${describeValue(fn)}`);
  }
  const kind = isClass(fn) ? 'class' : 'function';
  const s = shipmentOf(fn, { explicitName: o.name, what: o.what, caller: shippable as (...args: never[]) => unknown, kind });
  if (!s.ok) throw new RemoteDefinitionError(s.reason);
  return new ShippableImpl(s.code, kind, o.what, fn);
}

/** Whether `v` is a {@link Shippable} (from any copy of tsray). */
export function isShippable(v: unknown): v is Shippable<AnyFunction | AnyClass> {
  return isShippableValue(v);
}

function compileShippableOptions(options: ShippableOptions | undefined): ShippableOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`shippable() options must be an object, got ${describeValue(options)}`);
  }
  for (const k of Object.keys(options)) {
    if (!OPTION_KEYS.has(k)) throw new TypeError(`unknown shippable() option '${k}'; the options are: what, name`);
  }
  for (const k of ['what', 'name'] as const) {
    const v = options[k];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) {
      throw new TypeError(`shippable() options.${k} must be a non-empty string, got ${describeValue(v)}`);
    }
  }
  return options;
}
