/**
 * Which idle workers a node manager stops, as Ray's worker pool does
 * (`TryKillingIdleWorkers`, src/ray/raylet/worker_pool.cc): every
 * KILL_IDLE_WORKERS_INTERVAL_MS it looks at the node's task workers, and
 * while there are more than the node has CPUs it stops those idle for
 * IDLE_WORKER_KILLING_TIME_MS or more, the longest idle first. Actor workers
 * are never counted or stopped. A worker asked to stop may refuse (it owns
 * objects or tasks others still use) and is asked again later, after twice
 * as long each time (refusalBackoffMs): each ask costs it a full garbage
 * collection.
 * @internal
 */
import type { WorkerProc } from './worker-pool';

/** How often idle workers are looked at (Ray's kill_idle_workers_interval_ms). */
export const KILL_IDLE_WORKERS_INTERVAL_MS = 200;

/** How long a worker must be idle before it may be stopped (Ray's idle_worker_killing_time_threshold_ms). */
export const IDLE_WORKER_KILLING_TIME_MS = 1000;

/** How much longer than usual a worker that refused `refusals` times waits before it is asked again: 1, 3, 7 ... idle periods, at most a minute. */
export function refusalBackoffMs(refusals: number, thresholdMs = IDLE_WORKER_KILLING_TIME_MS): number {
  return Math.min(60_000, thresholdMs * (2 ** Math.min(refusals, 16) - 1));
}

/** Task workers a node keeps however idle: as many as it has CPUs, at least one. */
export function idleWorkerSoftLimit(cpus: number): number {
  return Math.max(1, Math.floor(cpus));
}

/**
 * The idle workers to stop now: with more than `limit` task workers
 * (starting, idle or leased, not already asked to stop), those idle since
 * at least `thresholdMs` before `now`, longest idle first, until `limit` are
 * left.
 */
export function idleWorkersToStop(workers: Iterable<WorkerProc>, limit: number, now: number, thresholdMs = IDLE_WORKER_KILLING_TIME_MS): WorkerProc[] {
  let count = 0;
  const idle: WorkerProc[] = [];
  for (const w of workers) {
    if (w.stopAsked || w.state === 'actor' || w.state === 'dead' || w.actorId !== undefined || w.killRequested) continue;
    count++;
    if (w.state === 'idle' && now - w.idleSince >= thresholdMs) idle.push(w);
  }
  if (count <= limit) return [];
  idle.sort((a, b) => a.idleSince - b.idleSince);
  return idle.slice(0, count - limit);
}
