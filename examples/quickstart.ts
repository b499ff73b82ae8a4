/**
 * tsray quick start: tasks, an actor, and a large array shared through the
 * object store. Run it with `npm run demo` (or `npx tsx examples/quickstart.ts`).
 *
 * Remote functions and actor classes are defined at the top level: worker
 * processes import this module to find them. The driver code below runs only
 * when this file is the program (not when a worker imports it).
 */
import * as ray from '@tsray/core';

/** Throws `n` random darts at the unit square; counts those inside the circle. */
export const samplePi = ray.remote((n: number): number => {
  let inside = 0;
  for (let i = 0; i < n; i++) {
    const x = Math.random();
    const y = Math.random();
    if (x * x + y * y <= 1) inside++;
  }
  return inside;
});

/** A counter that lives in its own process. */
export class Counter {
  private n = 0;
  inc(k = 1): number {
    this.n += k;
    return this.n;
  }
}
export const CounterActor = ray.remote(Counter);

/** Sums an array in another process; the array is read in place from shared memory. */
export const sum = ray.remote((a: Float64Array): { sum: number; ms: number } => {
  const t = performance.now();
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] as number;
  return { sum: s, ms: performance.now() - t };
});

async function main(): Promise<void> {
  const t0 = performance.now();
  await ray.init();
  const res = await ray.clusterResources();
  console.log(`tsray started a local cluster with ${res.CPU} CPUs in ${(performance.now() - t0).toFixed(0)} ms`);

  // 1. tasks: estimate pi in parallel
  let t = performance.now();
  const tasks = 16;
  const perTask = 2_000_000;
  const counts = await ray.get(Array.from({ length: tasks }, () => samplePi.remote(perTask)));
  const pi = (4 * counts.reduce((a, b) => a + b, 0)) / (tasks * perTask);
  console.log(`pi ≈ ${pi.toFixed(5)} from ${tasks} tasks × ${perTask.toLocaleString()} samples in ${(performance.now() - t).toFixed(0)} ms`);

  // 2. an actor: state that survives between calls
  t = performance.now();
  const counter = CounterActor.remote();
  const calls = Array.from({ length: 1000 }, () => counter.inc.remote(1));
  const last = (await ray.get(calls))[999];
  console.log(`counter actor reached ${last} after 1,000 calls in ${(performance.now() - t).toFixed(0)} ms`);

  // 3. the object store: put a large array once, read it from another process without copying
  const n = 50_000_000;
  const big = new Float64Array(n).fill(1);
  t = performance.now();
  const ref = ray.put(big);
  const putMs = performance.now() - t;
  const r = await ray.get(sum.remote(ref));
  console.log(
    `put ${((n * 8) / 2 ** 20).toFixed(0)} MiB in ${putMs.toFixed(0)} ms; a task read it in place and summed it to ${r.sum.toLocaleString()} in ${r.ms.toFixed(0)} ms`,
  );

  await ray.shutdown();
  console.log(`done in ${(performance.now() - t0).toFixed(0)} ms`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
