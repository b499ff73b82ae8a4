/**
 * The node manager (Ray's raylet): one per node. It owns the node's object
 * store arena and resources, keeps a pool of worker processes per job, and
 * grants leases on workers to owners, which then push tasks to them
 * directly. It reports resources to the head and tells everyone on the node
 * when a process dies.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { arenaAddon, type ArenaHandle } from '../native';
import { prefaultLater, prefaultSetting } from '../objects/prefault';
import { randomId } from '../ids';
import { log } from '../log';
import { spillDirOf } from '../objects/object-store';
import { MT, type Address, type Demand, type JobConfig, type Message, type MessageOf, type NodeView, type Resources, type Scheduling } from '../protocol/messages';
import { Endpoint, type Peer } from '../transport/endpoint';
import { removeIpcFile } from '../cluster/session';
import { GpuPool, add, describe, fits, gpuRequestProblem, missing, subtract } from './resources';
import { BundleTable } from './bundles';
import { cpuPart, gpuAmount, groupOf } from '../placement/resource-names';
import { launchWorker, type WorkerProc, type WorkerState } from './worker-pool';
import { PACKAGE_KV_NS } from '../runtime-env/archive';
import type { NpmEnvSpec } from '../runtime-env/npm-spec';
import { NodeRuntimeEnvs, type EnvMatch, type EnvNeeds } from './runtime-envs';
import { NodeObjectManager } from './object-manager';
import { KILL_IDLE_WORKERS_INTERVAL_MS, idleWorkerSoftLimit, idleWorkersToStop, refusalBackoffMs } from './idle-workers';

/** How a node manager is set up. */
export interface RayletConfig {
  /** this node's id */
  nodeId: string;
  /** the cluster's session directory (sockets, logs) */
  sessionDir: string;
  /** where the head listens */
  headAddress: string;
  /** resources of this node, GPU included */
  resources: Resources;
  /** ids of this node's GPUs (CUDA_VISIBLE_DEVICES values) */
  gpuIds: string[];
  /** bytes of the shared-memory object store */
  objectStoreMemory: number;
  /** root of the node's spill directories (one per owner slot inside) */
  spillDir: string;
  /** this is the head's node */
  isHead: boolean;
  /** where other nodes reach this one */
  nodeAddress: string;
  /**
   * Host (IP) to listen on with tcp, for a node of a cluster that spans
   * nodes: the node manager, and the workers it starts, listen there too.
   * Without it, everything listens on ipc only (a one-node cluster).
   */
  bindHost?: string;
  /**
   * How long a started worker has to register before it is killed and forgotten.
   * @default 60000
   */
  workerRegisterTimeoutMs?: number;
}

/** How often a node manager reports to the head (its heartbeat). */
export const HEARTBEAT_MS = 250;

/** Workers started at once, at most, for leases waiting on a worker. */
const MAX_STARTING = 8;
/** First and longest pause before starting workers again for a job whose workers keep failing to start. */
const START_BACKOFF_MS = [250, 30_000] as const;

interface Client {
  workerId: string;
  kind: 'driver' | 'worker';
  pid: number;
  slot: number;
  endpoint: string;
  jobId: string | undefined;
}

interface LeaseRequest {
  id: string;
  jobId: string;
  resources: Resources;
  placement: Resources;
  env: Record<string, string> | undefined;
  /** key of `env` ('' for none) */
  envKey: string;
  /** working-directory package it asked for (absent: the job's) */
  pkg: string | undefined;
  /** npm packages it asked for (absent: the job's) */
  npm: NpmEnvSpec | undefined;
  actorId: string | undefined;
  name: string;
  owner: Peer;
  /** node of the process that asked (its requests go when that node dies) */
  ownerNode: string | undefined;
  warned: boolean;
  sched: Scheduling | undefined;
  spilled: boolean;
  /** a SPREAD request this node took (it is not passed on later) */
  placedHere: boolean;
  /** when it arrived (Date.now()) */
  arrived: number;
}

/** Where a lease request goes: granted here, to another node, waits (no node can hold it), or fails. */
type Placement = { kind: 'local' } | { kind: 'spill'; node: NodeView } | { kind: 'infeasible' } | { kind: 'wait' } | { kind: 'fail'; message: string };

/**
 * A node this node manager has not heard of yet may have just joined (the
 * head's view reaches node managers a moment later): a request with a hard
 * affinity to it waits this long before it fails.
 */
const UNKNOWN_NODE_GRACE_MS = 5000;

interface Lease {
  id: string;
  owner: Peer;
  ownerNode: string | undefined;
  resources: Resources;
  gpus: Array<[string, number]>;
  worker: WorkerProc;
  blocked: boolean;
  actorId: string | undefined;
}

const CPU = 'CPU';

/** The node with the most free CPU (ties: the first). */
function leastLoaded(nodes: NodeView[]): NodeView {
  let best = nodes[0] as NodeView;
  for (const n of nodes) if ((n.available[CPU] ?? 0) > (best.available[CPU] ?? 0)) best = n;
  return best;
}

