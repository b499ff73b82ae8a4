/**
 * A process's access to its node's object store: the shared-memory arena
 * (allocated from directly, synchronously) and the spill directory for
 * objects that do not fit. Spilled objects live in a subdirectory per owner
 * ({@link spillDirOf}), so they go when their owner does.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ObjectStoreFullError, ObjectLostError } from '../../errors';
import { arenaAddon, type ArenaAddon, type ArenaHandle, type ArenaStats, type PrefaultStatus } from '../native';
import { prefaultLater } from './prefault';
import type { Location } from '../protocol/messages';
import { layout, maxBlobSize, writeBlob, type Encoded } from '../serialization/value-codec';
import { log } from '../log';

/** Objects at least this large try to reuse freed memory before touching new pages. */
const REUSE_FIRST_BYTES = 16 * 1024 * 1024;

/**
 * The directory under a node's spill root that holds the spilled objects
 * owned by the process in `slot`. It goes when that process does (the node
 * manager removes it when it sweeps the slot) and with the node.
 */
export function spillDirOf(spillRoot: string, slot: number): string {
  return path.join(spillRoot, `slot-${slot}`);
}

/** A blob read back from the store. */
export interface StoredBlob {
  /** the blob's bytes */
  bytes: Uint8Array;
  /** true when `bytes` is shared memory (typed arrays may view it) */
  shared: boolean;
  /** the ArrayBuffer whose lifetime pins the object (shared only) */
  pin: ArrayBuffer | undefined;
}

/** See the module comment. */
export class ObjectStoreClient {
  private readonly A: ArenaAddon;
  private closed = false;
  private relieving = false;
  private cancelPrefault: (() => void) | undefined;

  /**
   * @param handle the mapped arena
   * @param nodeId the node the arena belongs to
   * @param slot this process's slot on the node, recorded in blocks it allocates
   * @param spillRoot the node's spill directory; spilled objects go to {@link spillDirOf} their owner's slot
   * @param onPressure called when the arena is full, before spilling; returns true if it freed something
   * @param ownsSpillRoot remove `spillRoot` itself at {@link close} (a directory made for this process alone)
   */
  constructor(
    private readonly handle: ArenaHandle,
    readonly nodeId: string,
    readonly slot: number,
    private readonly spillRoot: string,
    private readonly onPressure: () => boolean,
    private readonly ownsSpillRoot = false,
  ) {
    this.A = arenaAddon();
  }

  /**
   * Maps the arena at `arenaPath` (the node manager's `/proc/<pid>/fd/<n>`);
   * the other arguments are the constructor's.
   * @throws Error when the arena cannot be opened or is not a tsray arena
   */
  static open(arenaPath: string, nodeId: string, slot: number, spillRoot: string, onPressure: () => boolean, ownsSpillRoot = false): ObjectStoreClient {
    const A = arenaAddon();
    return new ObjectStoreClient(A.open(arenaPath), nodeId, slot, spillRoot, onPressure, ownsSpillRoot);
  }

  /**
   * Writes an encoded value into the arena, or to the spill directory when
   * the arena has no room. `ownerSlot` is the slot of the object's owner on
   * this node (its crash frees the block and removes the spill file).
   * @throws ObjectStoreFullError when it fits neither in memory nor on disk
   * @throws Error after {@link close}
   */
  put(enc: Encoded, id: string, ownerSlot: number): Location {
    this.ensureOpen('put an object');
    const max = maxBlobSize(enc);
    // A large object that would need never-touched pages first tries to
    // reuse memory of objects whose refs are garbage: faulting fresh pages
    // costs far more than a garbage collection. Either way, the store asks
    // for relief at most once per object: a second collection right after
    // the first frees nothing more.
    let off = this.A.alloc(this.handle, max, this.slot, max >= REUSE_FIRST_BYTES);
    if (off === -2) {
      this.relieve();
      off = this.A.alloc(this.handle, max, this.slot);
    } else if (off < 0 && this.relieve()) {
      off = this.A.alloc(this.handle, max, this.slot);
    }
    if (off < 0) return this.spill(enc, id, max, ownerSlot);
    try {
      const l = layout(enc, off % 4096, (v) => this.A.addrMod(v));
      writeBlob(enc, l, (pos, bytes) => this.A.write(this.handle, off + pos, bytes));
      this.A.seal(this.handle, off, ownerSlot);
      return { node: this.nodeId, off, size: l.size };
    } catch (e) {
      // an unsealed block would otherwise stay allocated until this process exits
      this.A.free(this.handle, off);
      throw e;
    }
  }

