/**
 * `remote()`: turns a function into a remote function and a class into an
 * actor class.
 * @internal
 */
import { RemoteDefinitionError } from '../../errors';
import { shipmentOf, type Shipment } from '../shipping/code';
import type { CodeRef } from '../protocol/messages';
import { compileActorOptions, compileTaskOptions, type ActorConfig, type TaskConfig } from './options';
import { runtime } from './context';
import { reservedHandleMembers } from './actor-handle';
import { describeValue } from './options';
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

/** Whether `p` is the prototype of a built-in class (Object, Error, Map, EventTarget, ...). */
function isBuiltinPrototype(p: object): boolean {
  const ctor = (p as { constructor?: unknown }).constructor;
  return typeof ctor === 'function' && ctor.prototype === p && /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(ctor));
}

/** Methods of a class, up its prototype chain (those of a built-in base class, such as Error's toString, are not its own). */
export function methodNames(cls: new (...a: never[]) => object): string[] {
  const out = new Set<string>();
  for (let p = cls.prototype as object | null; p && p !== Object.prototype && !isBuiltinPrototype(p); p = Object.getPrototypeOf(p) as object | null) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k === 'constructor') continue;
      const d = Object.getOwnPropertyDescriptor(p, k);
      if (d && typeof d.value === 'function') out.add(k);
    }
  }
  return [...out];
}

function codeOf(s: Shipment): CodeRef {
  if (!s.ok) throw new RemoteDefinitionError(s.reason);
  return s.code;
}

/** Whether `f` is a generator function (sync or async), from any realm. */
export function isGeneratorFunction(f: unknown): boolean {
  const tag = Object.prototype.toString.call(f);
  return tag === '[object AsyncGeneratorFunction]' || tag === '[object GeneratorFunction]';
}

/** A remote function (the public RemoteFunction type). */
export class RemoteFunctionImpl {
  constructor(
    private readonly shipment: Shipment,
    private readonly opts: TaskOptions,
    private readonly cfg: TaskConfig,
    private readonly generator: boolean,
  ) {}

  remote(...args: unknown[]): unknown {
    const code = codeOf(this.shipment);
    const name = this.cfg.name ?? code.name;
    if (this.generator && this.cfg.numReturns !== 'streaming') {
      throw new TypeError(
        `${name} is a generator function: call it with ${name}.options({ numReturns: 'streaming' }).remote(...) ` +
          '(or define it with ray.remote({ numReturns: \'streaming\' }, fn)) to get an ObjectRefGenerator of its values',
      );
    }
    const rt = runtime(`${name}.remote()`);
    return rt.core.submitTask({
      code: { ...code, name },
      args,
      resources: this.cfg.resources,
      env: this.cfg.env,
      workingDir: this.cfg.workingDir ? rt.packages.resolve(this.cfg.workingDir) : rt.workingDir,
      npm: this.cfg.npm ?? rt.npm,
      sched: this.cfg.sched,
      schedKey: this.cfg.schedKey,
      maxRetries: this.cfg.maxRetries,
      retryExceptions: this.cfg.retryExceptions,
      numReturns: this.cfg.numReturns,
    });
  }

  options(o: TaskOptions): RemoteFunctionImpl {
    const { options, config } = compileTaskOptions(o, this.opts);
    return new RemoteFunctionImpl(this.shipment, options, config, this.generator);
  }
}

/** An actor class (the public ActorClass type). */
export class ActorClassImpl {
  constructor(
    private readonly shipment: Shipment,
    private readonly methods: string[],
    private readonly opts: ActorOptions,
    private readonly cfg: ActorConfig,
  ) {}

  remote(...args: unknown[]): unknown {
    const code = codeOf(this.shipment);
    const rt = runtime(`${code.name}.remote()`);
    return rt.core.createActor({
      code,
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
      workingDir: this.cfg.workingDir ? rt.packages.resolve(this.cfg.workingDir) : rt.workingDir,
      npm: this.cfg.npm ?? rt.npm,
      sched: this.cfg.sched,
    });
  }

  options(o: ActorOptions): ActorClassImpl {
    const { options, config } = compileActorOptions(o, this.opts);
    return new ActorClassImpl(this.shipment, this.methods, options, config);
  }
}

/** Implementation of the public `remote()` (see index.ts for its overloads); `args` are its arguments. */
export function makeRemote(args: readonly unknown[], caller: (...args: never[]) => unknown): unknown {
  if (args.length === 0 || args.length > 2) {
    throw new TypeError(`remote() takes a function or a class, or (options, function or class); got ${args.length} arguments`);
  }
  const withOptions = args.length === 2;
  const options = withOptions ? args[0] : undefined;
  const def = withOptions ? args[1] : args[0];
  if (typeof def !== 'function') {
    throw new TypeError(
      withOptions
        ? `remote(options, fn) takes a function or a class as its second argument, got ${describeValue(def)}`
        : `remote() takes a function or a class, got ${describeValue(def)}` +
            (typeof def === 'object' && def !== null && !Array.isArray(def) ? '; to give options, call remote(options, fn)' : ''),
    );
  }
  if (isClass(def)) {
    const methods = methodNames(def as new (...a: never[]) => object);
    const clash = methods.filter((m) => reservedHandleMembers.has(m));
    if (clash.length > 0) {
      throw new TypeError(
        `the actor class ${def.name || '(anonymous)'} has method(s) ${clash.map((m) => `'${m}'`).join(', ')}, which clash with members of its ActorHandle ` +
          `(${[...reservedHandleMembers].filter((m) => !m.startsWith('_') && m !== 'constructor').join(', ')}); rename them`,
      );
    }
    const { options: o, config } = compileActorOptions(options as ActorOptions | undefined);
    const shipment = shipmentOf(def, { caller, kind: 'class' });
    return new ActorClassImpl(shipment, methods, o, config);
  }
  const { options: o, config } = compileTaskOptions(options as TaskOptions | undefined);
  const shipment = shipmentOf(def, { explicitName: config.name, caller, kind: 'function' });
  return new RemoteFunctionImpl(shipment, o, config, isGeneratorFunction(def));
}
