/**
 * Core microbenchmarks: Ray's `ray microbenchmark` (python/ray/_private/ray_perf.py)
 * reproduced with the same names, plus a worker-thread pool (piscina) doing
 * the same trivial task, the machine's memcpy, zero-copy reads and memory
 * use. Run with `npm run bench -- core`; writes bench/results/core.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { collect, report, runMeta, summarize, timeit, type Log, type Metric } from './harness';
import { zmqRoundTrip } from './zmq-round-trip';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { jsPid } = require('./js-probe.js') as { jsPid: ray.RemoteFunction<() => number> };

// ---------------------------------------------------------------------------
// remote definitions (workers import this module to find them)

export const smallValue = ray.remote(function small_value(): string {
  return 'ok';
});

export const smallValueArg = ray.remote(function small_value_arg(_x: unknown): string {
  return 'ok';
});

export const createObjectContainingRef = ray.remote(function create_object_containing_ref(): ray.ObjectRef<number>[] {
  const refs: ray.ObjectRef<number>[] = [];
  for (let i = 0; i < 10000; i++) refs.push(ray.put(1));
  return refs;
});

export const sleep = ray.remote(async function gate(ms: number): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  return 0;
});

export class Actor {
  small_value(): string {
    return 'ok';
  }
}
export const ActorClass = ray.remote({ numCpus: 0 }, Actor);

export const work = ray.remote(async function work(actors: ray.ActorHandle<Actor>[], n: number): Promise<void> {
  await ray.get(Array.from({ length: n }, (_, i) => (actors[i % actors.length] as ray.ActorHandle<Actor>).small_value.remote()));
});

export const readInPlace = ray.remote(async function read_in_place(refs: ray.ObjectRef<Float64Array>[]): Promise<{ getMs: number; sumMs: number; n: number; ends: number }> {
  const t0 = performance.now();
  const a = await ray.get(refs[0] as ray.ObjectRef<Float64Array>);
  const ends = (a[0] as number) + (a[a.length - 1] as number);
  const getMs = performance.now() - t0;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] as number;
  return { getMs, sumMs: performance.now() - t0 - getMs, n: s, ends };
});

export const pid = ray.remote(function pid(): number {
  return process.pid;
});

// ---------------------------------------------------------------------------

/** Fields of /proc/<p>/status in bytes (VmRSS, RssShmem, ...), from one read; NaN for a process that is gone (stopped for being idle). */
function statusBytes(p: number | 'self', ...fields: string[]): number[] {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
  } catch {
    return fields.map(() => NaN);
  }
  return fields.map((f) => {
    const m = new RegExp(`${f}:\\s+(\\d+) kB`).exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  });
}

function rssOf(p: number): number {
  return statusBytes(p, 'VmRSS')[0] as number;
}

/**
 * This process's resident memory less its shared-memory pages (RssShmem):
 * the driver maps the node's object store and pre-faults the start of it
 * (up to 1 GiB, TSRAY_PREFAULT), pages that belong to the node, not to it.
 */
function ownRss(): number {
  const [rss, shmem] = statusBytes('self', 'VmRSS', 'RssShmem') as [number, number];
  return rss - shmem;
}

/** A metric's median (its value when it has no rounds). */
const median = (m: Metric): number => m.median ?? m.value;

const MiB = 1024 * 1024;
const GB = 1e9;
const BIG = 100 * 1024 * 1024; // elements: 800 MiB of float64, as Ray's np.zeros(100 MiB, int64)

/** The machine's memcpy: Float64Array.set of `src` into a warm buffer, 7 rounds. */
export async function memcpyGbps(src: Float64Array): Promise<Metric> {
  const dst = new Float64Array(src.length);
  dst.set(src); // first touch
  const rounds: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    dst.set(src);
    rounds.push(src.byteLength / GB / ((performance.now() - t) / 1000));
  }
  return summarize(rounds, 'GB/s');
}

async function piscinaTasksAsync(): Promise<Metric | undefined> {
  let Piscina: typeof import('piscina').Piscina;
  try {
    ({ Piscina } = await import('piscina'));
  } catch {
    return undefined;
  }
  const file = path.join(os.tmpdir(), `tsray-bench-piscina-${process.pid}.js`);
  fs.writeFileSync(file, "module.exports = () => 'ok';\n");
  // a clean pool, as in a plain-node program: worker threads would otherwise
  // inherit this benchmark's tsx loader flags, which slows them down erratically
  const pool = new Piscina({ filename: file, execArgv: [] });
  try {
    return await timeit(() => Promise.all(Array.from({ length: 1000 }, () => pool.run(null))), 1000);
  } finally {
    await pool.destroy();
    fs.rmSync(file, { force: true });
  }
}

