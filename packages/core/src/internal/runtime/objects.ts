/**
 * The object side of a process's runtime: storing values this process owns
 * (inline, or in the node's shared memory), fetching values of objects it
 * borrows, answering other processes that ask for its objects, reading values
 * (zero-copy from shared memory), freeing them, and waiting for them.
 * @internal
 */
import { GetTimeoutError, NodeDiedError, ObjectFreedError, ObjectLostError, OwnerDiedError, RayError, TaskError } from '../../errors';
import type { ObjectRef } from '../api/object-ref';
import type { IdGenerator } from '../ids';
import type { ObjectStoreClient } from '../objects/object-store';
import { MT, type Address, type Dep, type Location, type ObjectValue, type ReturnObject } from '../protocol/messages';
import type { ActorLike, ActorWire, RefLike } from '../serialization/brands';
import { INLINE_MAX, decodeValue, encodeValue, maxBlobSize, toInlineBlob, type Encoded, type RefFactory } from '../serialization/value-codec';
import type { Endpoint, Peer } from '../transport/endpoint';
import type { Borrowing } from './borrowing';
import { currentTask, type TaskContext } from './executor';
import { RefKind, ValueState, type ReferenceTable, type RefEntry } from './refs';

/** What the object manager needs from the rest of the runtime. */
export interface ObjectManagerHooks {
  readonly self: Address;
  readonly endpoint: Endpoint;
  /** this node's node manager (it pulls objects from other nodes) */
  readonly rayletAddress: string;
  readonly store: ObjectStoreClient;
  readonly refs: ReferenceTable;
  readonly ids: IdGenerator;
  readonly borrowing: () => Borrowing;
  busy(delta: number): void;
  /** a task here starts or stops waiting (workers give their CPU back meanwhile) */
  enterBlocked(ctx: TaskContext | undefined): void;
  exitBlocked(ctx: TaskContext | undefined): void;
  /** Owned objects whose only copy cannot be read any more: rebuild them by lineage, or fail them. */
  recover(entries: RefEntry[], why: string): void;
}

/** A failed pull of owned objects that can be rebuilt is retried after the rebuild, this many times. */
const MAX_REBUILDS_PER_GET = 3;

/** See the module comment. */
export class ObjectManager {
  private readonly fetching = new Set<RefEntry>();
  /** pulls of objects on other nodes under way, by entry */
  private readonly pulls = new Map<RefEntry, Promise<void>>();
  /** the gets and waits in progress (how each ends) */
  private readonly waits = new Set<(err?: Error) => void>();
  /** part of a cluster that spans nodes (this process listens on tcp): objects may live elsewhere */
  private readonly multiNode: boolean;
  readonly factory: RefFactory;
  private readonly self: Address;
  private readonly endpoint: Endpoint;
  private readonly store: ObjectStoreClient;
  private readonly refs: ReferenceTable;
  private readonly ids: IdGenerator;

  constructor(private readonly h: ObjectManagerHooks) {
    this.self = h.self;
    this.endpoint = h.endpoint;
    this.store = h.store;
    this.refs = h.refs;
    this.ids = h.ids;
    this.multiNode = h.self.endpoint.startsWith('tcp://');
    this.factory = {
      ref: (id, owner) => this.materialize(id, owner, RefKind.Object, undefined),
      actor: (wire, owner) => this.materialize(wire.id, owner, RefKind.Actor, wire),
    };
  }

  private busy(delta: number): void {
    this.h.busy(delta);
  }

  private get borrowing(): Borrowing {
    return this.h.borrowing();
  }

  /** An owned object's value goes away (its entry was released or freed). */
  dropOwned(e: RefEntry): void {
    e.lineage = undefined;
    if (e.loc) this.freeLoc(e.loc, e.id);
    e.blob = undefined;
    e.loc = undefined;
    e.local = undefined;
    if (e.state === ValueState.Ready) e.state = ValueState.Freed;
  }

  /**
   * Frees an owned value's bytes in shared memory (or its spill file). In a
   * cluster that spans nodes, the node manager hears of it too: it frees the
   * copies other nodes pulled, and the primary copy when that is elsewhere.
   */
  freeLoc(loc: Location, id: string): void {
    if (loc.node === this.self.nodeId) this.store.free(loc);
    this.store.account(-loc.size);
    if (this.multiNode) this.endpoint.send(this.h.rayletAddress, { t: MT.FreeObjects, objs: [{ id, loc }], hop: 0 });
  }

