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
type Holder = Record<symbol, Runtime | undefined>;

/** The current runtime, or undefined. */
export function currentRuntime(): Runtime | undefined {
  return (globalThis as unknown as Holder)[KEY];
}

/** The current runtime; throws NotInitializedError naming `what` without one. */
export function runtime(what: string): Runtime {
  const r = currentRuntime();
  if (!r) throw new NotInitializedError(what);
  return r;
}

/** Installs (or clears) the process's runtime. */
export function setRuntime(r: Runtime | undefined): void {
  (globalThis as unknown as Holder)[KEY] = r;
}