/** Idle worker memory and a driver holding 100,000 pending tasks, measured before any large object exists. */
async function memory(log: Log): Promise<void> {
  // one pool at a time: a node stops idle workers beyond its CPU count after 1 s (those idle longest first);
  // a worker idle for 1 s gives memory back (worker/process-addon.ts): measured 2.5 s after its last task
  const rssMb = (pids: Set<number>): number[] => [...pids].map(rssOf).filter((x) => Number.isFinite(x)).map((x) => x / MiB);
  const tsPids = new Set(await ray.get(Array.from({ length: 20 }, () => pid.remote())));
  await new Promise((r) => setTimeout(r, 2500));
  const tsRss = rssMb(tsPids);
  const jsPids = new Set(await ray.get(Array.from({ length: 4 }, () => jsPid.options({ runtimeEnv: { env: { TSRAY_BENCH_POOL: 'js' } } }).remote())));
  await new Promise((r) => setTimeout(r, 2500));
  log('idle_worker_rss_mb', { ...summarize(rssMb(jsPids), 'MB'), target: '≤ 60 MB', note: 'worker that ran JavaScript tasks, idle 2.5 s (VmRSS; ~44 MB of it is the node binary, shared)' });
  log('idle_worker_rss_ts_mb', { ...summarize(tsRss, 'MB'), target: '≤ 60 MB', note: 'worker that loaded this TypeScript module through tsx, idle 2.5 s' });
  const before = ownRss();
  const gate = sleep.remote(4000);
  const pending = Array.from({ length: 100_000 }, () => smallValueArg.remote(gate));
  const after = ownRss();
  log('driver_rss_100k_pending_tasks_mb', {
    value: after / MiB,
    unit: 'MB',
    target: '≤ 400 MB',
    note: `VmRSS less RssShmem (the pre-faulted object store pages, ${((statusBytes('self', 'RssShmem')[0] as number) / MiB).toFixed(0)} MB now); ${((after - before) / MiB).toFixed(0)} MB more than before submitting`,
  });
  await ray.get(pending);
}

async function smallObjects(log: Log): Promise<void> {
  const value = ray.put(0);
  log('single_client_get_calls', { ...(await timeit(() => ray.get(value))), ray: '10,620/s', target: '≥ 100,000/s' });
  log('single_client_put_calls', { ...(await timeit(() => ray.put(0))), ray: '5,173/s', target: '≥ 50,000/s' });
}

async function putGigabytes(log: Log, metrics: Record<string, Metric>): Promise<void> {
  const arr = new Float64Array(BIG).fill(1.5); // touched: untouched pages all map the zero page and would inflate memcpy
  // The first puts fault fresh pages into the store (~0.4 GB/s on this VM);
  // Ray's 1 s warm-up covers many puts on its machine but one here, so warm
  // the store with a few puts first. Yield after each put, as a program
  // doing anything between puts would, so dropped refs can be collected.
  for (let i = 0; i < 3; i++) {
    ray.put(arr);
    await new Promise((r) => setImmediate(r));
  }
  log('single_client_put_gigabytes', { ...(await timeit(() => ray.put(arr), arr.byteLength / GB, { yieldEvery: 1 })), unit: 'GB/s', ray: '19.9 GB/s', target: '≥ 50% of memcpy' });
  const copy = await memcpyGbps(arr);
  log('memcpy_gigabytes (same run)', { ...copy, note: 'Float64Array.set of 800 MiB into a warm buffer' });
  log('put_gigabytes_vs_memcpy', { value: median(metrics.single_client_put_gigabytes as Metric) / median(copy), unit: 'ratio', target: '≥ 0.5', note: 'ratio of the medians, same run' });
}

/** Seconds a fresh cluster runs before the cold put (the store pre-faults in the background meanwhile). */
const COLD_PUT_AFTER_S = 5;

/**
 * One put of `arr` into the store of a fresh `init()` (default options),
 * `COLD_PUT_AFTER_S` after it returned: GB/s, and how much of the store this
 * process had mapped by then (RssShmem: the pre-faulted pages).
 */
async function oneColdPut(arr: Float64Array): Promise<{ gbps: number; mappedMiB: number }> {
  await ray.init({ logToDriver: true });
  try {
    await new Promise((r) => setTimeout(r, COLD_PUT_AFTER_S * 1000));
    const mappedMiB = (statusBytes('self', 'RssShmem')[0] as number) / MiB;
    const t = performance.now();
    ray.put(arr);
    return { gbps: arr.byteLength / GB / ((performance.now() - t) / 1000), mappedMiB };
  } finally {
    await ray.shutdown();
  }
}

