import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/** Polls `cond` until it is true, failing after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

let gcFn: (() => void) | undefined;

/** Runs a full garbage collection and lets finalizers run. */
export async function collectGarbage(): Promise<void> {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  await new Promise((r) => setImmediate(r));
  gcFn();
  await new Promise((r) => setImmediate(r));
}

/**
 * Collects garbage until `count()` stops changing, and returns it: the same
 * count over five readings (~200 ms), so that frees still on their way
 * (from workers, or a worker the node stops for being idle) are counted.
 * Throws when the count still moves after ~5 s.
 */
export async function settled(count: () => number): Promise<number> {
  let last = -1;
  let same = 0;
  const seen: number[] = [];
  for (let i = 0; i < 100; i++) {
    await collectGarbage();
    await new Promise((r) => setTimeout(r, 40));
    const n = count();
    same = n === last ? same + 1 : 0;
    if (same >= 4) return n;
    last = n;
    seen.push(n);
  }
  throw new Error(`the count did not settle within 100 readings (last ones: ${seen.slice(-8).join(', ')})`);
}
