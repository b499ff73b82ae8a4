/**
 * A replica: an actor that holds one instance of a deployment's class (or
 * its function) and runs requests on it, at most `maxOngoingRequests` at
 * once (beyond that it rejects, and the caller's router tries another).
 * @internal
 */
import * as ray from '@tsray/core';
import type { AnyClass, AnyFunction } from '@tsray/core';
import { loadedModels } from '../batch';
import { makeHandle } from '../handle';
import { Request } from '../request';
import { ASYNC_INIT, HTTP_METHOD, isHandleRef, type CallMeta, type ReplicaReply, type RequestWire } from './common';
import { type RequestContext, requestContext } from './context';

/** What the controller starts a replica with. */
export interface ReplicaStart {
  app: string;
  deployment: string;
  replicaId: string;
  code: ray.util.Shippable<AnyFunction | AnyClass>;
  kind: 'class' | 'function';
  initArgs: unknown[];
  /** undefined: none */
  userConfig: unknown;
  maxOngoingRequests: number;
}

type Instance = Record<string, unknown>;

/** See the module comment. */
export class Replica {
  private instance: Instance | undefined;
  private fn: AnyFunction | undefined;
  private ongoing = 0;
  private draining = false;
  private hold: (() => void) | undefined;
  /** streams HTTP handlers returned, by request id, until the proxy pulls them */
  private readonly streams = new Map<string, AsyncIterator<unknown>>();

  constructor(private readonly s: ReplicaStart) {}

  private get where(): string {
    return `deployment '${this.s.deployment}' (application '${this.s.app}')`;
  }

  /** Constructs the user's class (bound deployments become handles) and applies the userConfig; its pid and node. */
  async ready(): Promise<{ pid: number; nodeId: string }> {
    const args = this.s.initArgs.map((a) => (isHandleRef(a) ? makeHandle(a.app, a.deployment) : a));
    const loaded = await this.s.code.load();
    if (this.s.kind === 'class') {
      const C = loaded as unknown as new (...a: unknown[]) => Instance;
      this.instance = new C(...args);
      const init = (this.instance as { [ASYNC_INIT]?: () => Promise<void> })[ASYNC_INIT];
      if (typeof init === 'function') await init.call(this.instance);
      if (this.s.userConfig !== undefined) await this.reconfigure(this.s.userConfig);
    } else {
      if (args.length > 0) throw new TypeError(`${this.where} is a function: bind() it with no arguments`);
      this.fn = loaded as AnyFunction;
    }
    return { pid: process.pid, nodeId: ray.getRuntimeContext().nodeId };
  }

  /** Calls the instance's `reconfigure(userConfig)`. */
  async reconfigure(userConfig: unknown): Promise<boolean> {
    const r = this.instance?.reconfigure;
    if (typeof r !== 'function') {
      throw new TypeError(`${this.where} has a userConfig, but its class has no reconfigure(userConfig) method to take it`);
    }
    await (r as (c: unknown) => unknown).call(this.instance, userConfig);
    return true;
  }

  /** Runs the instance's `checkHealth()`, if it has one (throws: unhealthy). */
  async checkHealth(): Promise<boolean> {
    const c = this.instance?.checkHealth;
    if (typeof c === 'function') await (c as () => unknown).call(this.instance);
    return true;
  }

  /** Resolves when the replica drains (the controller's call that notices its death by rejecting). */
  watch(): Promise<boolean> {
    return new Promise((resolve) => {
      this.hold = () => resolve(true);
    });
  }

  /** Requests running, and models loaded (for the controller's metrics). */
  stats(): { ongoing: number; models: string[] } {
    return { ongoing: this.ongoing, models: [...loadedModels] };
  }

  /** Stops taking requests and waits up to `timeoutMs` for those running to finish; how many are left. */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    this.hold?.();
    const end = Date.now() + timeoutMs;
    while (this.ongoing > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    return this.ongoing;
  }

  private target(meta: CallMeta, args: unknown[]): () => unknown {
    let callArgs = args;
    if (meta.http) callArgs = [new Request(args[0] as RequestWire)];
    if (this.fn) {
      if (meta.method !== HTTP_METHOD) throw new TypeError(`${this.where} is a function deployment: call it with handle.remote(...), it has no method '${meta.method}'`);
      const f = this.fn as unknown as (...a: unknown[]) => unknown;
      return () => f(...callArgs);
    }
    const inst = this.instance as Instance;
    const m = inst[meta.method];
    if (typeof m !== 'function' || meta.method === 'constructor') {
      const proto = Object.getPrototypeOf(inst) as object;
      const names = [...new Set([...Object.getOwnPropertyNames(proto), ...Object.keys(inst)])].filter((k) => k !== 'constructor' && typeof inst[k] === 'function');
      throw new TypeError(`${this.where} has no method '${meta.method}'${meta.http ? ' to take HTTP requests (define call(req))' : ''}; its methods are: ${names.join(', ') || '(none)'}`);
    }
    return () => (m as (...a: unknown[]) => unknown).apply(inst, callArgs);
  }

