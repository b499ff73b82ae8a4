/**
 * The worker's small native addon (native/process.cc): dying with the node
 * manager, and giving memory back when idle. Absent (not built, or not
 * Linux), both are skipped with a debug line.
 * @internal
 */
import * as path from 'node:path';
import { log } from '../log';

/** What native/process.cc exports. */
interface ProcessAddon {
  /** SIGKILL-on-parent-exit; the parent's pid after the request, -1 where unsupported */
  dieWithParent(signal: number): number;
  /** V8's low-memory notification: a full collection that also shrinks the heap */
  lowMemory(): void;
}

let addon: ProcessAddon | null | undefined;

function load(): ProcessAddon | null {
  if (addon !== undefined) return addon;
  const file = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'tsray_process.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(file) as ProcessAddon;
  } catch (e) {
    log.debug(`no process addon (${(e as Error).message}): workers busy in a synchronous task outlive a killed node manager until the task yields, and idle workers keep their memory`);
    addon = null;
  }
  return addon;
}

/**
 * A worker dies with its node manager. Its stdin is a pipe from the node
 * manager whose end stops the worker (`watchParent`), but only once its
 * event loop runs: a task busy in a long synchronous loop would outlive a
 * node manager killed with SIGKILL. So the worker also asks the kernel to
 * kill it when its parent exits (Linux's PR_SET_PDEATHSIG); it exits now if
 * the parent is already gone.
 */
export function dieWithParent(): void {
  const a = load();
  if (!a) return;
  const before = process.ppid;
  const after = a.dieWithParent(9);
  // the parent died between the two reads: no signal is coming
  if (after !== -1 && after !== before) process.exit(0);
}

/** A worker that has had nothing to do for this long gives memory back, once per idle spell. */
export const IDLE_MEMORY_MS = 1000;
/** ... unless its heap is this large: a full collection would then cost more than it returns. */
const IDLE_MEMORY_MAX_HEAP = 64 * 1024 * 1024;

/**
 * Gives memory back once a worker has been idle for IDLE_MEMORY_MS: V8
 * keeps the young generation it grew while modules loaded and tasks ran
 * (several MB) until its own memory reducer runs, some 8 s later. One full
 * collection per idle spell, on a small heap, is cheap. Idle: `quiet()` at
 * every look, and no message since the last (`activity()` unchanged).
 */
export function giveMemoryBackWhenIdle(quiet: () => boolean, activity: () => number): void {
  const a = load();
  if (!a) return;
  let idleSince: number | undefined;
  let given = false;
  let seen = activity();
  const timer = setInterval(() => {
    const now = activity();
    if (!quiet() || now !== seen) {
      seen = now;
      idleSince = undefined;
      given = false;
      return;
    }
    idleSince ??= Date.now();
    if (given || Date.now() - idleSince < IDLE_MEMORY_MS) return;
    given = true;
    if (process.memoryUsage().heapUsed <= IDLE_MEMORY_MAX_HEAP) a.lowMemory();
  }, IDLE_MEMORY_MS / 4);
  timer.unref();
}
