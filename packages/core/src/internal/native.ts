/**
 * Typed binding to the shared-memory arena addon (native/arena.cc).
 * Every function that takes a handle throws an Error (code `TSRAY_ARENA`)
 * once that handle was closed.
 * @internal
 */
import * as path from 'node:path';

/** Opaque handle to a mapped arena. */
export type ArenaHandle = { readonly __arena: unique symbol };

/** Allocator statistics, all in bytes except counts. */
export interface ArenaStats {
  /** bytes of the heap (the mapping less its header page) */
  capacity: number;
  /** bytes in allocated and sealed blocks, block headers included */
  used: number;
  /** number of allocated and sealed blocks */
  objects: number;
  /** number of free blocks */
  freeBlocks: number;
  /** largest payload that would fit right now */
  largestFree: number;
  /** allocations since the arena was created */
  totalAllocs: number;
  /** bytes from the start of the arena faulted in ahead of use by some process on the node ({@link ArenaAddon.prefault}) */
  prefaulted: number;
}

/** Where a handle's background prefault ({@link ArenaAddon.prefault}) stands. */
export interface PrefaultStatus {
  /** idle: never started; stopped: the handle was closed first; failed: see `error` */
  state: 'idle' | 'running' | 'done' | 'failed' | 'stopped';
  /** bytes of this process's mapping faulted in so far */
  bytes: number;
  /** why it failed */
  error?: string;
}

/**
 * The functions the addon exports. Sizes, offsets and slots must be
 * non-negative safe integers; other values throw a TypeError.
 */
export interface ArenaAddon {
  /** Creates and maps a new arena of `size` bytes (rounded up to 4 KiB). */
  create(size: number, name: string): ArenaHandle;
  /** Maps an existing arena, usually by `/proc/<pid>/fd/<n>`. */
  open(path: string): ArenaHandle;
  /** The arena's file descriptor in this process. */
  fd(h: ArenaHandle): number;
  /** payload offset; -1: nothing fits; -2: with `noGrow`, it would use never-touched memory */
  alloc(h: ArenaHandle, size: number, slot: number, noGrow?: boolean): number;
  /** Marks a block complete and owned by `ownerSlot`; false if `offset` is not a live block. */
  seal(h: ArenaHandle, offset: number, ownerSlot: number): boolean;
  /** Frees a block; false if `offset` is not a live block. */
  free(h: ArenaHandle, offset: number): boolean;
  /** Frees the unsealed blocks `slot` allocated and the sealed blocks it owns; returns how many. */
  sweep(h: ArenaHandle, slot: number): number;
  /** An ArrayBuffer over the mapping that keeps it mapped until it is collected. */
  view(h: ArenaHandle, offset: number, length: number): ArrayBuffer;
  /** Copies `src` into the arena at `offset`; returns the bytes written. */
  write(h: ArenaHandle, offset: number, src: ArrayBufferView | ArrayBuffer): number;
  /** The address of `src`'s first byte modulo 4096. */
  addrMod(src: ArrayBufferView | ArrayBuffer): number;
  /** Faults in the pages of a range in one call. */
  populate(h: ArenaHandle, offset: number, length: number): boolean;
  /**
   * Faults in the first `length` bytes of this process's mapping on a
   * background thread (normal priority, 1 MiB steps), using at most `dutyPercent` of
   * one CPU; stops when the handle is closed. With `map` false it only
   * allocates the pages in the store's memfd (fallocate), mapping none in
   * this process. Returns false when this handle already started one (or
   * `length` is under a page).
   */
  prefault(h: ArenaHandle, length: number, dutyPercent: number, map?: boolean): boolean;
  /** Where this handle's prefault stands (a closed handle answers too). */
  prefaultStatus(h: ArenaHandle): PrefaultStatus;
  /** Allocator statistics. */
  stats(h: ArenaHandle): ArenaStats;
  /** Verifies the allocator's invariants: an error, or null. */
  check(h: ArenaHandle): string | null;
  /** Makes the handle unusable; the mapping goes once every view of it is collected. Idempotent. */
  close(h: ArenaHandle): void;
  /** Reports bytes held outside the JS heap to V8 (negative: released). */
  externalMemory(delta: number): number;
  /**
   * Tests only: takes the arena's lock and keeps it, so that the calling
   * process dies holding it; with `damage`, it also scrambles the free list
   * and counters, which the next locker must rebuild.
   */
  testAbandonLock(h: ArenaHandle, damage: boolean): void;
}

let addon: ArenaAddon | undefined;

/** Loads the addon once; explains how to build it when it is missing. */
export function arenaAddon(): ArenaAddon {
  if (addon) return addon;
  const file = path.join(__dirname, '..', '..', 'build', 'Release', 'tsray_arena.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(file) as ArenaAddon;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(
      `tsray's shared-memory addon is not built (${file}: ${reason}). ` +
        'Run `npm install` (or `npm run build:native -w @tsray/core`) to build it with node-gyp; ' +
        'it needs python3, make and a C compiler.',
    );
  }
  return addon;
}
