/**
 * Serve's public verbs: `deployment()`, `bind()`, `run()`, `start()`,
 * `status()`, `delete()`, `shutdown()` and the handle getters.
 */
import { createHash } from 'node:crypto';
import * as ray from '@tsray/core';
import type { AnyClass, AnyFunction } from '@tsray/core';
import { DeployFailedError, ServeError } from './errors';
import { type DeploymentHandle, makeHandle } from './handle';
import { type AppSpec, CONTROLLER_NAME, type DeploymentSpec, type HandleRef, SERVE_NAMESPACE } from './internal/common';
import { ControllerActor, type ServeController, type ServeStatus } from './internal/controller';
import { checkKeys, type DeploymentOptions, type ResolvedOptions, resolveOptions } from './internal/options';
import type { HttpOptions } from './internal/proxy';
import { controller, resetRouting } from './internal/router';

type ControllerHandle = ray.ActorHandleOf<ServeController>;
type Target = AnyClass | AnyFunction;

/** An application: a deployment bound to its constructor arguments (which may hold other applications). */
export class Application<T = unknown> {
  /** @internal */
  constructor(
    readonly deployment: Deployment<T>,
    readonly args: unknown[],
  ) {}
}

/**
 * A deployment: a class (or function) and its options. `bind(...args)`
 * makes an application of it; `options({...})` a copy with other options.
 */
export class Deployment<T = unknown> {
  /** @internal */
  readonly code: ray.util.Shippable<AnyFunction | AnyClass>;
  /** @internal */
  readonly source: string;

  /** @internal */
  constructor(
    readonly target: Target,
    /** the options as given (for options()) */
    protected readonly given: DeploymentOptions,
    /** @internal */
    readonly resolved: ResolvedOptions,
    code?: ray.util.Shippable<AnyFunction | AnyClass>,
  ) {
    this.code = code ?? ray.util.shippable(target, { what: 'serve.deployment' });
    this.source = Function.prototype.toString.call(target);
  }

  /** The deployment's name. */
  get name(): string {
    return this.resolved.name;
  }

  /** Whether it is a class (or a function deployment). */
  get kind(): 'class' | 'function' {
    return /^class[\s{]/.test(this.source) ? 'class' : 'function';
  }

  /** Binds constructor arguments; other applications among them arrive in the replica as DeploymentHandles. */
  bind(...args: unknown[]): Application<T> {
    return new Application(this, args);
  }

  /** A copy with some options changed. */
  options(options: DeploymentOptions): Deployment<T> {
    const merged = { ...this.given, ...options };
    return new Deployment<T>(this.target, merged, resolveOptions(merged, this.resolved.name, 'Deployment.options()'), this.code);
  }
}

/**
 * Makes a deployment of a class (its `call(req)` takes HTTP requests; any
 * method is callable through a handle) or of a function (called with the
 * request, or with a handle's arguments).
 *
 * ```ts
 * export const Model = serve.deployment({ numReplicas: 2 }, class Model {
 *   async call(req: serve.Request) { return { y: (req.json() as { x: number }).x * 2 }; }
 * });
 * const handle = await serve.run(Model.bind());
 * ```
 * Made at a module's top level, the class is found again in replicas by
 * importing that module; made elsewhere it is shipped by value (a captured
 * variable is then an error here).
 * @throws TypeError / RangeError naming the option, for a bad option
 */
export function deployment<T extends Target>(options: DeploymentOptions, target: T): Deployment<T extends AnyClass ? InstanceType<T> : T>;
export function deployment<T extends Target>(target: T): Deployment<T extends AnyClass ? InstanceType<T> : T>;
export function deployment(a: unknown, b?: unknown): unknown {
  const [options, target] = typeof a === 'function' ? [{}, a] : [a, b];
  if (typeof target !== 'function') throw new TypeError('serve.deployment() takes (options, classOrFunction): the second argument must be a class or a function');
  const resolved = resolveOptions(options, (target as { name?: string }).name ?? '');
  return new Deployment(target as Target, (options ?? {}) as DeploymentOptions, resolved);
}

/**
 * The handle type of a deployment or application:
 * `let h: serve.HandleOf<typeof Model>` (for `serve.getAppHandle<…>()`, class fields).
 */
export type HandleOf<D> = D extends Deployment<infer T> ? DeploymentHandle<T> : D extends Application<infer T> ? DeploymentHandle<T> : never;

/**
 * A copy of an application with some of its deployments' options changed
 * (by deployment name), as a config file's `deployments:` list does.
 * @throws TypeError for a name that is not a deployment of the application
 */
export function withOverrides<T>(app: Application<T>, overrides: Record<string, DeploymentOptions>): Application<T> {
  const used = new Set<string>();
  const names = new Set<string>();
  const copy = (a: Application): Application => {
    names.add(a.deployment.name);
    const o = overrides[a.deployment.name];
    if (o) used.add(a.deployment.name);
    const d = o ? a.deployment.options(o) : a.deployment;
    return new Application(d, a.args.map((x) => (x instanceof Application ? copy(x) : x)));
  };
  const out = copy(app as Application) as Application<T>;
  for (const k of Object.keys(overrides)) {
    if (!used.has(k)) throw new TypeError(`the config names a deployment '${k}' that the application does not have; its deployments are: ${[...names].join(', ')}`);
  }
  return out;
}

/** Options of {@link start}. */
export interface StartOptions {
  /** where the HTTP proxies listen @default { host: '127.0.0.1', port: 8000 } */
  http?: { host?: string; port?: number };
  /** @default 'EveryNode' (one proxy per host) */
  proxyLocation?: 'HeadOnly' | 'EveryNode' | 'Disabled';
}

/** Options of {@link run}. */
export interface RunOptions {
  /** @default 'default' */
  name?: string;
  /** where HTTP requests reach the ingress; null: no route @default '/' */
  routePrefix?: string | null;
  /** true: resolve only when the process is told to stop (Ctrl-C) @default false */
  blocking?: boolean;
}

let started: Promise<ControllerHandle> | undefined;

/**
 * Starts Serve on the cluster (`ray.init()` first): the controller and the
 * HTTP proxies. `run()` calls it; a second call (or one in another driver
 * of the cluster) finds the running controller and changes nothing.
 * @throws Error when a proxy cannot listen (the port in use: the message names it)
 */
export async function start(options: StartOptions = {}): Promise<void> {
  if (typeof options !== 'object' || options === null) throw new TypeError('serve.start() takes an options object');
  checkKeys(options, ['http', 'proxyLocation'], 'serve.start()');
  if (options.http !== undefined) checkKeys(options.http, ['host', 'port'], 'serve.start() http');
  const port = options.http?.port ?? 8000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`serve.start() http.port must be a port number (0-65535), got ${String(port)}`);
  const location = options.proxyLocation ?? 'EveryNode';
  if (!['HeadOnly', 'EveryNode', 'Disabled'].includes(location)) throw new TypeError(`serve.start() proxyLocation must be 'HeadOnly', 'EveryNode' or 'Disabled', got ${String(location)}`);
  const http: HttpOptions = { host: options.http?.host ?? '127.0.0.1', port, location };
  await startWith(http);
}

