/**
 * A process's access to its node's object store: the shared-memory arena
 * (allocated from directly, synchronously) and the spill directory for
 * objects that do not fit.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ObjectStoreFullError, ObjectLostError } from '../../errors';
import { arenaAddon, type ArenaAddon, type ArenaHandle, type ArenaStats } from '../native';
import type { Location } from '../protocol/messages';
import { layout, maxBlobSize, writeBlob, type Encoded } from '../serialization/value-codec';
import { log } from '../log';

/** Objects at least this large try to reuse freed memory before touching new pages. */
const REUSE_FIRST_BYTES = 16 * 1024 * 1024;

/** A blob read back from the store. */
export interface StoredBlob {
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

  constructor(
    private readonly handle: ArenaHandle,
    readonly nodeId: string,
    /** this process's slot on the node, recorded in blocks it allocates */
    readonly slot: number,
    private readonly spillDir: string,
    /** called when the arena is full, before spilling; returns true if it freed something */
    private readonly onPressure: () => boolean,
  ) {
    this.A = arenaAddon();
  }

  /** Maps the arena of the node manager with pid `pid`, whose fd is `fd`. */
  static open(arenaPath: string, nodeId: string, slot: number, spillDir: string, onPressure: () => boolean): ObjectStoreClient {
    const A = arenaAddon();
    return new ObjectStoreClient(A.open(arenaPath), nodeId, slot, spillDir, onPressure);
  }

  /**
   * Writes an encoded value into the arena, or to the spill directory when
   * the arena has no room. `ownerSlot` is the slot of the object's owner on
   * this node (its crash frees the block).
   */
  put(enc: Encoded, id: string, ownerSlot: number): Location {
    const max = maxBlobSize(enc);
    // A large object that would need never-touched pages first tries to
    // reuse memory of objects whose refs are garbage: faulting fresh pages
    // costs far more than a garbage collection.
    let off = this.A.alloc(this.handle, max, this.slot, max >= REUSE_FIRST_BYTES);
    if (off === -2) {
      this.onPressure();
      off = this.A.alloc(this.handle, max, this.slot);
    }
    if (off < 0 && this.onPressure()) off = this.A.alloc(this.handle, max, this.slot);
    if (off < 0) return this.spill(enc, id, max);
    const l = layout(enc, off % 4096, (v) => this.A.addrMod(v));
    writeBlob(enc, l, (pos, bytes) => this.A.write(this.handle, off + pos, bytes));
    this.A.seal(this.handle, off, ownerSlot);
    return { node: this.nodeId, off, size: l.size };
  }

  private spill(enc: Encoded, id: string, max: number): Location {
    const file = path.join(this.spillDir, id);
    const l = layout(enc);
    let fd: number | undefined;
    try {
      fs.mkdirSync(this.spillDir, { recursive: true });
      fd = fs.openSync(file, 'w', 0o600);
      const f = fd;
      writeBlob(enc, l, (pos, bytes) => {
        let done = 0;
        while (done < bytes.length) done += fs.writeSync(f, bytes, done, bytes.length - done, pos + done);
      });
    } catch (e) {
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
      try {
        fs.rmSync(file, { force: true });
      } catch {
        /* nothing was written there */
      }
      const s = this.stats();
      throw new ObjectStoreFullError(
        max,
        `the store holds ${s.used} of ${s.capacity} bytes and spilling to ${this.spillDir} failed (${(e as Error).message})`,
      );
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    log.debug(`spilled ${id} (${l.size} bytes) to ${file}`);
    return { node: this.nodeId, size: l.size, spill: file };
  }

  /** Reads an object on this node: a view of shared memory, or the spill file. */
  read(loc: Location, id: string): StoredBlob {
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

  /** Frees an object's bytes (arena block or spill file). */
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
   * refs were dropped — when they add up, instead of only when the store is full.
   */
  account(delta: number): void {
    if (!this.closed) this.A.externalMemory(delta);
  }

  /** Frees what a dead process allocated or owned. */
  sweep(slot: number): number {
    return this.closed ? 0 : this.A.sweep(this.handle, slot);
  }

  stats(): ArenaStats {
    return this.A.stats(this.handle);
  }

  /** Verifies the allocator's invariants (tests). */
  check(): string | null {
    return this.A.check(this.handle);
  }

  /** Unmaps the arena once every view of it is gone. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.A.close(this.handle);
  }
}