/**
 * The first put of a large object into a fresh node's store, as a program
 * that starts and soon puts its data sees it: fresh `init()`, wait 5 s, one
 * put of 800 MiB. Three fresh clusters (median), then the same without
 * pre-faulting (`TSRAY_PREFAULT=0`: every page faults on first touch),
 * against memcpy in the same run.
 */
async function coldPut(log: Log, metrics: Record<string, Metric>): Promise<void> {
  const arr = new Float64Array(BIG).fill(1.5);
  const on: Array<{ gbps: number; mappedMiB: number }> = [];
  for (let i = 0; i < 3; i++) on.push(await oneColdPut(arr));
  const mapped = (rs: Array<{ mappedMiB: number }>): string => rs.map((r) => r.mappedMiB.toFixed(0)).join(', ');
  log('single_client_cold_put_gigabytes', {
    ...summarize(on.map((r) => r.gbps), 'GB/s'),
    target: '≥ 0.5 × memcpy',
    note: `one put of 800 MiB ${COLD_PUT_AFTER_S} s after a fresh init() (default store size), one round per fresh cluster; the driver had ${mapped(on)} MiB of the store mapped by then`,
  });
  process.env.TSRAY_PREFAULT = '0';
  let off: { gbps: number; mappedMiB: number };
  try {
    off = await oneColdPut(arr);
  } finally {
    delete process.env.TSRAY_PREFAULT;
  }
  log('cold_put_gigabytes_without_prefault', { ...summarize([off.gbps], 'GB/s'), note: `the same with TSRAY_PREFAULT=0 (pages fault on first touch, as before pre-faulting; ${mapped([off])} MiB mapped)` });
  const copy = await memcpyGbps(arr);
  log('memcpy_gigabytes (cold_put run)', { ...copy, note: 'Float64Array.set of 800 MiB into a warm buffer' });
  log('cold_put_vs_memcpy', { value: median(metrics.single_client_cold_put_gigabytes as Metric) / median(copy), unit: 'ratio', target: '≥ 0.5', note: 'ratio of the medians, same run' });
}

/** A task in another process reads an 800 MiB array the driver put. */
async function readInPlaceSection(log: Log): Promise<void> {
  const ref = ray.put(new Float64Array(BIG).fill(1));
  const reads: number[] = [];
  const sums: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await ray.get(readInPlace.remote([ref]));
    if (r.n !== BIG) throw new Error(`read_in_place summed ${r.n}, expected ${BIG}`);
    reads.push(r.getMs);
    sums.push(r.sumMs);
  }
  log('task_read_800MiB_in_place_ms', { ...summarize(reads, 'ms'), target: '< 50 ms (no copy)', note: 'get() in the task plus reading both ends' });
  log('task_sum_800MiB_ms', { ...summarize(sums, 'ms'), note: 'for reference: summing every element after the get' });
}

async function tasks(log: Log, metrics: Record<string, Metric>): Promise<void> {
  log('single_client_tasks_and_get_batch', { ...(await timeit(() => ray.get(Array.from({ length: 1000 }, () => smallValue.remote())))), ray: '5.8/s', target: '≥ 12/s' });
  const obj = createObjectContainingRef.remote();
  await ray.get(obj);
  log('single_client_get_object_containing_10k_refs', { ...(await timeit(() => ray.get(obj))), ray: '13.4/s', target: '≥ 15/s' });
  log('single_client_wait_1k_refs', {
    ...(await timeit(async () => {
      let notReady = Array.from({ length: 1000 }, () => smallValue.remote());
      for (let i = 0; i < 1000; i++) [, notReady] = await ray.wait(notReady);
    })),
    ray: '5.1/s',
    target: '≥ 10/s',
  });
  log('single_client_tasks_async', { ...(await timeit(() => ray.get(Array.from({ length: 1000 }, () => smallValue.remote())), 1000)), ray: '8,041/s', target: '≥ 15,000/s' });
  const pis = metrics.piscina_tasks_async;
  if (pis) {
    const ours = metrics.single_client_tasks_async as Metric;
    log('tasks_async_vs_piscina', { value: median(ours) / median(pis), unit: 'ratio', target: '≥ 0.3', note: 'ratio of the medians' });
  }
}

/** The ceiling of the sync sections: a bare ZeroMQ round trip between two processes (bench/zmq-round-trip.ts). */
async function zmqSection(log: Log): Promise<void> {
  log('zmq_ipc_round_trip', { ...(await zmqRoundTrip()), note: 'zeromq.js DEALER → ROUTER echo in a child process over ipc, sequential, 64-byte messages: the ceiling of a sync call' });
}