async function startWith(http: HttpOptions): Promise<ControllerHandle> {
  if (!ray.isInitialized()) await ray.init();
  started ??= (async () => {
    // on the head node, which lives as long as the cluster (a node that dies takes its actors with it)
    const head = (await ray.nodes()).find((n) => n.isHead && n.alive);
    const c = ControllerActor.options({
      name: CONTROLLER_NAME,
      namespace: SERVE_NAMESPACE,
      lifetime: 'detached',
      getIfExists: true,
      numCpus: 0,
      maxConcurrency: 100_000,
      ...(head ? { scheduling: { nodeId: head.nodeId, soft: true } } : {}),
    }).remote(http) as unknown as ControllerHandle;
    try {
      await ray.get(c.ensureProxies.remote());
    } catch (e) {
      const cause = e instanceof ray.TaskError ? e.cause : e;
      // a controller whose proxies cannot listen is of no use: stop it, so that a retry starts afresh
      try {
        await ray.get(c.shutdown.remote(), { timeoutMs: 10_000 });
      } catch {
        // gone
      }
      ray.kill(c as unknown as ray.ActorHandle<unknown>);
      throw cause instanceof Error ? new ServeError(cause.message, { cause }) : e;
    }
    return c;
  })();
  started.catch(() => {
    started = undefined;
  });
  return started;
}

function hashOf(d: Deployment, args: unknown[]): string {
  const h = createHash('sha256');
  h.update(d.source);
  h.update(JSON.stringify(args, (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : typeof v === 'bigint' ? v.toString() : v)) ?? '');
  h.update(JSON.stringify(d.resolved.rayActorOptions));
  return h.digest('hex').slice(0, 16);
}

/** The application's deployments, bound ones replaced by handle references. */
function buildApp(app: Application, name: string, routePrefix: string | null): AppSpec {
  const specs = new Map<string, DeploymentSpec>();
  const seen = new Map<Application, string>();
  const visit = (a: Application): string => {
    const known = seen.get(a);
    if (known) return known;
    const d = a.deployment;
    const args = a.args.map((x) => (x instanceof Application ? ({ __tsrayServeHandle: true, app: name, deployment: visit(x) } satisfies HandleRef) : x));
    if (specs.has(d.name)) throw new TypeError(`application '${name}' has two deployments named '${d.name}': give one another name with .options({ name })`);
    specs.set(d.name, { name: d.name, code: d.code, kind: d.kind, initArgs: args, options: d.resolved, codeVersion: hashOf(d, args) });
    seen.set(a, d.name);
    return d.name;
  };
  const ingress = visit(app);
  return { name, routePrefix, ingress, deployments: [...specs.values()] };
}

