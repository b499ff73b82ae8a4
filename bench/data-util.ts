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

/** RSS, PSS (shared pages split among the processes that map them) and shared memory in RSS of a process, bytes. */
function memOf(pid: number): { rss: number; pss: number; shmem: number } {
  const kb = (t: string, re: RegExp): number => {
    const m = re.exec(t);
    return m ? Number(m[1]) * 1024 : 0;
  };
  try {
    const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rss: kb(t, /^Rss:\s+(\d+) kB/m), pss: kb(t, /^Pss:\s+(\d+) kB/m), shmem: kb(st, /^RssShmem:\s+(\d+) kB/m) };
  } catch {
    return { rss: 0, pss: 0, shmem: 0 };
  }
}

/** What a process of the cluster is, from its command line. */
function labelOf(pid: number): string {
  let cmd = '';
  try {
    cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return `pid ${pid}`;
  }
  if (pid === process.pid) return 'driver';
  for (const [re, name] of [[/raylet|node-manager|node_manager/, 'node manager'], [/head/, 'head'], [/worker/, 'worker']] as const) if (re.test(cmd)) return name;
  return cmd.split(' ').slice(0, 2).join(' ').slice(0, 40);
}

/** Samples every 200 ms until stopped; stop() returns the peaks. */
export class RssSampler {
  private peakRss = 0;
  private peakPss = 0;
  private peakStore = 0;
  private peakOnce = 0;
  /** peak RSS of each process, by a short label */
  private readonly byProcess = new Map<number, { label: string; rss: number; shmem: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly store: () => number) {
    this.timer = setInterval(() => this.sample(), 200);
    this.sample();
  }

  private sample(): void {
    const all = [process.pid];
    for (let i = 0; i < all.length; i++) all.push(...children(all[i] as number));
    const mems = all.map(memOf);
    for (const [i, pid] of all.entries()) {
      const m = mems[i] as { rss: number; shmem: number };
      const cur = this.byProcess.get(pid) ?? { label: labelOf(pid), rss: 0, shmem: 0 };
      if (m.rss > cur.rss) Object.assign(cur, { rss: m.rss, shmem: m.shmem });
      this.byProcess.set(pid, cur);
    }
    this.peakRss = Math.max(this.peakRss, mems.reduce((a, m) => a + m.rss, 0));
    this.peakPss = Math.max(this.peakPss, mems.reduce((a, m) => a + m.pss, 0));
    // private memory of every process, plus the shared object store once (the largest share of it any process maps: the
    // node manager maps the whole arena once it is pre-faulted)
    this.peakOnce = Math.max(this.peakOnce, mems.reduce((a, m) => a + m.rss - m.shmem, 0) + Math.max(0, ...mems.map((m) => m.shmem)));
    try {
      this.peakStore = Math.max(this.peakStore, this.store());
    } catch {
      // not initialized
    }
  }

  stop(): { rss: number; pss: number; store: number; rssStoreOnce: number } {
    clearInterval(this.timer);
    return { rss: this.peakRss, pss: this.peakPss, store: this.peakStore, rssStoreOnce: this.peakOnce };
  }

  /** Each process's peak RSS (and the shared memory in it), largest first: "node manager 1.02 GiB (shm 1.00)". */
  breakdown(): string {
    const g = (b: number): string => (b / 1024 ** 3).toFixed(2);
    return [...this.byProcess.values()]
      .sort((a, b) => b.rss - a.rss)
      .map((p) => `${p.label} ${g(p.rss)} GiB (shm ${g(p.shmem)})`)
      .join(', ');
  }
}
