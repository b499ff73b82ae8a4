/**
 * `remote()`: turns a function into a remote function and a class into an
 * actor class.
 * @internal
 */
import { RemoteDefinitionError } from '../../errors';
import { locate, type Located } from '../runtime/functions';
import { compileActorOptions, compileTaskOptions, type ActorConfig, type TaskConfig } from './options';
import { runtime } from './context';
import type { ActorOptions, TaskOptions } from './types';

/**
 * Whether `f` is a class (rather than a plain or arrow function): `class`
 * syntax, or a constructor function with methods on its prototype (classes
 * compiled to ES5).
 */
export function isClass(f: unknown): boolean {
  if (typeof f !== 'function') return false;
  if (/^class[\s{]/.test(Function.prototype.toString.call(f))) return true;
  const proto = (f as { prototype?: object }).prototype;
  return proto !== undefined && proto !== null && Object.getOwnPropertyNames(proto).some((k) => k !== 'constructor');
}

/** Methods of a class, up its prototype chain. */
export function methodNames(cls: new (...a: never[]) => object): string[] {
  const out = new Set<string>();
  for (let p = cls.prototype as object | null; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k === 'constructor') continue;
      const d = Object.getOwnPropertyDescriptor(p, k);
      if (d && typeof d.value === 'function') out.add(k);
    }
  }
  return [...out];
}

function assertLocated(l: Located): Extract<Located, { ok: true }> {
  if (!l.ok) throw new RemoteDefinitionError(l.reason);
  return l;
}

/** A remote function (the public RemoteFunction type). */
export class RemoteFunctionImpl {
  constructor(
    private readonly located: Located,
    private readonly opts: TaskOptions,
    private readonly cfg: TaskConfig,
  ) {}

  remote(...args: unknown[]): unknown {
    const l = assertLocated(this.located);
    const name = this.cfg.name ?? l.loc.name;
    const rt = runtime(`${name}.remote()`);
    return rt.core.submitTask({
      code: { module: l.loc.module, key: l.loc.key, name },
      args,
      resources: this.cfg.resources,
      env: this.cfg.env,
      schedKey: this.cfg.schedKey,
      maxRetries: this.cfg.maxRetries,
      retryExceptions: this.cfg.retryExceptions,
      numReturns: this.cfg.numReturns,
    });
  }

  options(o: TaskOptions): RemoteFunctionImpl {
    const { options, config } = compileTaskOptions(o, this.opts);
    return new RemoteFunctionImpl(this.located, options, config);
  }
}

/** An actor class (the public ActorClass type). */
export class ActorClassImpl {
  constructor(
    private readonly located: Located,
    private readonly methods: string[],
    private readonly opts: ActorOptions,
    private readonly cfg: ActorConfig,
  ) {}

  remote(...args: unknown[]): unknown {
    const l = assertLocated(this.located);
    const rt = runtime(`${l.loc.name}.remote()`);
    return rt.core.createActor({
      code: l.loc,
      args,
      methods: this.methods,
      name: this.cfg.name,
      namespace: this.cfg.namespace ?? rt.namespace,
      detached: this.cfg.detached,
      getIfExists: this.cfg.getIfExists,
      maxRestarts: this.cfg.maxRestarts,
      maxTaskRetries: this.cfg.maxTaskRetries,
      maxConcurrency: this.cfg.maxConcurrency,
      placement: this.cfg.placement,
      hold: this.cfg.hold,
      env: this.cfg.env,
    });
  }

  options(o: ActorOptions): ActorClassImpl {
    const { options, config } = compileActorOptions(o, this.opts);
    return new ActorClassImpl(this.located, this.methods, options, config);
  }
}

/** Implementation of the public `remote()` (see index.ts for its overloads). */
export function makeRemote(a: unknown, b: unknown, caller: (...args: never[]) => unknown): unknown {
  let options: unknown;
  let def: unknown;
  if (b === undefined) def = a;
  else {
    options = a;
    def = b;
  }
  if (typeof def !== 'function') {
    throw new TypeError(
      b === undefined
        ? `remote() takes a function or a class, got ${def === null ? 'null' : typeof def}`
        : `remote(options, fn) takes a function or a class as its second argument, got ${def === null ? 'null' : typeof def}`,
    );
  }
  if (isClass(def)) {
    const { options: o, config } = compileActorOptions(options as ActorOptions | undefined);
    const located = locate(def, undefined, caller);
    return new ActorClassImpl(located, methodNames(def as new (...a: never[]) => object), o, config);
  }
  const { options: o, config } = compileTaskOptions(options as TaskOptions | undefined);
  const located = locate(def, config.name, caller);
  return new RemoteFunctionImpl(located, o, config);
}
