/**
 * The head's placement group table (Ray's GCS placement group manager and
 * scheduler): it places each group's bundles on nodes by the group's
 * strategy, reserves them atomically with a two-phase commit to the node
 * managers (prepare everywhere, then commit; any refusal cancels the rest and
 * the group waits for resources to change), keeps waiting groups pending with
 * a reason, places again the bundles of a node that died, and removes groups
 * (their actors die, node managers end their leases and free the resources).
 * @internal
 */
import { log } from '../log';
import { MT, type Bundle, type MessageOf, type PlacementGroupInfo, type Resources } from '../protocol/messages';
import type { Endpoint, Peer } from '../transport/endpoint';
import { add, subtract } from '../raylet/resources';
import { bundleMarker, bundleResources } from '../placement/resource-names';
import { PLACERS, type NodeCapacity } from '../placement/strategies';

/** A node as the head sees it (its fields are the head's live view, updated in place). */
export interface HeadNode extends NodeCapacity {
  endpoint: string;
  alive: boolean;
}

/** What the placement group table needs from the head. */
export interface PlacementGroupHost {
  readonly endpoint: Endpoint;
  /** every node the head knows, alive or not */
  nodes(): Iterable<HeadNode>;
  /** kills the actors placed in the group */
  killActorsOf(pgId: string, reason: string): void;
  /** a group was created, or its bundles moved: node managers and waiting actors hear of it now */
  onGroupPlaced(): void;
}

interface Waiter {
  peer: Peer;
  reqId: number;
  timer: NodeJS.Timeout | undefined;
}

interface GroupRecord {
  info: PlacementGroupInfo;
  /** where warnings about it go */
  creator: string;
  /** node of each bundle once committed (or kept from before a node died) */
  placed: Array<string | undefined>;
  /** a two-phase commit is under way */
  inFlight: boolean;
  attempt: number;
  warned: boolean;
  waiters: Waiter[];
  /** what this group took from each node's free resources in the head's view, and what it added */
  taken: Map<string, Resources>;
  added: Map<string, Resources>;
}

/** A group's record, nothing placed or under way yet. */
function newRecord(info: PlacementGroupInfo, creator: string, placed: Array<string | undefined>): GroupRecord {
  return { info, creator, placed, inFlight: false, attempt: 0, warned: false, waiters: [], taken: new Map(), added: new Map() };
}

/** Removed groups kept in the table (oldest go first). */
const REMOVED_KEPT = 1000;
/** How long a node manager has to answer a prepare or commit. */
const PHASE_TIMEOUT_MS = 10_000;

/** See the module comment. */
export class PlacementGroupTable {
  private readonly groups = new Map<string, GroupRecord>();
  private readonly named = new Map<string, string>();
  /** removed groups, oldest first */
  private readonly removed = new Set<string>();
  /** pending groups not being placed right now */
  private readonly waiting = new Set<GroupRecord>();

  constructor(private readonly host: PlacementGroupHost) {}

  /** Handles a message from a driver or worker about placement groups. */
  onMessage(m: MessageOf<MT.CreatePlacementGroup | MT.RemovePlacementGroup | MT.GetPlacementGroup | MT.ListPlacementGroups | MT.WaitPlacementGroup>, from: Peer): void {
    const ep = this.host.endpoint;
    switch (m.t) {
      case MT.CreatePlacementGroup:
        this.create(m, from);
        break;
      case MT.RemovePlacementGroup:
        this.remove(m.pgId, 'it was removed with removePlacementGroup()');
        ep.respond(from, m.reqId, true);
        break;
      case MT.GetPlacementGroup: {
        const id = m.pgId ?? (m.name !== undefined ? this.named.get(`${m.ns}\0${m.name}`) : undefined);
        const rec = id !== undefined ? this.groups.get(id) : undefined;
        if (rec) ep.respond(from, m.reqId, true, rec.info);
        else {
          const what = m.pgId !== undefined ? `placement group ${m.pgId}` : `placement group named '${m.name ?? ''}' in namespace '${m.ns}'`;
          ep.respond(from, m.reqId, false, undefined, `no ${what} exists (it was never created, or it was removed)`, 'NOT_FOUND');
        }
        break;
      }
      case MT.ListPlacementGroups:
        ep.respond(from, m.reqId, true, [...this.groups.values()].map((r) => r.info));
        break;
      case MT.WaitPlacementGroup:
        this.wait(m, from);
        break;
    }
  }

