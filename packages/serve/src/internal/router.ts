/**
 * The router in every caller (driver, replica, HTTP proxy): one per
 * deployment per process. It long-polls the controller for the
 * deployment's replicas, picks one by the power of two choices over the
 * requests it has in flight to each, keeps at most `maxOngoingRequests` in
 * flight to any replica (more wait here, up to `maxQueuedRequests`), retries
 * a replica's rejection (full, or draining) with backoff, and retries once
 * on another replica when the one running a request dies.
 * @internal
 */
import * as ray from '@tsray/core';
import { BackPressureError, DeploymentUnavailableError } from '../errors';
import { CONTROLLER_NAME, SERVE_NAMESPACE, StreamTicket, type CallMeta, type ReplicaInfo, type ReplicaReply, type ReplicaSet } from './common';
import type { ServeController } from './controller';
import type { Replica } from './replica';

type ControllerHandle = ray.ActorHandleOf<ServeController>;
type ReplicaHandle = ray.ActorHandleOf<Replica>;

/** How long one long-poll of the controller waits for a change. */
const LONG_POLL_MS = 10_000;

let controllerHandle: Promise<ControllerHandle> | undefined;

/** The controller of this cluster (found by name, once per process). */
export function controller(): Promise<ControllerHandle> {
  controllerHandle ??= ray.getActor<ServeController>(CONTROLLER_NAME, { namespace: SERVE_NAMESPACE }).then(
    (h) => h as unknown as ControllerHandle,
    (e: unknown) => {
      controllerHandle = undefined;
      if (e instanceof ray.ActorNotFoundError) throw new DeploymentUnavailableError('Serve is not running on this cluster: call serve.run(app) (or serve.start()) first', { cause: e });
      throw e;
    },
  );
  return controllerHandle;
}

/** Forgets the controller and every router (after serve.shutdown()). */
export function resetRouting(): void {
  controllerHandle = undefined;
  for (const r of routers.values()) r.close();
  routers.clear();
}

const routers = new Map<string, Router>();

/** The router of `app`'s `deployment` in this process. */
export function routerFor(app: string, deployment: string): Router {
  const key = `${app}#${deployment}`;
  let r = routers.get(key);
  if (!r || r.closed) {
    r = new Router(app, deployment);
    routers.set(key, r);
  }
  return r;
}

function isDeath(e: unknown): boolean {
  return e instanceof ray.ActorDiedError || e instanceof ray.WorkerCrashedError || e instanceof ray.NodeDiedError;
}

/** Where a dispatched request went, so that it can be cancelled. */
export interface Dispatch {
  ref?: ray.ObjectRef<unknown> | ray.ObjectRefGenerator<unknown>;
  cancelled?: boolean;
}

/** See the module comment. */
export class Router {
  private set: ReplicaSet | undefined;
  private readonly inFlight = new Map<string, number>();
  private readonly waiters = new Set<() => void>();
  private queued = 0;
  closed = false;
  private polling = false;

  constructor(
    readonly app: string,
    readonly deployment: string,
  ) {}

