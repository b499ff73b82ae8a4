/**
 * The controller: a detached, named actor that owns Serve's state on a
 * cluster. It reconciles every application's deployments to their target
 * (starts and stops replicas, rolls code changes a few replicas at a time
 * while the old ones serve, applies userConfig changes in place), watches
 * replicas (a death is noticed at once through a call that never returns;
 * `checkHealth()` runs every `healthCheckPeriodS`), autoscales, and tells
 * routers and proxies what changed (long polls).
 * @internal
 */
import * as ray from '@tsray/core';
import { type AppSpec, type DeploymentSpec, type ReplicaSet, type RouteTable, SERVE_NAMESPACE, randomId } from './common';
import { ProxyActor, type HttpProxy, type HttpOptions } from './proxy';
import { ReplicaActor, type Replica } from './replica';

type ReplicaHandle = ray.ActorHandleOf<Replica>;
type ProxyHandle = ray.ActorHandleOf<HttpProxy>;

/** How often the controller reconciles. */
const TICK_MS = 100;
/** How often replicas of a deployment that is not autoscaled report their loaded models. */
const MODELS_INTERVAL_MS = 500;
/** How often the controller looks for hosts that have no proxy yet. */
const PROXY_CHECK_MS = 5000;
/** Failed starts of one version before the deployment is DEPLOY_FAILED. */
const MAX_START_FAILURES = 3;

interface ReplicaState {
  id: string;
  actor: ReplicaHandle;
  codeVersion: string;
  /** JSON of the userConfig it runs with */
  userConfig: string;
  state: 'STARTING' | 'RUNNING' | 'STOPPING';
  reconfiguring: boolean;
  healthInFlight: boolean;
  lastHealth: number;
  pid?: number;
  nodeId?: string;
  models: string[];
}

interface AutoscaleState {
  samples: Array<{ t: number; ongoing: number }>;
  lastSample: number;
  sampling: boolean;
  /** since when the desired count has been above (below) the target */
  above: number | null;
  below: number | null;
}

interface DeploymentState {
  spec: DeploymentSpec;
  target: number;
  replicas: ReplicaState[];
  /** version of the replica set routers see */
  version: number;
  failures: number;
  message: string;
  failed: boolean;
  lastFailure: number;
  autoscale: AutoscaleState;
  deleting: boolean;
}

interface AppState {
  spec: AppSpec;
  deployments: Map<string, DeploymentState>;
  deleting: boolean;
}

/** `serve.status()`: one application. */
export interface ApplicationStatus {
  status: 'DEPLOYING' | 'RUNNING' | 'DEPLOY_FAILED' | 'DELETING';
  message: string;
  routePrefix: string | null;
  ingress: string;
  deployments: Record<string, DeploymentStatus>;
}

/** `serve.status()`: one deployment. */
export interface DeploymentStatus {
  status: 'UPDATING' | 'HEALTHY' | 'UNHEALTHY' | 'DEPLOY_FAILED';
  message: string;
  targetReplicas: number;
  replicaStates: Record<string, number>;
  /** the replicas: their processes and (multiplexing) loaded models */
  replicas: Array<{ replicaId: string; state: string; pid?: number; nodeId?: string; models: string[] }>;
}

/** `serve.status()`. */
export interface ServeStatus {
  applications: Record<string, ApplicationStatus>;
  proxies: Record<string, 'HEALTHY' | 'STARTING' | 'UNHEALTHY'>;
  http: HttpOptions;
}

const json = (v: unknown): string => JSON.stringify(v === undefined ? null : v);

