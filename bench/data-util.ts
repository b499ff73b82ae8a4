/**
 * Helpers of the data benchmarks: one timed run, and a sampler of the
 * summed RSS of this process and every process it started, with the object
 * store's use.
 */
import * as fs from 'node:fs';

/** Seconds one call of `fn` takes. */
/** Times `fn` `reps` times after one untimed warm-up run (workers started, code compiled, files in the page cache), in seconds. */
export async function warmTimes(fn: () => Promise<unknown>, reps = 5): Promise<number[]> {
  await fn();
  const out: number[] = [];
  for (let r = 0; r < reps; r++) out.push(await timeOnce(fn));
  return out;
}

export async function timeOnce(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

function children(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    const p = Number(e);
    if (!Number.isInteger(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(p);
    } catch {
      // exited
    }
  }
  return out;
}

/** RSS and PSS (shared pages split among the processes that map them) of a process, bytes. */
function memOf(pid: number): { rss: number; pss: number } {
  try {
    const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const rss = /^Rss:\s+(\d+) kB/m.exec(t);
    const pss = /^Pss:\s+(\d+) kB/m.exec(t);
    return { rss: rss ? Number(rss[1]) * 1024 : 0, pss: pss ? Number(pss[1]) * 1024 : 0 };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** Samples every 200 ms until stopped; stop() returns the peaks. */
export class RssSampler {
  private peakRss = 0;
  private peakPss = 0;
  private peakStore = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly store: () => number) {
    this.timer = setInterval(() => this.sample(), 200);
    this.sample();
  }

  private sample(): void {
    const all = [process.pid];
    for (let i = 0; i < all.length; i++) all.push(...children(all[i] as number));
    const mems = all.map(memOf);
    this.peakRss = Math.max(this.peakRss, mems.reduce((a, m) => a + m.rss, 0));
    this.peakPss = Math.max(this.peakPss, mems.reduce((a, m) => a + m.pss, 0));
    try {
      this.peakStore = Math.max(this.peakStore, this.store());
    } catch {
      // not initialized
    }
  }

  stop(): { rss: number; pss: number; store: number } {
    clearInterval(this.timer);
    return { rss: this.peakRss, pss: this.peakPss, store: this.peakStore };
  }
}