  close(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves at the next change (a new replica set, a finished request) or after `ms`. */
  private change(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    void (async () => {
      let failures = 0;
      while (!this.closed) {
        try {
          const c = await controller();
          const s = (await ray.get(c.listenReplicas.remote(this.app, this.deployment, this.set?.version ?? -1, LONG_POLL_MS))) as ReplicaSet;
          failures = 0;
          if (!this.set || s.version !== this.set.version) {
            this.set = s;
            this.wake();
          }
        } catch (e) {
          if (e instanceof ray.NotInitializedError || !ray.isInitialized()) {
            this.close();
            break;
          }
          // the controller restarting or gone: try again soon; requests wait meanwhile
          controllerHandle = undefined;
          failures++;
          if (failures >= 3 && this.set) this.set = { ...this.set, exists: false, replicas: [] };
          this.wake();
          await new Promise((r) => setTimeout(r, Math.min(1000, 100 * failures)));
        }
      }
      this.polling = false;
    })();
  }

  /** A replica with room now, by the power of two choices (undefined: all full, or none yet). */
  private tryPick(multiplexedModelId: string): ReplicaInfo | undefined {
    if (this.closed) throw new DeploymentUnavailableError(`the router of deployment '${this.deployment}' (application '${this.app}') was closed: Serve shut down`);
    const s = this.set;
    if (!s) return undefined;
    if (!s.exists) throw new DeploymentUnavailableError(`there is no deployment '${this.deployment}' in application '${this.app}' (deleted, or never deployed): see serve.status()`);
    const max = s.maxOngoingRequests;
    let free = s.replicas.filter((r) => (this.inFlight.get(r.replicaId) ?? 0) < max);
    if (multiplexedModelId !== '') {
      const having = free.filter((r) => r.models.includes(multiplexedModelId));
      if (having.length > 0) free = having;
    }
    if (free.length === 0) return undefined;
    if (free.length === 1) return free[0] as ReplicaInfo;
    const i = Math.floor(Math.random() * free.length);
    let j = Math.floor(Math.random() * (free.length - 1));
    if (j >= i) j++;
    const a = free[i] as ReplicaInfo;
    const b = free[j] as ReplicaInfo;
    return (this.inFlight.get(a.replicaId) ?? 0) <= (this.inFlight.get(b.replicaId) ?? 0) ? a : b;
  }

  /** A replica with room; waits for one (waking a deployment scaled to zero). */
  private async pick(multiplexedModelId: string): Promise<ReplicaInfo> {
    this.startPolling();
    let woke = false;
    for (;;) {
      const r = this.tryPick(multiplexedModelId);
      if (r) return r;
      const s = this.set;
      if (s && s.replicas.length === 0 && s.scaledToZero && !woke) {
        woke = true;
        void controller()
          .then((c) => c.wakeUp.remote(this.app, this.deployment))
          .catch(() => undefined);
      }
      await this.change(1000);
    }
  }

  /** Waits for the first replica set from the controller. */
  private async known(): Promise<void> {
    this.startPolling();
    while (!this.set && !this.closed) await this.change(1000);
  }

  private checkQueue(): void {
    const max = this.set?.maxQueuedRequests ?? -1;
    if (max >= 0 && this.queued >= max) {
      throw new BackPressureError(
        `deployment '${this.deployment}' (application '${this.app}') is at capacity: every replica runs maxOngoingRequests and ${this.queued} requests wait here (maxQueuedRequests ${max}); retry later, or add replicas`,
      );
    }
  }

  private forget(replicaId: string): void {
    if (!this.set) return;
    this.set = { ...this.set, replicas: this.set.replicas.filter((r) => r.replicaId !== replicaId) };
    void controller()
      .then((c) => c.reportDead.remote(this.app, this.deployment, replicaId))
      .catch(() => undefined);
  }

  /**
   * Runs a request on some replica and resolves to its value (`send`
   * dispatches it to the chosen replica and resolves to the reply, or for a
   * stream to the accepted generator).
   */
  private async run<R>(meta: CallMeta, d: Dispatch, send: (h: ReplicaHandle) => Promise<{ reply: ReplicaReply; out?: R }>): Promise<R | unknown> {
    if (!this.set) await this.known();
    let deathRetries = 1;
    let rejections = 0;
    // a request that finds no replica with room waits here, up to maxQueuedRequests of them
    let r = this.tryPick(meta.multiplexedModelId);
    if (!r) this.checkQueue();
    for (;;) {
      if (!r) {
        this.queued++;
        try {
          r = await this.pick(meta.multiplexedModelId);
        } finally {
          this.queued--;
        }
      }
      if (d.cancelled) throw new ray.TaskCancelledError(`the request ${meta.requestId} was cancelled before it reached a replica`);
      const replica = r;
      r = undefined;
      this.inFlight.set(replica.replicaId, (this.inFlight.get(replica.replicaId) ?? 0) + 1);
      let res: { reply: ReplicaReply; out?: R };
      try {
        res = await send(replica.actor as unknown as ReplicaHandle);
      } catch (e) {
        if (!isDeath(e)) throw e;
        this.forget(replica.replicaId);
        if (deathRetries-- > 0) continue;
        throw new DeploymentUnavailableError(`the replica of deployment '${this.deployment}' (application '${this.app}') running request ${meta.requestId} died, and so did the one it was retried on`, { cause: e });
      } finally {
        const n = (this.inFlight.get(replica.replicaId) ?? 1) - 1;
        if (n <= 0) this.inFlight.delete(replica.replicaId);
        else this.inFlight.set(replica.replicaId, n);
        this.wake();
      }
      if (res.reply.k === 1) return res.out !== undefined ? res.out : res.reply.v;
      if (res.reply.k === 2) return new StreamTicket(replica.actor, meta.requestId);
      // rejected (full because of other callers, or draining): back off and pick again
      rejections++;
      await this.change(Math.min(100, 2 ** Math.min(rejections, 7)));
    }
  }

  /** Runs `meta.method(...args)` on a replica; resolves to what it returns. */
  call(meta: CallMeta, args: unknown[], d: Dispatch): Promise<unknown> {
    return this.run(meta, d, async (h) => {
      const ref = h.handle.remote(meta, args);
      d.ref = ref;
      return { reply: (await ray.get(ref)) as ReplicaReply };
    });
  }

  /** Runs a streaming method on a replica; resolves to the generator of its items once a replica took it. */
  stream(meta: CallMeta, args: unknown[], d: Dispatch): Promise<AsyncIterator<unknown>> {
    return this.run(meta, d, async (h) => {
      const gen = h.handleStream.options({ numReturns: 'streaming' }).remote(meta, args);
      d.ref = gen;
      const it = gen[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) throw new DeploymentUnavailableError(`the replica ended the stream of request ${meta.requestId} before accepting it`);
      const reply = (await ray.get(first.value as ray.ObjectRef<ReplicaReply>)) as ReplicaReply;
      const items: AsyncIterator<unknown> = {
        next: async () => {
          const n = await it.next();
          if (n.done) return { done: true, value: undefined };
          return { done: false, value: await ray.get(n.value as ray.ObjectRef<unknown>) };
        },
        return: async () => {
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
      return { reply, out: items };
    }) as Promise<AsyncIterator<unknown>>;
  }
}
