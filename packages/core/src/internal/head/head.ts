/**
 * The head (Ray's GCS): cluster metadata. Nodes and their resources, jobs,
 * actors (it schedules them on nodes, restarts them, and tells subscribers
 * where they live), named actors per namespace, and a small KV store.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { jobIdFromNumber, randomId } from '../ids';
import { RateLimitedLog, log } from '../log';
import {
  ActorState,
  MT,
  type ActorInfo,
  type ActorSpec,
  type Address,
  type JobConfig,
  type Message,
  type MessageOf,
  type NodeInfo,
  type Resources,
} from '../protocol/messages';
import { Endpoint, type Peer } from '../transport/endpoint';
import { fits, subtract as subtractView } from '../raylet/resources';
import { groupOf } from '../placement/resource-names';
import { PlacementGroupTable } from './placement-groups';
import { HeadStateFile, type PersistedTable } from './persistence';
import { PACKAGE_KV_NS } from '../runtime-env/archive';

interface ActorRecord {
  spec: ActorSpec;
  info: ActorInfo;
  /** node and worker it runs on */
  nodeId: string | undefined;
  workerId: string | undefined;
  leaseReqId: string | undefined;
  /** its lease request waits at a node that had no room when it was sent (another node may take it sooner) */
  queued?: boolean;
  noRestart: boolean;
  /** why it is being killed, if it is */
  killReason: string | undefined;
}

interface Job {
  jobId: string;
  driver: Address;
  ns: string;
  alive: boolean;
}

/** Resources with negative amounts (counted ahead of the node's report) shown as 0. */
function nonNegative(r: Resources): Resources {
  const out: Resources = {};
  for (const k in r) out[k] = Math.max(0, r[k] as number);
  return out;
}

/** Whether two resource sets are equal. */
function sameResources(a: Resources, b: Resources): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

const peerKey = (p: Peer): string => (p.kind === 'router' ? p.key : p.address);

/**
 * Dead actors whose records the head keeps (oldest go first), so that
 * handles that look them up later still learn how they died.
 */
const DEAD_ACTORS_KEPT = 1000;
/** Settings of ended jobs the head keeps (for their detached actors' restarts). */
const JOB_CONFIGS_KEPT = 1000;
/** Node managers hear of resource changes at most this often. */
const VIEW_INTERVAL_MS = 10;

/**
 * A node that sends nothing for this long is dead (its node manager reports
 * every HEARTBEAT_MS). TSRAY_NODE_TIMEOUT_MS overrides it. It is long (Ray's
 * health check gives a node 10 s and more) because a loaded machine can keep
 * a live process from running for seconds; a node whose process exits is
 * found sooner, when its connection closes (NODE_LOST_GRACE_MS).
 */
