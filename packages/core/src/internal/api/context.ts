/**
 * The process's runtime (one per process, like Ray's global worker): set by
 * `init()` in a driver and at start in a worker. Kept on globalThis so every
 * copy of tsray loaded in the process sees the same one.
 * @internal
 */
import { NotInitializedError } from '../../errors';
import type { CoreWorker } from '../runtime/core-worker';
import type { WorkingDirPackages, WorkingDirRef } from '../runtime-env/working-dir';
import type { NpmEnvSpec } from '../runtime-env/npm-spec';

/** What the public verbs need from the process's runtime. */
export interface Runtime {
  readonly mode: 'driver' | 'worker';
  readonly core: CoreWorker;
  readonly jobId: string;
  readonly nodeId: string;
  readonly namespace: string;
  readonly headAddress: string;
  readonly rayletAddress: string;
  /**
   * The working directory tasks and actors submitted here run in unless
   * they name their own: the job's (a driver), the worker's own (a worker)
   */
  readonly workingDir: WorkingDirRef | undefined;
  /**
   * The npm packages tasks and actors submitted here resolve first unless
   * they name their own: none in a driver (node managers apply the job's),
   * the worker's own in a worker
   */
  readonly npm: NpmEnvSpec | undefined;
  /** packs and stores the working directories that tasks and actors name */
  readonly packages: WorkingDirPackages;
  shutdown(): Promise<void>;
}

const KEY = Symbol.for('tsray.runtime');
const LOST = Symbol.for('tsray.runtimeLost');
type Holder = Record<symbol, Runtime | Error | undefined>;

/** The current runtime, or undefined. */
export function currentRuntime(): Runtime | undefined {
  return (globalThis as unknown as Holder)[KEY] as Runtime | undefined;
}

/**
 * The current runtime. Without one it throws the error the last runtime
 * was lost with (its node manager or head died) until `init()` or
 * `shutdown()`, else NotInitializedError naming `what`.
 */
export function runtime(what: string): Runtime {
  const r = currentRuntime();
  if (r) return r;
  const lost = (globalThis as unknown as Holder)[LOST] as Error | undefined;
  throw lost ?? new NotInitializedError(what);
}

/** Installs (or clears) the process's runtime; either forgets how an earlier one was lost. */
export function setRuntime(r: Runtime | undefined): void {
  const h = globalThis as unknown as Holder;
  h[KEY] = r;
  h[LOST] = undefined;
}

/** The runtime `r` was lost (its cluster died): it is cleared, and later calls throw `err` until `init()` or `shutdown()`. */
export function runtimeLost(r: Runtime, err: Error): void {
  if (currentRuntime() !== r) return;
  const h = globalThis as unknown as Holder;
  h[KEY] = undefined;
  h[LOST] = err;
}
