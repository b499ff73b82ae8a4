/**
 * Reference counting, after Ray's ownership model. Every process keeps one
 * entry per object (or actor) it knows about:
 *
 * - an *owned* entry is for an object this process created (`put`, or the
 *   return of a task it submitted); the owner stores small values, knows
 *   where large ones are, and frees them when nobody holds a reference;
 * - a *borrowed* entry is for an object owned elsewhere; while this process
 *   holds it, the owner counts this process as a borrower.
 *
 * Most owned objects never leave their process. Their entries are plain
 * objects, held by their ObjectRef (and by the tasks, values and views that
 * use them), and garbage collected with them like any short-lived value —
 * no table, no bookkeeping. An owned entry is *published* when its ref is
 * first serialized (another process may then ask for it by id): from then on
 * it is in the id table, and released explicitly when none of these holds
 * it: a live ObjectRef instance (WeakRef + FinalizationRegistry), a
 * zero-copy view of its value, a task it submitted, a value it owns, or a
 * borrower. Borrowed entries are always in the table.
 *
 * Large unpublished objects live in shared memory, which the garbage
 * collector does not free: a small registry frees their blocks when their
 * entries are collected.
 * @internal
 */
import type { Address, Location } from '../protocol/messages';

const noop = (): void => undefined;

/** Lifecycle of an object's value. */
export const enum ValueState {
  Pending = 0,
  Ready = 1,
  Error = 2,
  Freed = 3,
  Lost = 4,
}

/** What a reference is to. */
export const enum RefKind {
  Object = 0,
  Actor = 1,
}

/** One object or actor known to this process. */
export class RefEntry {
  state: ValueState = ValueState.Pending;
  /** inline value */
  blob: Uint8Array | undefined = undefined;
  /** large value: where its bytes are */
  loc: Location | undefined = undefined;
  /** a large value on another node: the copy this node pulled (read by this process until the entry goes) */
  local: Location | undefined = undefined;
  /** serialized error, when state is Error */
  err: Uint8Array | undefined = undefined;
  /** a decoded error to throw instead of `err` (lost, freed, cancelled) */
  errObj: Error | undefined = undefined;
  /** published: the interned public instance (ObjectRef or ActorHandle) */
  ref: WeakRef<object> | undefined = undefined;
  live = false;
  /** zero-copy views of the value that are alive */
  views = 0;
  /** freed (ray.free) while views were alive: the block to free once they are gone */
  freeAfterViews: Location | undefined = undefined;
  submitted = 0;
  containedIn = 0;
  /** owned: processes borrowing it */
  borrowers: Map<string, Address> | undefined = undefined;
  /** entries this object's value contains, held while this entry exists */
  contains: RefEntry[] | undefined = undefined;
  /** called when the value arrives (or fails) */
  waiters: Array<() => void> | undefined = undefined;
  /** borrowed: the owner knows we borrow it */
  registered = false;
  /** a handle found by name: neither owned nor borrowed, never reported */
  weak = false;
  /** released while its value was still pending: free it on arrival */
  released = false;
  /** removed from the table */
  dead = false;
  /** in the id table (borrowed, or owned and shared with another process) */
  published = false;
  /** unpublished and large: its key in the table's large-object registry */
  largeKey: WeakRef<RefEntry> | undefined = undefined;
  /** the task that makes it (owned returns), for cancel */
  taskId: string | undefined = undefined;
  /** actor entries: the handle's wire description */
  actorWire: unknown = undefined;
  /** owned returns of a finished task: what is needed to run it again if the value is lost (see lineage.ts) */
  lineage: object | undefined = undefined;

  constructor(
    readonly id: string,
    readonly owner: Address,
    readonly owned: boolean,
    readonly kind: RefKind,
    /** the table it belongs to (refs from an earlier session belong to another) */
    readonly table: ReferenceTable,
  ) {}

  /** Whether anything in this process still holds the entry. */
  get held(): boolean {
    return this.live || this.views > 0 || this.submitted > 0 || this.containedIn > 0 || (this.borrowers !== undefined && this.borrowers.size > 0);
  }

  /** Runs and clears the waiters. */
  notify(): void {
    const w = this.waiters;
    if (!w) return;
    this.waiters = undefined;
    for (const f of w) f();
  }

  /**
   * Calls `f` once the value is no longer pending (now if it is not).
   * Returns a function that cancels the call (for waits that time out).
   */
  whenSettled(f: () => void): () => void {
    if (this.state !== ValueState.Pending) {
      f();
      return noop;
    }
    const w = (this.waiters ??= []);
    w.push(f);
    return () => {
      if (this.waiters !== w) return;
      const i = w.indexOf(f);
      if (i >= 0) w.splice(i, 1);
    };
  }
}