  private create(m: MessageOf<MT.CreatePlacementGroup>, from: Peer): void {
    const ep = this.host.endpoint;
    if (this.groups.has(m.id)) {
      ep.respond(from, m.reqId, true);
      return;
    }
    if (m.name !== undefined) {
      const key = `${m.ns}\0${m.name}`;
      const existing = this.named.get(key);
      if (existing !== undefined) {
        ep.respond(
          from,
          m.reqId,
          false,
          undefined,
          `a placement group named '${m.name}' already exists in namespace '${m.ns}' (${existing}). ` +
            'Get it with ray.getPlacementGroup(name), remove it first, or choose another name.',
          'NAME_TAKEN',
        );
        return;
      }
      this.named.set(key, m.id);
    }
    const rec = newRecord(
      {
        id: m.id,
        ns: m.ns,
        strategy: m.strategy,
        bundles: m.bundles,
        state: 'PENDING',
        nodes: m.bundles.map(() => ''),
        detached: m.detached,
        jobId: m.jobId,
        ...(m.name !== undefined ? { name: m.name } : {}),
      },
      m.creator,
      m.bundles.map(() => undefined),
    );
    this.groups.set(m.id, rec);
    ep.respond(from, m.reqId, true);
    this.tryPlace(rec);
  }

  private wait(m: MessageOf<MT.WaitPlacementGroup>, from: Peer): void {
    const ep = this.host.endpoint;
    const rec = this.groups.get(m.pgId);
    if (!rec) {
      ep.respond(from, m.reqId, false, undefined, `placement group ${m.pgId} does not exist (it was removed long ago, or never created)`, 'NOT_FOUND');
      return;
    }
    if (rec.info.state === 'CREATED') ep.respond(from, m.reqId, true, true);
    else if (rec.info.state === 'REMOVED') ep.respond(from, m.reqId, false, undefined, `placement group ${m.pgId} was removed: ${rec.info.reason ?? ''}`, 'REMOVED');
    else {
      const w: Waiter = { peer: from, reqId: m.reqId, timer: undefined };
      if (m.timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const i = rec.waiters.indexOf(w);
          if (i >= 0) rec.waiters.splice(i, 1);
          ep.respond(from, m.reqId, true, false);
        }, m.timeoutMs);
      }
      rec.waiters.push(w);
    }
  }

  /** Tries again to place every pending group (resources changed, or a node joined). */
  retry(): void {
    if (this.waiting.size === 0) return;
    for (const rec of [...this.waiting]) this.tryPlace(rec);
  }

  private liveNodes(): HeadNode[] {
    const out: HeadNode[] = [];
    for (const n of this.host.nodes()) if (n.alive) out.push(n);
    return out;
  }

  private tryPlace(rec: GroupRecord): void {
    if (rec.info.state !== 'PENDING' || rec.inFlight) return;
    const nodes = this.liveNodes();
    const r = PLACERS[rec.info.strategy].place(rec.info.bundles, nodes, rec.placed);
    if (!r.ok) {
      this.waiting.add(rec);
      rec.info.reason = r.reason;
      if (r.infeasible && !rec.warned) {
        rec.warned = true;
        const message = `placement group ${rec.info.id}${rec.info.name !== undefined ? ` ('${rec.info.name}')` : ''} (${rec.info.strategy}) cannot be created now: ${r.reason}. pg.ready() keeps waiting; ray.placementGroupTable() shows it as PENDING.`;
        this.host.endpoint.send(rec.creator, { t: MT.PlacementGroupWarning, pgId: rec.info.id, message });
        log.info(message);
      }
      return;
    }
    this.waiting.delete(rec);
    void this.commit(rec, r.nodes);
  }

  /** Two-phase commit of the bundles not placed yet onto `nodes`. */
  private async commit(rec: GroupRecord, nodes: string[]): Promise<void> {
    const ep = this.host.endpoint;
    rec.inFlight = true;
    const attempt = ++rec.attempt;
    const byNode = new Map<string, Bundle[]>();
    for (let i = 0; i < nodes.length; i++) {
      if (rec.placed[i] !== undefined) continue;
      const id = nodes[i] as string;
      let list = byNode.get(id);
      if (!list) byNode.set(id, (list = []));
      list.push({ index: i, resources: rec.info.bundles[i] as Resources });
    }
    const view = new Map<string, HeadNode>();
    for (const n of this.host.nodes()) view.set(n.nodeId, n);
    // count the reservation now, so the next group placed goes elsewhere
    for (const [id, bundles] of byNode) {
      const n = view.get(id) as HeadNode;
      for (const b of bundles) {
        subtract(n.available, b.resources);
        add(this.takenOn(rec, id), b.resources);
      }
    }
    const ids = [...byNode.keys()];
    const prepared = await Promise.all(
      ids.map((id) =>
        ep.call((view.get(id) as HeadNode).endpoint, { t: MT.PrepareBundles, pgId: rec.info.id, bundles: byNode.get(id) as Bundle[] }, PHASE_TIMEOUT_MS).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (this.superseded(rec, attempt)) return; // remove() gave it all back
    if (prepared.some((ok) => !ok)) {
      ids.forEach((id, k) => {
        const indexes = (byNode.get(id) as Bundle[]).map((b) => b.index);
        // a node that did not answer in time may still reserve them: it gives them back too
        ep.send((view.get(id) as HeadNode).endpoint, { t: MT.ReleaseBundles, pgId: rec.info.id, indexes, removed: false, reason: prepared[k] ? 'another node could not reserve its bundles' : 'its reservation came too late' });
      });
      for (const id of ids) this.giveBack(rec, id, byNode.get(id) as Bundle[]);
      rec.inFlight = false;
      rec.info.reason = 'a node could not reserve its bundles (its resources were in use); it waits until resources are free';
      this.waiting.add(rec);
      return;
    }
    const committed = await Promise.all(
      ids.map((id) => ep.call((view.get(id) as HeadNode).endpoint, { t: MT.CommitBundles, pgId: rec.info.id }, PHASE_TIMEOUT_MS).then(() => true, () => false)),
    );
    if (this.superseded(rec, attempt)) return;
    rec.inFlight = false;
    ids.forEach((id, k) => {
      const n = view.get(id) as HeadNode;
      const bundles = byNode.get(id) as Bundle[];
      // a node that died meanwhile (or did not answer: it is dying) holds nothing: those bundles are placed again
      if (!committed[k] || !n.alive) {
        // one that answers late still holds them: it gives them back
        if (n.alive) ep.send(n.endpoint, { t: MT.ReleaseBundles, pgId: rec.info.id, indexes: bundles.map((b) => b.index), removed: false, reason: 'its commit came too late' });
        this.giveBack(rec, id, bundles);
        return;
      }
      for (const b of bundles) {
        rec.placed[b.index] = id;
        rec.info.nodes[b.index] = id;
        const extra = bundleResources(b.resources, rec.info.id, b.index);
        // the node's own report may have come first (in the same frame as its commit reply): it has them already
        if (n.total[bundleMarker(rec.info.id, b.index)] === undefined) {
          add(n.total, extra);
          add(n.available, extra);
        }
        add(this.addedOn(rec, id), extra);
      }
    });
    if (rec.placed.some((p) => p === undefined)) {
      rec.info.state = 'PENDING';
      rec.info.reason = 'a node died while its bundles were being reserved; they are being placed again';
      this.waiting.add(rec);
      this.host.onGroupPlaced();
      queueMicrotask(() => this.tryPlace(rec));
      return;
    }
    rec.info.state = 'CREATED';
    delete rec.info.reason;
    this.host.onGroupPlaced();
    for (const w of rec.waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      ep.respond(w.peer, w.reqId, true, true);
    }
  }

  /** Whether the group was removed since commit attempt `attempt` began. */
  private superseded(rec: GroupRecord, attempt: number): boolean {
    return rec.info.state === 'REMOVED' || attempt !== rec.attempt;
  }

  private takenOn(rec: GroupRecord, nodeId: string): Resources {
    let r = rec.taken.get(nodeId);
    if (!r) rec.taken.set(nodeId, (r = {}));
    return r;
  }

  private addedOn(rec: GroupRecord, nodeId: string): Resources {
    let r = rec.added.get(nodeId);
    if (!r) rec.added.set(nodeId, (r = {}));
    return r;
  }

  /** Puts bundles the head's view counted on `nodeId` back. */
  private giveBack(rec: GroupRecord, nodeId: string, bundles: Bundle[]): void {
    const n = [...this.host.nodes()].find((x) => x.nodeId === nodeId);
    const taken = rec.taken.get(nodeId);
    for (const b of bundles) {
      if (n) add(n.available, b.resources);
      if (taken) subtract(taken, b.resources);
    }
  }

  /** Removes a group (idempotent): its actors die, node managers free its bundles and end its leases. */
  remove(pgId: string, why: string): void {
    const rec = this.groups.get(pgId);
    if (!rec || rec.info.state === 'REMOVED') return;
    const ep = this.host.endpoint;
    const reason = `its placement group ${pgId}${rec.info.name !== undefined ? ` ('${rec.info.name}')` : ''} was removed (${why})`;
    rec.info.state = 'REMOVED';
    rec.info.reason = why;
    rec.attempt++;
    rec.inFlight = false;
    this.waiting.delete(rec);
    if (rec.info.name !== undefined) {
      const key = `${rec.info.ns}\0${rec.info.name}`;
      if (this.named.get(key) === pgId) this.named.delete(key);
    }
    // actors first: their deaths then carry this reason
    this.host.killActorsOf(pgId, reason);
    for (const n of this.host.nodes()) {
      if (!n.alive) continue;
      // the head's view gives back what the group held there
      const added = rec.added.get(n.nodeId);
      if (added) {
        for (const k of Object.keys(added)) {
          delete n.total[k];
          delete n.available[k];
        }
      }
      const taken = rec.taken.get(n.nodeId);
      if (taken) add(n.available, taken);
      // every node hears of it: requests for the group waiting there fail
      ep.send(n.endpoint, { t: MT.ReleaseBundles, pgId, removed: true, reason });
    }
    rec.taken.clear();
    rec.added.clear();
    for (const w of rec.waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      ep.respond(w.peer, w.reqId, false, undefined, `placement group ${pgId} was removed: ${why}`, 'REMOVED');
    }
    this.removed.add(pgId);
    for (const id of this.removed) {
      if (this.removed.size <= REMOVED_KEPT) break;
      this.removed.delete(id);
      this.groups.delete(id);
    }
    this.retry();
  }

  /** A job ended: its groups go, except detached ones. */
  onJobFinished(jobId: string): void {
    for (const rec of [...this.groups.values()]) {
      if (rec.info.jobId === jobId && !rec.info.detached && rec.info.state !== 'REMOVED') this.remove(rec.info.id, 'its job finished');
    }
  }

  /** A node died: the bundles it held are placed again. */
  onNodeDied(nodeId: string): void {
    for (const rec of this.groups.values()) {
      if (rec.info.state === 'REMOVED') continue;
      rec.taken.delete(nodeId);
      rec.added.delete(nodeId);
      let lost = false;
      rec.placed.forEach((p, i) => {
        if (p === nodeId) {
          rec.placed[i] = undefined;
          rec.info.nodes[i] = '';
          lost = true;
        }
      });
      // a group being placed notices the loss when its commit ends
      if (!lost || rec.inFlight) continue;
      rec.info.state = 'PENDING';
      rec.info.reason = `node ${nodeId}, which held some of its bundles, died; they are being placed again`;
      rec.warned = false;
      this.waiting.add(rec);
    }
    this.retry();
  }

  /** The table as the head's state file keeps it (see Head.registerTable). */
  save(): unknown {
    return [...this.groups.values()].map((r) => ({ info: r.info, creator: r.creator, placed: r.placed.map((p) => p ?? null) }));
  }

  /**
   * Takes back a saved table (a head started again). The node managers
   * still hold the committed bundles; the head's view of them comes back
   * with their reports. Groups that were pending are placed again.
   */
  load(data: unknown): void {
    if (!Array.isArray(data)) return;
    for (const g of data as Array<{ info: PlacementGroupInfo; creator: string; placed: Array<string | null> }>) {
      const rec = newRecord(g.info, g.creator, g.placed.map((p) => p ?? undefined));
      this.groups.set(rec.info.id, rec);
      if (rec.info.state === 'REMOVED') this.removed.add(rec.info.id);
      else {
        if (rec.info.name !== undefined) this.named.set(`${rec.info.ns}\0${rec.info.name}`, rec.info.id);
        if (rec.info.state === 'PENDING') this.waiting.add(rec);
      }
    }
  }

  /** Stops the timers of waiters (the head stops). */
  stop(): void {
    for (const rec of this.groups.values()) for (const w of rec.waiters) if (w.timer) clearTimeout(w.timer);
  }

  /** The state of a group, or undefined for one the head does not know. */
  stateOf(pgId: string): PlacementGroupInfo['state'] | undefined {
    return this.groups.get(pgId)?.info.state;
  }
}