  /**
   * A returned value nobody will read (its task was cancelled, retried or
   * already settled): free its bytes and let the owners of refs inside it
   * know we do not borrow them.
   */
  discardValue(v: ObjectValue | undefined, id: string): void {
    if (!v) return;
    if (v.loc && v.loc.node === this.self.nodeId) this.store.free(v.loc);
    else if (v.loc && this.multiNode) this.endpoint.send(this.h.rayletAddress, { t: MT.FreeObjects, objs: [{ id, loc: v.loc }], hop: 0 });
    for (const w of v.refs ?? []) {
      if (w.owner.workerId === this.self.workerId) continue;
      this.endpoint.send(w.owner.endpoint, { t: MT.RemoveBorrower, ids: [w.id], borrowerId: this.self.workerId });
    }
  }

  /** This process no longer holds a borrowed object. */
  releaseBorrowed(e: RefEntry, closed: boolean): void {
    this.fetching.delete(e);
    if (e.local) {
      e.local = undefined;
      if (!closed) this.endpoint.send(this.h.rayletAddress, { t: MT.UnpinObjects, ids: [e.id] });
    }
    if (e.weak || closed) return;
    this.borrowing.release(e);
  }

  /** Another process registers as a borrower of objects we own; replies with the ids we no longer have. */
  onAddBorrower(reqId: number, ids: string[], borrower: Address, from: Peer): void {
    const missing: string[] = [];
    for (const id of ids) {
      const e = this.refs.entries.get(id);
      if (e && e.owned && e.state !== ValueState.Freed) this.refs.addBorrower(e, borrower);
      else missing.push(id);
    }
    this.endpoint.respond(from, reqId, true, missing);
  }

  /** Another process no longer borrows objects we own. */
  onRemoveBorrower(ids: string[], borrowerId: string): void {
    for (const id of ids) {
      const e = this.refs.entries.get(id);
      if (e) this.refs.removeBorrower(e, borrowerId);
    }
  }

  /** Borrowed objects whose owner died or lost them: their readers get OwnerDiedError or ObjectLostError. */
  markLost(entries: RefEntry[], reason: string | undefined, ownerId?: string, ownerFate?: string): void {
    for (const e of entries) {
      if (e.state === ValueState.Ready && e.blob) continue; // we still have the value
      if (e.state !== ValueState.Pending && e.state !== ValueState.Ready) continue;
      e.state = ValueState.Lost;
      e.errObj = ownerId ? new OwnerDiedError(e.id, ownerId, ownerFate) : new ObjectLostError(e.id, reason ?? 'it was lost');
      this.fetching.delete(e);
      e.notify();
    }
  }
  /** Stores a value that arrived (a task's return, or a fetched object) in its entry. */
  storeValue(e: RefEntry, v: ObjectValue): void {
    if (v.blob) e.blob = v.blob;
    else if (v.loc) {
      e.loc = v.loc;
      if (e.owned) this.ownLarge(e);
    }
    e.state = ValueState.Ready;
    if (v.refs && v.refs.length > 0) {
      const inner: RefEntry[] = [];
      for (const w of v.refs) {
        const { entry, created } = this.refs.getOrCreate(w.id, w.owner, w.a === 1 ? RefKind.Actor : RefKind.Object);
        if (created && !entry.owned) entry.registered = true;
        inner.push(entry);
      }
      this.refs.setContains(e, inner);
    }
  }

  /** The value of an object as it travels to a worker that runs a task. */
  depValue(e: RefEntry): Dep['val'] {
    return e.blob ? { blob: e.blob } : e.loc ? { loc: e.loc } : {};
  }

  /** An owned object's value is in shared memory: count it, and free it with its entry. */
  ownLarge(e: RefEntry): void {
    if (!e.loc) return;
    this.store.account(e.loc.size);
    this.refs.trackLarge(e);
  }