/** What the table needs from the runtime. */
export interface RefTableHooks {
  /** A published owned entry is no longer held: free its value. */
  freeOwned(e: RefEntry): void;
  /** A borrowed entry is no longer held: tell its owner. */
  releaseBorrowed(e: RefEntry): void;
  /** Makes the public instance for an entry. */
  makeInstance(e: RefEntry): object;
  /** Frees the shared-memory block of an unpublished object that was collected. */
  freeLarge(loc: Location, id: string): void;
}

/** See the module comment. */
export class ReferenceTable {
  /** published entries by id */
  readonly entries = new Map<string, RefEntry>();
  /** borrower worker id -> owned entries it borrows */
  private readonly byBorrower = new Map<string, Set<RefEntry>>();
  private readonly instances: FinalizationRegistry<RefEntry>;
  private readonly viewRegistry: FinalizationRegistry<RefEntry>;
  /** keeps an entry alive while a zero-copy view of its value is */
  private readonly viewOwners = new WeakMap<object, RefEntry>();
  /** unpublished large objects: entry (weakly) -> its id and block */
  private readonly large = new Map<WeakRef<RefEntry>, { id: string; loc: Location }>();
  private readonly largeRegistry: FinalizationRegistry<WeakRef<RefEntry>>;

  constructor(
    readonly self: Address,
    private readonly hooks: RefTableHooks,
  ) {
    this.instances = new FinalizationRegistry((e) => {
      if (e.dead || e.ref?.deref() !== undefined) return;
      e.live = false;
      this.maybeRelease(e);
    });
    this.viewRegistry = new FinalizationRegistry((e) => {
      e.views--;
      if (e.views === 0 && e.freeAfterViews) {
        const loc = e.freeAfterViews;
        e.freeAfterViews = undefined;
        this.hooks.freeLarge(loc, e.id);
      }
      this.maybeRelease(e);
    });
    this.largeRegistry = new FinalizationRegistry((key) => this.freeLargeKey(key));
  }

  /** A new owned entry, published at once (actors: their handles are tracked). */
  createOwned(id: string, kind: RefKind = RefKind.Object): RefEntry {
    const e = new RefEntry(id, this.self, true, kind, this);
    e.published = true;
    this.entries.set(id, e);
    return e;
  }

  /** A new owned object entry that stays out of the table until its ref is shared. */
  createLocal(id: string): RefEntry {
    return new RefEntry(id, this.self, true, RefKind.Object, this);
  }

  /** The entry for a reference this process received, creating a borrowed one. */
  getOrCreate(id: string, owner: Address, kind: RefKind): { entry: RefEntry; created: boolean } {
    let e = this.entries.get(id);
    if (e) return { entry: e, created: false };
    e = new RefEntry(id, owner, owner.workerId === this.self.workerId, kind, this);
    e.published = true;
    this.entries.set(id, e);
    return { entry: e, created: true };
  }

  /** The public instance for `e`: interned for published entries, new for local ones. */
  instance<T extends object>(e: RefEntry): T {
    if (!e.published) return this.hooks.makeInstance(e) as T;
    const cur = e.ref?.deref();
    if (cur) return cur as T;
    const inst = this.hooks.makeInstance(e);
    this.track(e, inst);
    return inst as T;
  }

  private track(e: RefEntry, inst: object): void {
    e.ref = new WeakRef(inst);
    e.live = true;
    this.instances.register(inst, e);
  }

  /**
   * The ref `inst` of entry `e` is being serialized: another process may ask
   * for it by id from now on, so the entry joins the table.
   */
  publish(e: RefEntry, inst: object): void {
    if (e.published || e.table !== this) return;
    e.published = true;
    this.entries.set(e.id, e);
    this.track(e, inst);
    this.untrackLarge(e);
  }

  /** An owned entry got a value in shared memory: free it when the entry goes. */
  trackLarge(e: RefEntry): void {
    if (e.published || !e.loc || e.largeKey) return;
    const key = new WeakRef(e);
    e.largeKey = key;
    this.large.set(key, { id: e.id, loc: e.loc });
    this.largeRegistry.register(e, key, key);
  }

  /** An unpublished large entry is freed by other means (free(), or it was published). */
  untrackLarge(e: RefEntry): void {
    if (!e.largeKey) return;
    this.large.delete(e.largeKey);
    this.largeRegistry.unregister(e.largeKey);
    e.largeKey = undefined;
  }

  private freeLargeKey(key: WeakRef<RefEntry>): void {
    const l = this.large.get(key);
    if (!l) return;
    this.large.delete(key);
    this.hooks.freeLarge(l.loc, l.id);
  }

  /** Counts a zero-copy view of `e`'s value (and keeps `e` alive) until `view` is collected. */
  trackView(e: RefEntry, view: object): void {
    if (this.viewOwners.has(view)) return;
    this.viewOwners.set(view, e);
    e.views++;
    this.viewRegistry.register(view, e);
  }

