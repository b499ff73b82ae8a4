/**
 * Typed binding to the shared-memory arena addon (native/arena.c).
 * @internal
 */
import * as path from 'node:path';

/** Opaque handle to a mapped arena. */
export type ArenaHandle = { readonly __arena: unique symbol };

/** Allocator statistics, all in bytes except counts. */
export interface ArenaStats {
  capacity: number;
  used: number;
  objects: number;
  freeBlocks: number;
  largestFree: number;
  totalAllocs: number;
}

/** The functions the addon exports. */
export interface ArenaAddon {
  create(size: number, name: string): ArenaHandle;
  open(path: string): ArenaHandle;
  fd(h: ArenaHandle): number;
  /** payload offset; -1: nothing fits; -2: with `noGrow`, it would use never-touched memory */
  alloc(h: ArenaHandle, size: number, slot: number, noGrow?: boolean): number;
  seal(h: ArenaHandle, offset: number, ownerSlot: number): boolean;
  free(h: ArenaHandle, offset: number): boolean;
  sweep(h: ArenaHandle, slot: number): number;
  view(h: ArenaHandle, offset: number, length: number): ArrayBuffer;
  write(h: ArenaHandle, offset: number, src: ArrayBufferView | ArrayBuffer): number;
  addrMod(src: ArrayBufferView | ArrayBuffer): number;
  populate(h: ArenaHandle, offset: number, length: number): boolean;
  stats(h: ArenaHandle): ArenaStats;
  check(h: ArenaHandle): string | null;
  close(h: ArenaHandle): void;
  /** Reports bytes held outside the JS heap to V8 (negative: released). */
  externalMemory(delta: number): number;
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