/** See the module comment. */
export class ServeController {
  private readonly apps = new Map<string, AppState>();
  private routesVersion = 0;
  private readonly waiters = new Set<() => void>();
  private readonly proxies = new Map<string, { actor: ProxyHandle; state: 'HEALTHY' | 'STARTING' | 'UNHEALTHY'; error?: string }>();
  private ticking = false;
  private stopped = false;
  /** when the nodes were last checked for hosts without a proxy */
  private proxiesChecked = Date.now();
  private proxiesChecking = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly http: HttpOptions) {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
  }

  private changed(): void {
    for (const w of [...this.waiters]) w();
  }

  private until(cond: () => boolean, ms: number): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        if (!cond() && Date.now() < end) return;
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const end = Date.now() + ms;
      const t = setTimeout(() => {
        this.waiters.delete(done);
        resolve();
      }, ms);
      this.waiters.add(done);
    });
  }

  /** The HTTP options the proxies were started with. */
  httpOptions(): HttpOptions {
    return this.http;
  }

  /**
   * Starts an HTTP proxy on each host of the cluster (nodes that share an
   * address share one) and waits until they listen.
   * @throws Error when a proxy cannot listen (the port in use)
   */
  async ensureProxies(): Promise<boolean> {
    if (this.http.location === 'Disabled') return true;
    const nodes = (await ray.nodes()).filter((n) => n.alive && (this.http.location === 'EveryNode' || n.isHead));
    const byHost = new Map<string, string>();
    for (const n of nodes) {
      const host = n.address.replace(/:\d+$/, '');
      if (!byHost.has(host)) byHost.set(host, n.nodeId);
    }
    const starting: Array<Promise<unknown>> = [];
    for (const [host, nodeId] of byHost) {
      if (this.proxies.has(host)) continue;
      const actor = ProxyActor.options({
        name: `SERVE_PROXY::${host}`,
        namespace: SERVE_NAMESPACE,
        lifetime: 'detached',
        numCpus: 0,
        maxConcurrency: 100_000,
        scheduling: { nodeId, soft: true },
      }).remote(this.http) as unknown as ProxyHandle;
      const p = { actor, state: 'STARTING' as 'HEALTHY' | 'STARTING' | 'UNHEALTHY', error: undefined as string | undefined };
      this.proxies.set(host, p);
      starting.push(
        ray.get(actor.ready.remote()).then(
          () => {
            p.state = 'HEALTHY';
          },
          (e: unknown) => {
            p.state = 'UNHEALTHY';
            this.proxies.delete(host);
            try {
              ray.kill(actor);
            } catch {
              // gone
            }
            throw e instanceof ray.TaskError ? e.cause : e;
          },
        ),
      );
    }
    await Promise.all(starting);
    return true;
  }

  /** Sets an application's target state; the reconcile loop gets there. */
  deployApp(spec: AppSpec): boolean {
    if (spec.routePrefix !== null) {
      for (const [name, a] of this.apps) {
        if (name !== spec.name && !a.deleting && a.spec.routePrefix === spec.routePrefix) {
          throw new Error(`route prefix '${spec.routePrefix}' is taken by application '${name}': give application '${spec.name}' another routePrefix, or delete '${name}' first`);
        }
      }
    }
    let app = this.apps.get(spec.name);
    if (!app || app.deleting) {
      app = { spec, deployments: new Map(), deleting: false };
      this.apps.set(spec.name, app);
    }
    app.spec = spec;
    const names = new Set(spec.deployments.map((d) => d.name));
    for (const [name, d] of app.deployments) {
      if (!names.has(name)) {
        d.deleting = true;
        d.target = 0;
      }
    }
    for (const ds of spec.deployments) {
      const old = app.deployments.get(ds.name);
      const a = ds.options.autoscaling;
      if (!old || old.deleting) {
        app.deployments.set(ds.name, {
          spec: ds,
          target: ds.options.numReplicas,
          replicas: old?.replicas ?? [],
          version: (old?.version ?? 0) + 1,
          failures: 0,
          message: '',
          failed: false,
          lastFailure: 0,
          autoscale: { samples: [], lastSample: 0, sampling: false, above: null, below: null },
          deleting: false,
        });
      } else {
        const codeChanged = old.spec.codeVersion !== ds.codeVersion;
        old.spec = ds;
        if (codeChanged) {
          old.failures = 0;
          old.failed = false;
          old.message = '';
        }
        // an autoscaled deployment keeps its current count within the new bounds
        old.target = a ? Math.min(a.maxReplicas, Math.max(a.minReplicas, old.target)) : ds.options.numReplicas;
        old.version++;
      }
    }
    this.routesVersion++;
    this.changed();
    void this.tick();
    return true;
  }

  /** Deletes an application: its replicas drain and stop; resolves when they have. */
  async deleteApp(name: string): Promise<boolean> {
    const app = this.apps.get(name);
    if (!app) return false;
    app.deleting = true;
    for (const d of app.deployments.values()) {
      d.deleting = true;
      d.target = 0;
      d.version++;
    }
    this.routesVersion++;
    this.changed();
    void this.tick();
    await this.until(() => this.apps.get(name) !== app, 120_000);
    return true;
  }

  /** Stops every application and proxy. */
  async shutdown(): Promise<boolean> {
    await Promise.all([...this.apps.keys()].map((n) => this.deleteApp(n)));
    for (const p of this.proxies.values()) {
      try {
        await ray.get(p.actor.stop.remote(), { timeoutMs: 5000 });
      } catch {
        // dead already
      }
      try {
        ray.kill(p.actor);
      } catch {
        // gone
      }
    }
    this.proxies.clear();
    this.stopped = true;
    clearInterval(this.timer);
    return true;
  }

  private replicaSet(app: string, deployment: string): ReplicaSet {
    const a = this.apps.get(app);
    const d = a?.deployments.get(deployment);
    if (!a || !d || d.deleting) return { version: -2 - (this.routesVersion % 1_000_000), exists: false, replicas: [], maxOngoingRequests: 1, maxQueuedRequests: -1, scaledToZero: false };
    return {
      version: d.version,
      exists: true,
      replicas: d.replicas.filter((r) => r.state === 'RUNNING').map((r) => ({ replicaId: r.id, actor: r.actor, models: r.models })),
      maxOngoingRequests: d.spec.options.maxOngoingRequests,
      maxQueuedRequests: d.spec.options.maxQueuedRequests,
      scaledToZero: d.target === 0 && d.spec.options.autoscaling !== null,
    };
  }

  /** The deployment's replicas once their version differs from `known` (or after `timeoutMs`). */
  async listenReplicas(app: string, deployment: string, known: number, timeoutMs: number): Promise<ReplicaSet> {
    await this.until(() => this.replicaSet(app, deployment).version !== known, timeoutMs);
    return this.replicaSet(app, deployment);
  }

  private routeTable(): RouteTable {
    const routes: RouteTable['routes'] = [];
    for (const [name, a] of this.apps) {
      if (!a.deleting && a.spec.routePrefix !== null) routes.push({ prefix: a.spec.routePrefix, app: name, ingress: a.spec.ingress });
    }
    routes.sort((x, y) => y.prefix.length - x.prefix.length);
    return { version: this.routesVersion, routes };
  }

  /** The HTTP routes once their version differs from `known` (or after `timeoutMs`). */
  async listenRoutes(known: number, timeoutMs: number): Promise<RouteTable> {
    await this.until(() => this.routesVersion !== known, timeoutMs);
    return this.routeTable();
  }

  /** A router saw a replica die: replace it now. */
  reportDead(app: string, deployment: string, replicaId: string): boolean {
    const d = this.apps.get(app)?.deployments.get(deployment);
    const r = d?.replicas.find((x) => x.id === replicaId);
    if (d && r) this.lose(d, r, 'its process died');
    return true;
  }

  /** A request came for a deployment autoscaled to zero: start a replica now. */
  wakeUp(app: string, deployment: string): boolean {
    const d = this.apps.get(app)?.deployments.get(deployment);
    if (d && !d.deleting && d.target === 0 && d.spec.options.autoscaling) {
      d.target = Math.max(1, d.spec.options.autoscaling.minReplicas);
      d.autoscale.below = null;
      d.autoscale.samples = [];
      void this.tick();
    }
    return true;
  }

  /** `serve.status()`. */
  status(): ServeStatus {
    const applications: Record<string, ApplicationStatus> = {};
    for (const [name, a] of this.apps) {
      const deployments: Record<string, DeploymentStatus> = {};
      let all = true;
      let failed = '';
      for (const [dn, d] of a.deployments) {
        if (d.deleting && !a.deleting) continue;
        const states: Record<string, number> = {};
        for (const r of d.replicas) states[r.state] = (states[r.state] ?? 0) + 1;
        const healthy = this.settled(d);
        const status: DeploymentStatus['status'] = d.failed ? 'DEPLOY_FAILED' : healthy ? 'HEALTHY' : d.failures > 0 ? 'UNHEALTHY' : 'UPDATING';
        if (!healthy) all = false;
        if (d.failed && failed === '') failed = `deployment '${dn}': ${d.message}`;
        deployments[dn] = {
          status,
          message: d.message,
          targetReplicas: d.target,
          replicaStates: states,
          replicas: d.replicas.map((r) => ({ replicaId: r.id, state: r.state, pid: r.pid, nodeId: r.nodeId, models: r.models })),
        };
      }
      applications[name] = {
        status: a.deleting ? 'DELETING' : failed !== '' ? 'DEPLOY_FAILED' : all ? 'RUNNING' : 'DEPLOYING',
        message: failed,
        routePrefix: a.spec.routePrefix,
        ingress: a.spec.ingress,
        deployments,
      };
    }
    const proxies: ServeStatus['proxies'] = {};
    for (const [host, p] of this.proxies) proxies[host] = p.state;
    return { applications, proxies, http: this.http };
  }

  /** Whether a deployment runs its target count, all of the current version and config. */
  private settled(d: DeploymentState): boolean {
    const uc = json(d.spec.options.userConfig);
    const live = d.replicas.filter((r) => r.state !== 'STOPPING');
    return live.length === d.target && live.every((r) => r.state === 'RUNNING' && r.codeVersion === d.spec.codeVersion && r.userConfig === uc && !r.reconfiguring) && !d.replicas.some((r) => r.state === 'STOPPING');
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      // nodes that joined since get their proxies
      if (!this.proxiesChecking && Date.now() - this.proxiesChecked > PROXY_CHECK_MS) {
        this.proxiesChecking = true;
        this.ensureProxies()
          .catch((e: unknown) => console.error(`[serve] a new node's HTTP proxy did not start: ${e instanceof Error ? e.message : String(e)}`))
          .finally(() => {
            this.proxiesChecking = false;
            this.proxiesChecked = Date.now();
          });
      }
      for (const [name, app] of [...this.apps]) {
        for (const [dn, d] of [...app.deployments]) {
          this.reconcile(name, d);
          if (d.deleting && d.replicas.length === 0) app.deployments.delete(dn);
        }
        if (app.deleting && app.deployments.size === 0) {
          this.apps.delete(name);
          this.changed();
        }
      }
    } finally {
      this.ticking = false;
    }
  }

  private reconcile(app: string, d: DeploymentState): void {
    const now = Date.now();
    const o = d.spec.options;
    const uc = json(o.userConfig);
    if (!d.deleting) this.sample(d, now);
    if (o.autoscaling && !d.deleting) this.autoscale(d, now);
    const live = d.replicas.filter((r) => r.state !== 'STOPPING');
    const cur = live.filter((r) => r.codeVersion === d.spec.codeVersion);
    const old = live.filter((r) => r.codeVersion !== d.spec.codeVersion);
    // userConfig changes are applied in place
    for (const r of cur) {
      if (r.state === 'RUNNING' && !r.reconfiguring && r.userConfig !== uc) {
        r.reconfiguring = true;
        ray.get(r.actor.reconfigure.remote(o.userConfig)).then(
          () => {
            r.userConfig = uc;
            r.reconfiguring = false;
            this.changed();
          },
          (e: unknown) => {
            r.reconfiguring = false;
            r.userConfig = uc;
            d.message = `reconfigure failed on replica ${r.id}: ${String(e instanceof ray.TaskError ? e.cause.message : e)}`;
            this.lose(d, r, 'its reconfigure() threw');
          },
        );
      }
    }
    // start what is missing (during a roll, a few at a time)
    const step = old.length > 0 ? Math.max(1, Math.ceil(d.target / 5)) : Number.POSITIVE_INFINITY;
    const startingNow = cur.filter((r) => r.state === 'STARTING').length;
    const backoff = d.failures > 0 && now - d.lastFailure < Math.min(5000, 250 * 2 ** d.failures);
    if (!d.failed && !backoff) {
      const n = Math.min(d.target - cur.length, step - startingNow);
      for (let i = 0; i < n; i++) this.start(app, d);
    }
    // stop old replicas as new ones come up; stop extras
    const curRunning = cur.filter((r) => r.state === 'RUNNING').length;
    let excessOld = old.length + curRunning - d.target;
    if (d.failed) excessOld = 0; // a failed roll keeps the old version serving
    for (const r of old) {
      if (excessOld <= 0) break;
      this.stop(d, r);
      excessOld--;
    }
    let extra = cur.length - d.target;
    if (extra > 0) {
      const order = [...cur.filter((r) => r.state === 'STARTING'), ...cur.filter((r) => r.state === 'RUNNING').reverse()];
      for (const r of order) {
        if (extra-- <= 0) break;
        this.stop(d, r);
      }
    }
    // health checks
    for (const r of d.replicas) {
      if (r.state !== 'RUNNING' || r.healthInFlight || now - r.lastHealth < o.healthCheckPeriodS * 1000) continue;
      r.healthInFlight = true;
      ray.get(r.actor.checkHealth.remote(), { timeoutMs: o.healthCheckTimeoutS * 1000 }).then(
        () => {
          r.healthInFlight = false;
          r.lastHealth = Date.now();
        },
        (e: unknown) => {
          r.healthInFlight = false;
          if (r.state !== 'RUNNING') return;
          const why = e instanceof ray.GetTimeoutError ? `its checkHealth() did not answer within ${o.healthCheckTimeoutS} s` : `its checkHealth() threw ${String(e instanceof ray.TaskError ? `${e.cause.name}: ${e.cause.message}` : e)}`;
          d.message = `replica ${r.id} was replaced: ${why}`;
          console.warn(`[serve] ${app}#${d.spec.name}: ${d.message}`);
          this.lose(d, r, why);
        },
      );
    }
  }

  private start(app: string, d: DeploymentState): void {
    const o = d.spec.options;
    const id = randomId();
    const actor = ReplicaActor.options({
      name: `SERVE_REPLICA::${app}#${d.spec.name}#${id}`,
      namespace: SERVE_NAMESPACE,
      lifetime: 'detached',
      maxConcurrency: Math.max(1000, o.maxOngoingRequests * 4 + 16),
      maxRestarts: 0,
      numCpus: o.rayActorOptions.numCpus ?? 1,
      numGpus: o.rayActorOptions.numGpus,
      resources: o.rayActorOptions.resources,
      runtimeEnv: o.rayActorOptions.runtimeEnv,
    }).remote({
      app,
      deployment: d.spec.name,
      replicaId: id,
      code: d.spec.code,
      kind: d.spec.kind,
      initArgs: d.spec.initArgs,
      userConfig: o.userConfig,
      maxOngoingRequests: o.maxOngoingRequests,
    }) as unknown as ReplicaHandle;
    const r: ReplicaState = { id, actor, codeVersion: d.spec.codeVersion, userConfig: json(o.userConfig), state: 'STARTING', reconfiguring: false, healthInFlight: false, lastHealth: Date.now(), models: [] };
    d.replicas.push(r);
    ray.get(actor.ready.remote()).then(
      (info) => {
        if (r.state !== 'STARTING') return;
        r.state = 'RUNNING';
        r.pid = info.pid;
        r.nodeId = info.nodeId;
        r.lastHealth = Date.now();
        d.failures = 0;
        if (r.codeVersion === d.spec.codeVersion) d.message = '';
        d.version++;
        this.changed();
        // a call that returns only when the replica drains: its rejection says the replica died
        ray.get(actor.watch.remote()).catch(() => {
          if (r.state !== 'STOPPING') this.lose(d, r, 'its process died');
        });
      },
      (e: unknown) => {
        const cause = e instanceof ray.TaskError ? e.cause : e instanceof ray.ActorDiedError && e.cause instanceof Error ? e.cause : e;
        const msg = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
        d.replicas = d.replicas.filter((x) => x !== r);
        try {
          ray.kill(actor);
        } catch {
          // gone
        }
        if (r.codeVersion !== d.spec.codeVersion) return;
        d.failures++;
        d.lastFailure = Date.now();
        d.message = `a replica failed to start (${d.failures} of ${MAX_START_FAILURES} tries): ${msg}`;
        console.error(`[serve] ${app}#${d.spec.name}: ${d.message}`);
        if (d.failures >= MAX_START_FAILURES && !d.replicas.some((x) => x.codeVersion === d.spec.codeVersion && x.state === 'RUNNING')) d.failed = true;
        this.changed();
      },
    );
  }

  /** Drops a replica that died or failed its health check, so that a new one starts. */
  private lose(d: DeploymentState, r: ReplicaState, why: string): void {
    if (!d.replicas.includes(r)) return;
    d.replicas = d.replicas.filter((x) => x !== r);
    if (r.state === 'RUNNING') console.warn(`[serve] ${d.spec.name}: replica ${r.id} (pid ${r.pid ?? '?'}) is gone (${why}); starting another`);
    r.state = 'STOPPING';
    try {
      ray.kill(r.actor);
    } catch {
      // gone
    }
    d.version++;
    this.changed();
    void this.tick();
  }

  /** Stops a replica gracefully: no new requests, then up to gracefulShutdownTimeoutS for those running. */
  private stop(d: DeploymentState, r: ReplicaState): void {
    const wasRunning = r.state === 'RUNNING';
    r.state = 'STOPPING';
    d.version++;
    this.changed();
    const done = (): void => {
      try {
        ray.kill(r.actor);
      } catch {
        // gone
      }
      d.replicas = d.replicas.filter((x) => x !== r);
      this.changed();
    };
    if (!wasRunning) return done();
    const ms = d.spec.options.gracefulShutdownTimeoutS * 1000;
    ray.get(r.actor.drain.remote(ms), { timeoutMs: ms + 5000 }).then(done, done);
  }

  /**
   * Every metrics interval (autoscaled deployments; otherwise every
   * {@link MODELS_INTERVAL_MS}, for multiplexing) asks the running replicas
   * for their ongoing requests and loaded models.
   */
  private sample(d: DeploymentState, now: number): void {
    const a = d.spec.options.autoscaling;
    const st = d.autoscale;
    const every = a ? a.metricsIntervalS * 1000 : MODELS_INTERVAL_MS;
    if (st.sampling || now - st.lastSample < every) return;
    const running = d.replicas.filter((r) => r.state === 'RUNNING');
    st.sampling = true;
    st.lastSample = now;
    let modelsChanged = false;
    Promise.all(
      running.map((r) =>
        ray.get(r.actor.stats.remote(), { timeoutMs: 5000 }).then(
          (s) => {
            if (s.models.join('\0') !== r.models.join('\0')) modelsChanged = true;
            r.models = s.models;
            return s.ongoing;
          },
          () => 0,
        ),
      ),
    ).then(
      (xs) => {
        st.sampling = false;
        if (modelsChanged) {
          d.version++;
          this.changed();
        }
        if (!a) return;
        const t = Date.now();
        st.samples.push({ t, ongoing: xs.reduce((x, y) => x + y, 0) });
        st.samples = st.samples.filter((x) => t - x.t <= a.lookBackPeriodS * 1000);
      },
      () => {
        st.sampling = false;
      },
    );
  }

  private autoscale(d: DeploymentState, now: number): void {
    const a = d.spec.options.autoscaling;
    if (!a) return;
    const st = d.autoscale;
    if (st.samples.length === 0) return;
    const avg = st.samples.reduce((x, s) => x + s.ongoing, 0) / st.samples.length;
    const desired = Math.min(a.maxReplicas, Math.max(a.minReplicas, Math.ceil(avg / a.targetOngoingRequests)));
    if (desired > d.target) {
      st.below = null;
      st.above ??= now;
      if (now - st.above >= a.upscaleDelayS * 1000) {
        d.target = desired;
        st.above = null;
      }
    } else if (desired < d.target) {
      st.above = null;
      st.below ??= now;
      if (now - st.below >= a.downscaleDelayS * 1000) {
        d.target = desired;
        st.below = null;
        st.samples = [];
      }
    } else {
      st.above = null;
      st.below = null;
    }
  }
}

/** The controller's actor class. */
export const ControllerActor = ray.remote(ServeController);