/** See the module comment. */
export class Raylet {
  private endpoint!: Endpoint;
  private readonly arena: ArenaHandle;
  /** cancels the arena's background prefault if it has not started (objects/prefault.ts) */
  private cancelPrefault: (() => void) | undefined;
  readonly arenaPath: string;
  private readonly available: Resources;
  /** the node's resources, and those of placement group bundles committed here */
  private readonly total: Resources;
  private readonly bundles: BundleTable;
  private readonly gpus: GpuPool;
  private readonly clients = new Map<string, Client>();
  private readonly workers = new Map<string, WorkerProc>();
  private readonly jobs = new Map<string, JobConfig>();
  private readonly leases = new Map<string, Lease>();
  private pending: LeaseRequest[] = [];
  private nextSlot = 1;
  /** per job: workers that failed to start in a row, and when starting them again is allowed */
  private readonly startFailures = new Map<string, { n: number; until: number }>();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly logFiles = new Map<string, fs.WriteStream>();
  private resourcesDirty = false;
  private reportQueued = false;
  private lastReclaim = 0;
  private readonly logBatches = new Map<string, Array<[number, string, string]>>();
  private logTimer: NodeJS.Timeout | undefined;
  private driverWatch: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private idleReaper: NodeJS.Timeout | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** the other nodes, as the head last described them */
  private readonly view = new Map<string, NodeView>();
  /** nodes the head declared dead (a node id is never used again) */
  private readonly deadNodes = new Set<string>();
  /** jobs whose settings are being fetched from the head */
  private readonly fetchingJobs = new Set<string>();
  /** jobs that ended (their drivers get no more logs) */
  private readonly finishedJobs = new Set<string>();
  private spreadNext = 0;
  /** where this node's processes reach the node manager */
  private localAddress = '';
  /** registering again with a restarted head */
  private reregistering = false;
  /** the head told this node to exit */
  private exiting = false;
  /**
   * Called when the head marked this node dead and told it to exit (it is
   * never used again); main.ts stops the process.
   */
  onExitRequested: (reason: string) => void = () => undefined;
  /** runtime environments (working directories, npm packages) set up on this node */
  private readonly envs: NodeRuntimeEnvs;
  /** objects across nodes: pulls, serving, primary copies kept for owners elsewhere */
  private objects!: NodeObjectManager;

  /** Creates the node's object store; {@link start} brings the node up. */
  constructor(readonly cfg: RayletConfig) {
    const A = arenaAddon();
    this.arena = A.create(cfg.objectStoreMemory, `tsray-${cfg.nodeId.slice(0, 8)}`);
    this.arenaPath = `/proc/${process.pid}/fd/${A.fd(this.arena)}`;
    this.available = { ...cfg.resources };
    this.total = { ...cfg.resources };
    this.bundles = new BundleTable(this.total, this.available);
    this.gpus = new GpuPool(cfg.gpuIds);
    this.envs = new NodeRuntimeEnvs(
      cfg.sessionDir,
      (pkg) => this.endpoint.call(this.cfg.headAddress, { t: MT.KvGet, ns: PACKAGE_KV_NS, key: pkg }, 120_000).then((r) => (r.data as Uint8Array | null) ?? null),
      { ready: (match) => this.onEnvReady(match), failed: (match, reason) => this.onEnvFailed(match, reason) },
    );
  }

  /** Listens at `address` and registers with the head. */
  async start(address: string): Promise<string> {
    const extra = this.cfg.bindHost !== undefined ? [`tcp://${this.cfg.bindHost}:0`] : [];
    this.endpoint = await Endpoint.bind(address, `raylet-${this.cfg.nodeId}`, (m, from) => this.onMessage(m, from), {}, extra);
    this.localAddress = this.endpoint.address;
    this.objects = new NodeObjectManager({
      nodeId: this.cfg.nodeId,
      endpoint: this.endpoint,
      arena: this.arena,
      spillDir: this.cfg.spillDir,
      nodeEndpoint: (id) => {
        const n = this.view.get(id);
        return n && !this.deadNodes.has(id) ? n.endpoint : undefined;
      },
      isClient: (id) => this.clients.has(id),
    });
    await this.register(false);
    this.cancelPrefault = prefaultLater(arenaAddon(), this.arena, this.cfg.objectStoreMemory, prefaultSetting(), false);
    this.driverWatch = setInterval(() => this.checkDrivers(), 500);
    // resources double as the heartbeat: the head marks a node that goes quiet dead
    this.heartbeat = setInterval(() => this.reportResources(), HEARTBEAT_MS);
    this.idleReaper = setInterval(() => this.stopIdleWorkers(), KILL_IDLE_WORKERS_INTERVAL_MS);
    return this.endpoint.address;
  }

  /** Registers with the head; `again`: with a head that restarted, reporting the actors hosted here. */
  private register(again: boolean): Promise<unknown> {
    const actors = [];
    if (again) for (const w of this.workers.values()) if (w.state === 'actor' && w.actorId && w.address) actors.push({ actorId: w.actorId, address: w.address, pid: w.pid });
    return this.endpoint.call(
      this.cfg.headAddress,
      {
        t: MT.RegisterNode,
        nodeId: this.cfg.nodeId,
        endpoint: this.publicAddress,
        address: this.cfg.nodeAddress,
        total: this.cfg.resources,
        pid: process.pid,
        isHead: this.cfg.isHead,
        sessionDir: this.cfg.sessionDir,
        arenaPath: this.arenaPath,
        ...(again ? { actors } : {}),
      },
      10_000,
    );
  }

  /** The head does not know this node (it restarted): register again, once at a time. */
  private reregister(): void {
    if (this.reregistering || this.stopped) return;
    this.reregistering = true;
    log.info('the head restarted: registering this node again');
    this.register(true)
      .then(() => this.reportResources())
      .catch((e: Error) => log.warn(`registering again with the head failed: ${e.message}; trying at the next heartbeat`))
      .finally(() => (this.reregistering = false));
  }

  /** Another node died: nothing goes there, and what its processes asked for or hold here ends. */
  private onNodeDied(m: MessageOf<MT.NodeDied>): void {
    this.deadNodes.add(m.nodeId);
    const v = this.view.get(m.nodeId);
    if (v) v.alive = false;
    this.endpoint.disconnect(m.endpoint, m.reason);
    this.pending = this.pending.filter((r) => r.ownerNode !== m.nodeId);
    for (const l of [...this.leases.values()]) {
      // its owner is gone: what the worker runs has nowhere to go (Ray kills it too)
      if (l.ownerNode === m.nodeId && !l.actorId) this.kill(l.worker, `the owner of its lease died with node ${m.nodeId}`, true);
    }
    for (const c of this.clients.values()) this.endpoint.send(c.endpoint, m);
    this.schedule();
  }

  /** Where this node's processes reach the node manager. */
  get address(): string {
    return this.endpoint.address;
  }

  /** Where other nodes reach this node manager. */
  get publicAddress(): string {
    return this.endpoint.addresses[1] ?? this.endpoint.address;
  }

  // ------------------------------------------------------------------ messages