  /** A submitted task holds `e` (an argument) until it finishes. */
  addSubmitted(e: RefEntry): void {
    e.submitted++;
  }

  /** A task that held `e` finished. */
  removeSubmitted(e: RefEntry): void {
    e.submitted--;
    if (e.submitted === 0) this.maybeRelease(e);
  }

  /** `outer`'s value contains `inner`: hold them while `outer` exists. */
  setContains(outer: RefEntry, inner: RefEntry[]): void {
    if (inner.length === 0) return;
    outer.contains = inner;
    for (const i of inner) i.containedIn++;
  }

  /** Process `a` borrows owned entry `e`. */
  addBorrower(e: RefEntry, a: Address): void {
    (e.borrowers ??= new Map()).set(a.workerId, a);
    let s = this.byBorrower.get(a.workerId);
    if (!s) this.byBorrower.set(a.workerId, (s = new Set()));
    s.add(e);
  }

  /** Process `workerId` no longer borrows `e`. */
  removeBorrower(e: RefEntry, workerId: string): void {
    if (!e.borrowers?.delete(workerId)) return;
    this.byBorrower.get(workerId)?.delete(e);
    this.maybeRelease(e);
  }

  /** A process died: it borrows nothing any more. */
  dropBorrower(workerId: string): void {
    const s = this.byBorrower.get(workerId);
    if (!s) return;
    this.byBorrower.delete(workerId);
    for (const e of s) {
      e.borrowers?.delete(workerId);
      this.maybeRelease(e);
    }
  }

  /** Owned objects with a value whose bytes live on node `nodeId` (shared or not). */
  ownedOn(nodeId: string): RefEntry[] {
    const out: RefEntry[] = [];
    for (const e of this.entries.values()) if (e.owned && e.state === ValueState.Ready && e.loc?.node === nodeId) out.push(e);
    for (const key of this.large.keys()) {
      const e = key.deref();
      if (e && e.state === ValueState.Ready && e.loc?.node === nodeId) out.push(e);
    }
    return out;
  }

  /** Processes on node `nodeId` that borrow objects owned here. */
  borrowersOn(nodeId: string): string[] {
    const out: string[] = [];
    for (const [w, set] of this.byBorrower) {
      const first = set.values().next().value as RefEntry | undefined;
      if (first?.borrowers?.get(w)?.nodeId === nodeId) out.push(w);
    }
    return out;
  }

  /** Borrowed entries whose owners run on node `nodeId`. */
  borrowedFrom(nodeId: string): RefEntry[] {
    const out: RefEntry[] = [];
    for (const e of this.entries.values()) if (!e.owned && e.owner.nodeId === nodeId) out.push(e);
    return out;
  }

  /** Borrowed entries owned by `workerId`, for when that owner dies. */
  ownedBy(workerId: string): RefEntry[] {
    const out: RefEntry[] = [];
    for (const e of this.entries.values()) if (!e.owned && e.owner.workerId === workerId) out.push(e);
    return out;
  }

  /** Releases a published entry if nothing holds it any more (the GC handles the rest). */
  maybeRelease(e: RefEntry): void {
    if (e.dead || !e.published || e.held) return;
    if (e.owned && e.state === ValueState.Pending) {
      // the value is still coming: free it when it arrives
      e.released = true;
      return;
    }
    this.remove(e);
  }

  /** Drops a published entry now, whatever holds it (free, shutdown). */
  remove(e: RefEntry): void {
    if (e.dead) return;
    e.dead = true;
    this.entries.delete(e.id);
    if (e.borrowers) {
      for (const w of e.borrowers.keys()) this.byBorrower.get(w)?.delete(e);
      e.borrowers = undefined;
    }
    if (e.owned) this.hooks.freeOwned(e);
    else this.hooks.releaseBorrowed(e);
    const inner = e.contains;
    e.contains = undefined;
    if (inner) {
      for (const i of inner) {
        i.containedIn--;
        this.maybeRelease(i);
      }
    }
  }

  /**
   * Synchronously releases what a garbage collection just made unreachable:
   * published entries whose instance is gone and unpublished large objects
   * whose entry is gone, before their finalizers run. Used when the object
   * store is full, right after a forced collection. Returns how many.
   */
  sweepCollected(): number {
    let n = 0;
    for (const [key, l] of this.large) {
      if (key.deref() === undefined) {
        this.large.delete(key);
        this.largeRegistry.unregister(key);
        this.hooks.freeLarge(l.loc, l.id);
        n++;
      }
    }
    for (const e of this.entries.values()) {
      if (e.live && e.ref && e.ref.deref() === undefined) {
        e.live = false;
        if (!e.held) {
          this.maybeRelease(e);
          n++;
        }
      }
    }
    return n;
  }
}