  /** A reference found while decoding a value. */
  materialize(id: string, owner: Address, kind: RefKind, wire: ActorWire | undefined): object {
    const { entry, created } = this.refs.getOrCreate(id, owner, kind);
    if (wire && entry.actorWire === undefined) entry.actorWire = wire;
    if (kind === RefKind.Actor) entry.state = ValueState.Ready;
    if (created && !entry.owned) this.borrowing.register(entry, currentTask());
    return this.refs.instance(entry);
  }

  /** Asks the owner of a borrowed entry for its value. */
  fetch(e: RefEntry): void {
    if (e.owned || e.state !== ValueState.Pending || this.fetching.has(e)) return;
    this.fetching.add(e);
    this.busy(1);
    this.endpoint
      .request(e.owner.endpoint, { t: MT.GetObject, id: e.id, wait: true })
      .then(
        (r) => {
          if (!this.fetching.delete(e) || e.state !== ValueState.Pending) return;
          if (r.t !== MT.ObjectReply) return;
          if (r.st === 0 && r.val) this.storeValue(e, r.val);
          else if (r.st === 2 && r.err) {
            e.state = ValueState.Error;
            e.err = r.err;
          } else {
            e.state = ValueState.Lost;
            e.errObj = new ObjectLostError(e.id, 'its owner no longer has it (it was freed or its owner restarted)');
          }
          e.notify();
        },
        (err: Error) => {
          if (!this.fetching.delete(e)) return;
          e.state = ValueState.Lost;
          e.errObj = new ObjectLostError(e.id, `its owner could not be reached (${err.message})`);
          e.notify();
        },
      )
      .finally(() => this.busy(-1));
  }
  /** Another process asks for the value of an object we own (waiting for it if pending and `wait`). */
  onGetObject(reqId: number, id: string, wait: boolean, from: Peer): void {
    const e = this.refs.entries.get(id);
    const answer = (): void => {
      const ep = this.endpoint;
      if (!e || !e.owned || e.state === ValueState.Freed) ep.reply(from, { t: MT.ObjectReply, reqId, id, st: 3 });
      else if (e.state === ValueState.Ready) ep.reply(from, { t: MT.ObjectReply, reqId, id, st: 0, val: this.wireValue(e) });
      else if (e.state === ValueState.Pending) ep.reply(from, { t: MT.ObjectReply, reqId, id, st: 1 });
      else ep.reply(from, { t: MT.ObjectReply, reqId, id, st: 2, err: e.err ?? this.encodeLocalError(e.errObj) });
    };
    if (e && e.owned && e.state === ValueState.Pending && wait) e.whenSettled(answer);
    else answer();
  }

  private wireValue(e: RefEntry): ObjectValue {
    const v: ObjectValue = e.blob ? { blob: e.blob } : { loc: e.loc as NonNullable<RefEntry['loc']> };
    if (e.contains && e.contains.length > 0) v.refs = e.contains.map(refWire);
    return v;
  }

  /** Whether this process can read `e`'s value without pulling it from another node. */
  isHere(e: RefEntry): boolean {
    const l = e.loc;
    return l === undefined || e.local !== undefined || l.node === this.self.nodeId;
  }

  /** Decodes an object's value (throws its error). */
  valueOf(e: RefEntry): unknown {
    if (e.state !== ValueState.Ready) throw this.errorOf(e);
    if (e.blob) return decodeValue(e.blob, this.factory, false);
    if (!e.loc) throw new ObjectLostError(e.id, 'it has no value');
    return this.readLoc(e.id, e.local ?? e.loc, e);
  }

  /**
   * Decodes a value in this node's store, in place. Typed arrays in it are
   * views of shared memory: `pin` (the object's entry) is held until they
   * are all collected, so the block is not freed under them. Without an
   * entry to pin, the value is copied out.
   */
  private readLoc(id: string, loc: Location, pin: RefEntry | undefined): unknown {
    if (loc.node !== this.self.nodeId) throw new ObjectLostError(id, `it lives on node ${loc.node}, and no copy was pulled to this node`);
    const sb = this.store.read(loc, id);
    if (!sb.pin || !pin) return decodeValue(sb.bytes, this.factory, false);
    const v = decodeValue(sb.bytes, this.factory, true);
    this.refs.trackView(pin, sb.pin);
    return v;
  }
  /** The error readers of a failed, lost or freed object get. */
  errorOf(e: RefEntry): Error {
    if (e.errObj) return e.errObj;
    if (e.state === ValueState.Freed) return (e.errObj = new ObjectFreedError(e.id));
    if (e.err) return (e.errObj = this.decodeError(e.err));
    return new ObjectLostError(e.id, 'its value is not available');
  }
  /** Decodes a serialized error. */
  decodeError(b: Uint8Array): Error {
    const v = decodeValue(b, this.factory, false);
    return v instanceof Error ? v : new RayError(String(v));
  }