async function statusOf(c: ControllerHandle): Promise<ServeStatus> {
  return (await ray.get(c.status.remote())) as ServeStatus;
}

/**
 * Deploys an application (or redeploys it: changed code replaces its
 * replicas a few at a time while the old ones serve; a changed
 * `userConfig` is applied in place) and resolves to a handle to its
 * ingress deployment once every deployment runs.
 * @throws DeployFailedError when a deployment cannot start (its constructor throws: the message and cause say why)
 */
export async function run<T>(app: Application<T>, options: RunOptions = {}): Promise<DeploymentHandle<T>> {
  if (!(app instanceof Application)) throw new TypeError('serve.run() takes an application: Deployment.bind(...args)');
  checkKeys(options, ['name', 'routePrefix', 'blocking'], 'serve.run()');
  const name = options.name ?? 'default';
  if (typeof name !== 'string' || name === '') throw new TypeError(`serve.run() name must be a non-empty string, got ${String(name)}`);
  let routePrefix = options.routePrefix === undefined ? '/' : options.routePrefix;
  if (routePrefix !== null) {
    if (typeof routePrefix !== 'string' || !routePrefix.startsWith('/')) throw new TypeError(`serve.run() routePrefix must be a path starting with '/' (or null for no HTTP route), got ${String(routePrefix)}`);
    if (routePrefix.length > 1) routePrefix = routePrefix.replace(/\/+$/, '');
  }
  const spec = buildApp(app as Application, name, routePrefix);
  const c = await startWith({ host: '127.0.0.1', port: 8000, location: 'EveryNode' });
  try {
    await ray.get(c.deployApp.remote(spec));
  } catch (e) {
    const cause = e instanceof ray.TaskError ? e.cause : e;
    throw new DeployFailedError(`application '${name}' cannot be deployed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const t0 = Date.now();
  let warned = false;
  for (;;) {
    const s = (await statusOf(c)).applications[name];
    if (s?.status === 'RUNNING') break;
    if (s?.status === 'DEPLOY_FAILED') throw new DeployFailedError(`application '${name}' failed to deploy: ${s.message}`);
    if (!warned && Date.now() - t0 > 60_000) {
      warned = true;
      const waiting = Object.entries(s?.deployments ?? {}).filter(([, d]) => d.status !== 'HEALTHY').map(([n, d]) => `${n}: ${JSON.stringify(d.replicaStates)} of ${d.targetReplicas}${d.message ? ` (${d.message})` : ''}`);
      console.warn(`[serve] application '${name}' is still deploying after 60 s: ${waiting.join('; ')}; check that the cluster has the resources its replicas ask for (rayActorOptions; each replica takes 1 CPU unless told otherwise)`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const handle = makeHandle<T>(name, spec.ingress);
  if (options.blocking) {
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  }
  return handle;
}

/** Serve's state: every application with its deployments' replicas, and the proxies. */
export async function status(): Promise<ServeStatus> {
  return statusOf(await controller());
}

/** Deletes an application; resolves when its replicas have drained and stopped. */
export async function deleteApp(name: string): Promise<void> {
  if (typeof name !== 'string') throw new TypeError('serve.delete() takes the application name');
  await ray.get((await controller()).deleteApp.remote(name));
}

/** Stops every application, the proxies and the controller. */
export async function shutdown(): Promise<void> {
  let c: ControllerHandle | undefined;
  try {
    c = await controller();
  } catch {
    c = undefined;
  }
  if (c) {
    try {
      await ray.get(c.shutdown.remote());
    } finally {
      ray.kill(c as unknown as ray.ActorHandle<unknown>);
    }
  }
  started = undefined;
  resetRouting();
}

/** A handle to an application's ingress deployment. */
export async function getAppHandle<T = unknown>(name: string): Promise<DeploymentHandle<T>> {
  const s = (await status()).applications[name];
  if (!s) throw new ServeError(`there is no application '${name}': see serve.status() for the running ones`);
  return makeHandle<T>(name, s.ingress);
}

/** A handle to a deployment of an application (default: the one named 'default'). */
export async function getDeploymentHandle<T = unknown>(deploymentName: string, appName = 'default'): Promise<DeploymentHandle<T>> {
  const s = (await status()).applications[appName];
  if (!s) throw new ServeError(`there is no application '${appName}': see serve.status() for the running ones`);
  if (!s.deployments[deploymentName]) throw new ServeError(`application '${appName}' has no deployment '${deploymentName}'; its deployments are: ${Object.keys(s.deployments).join(', ')}`);
  return makeHandle<T>(appName, deploymentName);
}