function nodeTimeoutMs(): number {
  const v = Number(process.env.TSRAY_NODE_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 10_000;
}

/**
 * A node whose connection closed (its node manager exited or was killed; a
 * live process's connection comes back within ZeroMQ's reconnect interval)
 * and that sent nothing since is dead after this long.
 */
const NODE_LOST_GRACE_MS = 1000;

/** How the head keeps its tables. */
export interface HeadOptions {
  /** file the tables are written to (none: they live in memory only) */
  stateFile?: string;
  /** take back the tables in `stateFile` (a head started again) */
  restore?: boolean;
}

/**
 * A node the head knows. `restored`: read from the state file of an earlier
 * head and not registered again yet (it is not used until it does).
 */
type NodeRecord = NodeInfo & { peer: Peer | undefined; restored?: boolean };

/** Messages after which the tables on disk are out of date. */
const MUTATING = new Set<MT>([
  MT.RegisterNode,
  MT.RegisterJob,
  MT.JobFinished,
  MT.PutJobConfig,
  MT.RegisterActor,
  MT.ActorCreated,
  MT.SubscribeActor,
  MT.UnsubscribeActor,
  MT.KillActor,
  MT.ActorOutOfScope,
  MT.WorkerDied,
  MT.LeaseGranted,
  MT.LeaseSpillback,
  MT.LeaseFailed,
  MT.KvPut,
  MT.KvDel,
  MT.CreatePlacementGroup,
  MT.RemovePlacementGroup,
]);

/** See the module comment. Created by head/main.ts; {@link start} brings it up. */
export class Head {
  private endpoint!: Endpoint;
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly jobs = new Map<string, Job>();
  private jobCounter = 0;
  private readonly actors = new Map<string, ActorRecord>();
  /** actors whose lease request waits at a node that had no room (see placeQueuedElsewhere) */
  private readonly queuedActors = new Set<ActorRecord>();
  /** indexes of `actors`: by pending lease request, by worker, by owner */
  private readonly byLeaseReq = new Map<string, ActorRecord>();
  private readonly byWorker = new Map<string, ActorRecord>();
  private readonly byOwner = new Map<string, Set<ActorRecord>>();
  /** dead actors, oldest first (insertion order), pruned past DEAD_ACTORS_KEPT */
  private readonly dead = new Set<string>();
  /** alias (a getIfExists id) -> actor id, and back */
  private readonly aliases = new Map<string, string>();
  private readonly aliasesOf = new Map<string, Set<string>>();
  private readonly named = new Map<string, string>();
  private readonly subs = new Map<string, Map<string, { peer: Peer; as: string }>>();
  private readonly kv = new Map<string, Map<string, Uint8Array>>();
  private readonly nodeWaiters: Array<() => void> = [];
  private readonly deadNodeLog = new RateLimitedLog();
  /** settings of jobs' workers, kept after a job ends for its detached actors (oldest go first) */
  private readonly jobConfigs = new Map<string, JobConfig>();
  private viewTimer: NodeJS.Timeout | undefined;
  /** when each node was last heard from */
  private readonly lastSeen = new Map<string, number>();
  private healthTimer: NodeJS.Timeout | undefined;
  /** when checkHealth last ran (a late run means the head itself was stalled) */
  private lastHealthCheck = 0;
  private readonly nodeTimeout = nodeTimeoutMs();
  /** nodes whose connection is watched, and when it dropped (while it is down) */
  private readonly watched = new Map<string, { lostAt?: number; timer?: NodeJS.Timeout }>();
  /** round-robin position of SPREAD actors */
  private spreadNext = 0;
  private readonly pgs: PlacementGroupTable = this.makePlacementGroupTable();
  /** actors waiting for placement group bundles are scheduled on the next turn */
  private placedSoon = false;

  private makePlacementGroupTable(): PlacementGroupTable {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const head = this;
    return new PlacementGroupTable({
      get endpoint() {
        return head.endpoint;
      },
      nodes: () => this.nodes.values(),
      killActorsOf: (pgId, reason) => {
        for (const rec of [...this.actors.values()]) {
          if (rec.info.state !== ActorState.Dead && groupOf({ ...rec.spec.placement, ...rec.spec.hold }) === pgId) this.kill(rec, true, reason);
        }
      },
      onGroupPlaced: () => {
        // node managers and waiting actors hear of new bundles soon (once for many groups)
        this.viewChanged();
        this.tablesChanged();
        if (this.placedSoon) return;
        this.placedSoon = true;
        setImmediate(() => {
          this.placedSoon = false;
          this.scheduleWaiting();
        });
      },
    });
  }

  private readonly state: HeadStateFile | undefined;
  /** head nodes of an earlier head (read from the state file): they stopped with it */
  private earlierHeadNodes: string[] = [];

  constructor(private readonly opts: HeadOptions = {}) {
    if (opts.stateFile !== undefined) this.state = new HeadStateFile(opts.stateFile, () => this.snapshot());
    // placement groups survive a head restart with the other tables
    this.registerTable('placementGroups', { save: () => this.pgs.save(), load: (d) => this.pgs.load(d) });
  }

  /** Listens at each address (the first is the one given to others); returns the first. */
  async start(addresses: string[]): Promise<string> {
    if (this.state && this.opts.restore) {
      const saved = this.state.read();
      if (saved) this.restore(saved);
    }
    const [first, ...rest] = addresses;
    this.endpoint = await Endpoint.bind(first as string, `head-${randomId(4)}`, (m, from) => this.onMessage(m, from), {}, rest);
    this.lastHealthCheck = Date.now();
    this.healthTimer = setInterval(() => this.checkHealth(), this.healthIntervalMs());
    // the earlier head's node stopped with it: its actors restart elsewhere, its drivers' jobs end
    for (const id of this.earlierHeadNodes.splice(0)) this.onNodeDied(id, 'it was the node of the earlier head, which stopped');
    this.state?.write();
    return this.endpoint.address;
  }

  /** Sizes of the head's tables, to see that nothing grows without bound. */
  private stats(): Record<string, number> {
    let subs = 0;
    for (const s of this.subs.values()) subs += s.size;
    return {
      nodes: this.nodes.size,
      jobs: this.jobs.size,
      actors: this.actors.size,
      byLeaseReq: this.byLeaseReq.size,
      byWorker: this.byWorker.size,
      byOwner: this.byOwner.size,
      dead: this.dead.size,
      aliases: this.aliases.size,
      named: this.named.size,
      subs,
      kvNamespaces: this.kv.size,
      nodeWaiters: this.nodeWaiters.length,
    };
  }

  /**
   * Adds a table to the head's state file (placement groups and other
   * tables of the head): it is written with the head's own tables, and a
   * head started again from the file gets it back through `table.load`.
   * Call {@link tablesChanged} after each change.
   * @throws TypeError when the name is taken
   */
  registerTable(name: string, table: PersistedTable): void {
    this.state?.registerTable(name, table);
  }

  /** The tables changed: they are written to the state file soon. */
  tablesChanged(): void {
    this.state?.changed();
  }

  /** The address others reach the head at. */
  get address(): string {
    return this.endpoint.address;
  }

  /** All addresses the head listens at. */
  get addresses(): string[] {
    return this.endpoint.addresses;
  }

  /** Resolves once `n` nodes registered. */
  waitForNodes(n: number): Promise<void> {
    if (this.nodes.size >= n) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.nodes.size >= n) resolve();
        else this.nodeWaiters.push(check);
      };
      check();
    });
  }

  private onMessage(m: Message, from: Peer): void {
    switch (m.t) {
      case MT.RegisterNode: {
        const known = this.nodes.get(m.nodeId);
        if (known && !known.alive) {
          // owners already gave up what lived there: the id is never used again
          const why = `node ${m.nodeId} was marked dead; a node that comes back must join with a new id`;
          this.endpoint.respond(from, m.reqId, false, undefined, why, 'NODE_DEAD');
          this.endpoint.reply(from, { t: MT.NodeExit, reason: why });
          break;
        }
        this.lastSeen.set(m.nodeId, Date.now());
        this.nodes.set(m.nodeId, {
          nodeId: m.nodeId,
          endpoint: m.endpoint,
          address: m.address,
          alive: true,
          total: m.total,
          available: { ...m.total },
          pid: m.pid,
          isHead: m.isHead,
          sessionDir: m.sessionDir,
          arenaPath: m.arenaPath,
          peer: from,
        });
        this.endpoint.respond(from, m.reqId, true);
        if (!m.isHead) this.watchNode(m.nodeId, m.endpoint);
        if (known?.restored || m.actors) this.takeBackActors(m.nodeId, m.actors ?? []);
        for (const w of this.nodeWaiters.splice(0)) w();
        this.viewChanged();
        this.scheduleWaiting();
        this.pgs.retry();
        break;
      }
      case MT.NodeResources: {
        const n = this.nodes.get(m.nodeId);
        if (n && !n.alive) {
          // Ray too: a node marked dead is told to exit, it is never used again
          this.deadNodeLog.warn(n.nodeId, `node ${n.nodeId} was marked dead (it sent nothing for ${this.nodeTimeout} ms) but is still running; it is told to exit`);
          this.endpoint.reply(from, { t: MT.NodeExit, reason: `the head marked node ${n.nodeId} dead (no heartbeat for ${this.nodeTimeout} ms)` });
        } else if (!n || n.restored) {
          // this head started after the node registered: it registers again, with its actors
          this.endpoint.reply(from, { t: MT.ReRegisterNode });
        } else if (n) {
          this.lastSeen.set(m.nodeId, Date.now());
          if (m.demand && m.demand.length > 0) n.demand = m.demand;
          else delete n.demand;
          // most reports are heartbeats with nothing new
          if (!sameResources(n.available, m.available) || !sameResources(n.total, m.total)) {
            n.available = m.available;
            n.total = m.total;
            this.viewChanged();
            this.pgs.retry();
            if (this.queuedActors.size > 0) this.retryQueued();
          }
        }
        break;
      }
      case MT.PutJobConfig:
        this.jobConfigs.set(m.job.jobId, m.job);
        if (this.jobConfigs.size > JOB_CONFIGS_KEPT) {
          for (const id of this.jobConfigs.keys()) {
            if (this.jobConfigs.size <= JOB_CONFIGS_KEPT) break;
            if (!this.jobs.has(id)) this.jobConfigs.delete(id);
          }
        }
        this.endpoint.respond(from, m.reqId, true);
        break;
      case MT.GetJobConfig: {
        const cfg = this.jobConfigs.get(m.jobId);
        if (cfg) this.endpoint.respond(from, m.reqId, true, cfg);
        else this.endpoint.respond(from, m.reqId, false, undefined, `job ${m.jobId} is unknown (it ended long ago, or never registered)`, 'NOT_FOUND');
        break;
      }
      case MT.RegisterJob: {
        const jobId = jobIdFromNumber(++this.jobCounter);
        const ns = m.ns ?? `anonymous-${randomId(6)}`;
        this.jobs.set(jobId, { jobId, driver: m.driver, ns, alive: true });
        this.endpoint.respond(from, m.reqId, true, { jobId, ns });
        break;
      }
      case MT.JobFinished:
        this.onJobFinished(m.jobId);
        if (m.reqId !== undefined) this.endpoint.respond(from, m.reqId, true);
        break;
      case MT.HeadStats:
        this.endpoint.respond(from, m.reqId, true, this.stats());
        break;
      case MT.Ping:
        this.endpoint.respond(from, m.reqId, true);
        break;
      case MT.GetClusterInfo:
        this.endpoint.respond(
          from,
          m.reqId,
          true,
          [...this.nodes.values()].map(({ peer: _p, restored, ...n }) => ({ ...n, alive: n.alive && !restored, available: nonNegative(n.available) })),
        );
        break;
      case MT.RegisterActor:
        this.onRegisterActor(m, from);
        break;
      case MT.ActorCreated:
        this.onActorCreated(m);
        break;
      case MT.SubscribeActor:
        this.subscribe(m.actorId, from);
        break;
      case MT.UnsubscribeActor:
        this.subs.get(this.aliases.get(m.actorId) ?? m.actorId)?.delete(peerKey(from));
        break;
      case MT.GetActor: {
        const id = this.named.get(`${m.ns}\0${m.name}`);
        const rec = id ? this.actors.get(id) : undefined;
        if (!rec || rec.info.state === ActorState.Dead) {
          this.endpoint.respond(from, m.reqId, false, undefined, `no live actor is named '${m.name}' in namespace '${m.ns}'`, 'NOT_FOUND');
        } else this.endpoint.respond(from, m.reqId, true, rec.info);
        break;
      }
      case MT.ListNamedActors: {
        const out: Array<{ name: string; namespace: string }> = [];
        for (const [key, id] of this.named) {
          const [ns, name] = key.split('\0') as [string, string];
          const rec = this.actors.get(id);
          if (!rec || rec.info.state === ActorState.Dead) continue;
          if (m.all || ns === m.ns) out.push({ name, namespace: ns });
        }
        this.endpoint.respond(from, m.reqId, true, out);
        break;
      }
      case MT.KillActor: {
        const rec = this.actors.get(this.aliases.get(m.actorId) ?? m.actorId);
        if (rec) this.kill(rec, m.noRestart, 'it was killed with ray.kill()');
        if (m.reqId !== undefined) this.endpoint.respond(from, m.reqId, true);
        break;
      }
      case MT.ActorOutOfScope: {
        if (this.removeAlias(m.actorId)) break;
        const rec = this.actors.get(m.actorId);
        if (rec && !rec.spec.detached) this.kill(rec, true, 'all references to it were dropped');
        break;
      }
      case MT.WorkerDied:
        this.onWorkerDied(m);
        break;
      case MT.LeaseGranted:
        this.onActorLease(m);
        break;
      case MT.LeaseInfeasible:
        log.warn(m.message);
        break;
      case MT.LeaseSpillback: {
        // the node could not hold the actor after all: another one can
        const rec = this.byLeaseReq.get(m.leaseReqId);
        if (rec && rec.info.state !== ActorState.Dead) {
          rec.nodeId = m.nodeId;
          this.requestActorLease(rec, m.raylet);
        }
        break;
      }
      case MT.LeaseFailed: {
        const rec = this.byLeaseReq.get(m.leaseReqId);
        if (rec && rec.info.state !== ActorState.Dead) {
          this.setLeaseReq(rec, undefined);
          rec.noRestart = true;
          if (m.kind === 'runtimeEnv') rec.info.deathKind = 'runtimeEnv';
          this.markDead(rec, m.message);
        }
        break;
      }
      case MT.CreatePlacementGroup:
      case MT.RemovePlacementGroup:
      case MT.GetPlacementGroup:
      case MT.ListPlacementGroups:
      case MT.WaitPlacementGroup:
        this.pgs.onMessage(m, from);
        break;
      case MT.KvPut: {
        const ns = this.kvNs(m.ns);
        const exists = ns.has(m.key);
        if (!exists || m.overwrite) {
          ns.set(m.key, m.value);
          if (m.ns === PACKAGE_KV_NS) this.savePackage(m.key, m.value);
        }
        this.endpoint.respond(from, m.reqId, true, !exists);
        break;
      }
      case MT.KvGet:
        this.endpoint.respond(from, m.reqId, true, this.kv.get(m.ns)?.get(m.key) ?? null);
        break;
      case MT.KvDel:
        this.endpoint.respond(from, m.reqId, true, this.kv.get(m.ns)?.delete(m.key) ?? false);
        break;
      case MT.KvKeys:
        this.endpoint.respond(from, m.reqId, true, [...(this.kv.get(m.ns)?.keys() ?? [])].filter((k) => k.startsWith(m.prefix)));
        break;
      default:
        log.debug(`head ignored a message of type ${m.t}`);
    }
    if (MUTATING.has(m.t)) this.state?.changed();
  }

  private kvNs(ns: string): Map<string, Uint8Array> {
    let m = this.kv.get(ns);
    if (!m) this.kv.set(ns, (m = new Map()));
    return m;
  }

  // ------------------------------------------------------------------ actors

  private onRegisterActor(m: MessageOf<MT.RegisterActor>, from: Peer): void {
    const spec = m.spec;
    if (spec.name !== undefined) {
      const key = `${spec.ns}\0${spec.name}`;
      const existingId = this.named.get(key);
      const existing = existingId ? this.actors.get(existingId) : undefined;
      if (existing && existing.info.state !== ActorState.Dead) {
        if (m.getIfExists) {
          this.addAlias(spec.id, existing.info.id);
          this.endpoint.respond(from, m.reqId, true, { existing: existing.info.id });
          this.moveSubscribers(spec.id);
          return;
        }
        this.endpoint.respond(
          from,
          m.reqId,
          false,
          undefined,
          `an actor named '${spec.name}' already exists in namespace '${spec.ns}' (actor ${existing.info.id}). ` +
            "Pass getIfExists: true to get that actor, look it up with ray.getActor(), or choose another name.",
          'NAME_TAKEN',
        );
        return;
      }
      this.named.set(key, spec.id);
    }
    const rec: ActorRecord = {
      spec,
      info: {
        id: spec.id,
        state: ActorState.Pending,
        className: spec.cls.name,
        ns: spec.ns,
        jobId: spec.jobId,
        methods: spec.methods,
        cls: spec.cls,
        maxTaskRetries: spec.maxTaskRetries,
        numRestarts: 0,
        owner: spec.owner,
        detached: spec.detached,
        ...(spec.name !== undefined ? { name: spec.name } : {}),
      },
      nodeId: undefined,
      workerId: undefined,
      leaseReqId: undefined,
      noRestart: false,
      killReason: undefined,
    };
    this.actors.set(spec.id, rec);
    let owned = this.byOwner.get(spec.owner.workerId);
    if (!owned) this.byOwner.set(spec.owner.workerId, (owned = new Set()));
    owned.add(rec);
    this.endpoint.respond(from, m.reqId, true, { existing: null });
    this.publish(rec);
    this.schedule(rec);
  }

  /** Picks a node for an actor and asks it for a worker. */
  private schedule(rec: ActorRecord): void {
    const need: Resources = { ...rec.spec.placement, ...rec.spec.hold };
    const sched = rec.spec.sched;
    const pg = groupOf(need);
    const pgState = pg !== undefined ? this.pgs.stateOf(pg) : undefined;
    if (pg !== undefined && (pgState === 'REMOVED' || pgState === undefined)) {
      rec.noRestart = true;
      this.markDead(rec, `it cannot be scheduled: its placement group ${pg} ${pgState === 'REMOVED' ? 'was removed' : 'does not exist'}`);
      return;
    }
    let candidates = [...this.nodes.values()].filter((n) => n.alive && !n.restored && fits(need, n.total));
    if (sched?.nodeId !== undefined) {
      const target = candidates.find((n) => n.nodeId === sched.nodeId);
      if (target) candidates = [target];
      else if (this.nodes.get(sched.nodeId)?.restored) return; // it registers again soon, or is found dead
      else if (!sched.soft) {
        const n = this.nodes.get(sched.nodeId);
        const why = !n ? 'no such node is in the cluster' : !n.alive ? 'that node is dead' : `that node does not have ${JSON.stringify(need)}`;
        rec.noRestart = true;
        this.markDead(rec, `it cannot be scheduled: it must run on node ${sched.nodeId} (node affinity, soft: false), but ${why}`);
        return;
      }
    }
    if (candidates.length === 0) {
      // an actor of a placement group waits for its bundles (the group says why it is pending)
      if (this.nodes.size > 0 && pg === undefined) log.warn(`actor ${rec.info.className} (${rec.info.id}) waits: no node has ${JSON.stringify(need)}`);
      return;
    }
    let node: (typeof candidates)[number] | undefined;
    if (sched?.spread) {
      const free = candidates.filter((n) => fits(need, n.available));
      const pool = free.length > 0 ? free : candidates;
      node = pool[this.spreadNext++ % pool.length];
    } else node = candidates.find((n) => fits(need, n.available)) ?? candidates[0];
    if (!node) return;
    rec.queued = !fits(need, node.available) && pg === undefined && sched?.nodeId === undefined;
    if (rec.queued) this.queuedActors.add(rec);
    else this.queuedActors.delete(rec);
    // the head's view lags: count the actor's resources now, so the next one goes elsewhere
    subtractView(node.available, need);
    rec.nodeId = node.nodeId;
    this.setLeaseReq(rec, `actor-${rec.info.id}-${rec.info.numRestarts}`);
    this.requestActorLease(rec, node.endpoint);
  }

  /** Asks the node manager at `raylet` for the actor's worker. */
  private requestActorLease(rec: ActorRecord, raylet: string): void {
    this.endpoint.send(raylet, {
      t: MT.RequestLease,
      leaseReqId: rec.leaseReqId as string,
      jobId: rec.spec.jobId,
      resources: rec.spec.hold,
      placement: rec.spec.placement,
      ...(rec.spec.env ? { env: rec.spec.env } : {}),
      ...(rec.spec.pkg ? { pkg: rec.spec.pkg } : {}),
      ...(rec.spec.npm ? { npm: rec.spec.npm } : {}),
      actorId: rec.info.id,
      name: rec.info.className,
      spilled: true,
    });
  }

  /** Moves lease requests that wait at a full node to nodes with room (see placeQueuedElsewhere). */
  private retryQueued(): void {
    for (const rec of [...this.queuedActors]) {
      if (!rec.queued || !rec.leaseReqId || rec.workerId || rec.info.state === ActorState.Dead) {
        rec.queued = false;
        this.queuedActors.delete(rec);
        continue;
      }
      this.placeQueuedElsewhere(rec);
    }
  }

  private scheduleWaiting(): void {
    this.retryQueued();
    for (const rec of this.actors.values()) {
      if (rec.queued) continue; // retryQueued
      if ((rec.info.state !== ActorState.Pending && rec.info.state !== ActorState.Restarting) || rec.leaseReqId || rec.workerId) continue;
      // an actor an earlier head placed on a node that has not registered again yet waits for it
      if (rec.nodeId !== undefined && this.nodes.get(rec.nodeId)?.restored) continue;
      this.schedule(rec);
    }
  }

  /**
   * An actor whose lease waits at a node that had no room (the only one that
   * could ever hold it then): when another node has room now (one joined),
   * its request moves there. A grant that crosses the cancel is refused in
   * onActorLease (no record waits for that request any more).
   */
  private placeQueuedElsewhere(rec: ActorRecord): void {
    if (rec.info.state !== ActorState.Pending && rec.info.state !== ActorState.Restarting) return;
    const need: Resources = { ...rec.spec.placement, ...rec.spec.hold };
    const better = [...this.nodes.values()].some((n) => n.alive && !n.restored && n.nodeId !== rec.nodeId && fits(need, n.available));
    if (!better) return;
    const old = rec.nodeId ? this.nodes.get(rec.nodeId) : undefined;
    if (old?.alive && rec.leaseReqId) this.endpoint.send(old.endpoint, { t: MT.CancelLeaseRequest, leaseReqId: rec.leaseReqId });
    this.setLeaseReq(rec, undefined);
    rec.queued = false;
    this.queuedActors.delete(rec);
    this.schedule(rec);
  }

  private setLeaseReq(rec: ActorRecord, id: string | undefined): void {
    if (rec.leaseReqId !== undefined) this.byLeaseReq.delete(rec.leaseReqId);
    rec.leaseReqId = id;
    if (id !== undefined) this.byLeaseReq.set(id, rec);
  }

  private setWorker(rec: ActorRecord, workerId: string | undefined): void {
    if (rec.workerId !== undefined && this.byWorker.get(rec.workerId) === rec) this.byWorker.delete(rec.workerId);
    rec.workerId = workerId;
    if (workerId !== undefined) this.byWorker.set(workerId, rec);
  }

  private onActorLease(m: MessageOf<MT.LeaseGranted>): void {
    const rec = this.byLeaseReq.get(m.leaseReqId);
    if (!rec || rec.info.state === ActorState.Dead) {
      // killed while waiting: the worker is dedicated, so end it
      const node = this.nodes.get(m.worker.nodeId);
      if (node) this.endpoint.send(node.endpoint, { t: MT.KillWorker, workerId: m.worker.workerId, force: true, reason: 'its actor was killed' });
      return;
    }
    this.setLeaseReq(rec, undefined);
    this.setWorker(rec, m.worker.workerId);
    rec.info.address = m.worker;
    rec.info.pid = m.pid;
    this.endpoint.send(m.worker.endpoint, { t: MT.CreateActor, spec: rec.spec, numRestarts: rec.info.numRestarts, gpus: m.gpus });
  }

  private onActorCreated(m: MessageOf<MT.ActorCreated>): void {
    const rec = this.actors.get(m.actorId);
    if (!rec || rec.workerId !== m.workerId || rec.info.state === ActorState.Dead) return;
    if (m.ok) {
      rec.info.state = ActorState.Alive;
      this.publish(rec);
      return;
    }
    rec.noRestart = true;
    this.markDead(rec, 'its constructor threw', m.err);
    this.killWorker(rec, 'its constructor threw');
  }

  private kill(rec: ActorRecord, noRestart: boolean, reason: string): void {
    if (rec.info.state === ActorState.Dead) return;
    rec.noRestart = rec.noRestart || noRestart;
    rec.killReason = reason;
    if (rec.workerId) {
      this.killWorker(rec, reason);
      return;
    }
    if (rec.leaseReqId && rec.nodeId) {
      const node = this.nodes.get(rec.nodeId);
      if (node) this.endpoint.send(node.endpoint, { t: MT.CancelLeaseRequest, leaseReqId: rec.leaseReqId });
    }
    // a lease granted after this is refused in onActorLease (no record waits for it)
    this.setLeaseReq(rec, undefined);
    this.markDead(rec, reason);
  }

  private killWorker(rec: ActorRecord, reason: string): void {
    const node = rec.nodeId ? this.nodes.get(rec.nodeId) : undefined;
    if (node && rec.workerId) this.endpoint.send(node.endpoint, { t: MT.KillWorker, workerId: rec.workerId, force: true, reason });
  }

  private onWorkerDied(m: MessageOf<MT.WorkerDied>): void {
    // processes on other nodes drop what they have from it
    if (m.endpoint !== undefined) {
      for (const n of this.nodes.values()) {
        if (n.alive && n.nodeId !== m.nodeId) this.endpoint.send(n.endpoint, { t: MT.ProcessDied, workerId: m.workerId, endpoint: m.endpoint, reason: m.reason });
      }
    }
    const hosted = this.byWorker.get(m.workerId);
    if (hosted && hosted.info.state !== ActorState.Dead) this.onActorProcessDied(hosted, m.reason);
    else if (hosted) this.setWorker(hosted, undefined);
    // actors owned by the process that died go with it (unless detached)
    for (const rec of [...(this.byOwner.get(m.workerId) ?? [])]) {
      if (!rec.spec.detached && rec.info.state !== ActorState.Dead) this.kill(rec, true, 'its owner (the process that created it) exited');
    }
    this.byOwner.delete(m.workerId);
    for (const job of this.jobs.values()) if (job.alive && job.driver.workerId === m.workerId) this.onJobFinished(job.jobId);
    for (const [id, s] of this.subs) {
      s.delete(m.workerId);
      if (s.size === 0) this.subs.delete(id);
    }
  }

  private onActorProcessDied(rec: ActorRecord, reason: string): void {
    this.setWorker(rec, undefined);
    rec.info.address = undefined;
    const max = rec.spec.maxRestarts;
    const canRestart = !rec.noRestart && (max < 0 || rec.info.numRestarts < max) && this.ownerAlive(rec);
    if (canRestart) {
      // a kill that allowed a restart is over: a later death has its own reason
      rec.killReason = undefined;
      rec.info.numRestarts++;
      rec.info.state = ActorState.Restarting;
      this.publish(rec);
      this.schedule(rec);
      return;
    }
    this.markDead(rec, rec.killReason ?? `its process died (${reason})${max !== 0 ? ' and it has no restarts left' : ''}`);
  }

  private ownerAlive(rec: ActorRecord): boolean {
    if (rec.spec.detached) return true;
    const job = this.jobs.get(rec.spec.jobId);
    return job?.alive ?? false;
  }

  private markDead(rec: ActorRecord, reason: string, cause?: Uint8Array): void {
    rec.info.state = ActorState.Dead;
    rec.info.death = reason;
    if (cause) rec.info.cause = cause;
    rec.info.address = undefined;
    if (rec.spec.name !== undefined) {
      const key = `${rec.spec.ns}\0${rec.spec.name}`;
      if (this.named.get(key) === rec.info.id) this.named.delete(key);
    }
    this.publish(rec);
    // death is final: subscribers were told; later ones get the record at subscribe
    this.subs.delete(rec.info.id);
    this.byOwner.get(rec.info.owner.workerId)?.delete(rec);
    this.dead.add(rec.info.id);
    this.pruneDead();
  }

  /** Forgets the oldest dead actors past DEAD_ACTORS_KEPT, and their aliases. */
  private pruneDead(): void {
    for (const id of this.dead) {
      if (this.dead.size <= DEAD_ACTORS_KEPT) break;
      this.dead.delete(id);
      const rec = this.actors.get(id);
      this.actors.delete(id);
      if (rec) {
        this.setLeaseReq(rec, undefined);
        this.setWorker(rec, undefined);
      }
      for (const alias of this.aliasesOf.get(id) ?? []) this.aliases.delete(alias);
      this.aliasesOf.delete(id);
      this.subs.delete(id);
    }
  }

  private addAlias(alias: string, id: string): void {
    this.aliases.set(alias, id);
    let set = this.aliasesOf.get(id);
    if (!set) this.aliasesOf.set(id, (set = new Set()));
    set.add(alias);
  }

  /** Drops an alias; false if `alias` is not one. */
  private removeAlias(alias: string): boolean {
    const id = this.aliases.get(alias);
    if (id === undefined) return false;
    this.aliases.delete(alias);
    const set = this.aliasesOf.get(id);
    set?.delete(alias);
    if (set?.size === 0) this.aliasesOf.delete(id);
    return true;
  }

  private onJobFinished(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (!job || !job.alive) return;
    job.alive = false;
    for (const rec of [...this.actors.values()]) {
      if (rec.spec.jobId === jobId && !rec.spec.detached) this.kill(rec, true, 'its job finished');
    }
    for (const n of this.nodes.values()) this.endpoint.send(n.endpoint, { t: MT.JobFinished, jobId });
    this.pgs.onJobFinished(jobId);
    // nothing asks about a finished job again: a missing job reads as not alive
    this.jobs.delete(jobId);
  }

  // ------------------------------------------------------------------ node health

  private healthIntervalMs(): number {
    return Math.min(500, this.nodeTimeout / 4);
  }

  /** A node whose connection drops and stays down, with nothing heard from it, is dead (see NODE_LOST_GRACE_MS). */
  private watchNode(nodeId: string, endpoint: string): void {
    if (this.watched.has(nodeId)) return;
    const w: { lostAt?: number; timer?: NodeJS.Timeout } = {};
    this.watched.set(nodeId, w);
    this.endpoint.watch(endpoint, (up) => {
      if (this.watched.get(nodeId) !== w) return;
      if (w.timer) clearTimeout(w.timer);
      w.timer = undefined;
      if (up) {
        w.lostAt = undefined;
        return;
      }
      const lostAt = Date.now();
      w.lostAt = lostAt;
      w.timer = setTimeout(() => {
        w.timer = undefined;
        if (w.lostAt !== lostAt || (this.lastSeen.get(nodeId) ?? 0) > lostAt) return;
        this.onNodeDied(nodeId, `its connection closed and stayed closed for ${Date.now() - lostAt} ms with nothing heard from it (its node manager exited or was killed)`);
      }, NODE_LOST_GRACE_MS);
    });
  }

  private checkHealth(): void {
    const now = Date.now();
    // Time the head itself did not run (a stalled event loop, a machine too
    // busy to schedule it) does not count against the nodes: their heartbeats
    // of that time wait unread in the head's socket.
    const stalled = now - this.lastHealthCheck - this.healthIntervalMs();
    this.lastHealthCheck = now;
    if (stalled > 50) for (const [id, seen] of this.lastSeen) this.lastSeen.set(id, seen + stalled);
    for (const n of this.nodes.values()) {
      // the head's own node manager is its child: if it dies, the head stops too
      if (!n.alive || n.isHead) continue;
      const seen = this.lastSeen.get(n.nodeId) ?? 0;
      if (now - seen > this.nodeTimeout) this.onNodeDied(n.nodeId, `it sent no heartbeat for ${now - seen} ms`);
    }
  }

  /**
   * A node is gone: nothing is placed there again; every node manager (and
   * through it every process) hears of it, so that owners retry the tasks
   * and rebuild the objects that were there; its actors restart elsewhere;
   * jobs whose driver ran there end, with the actors their processes owned.
   */
  private onNodeDied(nodeId: string, why: string): void {
    const n = this.nodes.get(nodeId);
    if (!n || !n.alive) return;
    n.alive = false;
    n.restored = false;
    n.available = {};
    n.deathReason = why;
    delete n.demand;
    this.lastSeen.delete(nodeId);
    const w = this.watched.get(nodeId);
    if (w?.timer) clearTimeout(w.timer);
    this.watched.delete(nodeId);
    log.warn(`node ${nodeId} (${n.address}) is dead: ${why}`);
    this.pgs.onNodeDied(nodeId);
    this.endpoint.disconnect(n.endpoint, `node ${nodeId} died`);
    const reason = `node ${nodeId} died (${why})`;
    for (const o of this.nodes.values()) if (o.alive && !o.restored) this.endpoint.send(o.endpoint, { t: MT.NodeDied, nodeId, endpoint: n.endpoint, reason });
    for (const rec of [...this.actors.values()]) {
      if (rec.nodeId !== nodeId || rec.info.state === ActorState.Dead) continue;
      if (rec.workerId) this.onActorProcessDied(rec, `its node ${nodeId} died`);
      else {
        // waiting for a worker there (or placed there by an earlier head): place it again
        this.setLeaseReq(rec, undefined);
        this.schedule(rec);
      }
    }
    for (const [ownerId, owned] of [...this.byOwner]) {
      const first = owned.values().next().value as ActorRecord | undefined;
      if (first?.spec.owner.nodeId !== nodeId) continue;
      for (const rec of [...owned]) if (!rec.spec.detached && rec.info.state !== ActorState.Dead) this.kill(rec, true, `its owner (the process that created it) died with node ${nodeId}`);
      this.byOwner.delete(ownerId);
    }
    for (const job of [...this.jobs.values()]) if (job.alive && job.driver.nodeId === nodeId) this.onJobFinished(job.jobId);
    this.viewChanged();
    this.state?.changed();
  }

  /**
   * A node registered again (this head restarted): the actors it reports
   * are alive where they are; its actors it does not report died meanwhile.
   */
  private takeBackActors(nodeId: string, hosted: Array<{ actorId: string; address: Address; pid: number }>): void {
    const reported = new Map(hosted.map((h) => [h.actorId, h]));
    for (const rec of [...this.actors.values()]) {
      if (rec.info.state === ActorState.Dead) continue;
      const h = reported.get(rec.info.id);
      // a worker the tables never saw granted may not have built the actor: it goes, and the actor is placed again
      if (h && rec.info.state !== ActorState.Alive && rec.workerId !== h.address.workerId) {
        this.endpoint.send(h.address.endpoint, { t: MT.ExitWorker });
        if (rec.nodeId === nodeId && rec.workerId) this.onActorProcessDied(rec, 'its process ended while the head was down');
        else rec.nodeId = undefined;
      } else if (h) {
        this.setLeaseReq(rec, undefined);
        rec.nodeId = nodeId;
        this.setWorker(rec, h.address.workerId);
        rec.info.address = h.address;
        rec.info.pid = h.pid;
        rec.info.state = ActorState.Alive;
        this.publish(rec);
      } else if (rec.nodeId === nodeId && rec.workerId) this.onActorProcessDied(rec, 'its process ended while the head was down');
    }
    for (const h of hosted) {
      const rec = this.actors.get(h.actorId);
      // an actor the tables do not know (or know as dead) has no use: its worker goes
      if (!rec || rec.info.state === ActorState.Dead) this.endpoint.send(h.address.endpoint, { t: MT.ExitWorker });
    }
  }

  // ------------------------------------------------------------------ persistence

  /** Where runtime-env packages are kept next to the state file, if it is kept. */
  private get packageDir(): string | undefined {
    return this.opts.stateFile !== undefined ? path.join(path.dirname(this.opts.stateFile), 'head-packages') : undefined;
  }

  /** Writes a runtime-env package to its own file (once: a package id names its content). */
  private savePackage(key: string, value: Uint8Array): void {
    const dir = this.packageDir;
    if (dir === undefined) return;
    const file = path.join(dir, encodeURIComponent(key));
    fs.promises
      .mkdir(dir, { recursive: true, mode: 0o700 })
      .then(() => fs.promises.writeFile(`${file}.tmp`, value, { mode: 0o600 }))
      .then(() => fs.promises.rename(`${file}.tmp`, file))
      .catch((e: Error) => log.warn(`could not keep runtime-env package ${key} for a restarted head: ${e.message}`));
  }

  /** Takes back the runtime-env packages an earlier head kept. */
  private loadPackages(): void {
    const dir = this.packageDir;
    if (dir === undefined || !fs.existsSync(dir)) return;
    const ns = this.kvNs(PACKAGE_KV_NS);
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith('.tmp')) continue;
      try {
        ns.set(decodeURIComponent(name), fs.readFileSync(path.join(dir, name)));
      } catch (e) {
        log.warn(`could not read runtime-env package ${name}: ${(e as Error).message}`);
      }
    }
  }

  /** The tables as they are written to the state file. */
  private snapshot(): Record<string, unknown> {
    return {
      jobCounter: this.jobCounter,
      jobs: [...this.jobs.values()],
      jobConfigs: [...this.jobConfigs.values()],
      actors: [...this.actors.values()].map((r) => ({ spec: r.spec, info: r.info, nodeId: r.nodeId ?? null, workerId: r.workerId ?? null, noRestart: r.noRestart })),
      named: [...this.named],
      aliases: [...this.aliases],
      // runtime-env packages (up to 100 MiB each) are files of their own, written once (savePackage)
      kv: [...this.kv].filter(([ns]) => ns !== PACKAGE_KV_NS).map(([ns, m]) => [ns, [...m]]),
      subs: [...this.subs].map(([id, s]) => [id, [...s.values()].flatMap((x) => (x.peer.kind === 'router' ? [[x.peer.key, x.as]] : []))]),
      nodes: [...this.nodes.values()].map(({ peer: _p, restored: _r, demand: _d, ...n }) => n),
    };
  }

  /** Takes back the tables of an earlier head (see HeadStateFile). */
  private restore(s: Record<string, unknown>): void {
    type Saved = {
      jobCounter: number;
      jobs: Job[];
      jobConfigs: JobConfig[];
      actors: Array<{ spec: ActorSpec; info: ActorInfo; nodeId: string | null; workerId: string | null; noRestart: boolean }>;
      named: Array<[string, string]>;
      aliases: Array<[string, string]>;
      kv: Array<[string, Array<[string, Uint8Array]>]>;
      subs: Array<[string, Array<[string, string]>]>;
      nodes: NodeInfo[];
    };
    const t = s as Partial<Saved>;
    this.jobCounter = t.jobCounter ?? 0;
    for (const j of t.jobs ?? []) this.jobs.set(j.jobId, j);
    for (const c of t.jobConfigs ?? []) this.jobConfigs.set(c.jobId, c);
    for (const [ns, entries] of t.kv ?? []) this.kv.set(ns, new Map(entries));
    this.loadPackages();
    for (const [k, id] of t.named ?? []) this.named.set(k, id);
    for (const [alias, id] of t.aliases ?? []) this.addAlias(alias, id);
    const now = Date.now();
    for (const n of t.nodes ?? []) {
      // nodes come back when they register again; those that do not are dead after the usual timeout
      this.nodes.set(n.nodeId, { ...n, peer: undefined, restored: n.alive });
      if (n.alive) this.lastSeen.set(n.nodeId, now);
      if (n.alive && n.isHead) this.earlierHeadNodes.push(n.nodeId);
    }
    for (const a of t.actors ?? []) {
      const rec: ActorRecord = { spec: a.spec, info: a.info, nodeId: a.nodeId ?? undefined, workerId: undefined, leaseReqId: undefined, noRestart: a.noRestart, killReason: undefined };
      this.actors.set(a.info.id, rec);
      if (a.info.state === ActorState.Dead) {
        this.dead.add(a.info.id);
        continue;
      }
      if (a.workerId !== null) this.setWorker(rec, a.workerId);
      let owned = this.byOwner.get(a.spec.owner.workerId);
      if (!owned) this.byOwner.set(a.spec.owner.workerId, (owned = new Set()));
      owned.add(rec);
    }
    for (const [id, list] of t.subs ?? []) {
      const m = new Map<string, { peer: Peer; as: string }>();
      for (const [key, as] of list) m.set(key, { peer: { kind: 'router', id: Buffer.from(key, 'latin1'), key }, as });
      this.subs.set(id, m);
    }
    log.info(`took back the tables of an earlier head: ${this.jobs.size} jobs, ${this.actors.size - this.dead.size} actors, ${this.nodes.size} nodes`);
  }

  // ------------------------------------------------------------------ cluster view

  /** Node resources changed: node managers hear of it soon (batched). */
  private viewChanged(): void {
    if (this.viewTimer) return;
    this.viewTimer = setTimeout(() => {
      this.viewTimer = undefined;
      this.sendView();
    }, VIEW_INTERVAL_MS);
  }

  private sendView(): void {
    const nodes = [...this.nodes.values()].map((n) => ({ nodeId: n.nodeId, endpoint: n.endpoint, alive: n.alive && !n.restored, total: n.total, available: nonNegative(n.available) }));
    for (const n of this.nodes.values()) if (n.alive && !n.restored) this.endpoint.send(n.endpoint, { t: MT.ClusterView, nodes });
  }

  // ------------------------------------------------------------------ subscriptions

  private subscribe(id: string, from: Peer): void {
    const real = this.aliases.get(id) ?? id;
    const rec = this.actors.get(real);
    if (rec) this.endpoint.reply(from, { t: MT.ActorUpdate, info: rec.info, as: id });
    // a dead actor has no more updates; an unknown one may be registering
    if (rec?.info.state === ActorState.Dead) return;
    let s = this.subs.get(real);
    if (!s) this.subs.set(real, (s = new Map()));
    s.set(peerKey(from), { peer: from, as: id });
  }

  /** Subscribers of `alias` (subscribed before it became an alias) move to the actor it stands for. */
  private moveSubscribers(alias: string): void {
    const s = this.subs.get(alias);
    if (!s) return;
    this.subs.delete(alias);
    for (const { peer } of s.values()) this.subscribe(alias, peer);
  }

  private publish(rec: ActorRecord): void {
    const s = this.subs.get(rec.info.id);
    if (!s) return;
    for (const { peer, as } of s.values()) this.endpoint.reply(peer, { t: MT.ActorUpdate, info: rec.info, as });
  }

  /** Closes the head's endpoint. */
  stop(): void {
    this.state?.close();
    if (this.viewTimer) clearTimeout(this.viewTimer);
    if (this.healthTimer) clearInterval(this.healthTimer);
    for (const w of this.watched.values()) if (w.timer) clearTimeout(w.timer);
    this.watched.clear();
    this.pgs.stop();
    this.endpoint?.close();
  }
}