  private encodeLocalError(e: Error | undefined): Uint8Array {
    return toInlineBlob(encodeValue(e ?? new RayError('unknown error')));
  }

  /**
   * Frees an owned object now (ray.free): later gets reject with
   * ObjectFreedError. Bytes that zero-copy views still show are freed when
   * the last view is collected.
   */
  freeNow(e: RefEntry): void {
    this.refs.untrackLarge(e);
    if (e.loc) {
      if (e.views > 0) {
        e.freeAfterViews = e.loc;
      } else this.freeLoc(e.loc, e.id);
    }
    e.blob = undefined;
    e.loc = undefined;
    e.local = undefined;
    e.err = undefined;
    e.state = ValueState.Freed;
    e.errObj = new ObjectFreedError(e.id);
    e.notify();
    const inner = e.contains;
    e.contains = undefined;
    if (inner) {
      for (const i of inner) {
        i.containedIn--;
        this.refs.maybeRelease(i);
      }
    }
  }

  /** Stores a value; returns the owned entry. */
  putValue(value: unknown): RefEntry {
    return this.storeOwned(encodeValue(value));
  }

  /** Stores an encoded value as a new owned object (nothing is left behind if that fails). */
  storeOwned(enc: Encoded): RefEntry {
    const id = this.ids.nextPutId();
    let blob: Uint8Array | undefined;
    let loc: RefEntry['loc'];
    if (maxBlobSize(enc) <= INLINE_MAX) blob = toInlineBlob(enc);
    else loc = this.store.put(enc, id, this.self.slot);
    const e = this.refs.createLocal(id);
    e.blob = blob;
    e.loc = loc;
    if (loc) this.ownLarge(e);
    e.state = ValueState.Ready;
    this.refs.setContains(e, this.entriesOf(enc.refs, enc.actors));
    return e;
  }

  /** The entries of refs a value was serialized with; they are shared from now on. */
  entriesOf(refs: RefLike[], actors: ActorLike[]): RefEntry[] {
    const out: RefEntry[] = [];
    for (const r of refs) {
      const e = (r as unknown as ObjectRef)._entry;
      this.refs.publish(e, r);
      out.push(e);
    }
    for (const a of actors) out.push((a as unknown as { _entry: RefEntry })._entry);
    return out;
  }

  /** The value of `refs` once ready; rejects with the first error. */
  async get(entries: RefEntry[], timeoutMs: number | undefined): Promise<unknown[]> {
    const pending = entries.filter((e) => e.state === ValueState.Pending);
    if (pending.length > 0) await this.waitFor(pending, pending.length, timeoutMs, true);
    for (let rebuilds = 0; this.multiNode; rebuilds++) {
      const pulls = this.pullRemote(entries);
      if (!pulls) break;
      try {
        await pulls;
        break;
      } catch (err) {
        // owned objects whose copy is gone are rebuilt by running their tasks again (lineage), then read
        const lost = entries.filter((e) => e.owned && e.lineage !== undefined && e.state === ValueState.Ready && e.loc !== undefined && e.loc.node !== this.self.nodeId && e.local === undefined);
        if (lost.length === 0 || rebuilds >= MAX_REBUILDS_PER_GET) throw err;
        this.h.recover(lost, (err as Error).message);
        const again = entries.filter((e) => e.state === ValueState.Pending);
        if (again.length > 0) await this.waitFor(again, again.length, timeoutMs, true);
      }
    }
    return entries.map((e) => this.valueOf(e));
  }