  private onMessage(m: Message, from: Peer): void {
    switch (m.t) {
      case MT.RegisterClient:
        this.onRegisterClient(m, from);
        break;
      case MT.RequestLease:
        this.onRequestLease(m, from);
        break;
      case MT.CancelLeaseRequest:
        this.pending = this.pending.filter((r) => r.id !== m.leaseReqId);
        break;
      case MT.ReturnLease:
        this.onReturnLease(m.leaseId, m.kill);
        break;
      case MT.TaskBlocked: {
        // the task waits in get(): its CPU goes to others (nested tasks
        // would deadlock otherwise), so grant what now fits
        const l = this.leases.get(m.leaseId);
        if (l && !l.blocked && Object.keys(cpuPart(l.resources)).length > 0) {
          l.blocked = true;
          add(this.available, cpuPart(l.resources));
          this.changed();
          this.schedule();
        }
        break;
      }
      case MT.TaskUnblocked: {
        const l = this.leases.get(m.leaseId);
        if (l?.blocked) {
          l.blocked = false;
          subtract(this.available, cpuPart(l.resources));
          this.changed();
          this.schedule();
        }
        break;
      }
      case MT.KillWorker: {
        const w = this.workers.get(m.workerId);
        if (w) this.kill(w, m.reason, m.force);
        break;
      }
      case MT.JobFinished:
        this.onJobFinished(m.jobId);
        if (m.reqId !== undefined) this.endpoint.respond(from, m.reqId, true);
        break;
      case MT.NodeStats:
        this.endpoint.respond(from, m.reqId, true, this.stats());
        break;
      case MT.ClusterView: {
        // (requests to a node that died fail on NodeDied: a node the view shows as not alive may only
        // not have registered again with a restarted head yet)
        this.view.clear();
        for (const n of m.nodes) if (n.nodeId !== this.cfg.nodeId) this.view.set(n.nodeId, n);
        if (this.pending.length > 0) this.schedule();
        break;
      }
      case MT.PrepareBundles: {
        const ok = this.bundles.prepare(m.pgId, m.bundles);
        this.endpoint.respond(from, m.reqId, ok, undefined, ok ? undefined : 'the bundles do not fit in the resources free here');
        if (!ok) this.reclaimIdleLeases();
        this.changed();
        break;
      }
      case MT.CommitBundles: {
        const ok = this.bundles.commit(m.pgId);
        this.endpoint.respond(from, m.reqId, ok, undefined, ok ? undefined : 'no bundles of that group are prepared here');
        this.changed();
        this.schedule();
        break;
      }
      case MT.ReleaseBundles:
        this.onReleaseBundles(m);
        break;
      case MT.NodeDied:
        this.onNodeDied(m);
        break;
      case MT.NodeExit:
        if (this.exiting) break;
        this.exiting = true;
        log.error(`exiting: ${m.reason}`);
        this.onExitRequested(m.reason);
        break;
      case MT.ReRegisterNode:
        this.reregister();
        break;
      case MT.ProcessDied:
        // a process on another node died (the head tells every node)
        this.endpoint.disconnect(m.endpoint, m.reason);
        this.objects.onProcessGone(m.workerId);
        // leases and requests it owned here (nested tasks it sent to this node) end with it
        this.releaseOwnedBy(m.workerId);
        for (const c of this.clients.values()) this.endpoint.send(c.endpoint, m);
        break;
      case MT.PullObject:
        this.objects.onPull(m, from);
        break;
      case MT.UnpinObjects:
        this.objects.onUnpin(m.ids, from);
        break;
      case MT.FreeObjects:
        this.objects.onFree(m.objs, m.hop, from);
        break;
      case MT.PinObject:
        this.objects.onPin(m, from);
        break;
      case MT.ReadChunk:
        this.objects.onReadChunk(m, from);
        break;
      default:
        log.debug(`node manager ignored a message of type ${m.t}`);
    }
  }

  private onRegisterClient(m: MessageOf<MT.RegisterClient>, from: Peer): void {
    let jobId = m.job?.jobId;
    let slot: number;
    if (m.kind === 'worker') {
      const w = this.workers.get(m.workerId);
      if (!w || w.state !== 'starting') {
        const why = w ? `worker ${m.workerId} is already registered` : `unknown worker ${m.workerId} (not started by this node manager, or it took too long to register)`;
        log.warn(`refused a worker registration: ${why}`);
        this.endpoint.respond(from, m.reqId, false, undefined, why);
        return;
      }
      slot = this.nextSlot++;
      jobId = w.jobId;
      w.slot = slot;
      w.address = { workerId: m.workerId, nodeId: this.cfg.nodeId, endpoint: m.endpoint, slot };
      this.setIdle(w);
      if (w.registerTimer) clearTimeout(w.registerTimer);
      w.registerTimer = undefined;
      this.startFailures.delete(w.jobId);
    } else {
      slot = this.nextSlot++;
    }
    if (m.kind === 'driver' && m.job) {
      this.jobs.set(m.job.jobId, m.job);
    }
    this.clients.set(m.workerId, { workerId: m.workerId, kind: m.kind, pid: m.pid, slot, endpoint: m.endpoint, jobId });
    this.endpoint.respond(from, m.reqId, true, {
      slot,
      nodeId: this.cfg.nodeId,
      arenaPath: this.arenaPath,
      spillDir: this.cfg.spillDir,
      sessionDir: this.cfg.sessionDir,
    });
    if (m.kind === 'driver' && m.job) this.prestart(m.job);
    this.schedule();
  }

  /** Keeps as many task workers of the job's default environment as the node has CPUs. */
  private prestart(job: JobConfig): void {
    if (!this.mayStart(job.jobId)) return;
    if (!this.envs.ready(job)) return;
    const want = Math.min(16, Math.max(0, Math.floor(this.cfg.resources[CPU] ?? 0)));
    let have = 0;
    for (const w of this.workers.values()) if (w.jobId === job.jobId && w.envKey === '' && w.state !== 'actor' && w.state !== 'dead') have++;
    for (let i = have; i < want; i++) this.startWorker(job, undefined, '', job);
  }

  /** Environments `match` accepts are set up: start the workers that waited for them. */
  private onEnvReady(match: EnvMatch): void {
    for (const job of this.jobs.values()) if (match(job) && this.driverOf(job.jobId)) this.prestart(job);
    this.schedule();
  }