/** `sync` against the bare round trip measured in the same run, when it was. */
function vsZmq(log: Log, metrics: Record<string, Metric>, name: string): void {
  const zmq = metrics.zmq_ipc_round_trip;
  const ours = metrics[name];
  if (zmq && ours) log(`${name.replace(/^single_client_/, '')}_vs_zmq_round_trip`, { value: median(ours) / median(zmq), unit: 'ratio', note: 'ratio of the medians, same run: the share of the ZeroMQ ceiling a sync call reaches' });
}

async function tasksSync(log: Log, metrics: Record<string, Metric>): Promise<void> {
  await ray.get(smallValue.remote());
  log('single_client_tasks_sync', { ...(await timeit(() => ray.get(smallValue.remote()))), ray: '981/s', target: '≥ 8,000/s' });
  vsZmq(log, metrics, 'single_client_tasks_sync');
}

async function actorCallsSync(log: Log, metrics: Record<string, Metric>): Promise<void> {
  const a = ActorClass.remote();
  await ray.get(a.small_value.remote());
  log('1_1_actor_calls_sync', { ...(await timeit(() => ray.get(a.small_value.remote()))), ray: '2,012/s', target: '≥ 8,000/s' });
  vsZmq(log, metrics, '1_1_actor_calls_sync');
  ray.kill(a);
}

async function actorCalls(log: Log): Promise<void> {
  const a = ActorClass.remote();
  await ray.get(a.small_value.remote());
  log('1_1_actor_calls_async', { ...(await timeit(() => ray.get(Array.from({ length: 1000 }, () => a.small_value.remote())), 1000)), ray: '8,664/s', target: '≥ 20,000/s' });
  const c = ActorClass.options({ maxConcurrency: 16 }).remote();
  await ray.get(c.small_value.remote());
  log('1_1_actor_calls_concurrent', { ...(await timeit(() => ray.get(Array.from({ length: 1000 }, () => c.small_value.remote())), 1000)), ray: '5,775/s', target: '≥ 15,000/s' });
  // Ray: n_cpu // 2 actors; m tasks each making n calls spread over them
  const actors = Array.from({ length: Math.max(1, Math.floor(os.availableParallelism() / 2)) }, () => ActorClass.remote());
  await ray.get(actors.map((x) => x.small_value.remote()));
  const n = 5000;
  const m = 4;
  log('n_n_actor_calls_async', { ...(await timeit(() => ray.get(Array.from({ length: m }, () => work.remote(actors, n))), m * n)), ray: '27,376/s', target: '≥ 20,000/s' });
}

/**
 * The sections, in order. `own` sections start (and stop) the clusters they
 * need and run after the others, which share one `init()` (so that the
 * memory section measures a fresh process, as it always has).
 */
const SECTIONS: Array<{ name: string; own?: boolean; run: (log: Log, metrics: Record<string, Metric>) => Promise<void> }> = [
  { name: 'memory', run: memory },
  { name: 'small_objects', run: smallObjects },
  { name: 'put_gigabytes', run: putGigabytes },
  { name: 'read_in_place', run: readInPlaceSection },
  { name: 'tasks', run: tasks },
  // the sync sections and their ceiling, side by side
  { name: 'zmq_round_trip', run: zmqSection },
  { name: 'tasks_sync', run: tasksSync },
  { name: 'actor_calls_sync', run: actorCallsSync },
  { name: 'actor_calls', run: actorCalls },
  { name: 'cold_put', own: true, run: coldPut },
];

/** The names of the sections, in order (`npm run bench -- core <name> ...` runs some). */
export const SECTION_NAMES: readonly string[] = SECTIONS.map((s) => s.name);

/** Runs the sections in `only` (default: all) and writes the results file. */
export async function run(only?: string[]): Promise<void> {
  const picked = SECTIONS.filter((s) => !only || only.includes(s.name));
  const cpus = os.availableParallelism();
  const { metrics, log } = collect();
  console.error(`tsray core benchmark on ${cpus} CPUs, Node ${process.version}`);
  // the peer runs first, on a quiet machine (tsray's idle processes would share its cores)
  if (picked.some((s) => s.name === 'tasks')) {
    const pis = await piscinaTasksAsync();
    if (pis) log('piscina_tasks_async', { ...pis, note: 'the same trivial task on a worker-thread pool (piscina defaults), measured before tsray starts' });
  }
  const shared = picked.filter((s) => !s.own);
  if (shared.length > 0) {
    await ray.init({ objectStoreMemory: 4 * 1024 ** 3, logToDriver: true });
    // each section is its own function: an async function keeps its locals
    // alive until it returns (100,000 refs from one section would weigh on the next)
    for (const s of shared) await s.run(log, metrics);
    await ray.shutdown();
  }
  for (const s of picked) if (s.own) await s.run(log, metrics);
  report(only ? `core-${only.join('+')}` : 'core', metrics, runMeta());
}