  /** Pulls the values of `entries` that live on another node; undefined when all are here (no await then). */
  private pullRemote(entries: RefEntry[]): Promise<unknown> | undefined {
    let ps: Array<Promise<void>> | undefined;
    for (const e of entries) {
      const loc = e.loc;
      if (loc === undefined || e.local !== undefined || loc.node === this.self.nodeId || e.state !== ValueState.Ready) continue;
      (ps ??= []).push(this.pullEntry(e, loc));
    }
    return ps && Promise.all(ps);
  }

  /**
   * Brings a copy of `e`'s value (at `loc`, on another node) to this node:
   * the node manager here pulls it once however many processes ask; this
   * process reads the copy until the entry goes.
   */
  private pullEntry(e: RefEntry, loc: Location): Promise<void> {
    let p = this.pulls.get(e);
    if (p) return p;
    this.busy(1);
    p = this.endpoint
      .call(this.h.rayletAddress, { t: MT.PullObject, id: e.id, loc, owner: e.owner.workerId })
      .then(
        (r) => {
          const local = r.data as Location;
          if (e.dead || e.loc !== loc) {
            // the entry went (or got another value) meanwhile: nobody reads this copy
            this.endpoint.send(this.h.rayletAddress, { t: MT.UnpinObjects, ids: [e.id] });
            return;
          }
          e.local = local;
        },
        (err: Error) => {
          // the cluster went away under this process: that, not a lost object, is what readers learn
          throw err instanceof NodeDiedError ? err : this.pullFailed(e.id, loc, err.message);
        },
      )
      .finally(() => {
        this.pulls.delete(e);
        this.busy(-1);
      });
    this.pulls.set(e, p);
    return p;
  }

  /**
   * The one place where a failed pull is decided: the object's only copy,
   * on node `loc.node`, cannot be read (its node died, its owner freed it or
   * died, or the transfer broke). Returns the error its readers get.
   */
  pullFailed(id: string, loc: Location, reason: string): Error {
    return new ObjectLostError(id, `its value lives on node ${loc.node} and could not be copied to node ${this.self.nodeId}: ${reason}`);
  }

  /** Fails every get and wait in progress with `err` (the cluster is gone). */
  failWaits(err: Error): void {
    for (const finish of [...this.waits]) finish(err);
  }

