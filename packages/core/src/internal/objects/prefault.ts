/**
 * Pre-faulting a node's object store. The first write to a fresh page of
 * shared memory faults (0.4-1 GB/s on the development VM, against ~12 GB/s
 * into pages already mapped), so a node allocates the start of its arena in
 * the background soon after it starts (fallocate of the memfd: the pages
 * exist, zeroed, but are mapped in no process, so they count in no one's
 * RSS), and a driver maps the start of it into its own page tables (each
 * process has its own). The allocator hands out the lowest addresses first,
 * so the start of the arena is what puts use. A process maps at most a
 * quarter of the store ahead of use: in a small store, mapping all of it in
 * every driver would count the whole store in each one's RSS.
 *
 * It costs memory — the pre-faulted pages are committed RAM for as long as
 * the node runs — so it is capped: `TSRAY_PREFAULT` bytes (default 1 GiB),
 * never more than the arena nor a quarter of the memory free when it starts;
 * `TSRAY_PREFAULT=0` turns it off. It starts 1 s after the node (or driver)
 * is up, so that short-lived clusters never pay for it, and runs on a thread
 * using at most a quarter of one CPU, in 1 MiB steps at normal priority (a
 * low-priority thread starved while it holds the process's memory-map lock
 * would stall the event loop: see prefault_run in native/arena_core.h).
 * @internal
 */
import * as os from 'node:os';
import type { ArenaAddon, ArenaHandle } from '../native';

/** Bytes pre-faulted when `TSRAY_PREFAULT` is not set. */
export const DEFAULT_PREFAULT_BYTES = 1024 ** 3;
/** How long after start the prefault begins. */
export const PREFAULT_DELAY_MS = 1000;
/** The most of the store one process maps ahead of use (the node allocates up to all of it). */
const MAP_SHARE = 0.25;
/** The most of one CPU the prefault thread uses, in percent. */
const PREFAULT_DUTY = 25;

/**
 * The `TSRAY_PREFAULT` setting in bytes (`DEFAULT_PREFAULT_BYTES` when unset).
 * @throws TypeError when it is not a whole number of bytes
 */
export function prefaultSetting(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.TSRAY_PREFAULT;
  if (v === undefined || v.trim() === '') return DEFAULT_PREFAULT_BYTES;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new TypeError(`TSRAY_PREFAULT must be a whole number of bytes of the object store to fault in ahead of use (0 turns it off), got '${v}'`);
  }
  return n;
}

/**
 * Starts the prefault of `handle` (an arena of `capacity` bytes) after
 * {@link PREFAULT_DELAY_MS}, capped as the module comment says: `map`
 * true maps the pages into this process (a driver), false only allocates
 * them (the node manager). Returns a function that cancels it if it has not
 * started; closing the handle stops one that has.
 */
export function prefaultLater(A: ArenaAddon, handle: ArenaHandle, capacity: number, setting: number, map: boolean): () => void {
  if (setting === 0) return () => undefined;
  const timer = setTimeout(() => {
    const bytes = Math.min(setting, map ? Math.floor(capacity * MAP_SHARE) : capacity, Math.floor(os.freemem() / 4));
    try {
      A.prefault(handle, bytes, PREFAULT_DUTY, map);
    } catch {
      // closed meanwhile: nothing to fault in
    }
  }, PREFAULT_DELAY_MS);
  timer.unref();
  return () => clearTimeout(timer);
}