  private logFailure(meta: CallMeta, e: unknown): void {
    const err = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
    console.error(`[serve] ${this.s.app}#${this.s.deployment} replica ${this.s.replicaId}: request ${meta.requestId} (${meta.method}) failed, error id ${meta.requestId}: ${err}`);
  }

  private context(meta: CallMeta): RequestContext {
    return { requestId: meta.requestId, multiplexedModelId: meta.multiplexedModelId, app: this.s.app, deployment: this.s.deployment, replicaId: this.s.replicaId };
  }

  /** Runs one request; rejects it (`k: 0`) when full or draining. */
  async handle(meta: CallMeta, args: unknown[]): Promise<ReplicaReply> {
    if (this.draining || this.ongoing >= this.s.maxOngoingRequests) return { k: 0, ongoing: this.ongoing };
    this.ongoing++;
    let held = false;
    try {
      const v = await requestContext.run(this.context(meta), () => this.target(meta, args)());
      if (meta.http && isAsyncIterator(v)) {
        this.streams.set(meta.requestId, v);
        held = true;
        // a stream nobody pulls within a minute is dropped
        setTimeout(() => this.dropStream(meta.requestId), 60_000).unref();
        return { k: 2 };
      }
      return { k: 1, v };
    } catch (e) {
      this.logFailure(meta, e);
      throw e;
    } finally {
      if (!held) this.ongoing--;
    }
  }

  private dropStream(requestId: string): void {
    const it = this.streams.get(requestId);
    if (!it) return;
    this.streams.delete(requestId);
    this.ongoing--;
    void it.return?.();
  }

  /** Yields the items of the stream an HTTP request's handler returned ({@link handle} answered `k: 2`). */
  async *pull(requestId: string, method: string): AsyncGenerator<unknown> {
    const it = this.streams.get(requestId);
    if (!it) throw new Error(`no stream for request ${requestId} on this replica (pulled already, or dropped after a minute)`);
    this.streams.delete(requestId);
    yield* this.items(it, { method, requestId, multiplexedModelId: '', http: true }, undefined);
  }

  /**
   * Yields what a stream of a request yields (each step in the request's
   * context, when given), logs its failure, and ends the request: the
   * `ongoing` count taken when it started goes back.
   */
  private async *items(it: AsyncIterator<unknown>, meta: CallMeta, ctx: RequestContext | undefined): AsyncGenerator<unknown> {
    try {
      for (;;) {
        const n = ctx ? await requestContext.run(ctx, () => it.next()) : await it.next();
        if (n.done) break;
        yield n.value;
      }
    } catch (e) {
      this.logFailure(meta, e);
      throw e;
    } finally {
      this.ongoing--;
      await it.return?.();
    }
  }

  /** Runs one streaming request: first `{ k }` (accepted or not), then what the method yields. */
  async *handleStream(meta: CallMeta, args: unknown[]): AsyncGenerator<unknown> {
    if (this.draining || this.ongoing >= this.s.maxOngoingRequests) {
      yield { k: 0, ongoing: this.ongoing };
      return;
    }
    this.ongoing++;
    let it: AsyncIterator<unknown> | undefined;
    const ctx = this.context(meta);
    try {
      yield { k: 1, v: null };
      const out = requestContext.run(ctx, () => this.target(meta, args)()) as Partial<AsyncIterator<unknown>> | undefined;
      if (typeof out?.next !== 'function') {
        throw new TypeError(`${this.where}'s '${meta.method}' was called with stream: true but is not a generator (write it as async *${meta.method}(...))`);
      }
      it = out as AsyncIterator<unknown>;
    } catch (e) {
      this.logFailure(meta, e);
      throw e;
    } finally {
      // ended before its items (a failure, or the caller went away): the request is over
      if (!it) this.ongoing--;
    }
    yield* this.items(it, meta, ctx);
  }
}

function isAsyncIterator(v: unknown): v is AsyncIterator<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterator<unknown>).next === 'function' && Symbol.asyncIterator in v;
}

/** The replica's actor class. */
export const ReplicaActor = ray.remote(Replica);