  /** Runs onPressure unless it is already running (it may re-enter put through a finalizer). */
  private relieve(): boolean {
    if (this.relieving) return false;
    this.relieving = true;
    try {
      return this.onPressure();
    } finally {
      this.relieving = false;
    }
  }

  private spill(enc: Encoded, id: string, max: number, ownerSlot: number): Location {
    const dir = spillDirOf(this.spillRoot, ownerSlot);
    const file = path.join(dir, id);
    const l = layout(enc);
    let fd: number | undefined;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fd = fs.openSync(file, 'w', 0o600);
      const f = fd;
      writeBlob(enc, l, (pos, bytes) => {
        let done = 0;
        while (done < bytes.length) done += fs.writeSync(f, bytes, done, bytes.length - done, pos + done);
      });
      fs.closeSync(f);
      fd = undefined;
    } catch (e) {
      if (fd !== undefined) {
        try {
          fs.closeSync(fd);
        } catch {
          /* the write error is the one to report */
        }
      }
      try {
        fs.rmSync(file, { force: true });
      } catch {
        /* nothing was written there */
      }
      const s = this.A.stats(this.handle);
      throw new ObjectStoreFullError(
        max,
        `the store holds ${s.used} of ${s.capacity} bytes and spilling to ${dir} failed (${(e as Error).message})`,
      );
    }
    log.debug(`spilled ${id} (${l.size} bytes) to ${file}`);
    return { node: this.nodeId, size: l.size, spill: file };
  }

  /**
   * Reads an object on this node: a view of shared memory, or the spill file.
   * @throws ObjectLostError when its spill file is gone
   * @throws Error after {@link close}
   */
  read(loc: Location, id: string): StoredBlob {
    this.ensureOpen(`read object ${id}`);
    if (loc.spill !== undefined) {
      try {
        const b = fs.readFileSync(loc.spill);
        return { bytes: b, shared: false, pin: undefined };
      } catch (e) {
        throw new ObjectLostError(id, `its spill file ${loc.spill} cannot be read (${(e as Error).message})`);
      }
    }
    const ab = this.A.view(this.handle, loc.off as number, loc.size);
    return { bytes: new Uint8Array(ab), shared: true, pin: ab };
  }

  /**
   * Frees an object's bytes (arena block or spill file). After {@link close}
   * it does nothing: refs collected after shutdown still release their
   * objects, and the store is gone by then.
   */
  free(loc: Location): void {
    if (this.closed) return;
    if (loc.spill !== undefined) {
      fs.rm(loc.spill, { force: true }, () => undefined);
      return;
    }
    if (loc.off !== undefined) this.A.free(this.handle, loc.off);
  }

  /**
   * Tells V8 this process holds `delta` more (or fewer) bytes of objects it
   * owns in the store, so that it collects garbage — and frees objects whose
   * refs were dropped — when they add up, instead of only when the store is
   * full. Does nothing after {@link close}, like {@link free}.
   */
  account(delta: number): void {
    if (!this.closed) this.A.externalMemory(delta);
  }

  /**
   * Allocator statistics.
   * @throws Error after {@link close}
   */
  stats(): ArenaStats {
    this.ensureOpen('read its statistics');
    return this.A.stats(this.handle);
  }

  /**
   * Faults in the start of this process's mapping of the arena in the
   * background, soon (objects/prefault.ts): `bytes` at most (0: nothing).
   * Drivers do it; workers do not (each would hold the pages in its RSS).
   */
  prefault(bytes: number): void {
    this.ensureOpen('pre-fault it');
    this.cancelPrefault?.();
    this.cancelPrefault = prefaultLater(this.A, this.handle, this.A.stats(this.handle).capacity, bytes, true);
  }

  /** Where this process's prefault stands. */
  prefaultStatus(): PrefaultStatus {
    return this.A.prefaultStatus(this.handle);
  }

  /**
   * Verifies the allocator's invariants (tests): an error, or null.
   * @throws Error after {@link close}
   */
  check(): string | null {
    this.ensureOpen('check it');
    return this.A.check(this.handle);
  }

  /**
   * Unmaps the arena once every view of it is gone, and removes the spill
   * files of objects this process owns (they die with it). Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelPrefault?.();
    this.A.close(this.handle);
    try {
      fs.rmSync(this.ownsSpillRoot ? this.spillRoot : spillDirOf(this.spillRoot, this.slot), { recursive: true, force: true });
    } catch (e) {
      log.debug(`could not remove spilled objects of slot ${this.slot}: ${(e as Error).message}`);
    }
  }

  private ensureOpen(what: string): void {
    if (this.closed) throw new Error(`cannot ${what}: this process's object store client was closed (ray.shutdown() was called)`);
  }
}
