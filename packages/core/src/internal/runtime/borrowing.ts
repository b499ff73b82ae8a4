/**
 * The borrower side of distributed reference counting. A process that gets
 * a reference owned elsewhere registers with the owner (AddBorrower) and
 * unregisters (RemoveBorrower) once it holds the reference no more.
 * Registrations are batched per owner and sent in numbered rounds. A
 * removal waits until every registration sent (or queued) before it is
 * acknowledged, and only those, so steady traffic never holds removals back:
 * a process may release an outer object only after the owners of the refs
 * it found inside know it borrows them, or those refs could be freed in
 * between.
 * @internal
 */
import { MT, type Address } from '../protocol/messages';
import type { Endpoint } from '../transport/endpoint';
import type { TaskContext } from './executor';
import type { RefEntry } from './refs';

interface Batch {
  owner: Address;
  borrower: Address;
  entries: RefEntry[];
  done: Promise<void>;
  resolve: () => void;
}

/** Removals recorded while registrations up to round `barrier` were unacknowledged. */
interface ReleaseGroup {
  barrier: number;
  byOwner: Map<string, { owner: Address; ids: string[] }>;
}

/** See the module comment. */
export class Borrowing {
  private batches = new Map<string, Batch>();
  private scheduled = false;
  /** the last round of registrations sent */
  private round = 0;
  /** rounds with registrations not yet acknowledged -> how many (insertion order is round order) */
  private readonly outstanding = new Map<number, number>();
  private releases: ReleaseGroup[] = [];
  private releaseScheduled = false;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly self: Address,
    /** refs the owner no longer has */
    private readonly onMissing: (entries: RefEntry[]) => void,
    private readonly busy: (delta: number) => void,
  ) {}

  /** Registers this process as a borrower of a new borrowed entry. */
  register(e: RefEntry, ctx: TaskContext | undefined): void {
    this.add(e.owner, this.self, e, ctx);
  }

  /** Registers `borrower` (the owner of a value containing `e`) with `e`'s owner. */
  registerFor(borrower: Address, e: RefEntry, ctx: TaskContext | undefined): void {
    this.add(e.owner, borrower, e, ctx);
  }

  private add(owner: Address, borrower: Address, e: RefEntry, ctx: TaskContext | undefined): void {
    const key = `${owner.workerId}\0${borrower.workerId}`;
    let b = this.batches.get(key);
    if (!b) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      b = { owner, borrower, entries: [], done, resolve };
      this.batches.set(key, b);
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.flush());
      }
    }
    b.entries.push(e);
    if (ctx && !ctx.regs.includes(b.done)) ctx.regs.push(b.done);
  }

  private flush(): void {
    this.scheduled = false;
    const batches = [...this.batches.values()];
    this.batches.clear();
    const round = ++this.round;
    if (batches.length > 0) this.outstanding.set(round, batches.length);
    for (const b of batches) {
      this.busy(1);
      const ids = b.entries.map((e) => e.id);
      this.endpoint
        .request(b.owner.endpoint, { t: MT.AddBorrower, ids, borrower: b.borrower })
        .then(
          (reply) => {
            const missing = reply.t === MT.Reply && Array.isArray(reply.data) ? new Set(reply.data as string[]) : new Set<string>();
            const lost: RefEntry[] = [];
            for (const e of b.entries) {
              if (missing.has(e.id)) lost.push(e);
              else if (b.borrower.workerId === this.self.workerId) e.registered = true;
            }
            if (lost.length) this.onMissing(lost);
          },
          () => this.onMissing(b.entries),
        )
        .finally(() => {
          b.resolve();
          this.busy(-1);
          const left = (this.outstanding.get(round) ?? 1) - 1;
          if (left > 0) this.outstanding.set(round, left);
          else this.outstanding.delete(round);
          this.flushReleases();
        });
    }
    this.flushReleases();
  }

  /** This process no longer borrows `e`. */
  release(e: RefEntry): void {
    // registrations queued or in flight now must be acknowledged first
    const barrier = this.round + (this.batches.size > 0 ? 1 : 0);
    let g = this.releases[this.releases.length - 1];
    if (!g || g.barrier !== barrier) this.releases.push((g = { barrier, byOwner: new Map() }));
    let d = g.byOwner.get(e.owner.workerId);
    if (!d) g.byOwner.set(e.owner.workerId, (d = { owner: e.owner, ids: [] }));
    d.ids.push(e.id);
    if (!this.releaseScheduled) {
      this.releaseScheduled = true;
      queueMicrotask(() => this.flushReleases());
    }
  }

  /** Sends the removals whose earlier registrations were all acknowledged. */
  private flushReleases(): void {
    this.releaseScheduled = false;
    let oldest = Infinity;
    for (const r of this.outstanding.keys()) {
      oldest = r;
      break;
    }
    let n = 0;
    const ready = new Map<string, { owner: Address; ids: string[] }>();
    for (const g of this.releases) {
      if (g.barrier > this.round || g.barrier >= oldest) break;
      n++;
      for (const [w, d] of g.byOwner) {
        const r = ready.get(w);
        if (r) r.ids.push(...d.ids);
        else ready.set(w, d);
      }
    }
    if (n === 0) return;
    this.releases = this.releases.slice(n);
    for (const d of ready.values()) this.endpoint.send(d.owner.endpoint, { t: MT.RemoveBorrower, ids: d.ids, borrowerId: this.self.workerId });
  }

  /** Drops what is queued for a dead owner. */
  forgetOwner(workerId: string): void {
    for (const g of this.releases) g.byOwner.delete(workerId);
  }
}