  /** Resolves when `n` of `entries` settled, or rejects with GetTimeoutError. */
  waitFor(entries: RefEntry[], n: number, timeoutMs: number | undefined, strict: boolean): Promise<void> {
    const ctx = currentTask();
    return new Promise<void>((resolve, reject) => {
      let left = n;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const disposers: Array<() => void> = [];
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        this.waits.delete(finish);
        if (timer) clearTimeout(timer);
        // a wait that gave up leaves nothing behind on the entries it watched
        for (const d of disposers) d();
        this.busy(-1);
        this.h.exitBlocked(ctx);
        if (err) reject(err);
        else resolve();
      };
      this.busy(1);
      this.h.enterBlocked(ctx);
      this.waits.add(finish);
      const onSettle = (): void => {
        if (--left <= 0) finish();
      };
      for (const e of entries) {
        if (done) break;
        if (!e.owned) this.fetch(e);
        disposers.push(e.whenSettled(onSettle));
      }
      if (done || timeoutMs === undefined) return;
      timer = setTimeout(() => {
        if (strict) finish(new GetTimeoutError(timeoutMs, entries.filter((e) => e.state === ValueState.Pending).length));
        else finish();
      }, timeoutMs);
    });
  }

  /** Decodes a task's arguments; large ones are read in place (see readLoc). */
  decodeArgs(args: Uint8Array, deps: Dep[] | undefined, ctx: TaskContext): unknown[] {
    // no arguments (a msgpack empty array): nothing to decode
    if (deps === undefined && args.length === 1 && args[0] === 0x90) return [];
    const values = decodeValue(args, this.factory, false) as unknown[];
    if (!Array.isArray(values)) throw new Error('arguments are not a list');
    if (deps) {
      for (const d of deps) {
        const v = d.val;
        if (v?.blob) values[d.i] = decodeValue(v.blob, this.factory, false);
        else if (v?.loc) {
          const pin = this.argPin(d.ref.id, d.ref.owner, v.loc, ctx);
          values[d.i] = this.readLoc(d.ref.id, v.loc.node === this.self.nodeId ? v.loc : (pin?.local ?? v.loc), pin);
        } else throw new Error(`argument ${d.i} has no value`);
      }
    }
    return values;
  }

  /**
   * Pulls the large arguments of a task that live on another node, before
   * {@link decodeArgs}; undefined when they are all here (no await then).
   */
  prepareArgs(deps: Dep[] | undefined, ctx: TaskContext): Promise<unknown> | undefined {
    if (!deps || !this.multiNode) return undefined;
    let ps: Array<Promise<void>> | undefined;
    for (const d of deps) {
      const loc = d.val?.loc;
      if (!loc || loc.node === this.self.nodeId) continue;
      const pin = this.argPin(d.ref.id, d.ref.owner, loc, ctx);
      if (!pin) throw new ObjectLostError(d.ref.id, `argument ${d.i} lives on node ${loc.node} and this process no longer knows the object`);
      if (pin.local === undefined) (ps ??= []).push(this.pullEntry(pin, pin.loc ?? loc));
    }
    return ps && Promise.all(ps);
  }

  /**
   * The entry that keeps a large argument's block alive while views of it
   * are: this process borrows the object (registered before the task's
   * result goes back, so the owner cannot free it in between). An argument
   * owned here and not shared has no entry to pin: it is copied.
   */
  private argPin(id: string, owner: Address, loc: Location, ctx: TaskContext): RefEntry | undefined {
    if (owner.workerId === this.self.workerId) return this.refs.entries.get(id);
    const { entry, created } = this.refs.getOrCreate(id, owner, RefKind.Object);
    if (created) this.borrowing.register(entry, ctx);
    if (entry.state === ValueState.Pending) {
      entry.loc = loc;
      entry.state = ValueState.Ready;
    }
    return entry;
  }

  /** Encodes a task's return value for its owner (large values go to the store; refs inside are registered for the owner). */
  encodeReturn(value: unknown, id: string, owner: Address, ctx: TaskContext): ReturnObject {
    const enc = encodeValue(value);
    const val: ObjectValue = {};
    if (maxBlobSize(enc) <= INLINE_MAX) val.blob = toInlineBlob(enc);
    else if (owner.nodeId === this.self.nodeId) val.loc = this.store.put(enc, id, owner.slot);
    else {
      // the owner is on another node: this node's manager keeps the primary copy for it (this worker may exit first)
      const loc = this.store.put(enc, id, this.self.slot);
      val.loc = loc;
      ctx.regs.push(
        this.endpoint.call(this.h.rayletAddress, { t: MT.PinObject, id, loc, owner }).then((r) => {
          val.loc = r.data as Location;
        }),
      );
    }
    const contained = this.entriesOf(enc.refs, enc.actors);
    if (contained.length > 0) {
      val.refs = [];
      for (const c of contained) {
        val.refs.push(refWire(c));
        if (c.owner.workerId === owner.workerId) continue;
        if (c.owned) this.refs.addBorrower(c, owner);
        else this.borrowing.registerFor(owner, c, ctx);
      }
    }
    return { id, val };
  }

  /** Wraps a user error as the TaskError the caller will see. */
  encodeTaskError(e: unknown, name: string): Uint8Array {
    const ctx = currentTask();
    const cause = e instanceof Error ? e : new Error(typeof e === 'string' ? e : `non-Error value thrown: ${safeString(e)}`);
    const err = new TaskError({ functionName: name, pid: process.pid, nodeId: this.self.nodeId, taskId: ctx?.taskId ?? '', cause });
    try {
      return toInlineBlob(encodeValue(err));
    } catch {
      const plain = new Error(cause.message);
      plain.name = cause.name;
      plain.stack = cause.stack;
      return toInlineBlob(encodeValue(new TaskError({ functionName: name, pid: process.pid, nodeId: this.self.nodeId, taskId: ctx?.taskId ?? '', cause: plain })));
    }
  }
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return typeof v;
  }
}

/** How a contained entry travels (an actor's says so: the receiver makes a handle of it, not an ObjectRef). */
function refWire(c: RefEntry): { id: string; owner: Address; a?: number } {
  return c.kind === RefKind.Actor ? { id: c.id, owner: c.owner, a: 1 } : { id: c.id, owner: c.owner };
}
