/**
 * The borrower side of distributed reference counting. A process that gets
 * a reference owned elsewhere registers with the owner (AddBorrower) and
 * unregisters (RemoveBorrower) once it holds the reference no more.
 * Registrations are batched per owner. Removals wait until every
 * registration sent before them is acknowledged: a process may release an
 * outer object only after the owners of the refs it found inside know it
 * borrows them, or those refs could be freed in between.
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

/** See the module comment. */
export class Borrowing {
  private batches = new Map<string, Batch>();
  private scheduled = false;
  private inFlight = 0;
  private deferred = new Map<string, { owner: Address; ids: string[] }>();
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
    for (const b of batches) {
      this.inFlight++;
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
          if (--this.inFlight === 0) this.flushReleases();
        });
    }
  }

  /** This process no longer borrows `e`. */
  release(e: RefEntry): void {
    let d = this.deferred.get(e.owner.workerId);
    if (!d) this.deferred.set(e.owner.workerId, (d = { owner: e.owner, ids: [] }));
    d.ids.push(e.id);
    if (this.inFlight === 0 && !this.releaseScheduled) {
      this.releaseScheduled = true;
      queueMicrotask(() => this.flushReleases());
    }
  }

  private flushReleases(): void {
    this.releaseScheduled = false;
    if (this.inFlight > 0 || this.batches.size > 0) return;
    for (const d of this.deferred.values()) {
      this.endpoint.send(d.owner.endpoint, { t: MT.RemoveBorrower, ids: d.ids, borrowerId: this.self.workerId });
    }
    this.deferred.clear();
  }

  /** Drops what is queued for a dead owner. */
  forgetOwner(workerId: string): void {
    this.deferred.delete(workerId);
  }
}