  /** Environments `match` accepts cannot be set up here: fail the requests that need them (their tasks and actors). */
  private onEnvFailed(match: EnvMatch, reason: string): void {
    const message = `its runtime environment could not be set up on node ${this.cfg.nodeId}: ${reason}`;
    this.pending = this.pending.filter((r) => {
      const job = this.jobs.get(r.jobId);
      if (!job || !match(NodeRuntimeEnvs.of(r, job))) return true;
      this.endpoint.reply(r.owner, { t: MT.LeaseFailed, leaseReqId: r.id, message, kind: 'runtimeEnv' });
      return false;
    });
    this.schedule();
  }

  /** Whether workers of the job may be started now (not backing off after failed starts). */
  private mayStart(jobId: string): boolean {
    const f = this.startFailures.get(jobId);
    return !f || Date.now() >= f.until;
  }

  /** A worker of the job failed before it registered: wait longer before starting more. */
  private onStartFailed(jobId: string, worker: string, reason: string): void {
    const prev = this.startFailures.get(jobId);
    const n = (prev?.n ?? 0) + 1;
    const delay = Math.min(START_BACKOFF_MS[1], START_BACKOFF_MS[0] * 2 ** (n - 1));
    this.startFailures.set(jobId, { n, until: Date.now() + delay });
    log.warn(`${worker} of job ${jobId} failed to start (${reason}; ${n} in a row); starting workers for that job again in ${delay} ms`);
    if (!this.retryTimer) {
      this.retryTimer = setTimeout(() => this.retryStarts(), delay);
      this.retryTimer.unref();
    }
  }

  /** Starts what the back-off held back, and rearms for jobs still backing off. */
  private retryStarts(): void {
    this.retryTimer = undefined;
    if (this.stopped) return;
    for (const [jobId, f] of this.startFailures) {
      const job = this.jobs.get(jobId);
      if (!job || !this.driverOf(jobId)) this.startFailures.delete(jobId);
      else if (Date.now() >= f.until) this.prestart(job);
    }
    this.schedule();
    let next = Infinity;
    for (const f of this.startFailures.values()) if (f.until > Date.now()) next = Math.min(next, f.until);
    if (next !== Infinity) {
      this.retryTimer = setTimeout(() => this.retryStarts(), next - Date.now());
      this.retryTimer.unref();
    }
  }

  // ------------------------------------------------------------------ leases

  private onRequestLease(m: MessageOf<MT.RequestLease>, from: Peer): void {
    const removed = this.bundles.removedReason(m.resources) ?? (m.placement ? this.bundles.removedReason(m.placement) : undefined);
    if (removed !== undefined) {
      this.endpoint.reply(from, { t: MT.LeaseFailed, leaseReqId: m.leaseReqId, message: `${m.name} cannot be scheduled: ${removed}` });
      return;
    }
    const gpuProblem = gpuRequestProblem(m.resources.GPU ?? 0) ?? gpuRequestProblem(m.placement?.GPU ?? 0);
    if (gpuProblem) {
      log.warn(`refused a lease for ${m.name}: ${gpuProblem}`);
      this.endpoint.reply(from, { t: MT.LeaseInfeasible, leaseReqId: m.leaseReqId, message: `${m.name} can never be scheduled: ${gpuProblem}` });
      return;
    }
    const envKey = m.env ? JSON.stringify(Object.entries(m.env).sort()) : '';
    this.pending.push({
      id: m.leaseReqId,
      jobId: m.jobId,
      resources: m.resources,
      placement: m.placement ?? m.resources,
      env: m.env,
      envKey,
      pkg: m.pkg,
      npm: m.npm,
      actorId: m.actorId,
      name: m.name,
      owner: from,
      ownerNode: m.ownerNode,
      warned: false,
      sched: m.sched,
      spilled: m.spilled === true,
      placedHere: false,
      arrived: Date.now(),
    });
    this.schedule();
  }

  /**
   * A placement group's bundles are given back. When the group was removed,
   * the workers holding its resources are killed (their owners see the tasks
   * fail) and requests for it fail.
   */
  private onReleaseBundles(m: MessageOf<MT.ReleaseBundles>): void {
    this.bundles.release(m.pgId, m.indexes, m.removed, m.reason);
    if (m.removed) {
      for (const l of this.leases.values()) if (groupOf(l.resources) === m.pgId) this.kill(l.worker, m.reason, true);
      const [fail, keep] = [this.pending.filter((r) => groupOf({ ...r.placement, ...r.resources }) === m.pgId), this.pending.filter((r) => groupOf({ ...r.placement, ...r.resources }) !== m.pgId)];
      this.pending = keep;
      for (const r of fail) this.endpoint.reply(r.owner, { t: MT.LeaseFailed, leaseReqId: r.id, message: `${r.name} cannot be scheduled: ${m.reason}` });
    }
    this.changed();
    this.schedule();
  }

  /** Fetches a job's settings from the head (a job whose driver runs on another node). */
  private fetchJob(jobId: string): void {
    if (this.fetchingJobs.has(jobId)) return;
    this.fetchingJobs.add(jobId);
    this.endpoint
      .call(this.cfg.headAddress, { t: MT.GetJobConfig, jobId }, 30_000)
      .then(
        (r) => {
          if (!this.jobs.has(jobId)) this.jobs.set(jobId, r.data as JobConfig);
        },
        (e: Error) => {
          const message = `the settings of job ${jobId} could not be fetched from the head: ${e.message}`;
          log.warn(message);
          for (const r of this.pending) if (r.jobId === jobId) this.endpoint.reply(r.owner, { t: MT.LeaseFailed, leaseReqId: r.id, message });
          this.pending = this.pending.filter((r) => r.jobId !== jobId);
        },
      )
      .finally(() => {
        this.fetchingJobs.delete(jobId);
        this.schedule();
      });
  }

  /**
   * Where a request should run (Ray's hybrid policy): here when this node
   * has the resources free; otherwise on another node that has them free;
   * otherwise it waits here if this node can ever hold it, or on a node that
   * can. SPREAD goes round-robin over nodes with room; node affinity goes to
   * its node (soft: unless that node is gone or full). A request that was
   * passed on once stays where it is.
   */
  private place(r: LeaseRequest): Placement {
    const fitsTotal = (total: Resources): boolean => fits(r.placement, total) && fits(r.resources, total);
    const fitsFree = (free: Resources): boolean => fits(r.placement, free) && fits(r.resources, free);
    const self = this.cfg.nodeId;
    const hereFeasible = fitsTotal(this.total);
    // a one-node cluster: nothing to choose
    if (this.view.size === 0 && r.sched === undefined) return hereFeasible ? { kind: 'local' } : { kind: 'infeasible' };
    const hereFree = hereFeasible && fitsFree(this.available);
    const s = r.sched;
    const others = [...this.view.values()].filter((n) => n.alive && fitsTotal(n.total));
    // a soft-affinity request sent here on a stale view of this node goes on to a node with room
    const softElsewhere = s?.nodeId === self && s.soft === true && !hereFree && others.some((n) => fitsFree(n.available));
    if (r.spilled && hereFeasible && !softElsewhere) return { kind: 'local' };
    if (s?.nodeId !== undefined && !r.spilled) {
      if (s.nodeId === self) {
        if (hereFeasible && (!s.soft || hereFree || others.every((n) => !fitsFree(n.available)))) return { kind: 'local' };
        if (!s.soft) return { kind: 'infeasible' };
      } else {
        const target = this.view.get(s.nodeId);
        if (target?.alive && fitsTotal(target.total) && (!s.soft || fitsFree(target.available))) return { kind: 'spill', node: target };
        if (!s.soft) {
          if (target?.alive) return { kind: 'infeasible' };
          if (!target && Date.now() - r.arrived < UNKNOWN_NODE_GRACE_MS) {
            this.recheckAt(r.arrived + UNKNOWN_NODE_GRACE_MS);
            return { kind: 'wait' };
          }
          const why = target ? 'that node is dead' : 'no such node is in the cluster';
          return { kind: 'fail', message: `${r.name} cannot be scheduled: it must run on node ${s.nodeId} (node affinity with soft: false), but ${why}` };
        }
      }
    }
    if (s?.spread) {
      // decided once: a request placed here waits here for a worker
      if (r.placedHere) return { kind: 'local' };
      const pool: Array<{ nodeId: string; free: boolean; view?: NodeView }> = [];
      if (hereFeasible) pool.push({ nodeId: self, free: hereFree });
      for (const n of others) pool.push({ nodeId: n.nodeId, free: fitsFree(n.available), view: n });
      if (pool.length === 0) return { kind: 'infeasible' };
      const free = pool.filter((p) => p.free);
      const from = free.length > 0 ? free : pool;
      const pick = from[this.spreadNext++ % from.length] as (typeof pool)[number];
      if (pick.view) return { kind: 'spill', node: pick.view };
      r.placedHere = true;
      return { kind: 'local' };
    }
    if (s?.prefer !== undefined && s.prefer !== self) {
      const t = this.view.get(s.prefer);
      if (t?.alive && fitsTotal(t.total) && fitsFree(t.available)) return { kind: 'spill', node: t };
    }
    if (hereFree) return { kind: 'local' };
    const free = others.filter((n) => fitsFree(n.available));
    if (free.length > 0) return { kind: 'spill', node: leastLoaded(free) };
    if (hereFeasible) return { kind: 'local' };
    if (others.length > 0) return { kind: 'spill', node: leastLoaded(others) };
    return { kind: 'infeasible' };
  }

  /** Runs the scheduler again at `when` (Date.now() time), for requests that wait on time. */
  private recheckAt(when: number): void {
    if (this.recheckTimer) return;
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = undefined;
      this.schedule();
    }, Math.max(0, when - Date.now()) + 10);
    this.recheckTimer.unref();
  }

  /** Sends a request to another node; counts its resources there until the head says otherwise. */
  private spill(r: LeaseRequest, node: NodeView): void {
    subtract(node.available, r.resources);
    this.endpoint.reply(r.owner, { t: MT.LeaseSpillback, leaseReqId: r.id, nodeId: node.nodeId, raylet: node.endpoint });
  }

  /** Grants what can be granted, starts workers for the rest. */
  private schedule(): void {
    if (this.stopped) return;
    let blockedOnResources = false;
    const wantWorkers = new Map<string, { job: JobConfig; env: Record<string, string> | undefined; workerKey: string; needs: EnvNeeds; n: number }>();
    const still: LeaseRequest[] = [];
    for (const r of this.pending) {
      const where = this.place(r);
      if (where.kind === 'spill') {
        this.spill(r, where.node);
        continue;
      }
      if (where.kind === 'fail') {
        this.endpoint.reply(r.owner, { t: MT.LeaseFailed, leaseReqId: r.id, message: where.message });
        continue;
      }
      if (where.kind === 'wait') {
        still.push(r);
        continue;
      }
      if (where.kind === 'infeasible') {
        // a placement group's request waits for its bundles: the group says why it is pending
        if (!r.warned && groupOf(r.resources) === undefined) {
          r.warned = true;
          const need = { ...r.placement, ...r.resources };
          this.endpoint.reply(r.owner, {
            t: MT.LeaseInfeasible,
            leaseReqId: r.id,
            message:
              `${r.name} cannot be scheduled: it needs ${describe(need)}, but no node has that much ` +
              `(${missing(need, this.total).join('; ')}). ` +
              'It waits until a node with those resources joins. Lower the request in .options(), or start the cluster with more resources.',
          });
        }
        still.push(r);
        continue;
      }
      const job = this.jobs.get(r.jobId);
      if (!job) {
        this.fetchJob(r.jobId);
        still.push(r);
        continue;
      }
      const needs = NodeRuntimeEnvs.of(r, job);
      if (!this.envs.ready(needs)) {
        // its worker starts once its working directory is unpacked and its packages are installed here
        still.push(r);
        continue;
      }
      // workers of different environments never share a process
      const workerKey = NodeRuntimeEnvs.workerKey(r.envKey, needs, job);
      if (!fits(r.placement, this.available) || !fits(r.resources, this.available)) {
        blockedOnResources = true;
        still.push(r);
        continue;
      }
      const gpuNeed = gpuAmount(r.resources);
      const gpus = this.gpus.acquire(gpuNeed);
      if (!gpus) {
        blockedOnResources = true;
        still.push(r);
        continue;
      }
      const w = this.idleWorker(r.jobId, workerKey);
      if (!w) {
        this.gpus.release(gpus);
        const key = `${r.jobId}\0${workerKey}`;
        const want = wantWorkers.get(key) ?? { job, env: r.env, workerKey, needs, n: 0 };
        want.n++;
        wantWorkers.set(key, want);
        still.push(r);
        continue;
      }
      this.grant(r, w, gpus);
    }
    this.pending = still;
    if (wantWorkers.size > 0) {
      let starting = 0;
      const startingByKey = new Map<string, number>();
      for (const w of this.workers.values()) {
        if (w.state !== 'starting') continue;
        starting++;
        const key = `${w.jobId}\0${w.envKey}`;
        startingByKey.set(key, (startingByKey.get(key) ?? 0) + 1);
      }
      for (const [key, want] of wantWorkers) {
        if (!this.mayStart(want.job.jobId)) continue;
        for (let i = startingByKey.get(key) ?? 0; i < want.n && starting < MAX_STARTING; i++, starting++) {
          this.startWorker(want.job, want.env, want.workerKey, want.needs);
        }
      }
    }
    if (blockedOnResources) this.reclaimIdleLeases();
    if (this.resourcesDirty) this.reportSoon();
  }

  /** Reports changed resources on the next turn: once for a burst of changes (e.g. many bundles committed at once). */
  private reportSoon(): void {
    if (this.reportQueued) return;
    this.reportQueued = true;
    setImmediate(() => {
      this.reportQueued = false;
      if (!this.stopped && this.resourcesDirty) this.reportResources();
    });
  }

  private idleWorker(jobId: string, envKey: string): WorkerProc | undefined {
    for (const w of this.workers.values()) if (w.state === 'idle' && !w.stopAsked && w.jobId === jobId && w.envKey === envKey) return w;
    return undefined;
  }

  private setIdle(w: WorkerProc): void {
    w.state = 'idle';
    w.idleSince = Date.now();
  }

  /**
   * Stops task workers beyond the node's CPU count that have been idle for
   * a while (see idle-workers.ts). Each is asked first: one that owns
   * objects or tasks still in use says no and stays.
   */
  private stopIdleWorkers(): void {
    const victims = idleWorkersToStop(this.workers.values(), idleWorkerSoftLimit(this.cfg.resources[CPU] ?? 0), Date.now());
    for (const w of victims) {
      const address = w.address?.endpoint;
      if (!address) continue;
      w.stopAsked = true;
      this.endpoint.call(address, { t: MT.ExitWorker, ifIdle: true }, 5000).then(
        () => undefined, // it exits (onWorkerExit follows)
        (e: Error) => {
          if (w.state === 'dead') return;
          // it still owns something in use, or did not answer: ask again later, after longer each time
          log.debug(`idle worker ${w.workerId} (pid ${w.pid}) stays: ${e.message}`);
          w.stopAsked = false;
          w.stopRefusals++;
          w.idleSince = Date.now() + refusalBackoffMs(w.stopRefusals);
          this.schedule();
        },
      );
    }
  }

  private grant(r: LeaseRequest, w: WorkerProc, gpus: Array<[string, number]>): void {
    const leaseId = randomId(6);
    subtract(this.available, r.resources);
    const l: Lease = { id: leaseId, owner: r.owner, ownerNode: r.ownerNode, resources: r.resources, gpus, worker: w, blocked: false, actorId: r.actorId };
    this.leases.set(leaseId, l);
    w.state = r.actorId ? 'actor' : 'leased';
    w.leaseId = leaseId;
    w.actorId = r.actorId;
    this.endpoint.reply(r.owner, {
      t: MT.LeaseGranted,
      leaseReqId: r.id,
      leaseId,
      worker: w.address as Address,
      gpus: gpus.map(([id]) => id),
      pid: w.pid,
    });
    this.changed();
  }

  private onReturnLease(leaseId: string, kill: boolean): void {
    const l = this.leases.get(leaseId);
    if (!l) return;
    if (kill) {
      // resources come back when the process is gone (onWorkerExit)
      this.kill(l.worker, 'its task was cancelled with force', true);
      return;
    }
    this.endLease(l);
    if (l.worker.state === 'leased') this.setIdle(l.worker);
    this.schedule();
  }

  private endLease(l: Lease): void {
    if (!this.leases.delete(l.id)) return;
    const give: Resources = {};
    // a removed placement group's resources are gone: they do not come back
    for (const k in l.resources) if (k in this.total) give[k] = l.resources[k] as number;
    if (l.blocked) for (const k in cpuPart(l.resources)) delete give[k];
    add(this.available, give);
    this.gpus.release(l.gpus);
    l.worker.leaseId = undefined;
    this.changed();
  }

  /** Resources are short: owners give back leases they are not using. */
  private reclaimIdleLeases(): void {
    const now = Date.now();
    if (now - this.lastReclaim < 20) return;
    this.lastReclaim = now;
    const owners = new Map<string, Peer>();
    for (const l of this.leases.values()) {
      if (l.actorId) continue;
      const key = l.owner.kind === 'router' ? l.owner.key : l.owner.address;
      owners.set(key, l.owner);
    }
    for (const p of owners.values()) this.endpoint.reply(p, { t: MT.ReturnIdleLeases });
  }

  // ------------------------------------------------------------------ processes

  private startWorker(job: JobConfig, env: Record<string, string> | undefined, envKey: string, needs: EnvNeeds): void {
    const renv = this.envs.launch(needs);
    if (!renv) return; // not set up here (yet)
    let w: WorkerProc;
    try {
      w = launchWorker(
        {
          job,
          env,
          envKey,
          sessionDir: this.cfg.sessionDir,
          nodeId: this.cfg.nodeId,
          rayletEndpoint: this.localAddress,
          headAddress: this.cfg.headAddress,
          bindHost: this.cfg.bindHost,
          ...renv,
        },
        (wp, stream, name, line) => this.onWorkerLog(wp, stream, name, line),
        (wp, reason, was) => this.onWorkerExit(wp, reason, was),
      );
    } catch (e) {
      this.onStartFailed(job.jobId, 'a worker', `spawn failed: ${(e as Error).message}`);
      return;
    }
    this.workers.set(w.workerId, w);
    const timeout = this.cfg.workerRegisterTimeoutMs ?? 60_000;
    w.registerTimer = setTimeout(() => this.onRegisterTimeout(w, timeout), timeout);
    w.registerTimer.unref();
    w.proc.once('close', () => this.closeLogFiles(w.workerId));
  }

  /** A started worker never registered: kill it, and stop counting it as starting. */
  private onRegisterTimeout(w: WorkerProc, timeout: number): void {
    w.registerTimer = undefined;
    if (w.state !== 'starting') return;
    this.kill(w, `it did not register within ${timeout} ms`, true);
    if (this.workers.get(w.workerId) === w) this.workers.delete(w.workerId);
    this.onStartFailed(w.jobId, `worker ${w.workerId} (pid ${w.pid})`, `it did not register within ${timeout} ms and was killed`);
    this.schedule();
  }

  private kill(w: WorkerProc, reason: string, force: boolean): void {
    if (w.state === 'dead' || w.killRequested) return;
    w.killRequested = true;
    w.exitReason = reason;
    try {
      w.proc.kill(force ? 'SIGKILL' : 'SIGTERM');
    } catch {
      /* already gone */
    }
  }

  private onWorkerExit(w: WorkerProc, reason: string, was: WorkerState): void {
    if (this.workers.get(w.workerId) === w) this.workers.delete(w.workerId);
    const client = this.clients.get(w.workerId);
    this.clients.delete(w.workerId);
    if (this.stopped) return;
    if (w.slot >= 0) this.sweepSlot(w.slot);
    this.objects.onProcessGone(w.workerId);
    if (was === 'starting' && !w.killRequested) this.onStartFailed(w.jobId, `worker ${w.workerId} (pid ${w.pid})`, reason);
    const l = w.leaseId ? this.leases.get(w.leaseId) : undefined;
    if (l) {
      this.endLease(l);
      if (!l.actorId) this.endpoint.reply(l.owner, { t: MT.LeaseWorkerDied, leaseId: l.id, workerId: w.workerId, reason });
    }
    this.releaseOwnedBy(w.workerId);
    if (client || w.actorId) {
      this.endpoint.send(this.cfg.headAddress, {
        t: MT.WorkerDied,
        nodeId: this.cfg.nodeId,
        workerId: w.workerId,
        reason,
        ...(w.actorId ? { actorId: w.actorId } : {}),
        ...(client || w.address ? { endpoint: client?.endpoint ?? (w.address as Address).endpoint } : {}),
      });
    }
    const address = client?.endpoint ?? w.address?.endpoint;
    if (address) this.broadcastDeath(w.workerId, address, reason);
    if (!w.killRequested && reason !== 'exited with code 0') log.debug(`worker ${w.workerId} (pid ${w.pid}) ${reason}`);
    const job = this.jobs.get(w.jobId);
    // a worker stopped for being idle is not replaced
    if (job && this.driverOf(w.jobId) && was !== 'actor' && !w.actorId && !w.stopAsked) this.prestart(job);
    this.schedule();
  }

  /** Frees what the process in `slot` allocated or owned: arena blocks and spilled objects. */
  private sweepSlot(slot: number): void {
    try {
      arenaAddon().sweep(this.arena, slot);
    } catch (e) {
      log.error(`could not free the objects of slot ${slot}: ${(e as Error).message}`);
    }
    fs.rm(spillDirOf(this.cfg.spillDir, slot), { recursive: true, force: true }, (e) => {
      if (e) log.warn(`could not remove spilled objects of slot ${slot}: ${e.message}`);
    });
  }

  /** Tells every process here that one died (its objects are lost, its requests will not be answered). */
  private broadcastDeath(workerId: string, address: string, reason: string): void {
    this.endpoint.disconnect(address, reason);
    removeIpcFile(address);
    for (const c of this.clients.values()) this.endpoint.send(c.endpoint, { t: MT.ProcessDied, workerId, endpoint: address, reason });
  }

  private checkDrivers(): void {
    for (const c of [...this.clients.values()]) {
      if (c.kind !== 'driver') continue;
      try {
        process.kill(c.pid, 0);
      } catch {
        this.onDriverExit(c);
      }
    }
  }

  /** A process exited: the leases it held as an owner come back, its requests go. */
  private releaseOwnedBy(workerId: string): void {
    const mine = (p: Peer): boolean => p.kind === 'router' && p.key === workerId;
    for (const l of [...this.leases.values()]) {
      if (!mine(l.owner) || l.actorId) continue;
      this.endLease(l);
      if (l.worker.state === 'leased') this.setIdle(l.worker);
    }
    this.pending = this.pending.filter((r) => !mine(r.owner));
  }

  private onDriverExit(c: Client): void {
    this.clients.delete(c.workerId);
    this.sweepSlot(c.slot);
    this.objects.onProcessGone(c.workerId);
    this.releaseOwnedBy(c.workerId);
    this.endpoint.send(this.cfg.headAddress, { t: MT.WorkerDied, nodeId: this.cfg.nodeId, workerId: c.workerId, reason: 'the driver exited', endpoint: c.endpoint });
    this.broadcastDeath(c.workerId, c.endpoint, 'the driver exited');
    if (c.jobId) this.onJobFinished(c.jobId);
  }

  private onJobFinished(jobId: string): void {
    this.finishedJobs.add(jobId);
    if (this.finishedJobs.size > 10_000) this.finishedJobs.delete(this.finishedJobs.values().next().value as string);
    // actor workers stay: the head ends those of non-detached actors
    for (const w of this.workers.values()) {
      if (w.jobId === jobId && w.state !== 'actor') this.kill(w, 'its job finished', true);
    }
    for (const [id, c] of this.clients) if (c.kind === 'driver' && c.jobId === jobId) this.clients.delete(id);
    this.pending = this.pending.filter((r) => r.jobId !== jobId || r.actorId !== undefined);
    this.startFailures.delete(jobId);
  }

  // ------------------------------------------------------------------ logs

  private onWorkerLog(w: WorkerProc, stream: 0 | 1, name: string, line: string): void {
    const job = this.jobs.get(w.jobId);
    // a driver on another node gets its workers' output over the network
    const driver = job && job.logToDriver ? (this.driverOf(w.jobId) ?? (this.finishedJobs.has(w.jobId) ? undefined : job.driver.endpoint)) : undefined;
    if (!driver) {
      this.appendLogFile(w, stream, name, line);
      return;
    }
    let batch = this.logBatches.get(driver);
    if (!batch) this.logBatches.set(driver, (batch = []));
    batch.push([stream, `${name} pid=${w.pid}`, line]);
    if (!this.logTimer) this.logTimer = setTimeout(() => this.flushLogs(), 10);
  }

  private driverOf(jobId: string): string | undefined {
    for (const c of this.clients.values()) if (c.kind === 'driver' && c.jobId === jobId) return c.endpoint;
    return undefined;
  }

  private flushLogs(): void {
    this.logTimer = undefined;
    for (const [endpoint, lines] of this.logBatches) this.endpoint.send(endpoint, { t: MT.Logs, lines });
    this.logBatches.clear();
  }

  /** Appends a line to the worker's log file, through a stream kept open while the worker lives. */
  private appendLogFile(w: WorkerProc, stream: 0 | 1, name: string, line: string): void {
    const file = `worker-${w.workerId}.${stream === 0 ? 'out' : 'err'}`;
    let out = this.logFiles.get(file);
    if (!out) {
      const dir = path.join(this.cfg.sessionDir, 'logs');
      try {
        fs.mkdirSync(dir, { recursive: true });
      } catch {
        return; // logs are best effort
      }
      out = fs.createWriteStream(path.join(dir, file), { flags: 'a' });
      out.on('error', (e) => {
        log.debug(`worker log ${file}: ${e.message}`);
        this.logFiles.delete(file);
      });
      this.logFiles.set(file, out);
    }
    out.write(`(${name} pid=${w.pid}) ${line}\n`);
  }

  /** Closes a worker's log files (its output has ended). */
  private closeLogFiles(workerId: string): void {
    for (const ext of ['out', 'err']) {
      const file = `worker-${workerId}.${ext}`;
      this.logFiles.get(file)?.end();
      this.logFiles.delete(file);
    }
  }

  // ------------------------------------------------------------------ resources

  private changed(): void {
    this.resourcesDirty = true;
  }

  private reportResources(): void {
    this.resourcesDirty = false;
    // unblocked tasks may oversubscribe the node for a while: report none free then
    const available: Resources = {};
    for (const [k, v] of Object.entries(this.available)) available[k] = Math.max(0, v);
    this.endpoint.send(this.cfg.headAddress, { t: MT.NodeResources, nodeId: this.cfg.nodeId, available, total: this.total, demand: this.demand() });
  }

  /** Pending requests by resource shape (for `tsray status`), the 20 largest groups. */
  private demand(): Demand[] {
    const by = new Map<string, Demand>();
    for (const r of this.pending) {
      const need = { ...r.placement, ...r.resources };
      const key = describe(need);
      const d = by.get(key);
      if (d) d.n++;
      else by.set(key, { resources: need, n: 1 });
    }
    return [...by.values()].sort((x, y) => y.n - x.n).slice(0, 20);
  }

  private stats(): unknown {
    const byState: Record<string, number> = {};
    for (const w of this.workers.values()) byState[w.state] = (byState[w.state] ?? 0) + 1;
    return {
      workers: byState,
      workerPids: [...this.workers.values()].map((w) => w.pid),
      leases: this.leases.size,
      leaseList: [...this.leases.values()].map((l) => ({
        id: l.id,
        owner: l.owner.kind === 'router' ? l.owner.key : l.owner.address,
        worker: l.worker.workerId,
        blocked: l.blocked,
        actor: l.actorId ?? null,
        resources: l.resources,
      })),
      pending: this.pending.length,
      available: this.available,
      total: this.total,
      store: arenaAddon().stats(this.arena),
      prefault: arenaAddon().prefaultStatus(this.arena),
      transfers: this.objects.stats(),
      clients: this.clients.size,
      ...this.envs.stats(),
    };
  }

  // ------------------------------------------------------------------ stop

  /**
   * Kills every worker, waits for them (3 s at most), flushes worker logs,
   * and frees the store and the spill directory. Never rejects; idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.envs.stop();
    if (this.driverWatch) clearInterval(this.driverWatch);
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.idleReaper) clearInterval(this.idleReaper);
    if (this.recheckTimer) clearTimeout(this.recheckTimer);
    this.objects?.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.logTimer) {
      clearTimeout(this.logTimer);
      this.logTimer = undefined;
      this.attempt('send the last worker logs', () => this.flushLogs());
    }
    const exits = [...this.workers.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.registerTimer) clearTimeout(w.registerTimer);
          if (w.state === 'dead' || w.proc.exitCode !== null || w.proc.signalCode !== null) return resolve();
          w.proc.once('exit', () => resolve());
          try {
            w.proc.kill('SIGKILL');
          } catch {
            resolve();
          }
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exits), new Promise<void>((r) => (timer = setTimeout(r, 3000)))]);
    clearTimeout(timer);
    await this.closeAllLogFiles();
    this.attempt('close its endpoint', () => this.endpoint?.close());
    this.cancelPrefault?.();
    this.attempt('close the object store', () => arenaAddon().close(this.arena));
    this.attempt('remove the spill directory', () => fs.rmSync(this.cfg.spillDir, { recursive: true, force: true }));
  }

  /** Ends every log stream and waits (1 s at most) for them to reach their files. */
  private async closeAllLogFiles(): Promise<void> {
    const ends = [...this.logFiles.values()].map((out) => new Promise<void>((resolve) => out.end(() => resolve())));
    this.logFiles.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(ends), new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
  }

  private attempt(what: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      log.error(`while stopping, could not ${what}: ${(e as Error).message}`);
    }
  }
}
