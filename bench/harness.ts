/**
 * Ray's microbenchmark method (python/ray/_private/ray_microbenchmark_helpers.py):
 * warm up for 1 s, then 4 rounds of at least 2 s each; report the mean and
 * standard deviation of the per-round rates, and the median.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** One measured metric. */
export interface Metric {
  value: number;
  unit: string;
  sd?: number;
  median?: number;
  rounds?: number[];
  target?: string;
  ray?: string;
  note?: string;
}

const now = (): number => performance.now() / 1000;
const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Calls `fn` repeatedly; `multiplier` scales calls to the reported unit
 * (e.g. 1000 tasks per call). Yields to the event loop between batches so
 * that garbage collection callbacks run, as they would in a real program.
 */
export async function timeit(
  fn: () => Promise<unknown> | unknown,
  multiplier = 1,
  opts: { warmupS?: number; roundS?: number; rounds?: number; yieldEvery?: number } = {},
): Promise<Metric> {
  const warmup = opts.warmupS ?? 1;
  const roundS = opts.roundS ?? 2;
  const yieldEvery = opts.yieldEvery ?? 16;
  let start = now();
  let count = 0;
  while (now() - start < warmup) {
    await fn();
    count++;
    if (count % yieldEvery === 0) await yieldLoop();
  }
  const step = Math.floor(count / 10) + 1;
  const rounds: number[] = [];
  for (let r = 0; r < (opts.rounds ?? 4); r++) {
    start = now();
    count = 0;
    while (now() - start < roundS) {
      for (let i = 0; i < step; i++) {
        await fn();
        if ((i + 1) % yieldEvery === 0) await yieldLoop();
      }
      count += step;
      await yieldLoop();
    }
    rounds.push((multiplier * count) / (now() - start));
  }
  return summarize(rounds, '/s');
}

/** Mean, standard deviation and median of per-round values. */
export function summarize(rounds: number[], unit: string): Metric {
  const mean = rounds.reduce((a, b) => a + b, 0) / rounds.length;
  const sd = Math.sqrt(rounds.reduce((a, b) => a + (b - mean) ** 2, 0) / rounds.length);
  const sorted = [...rounds].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { value: mean, unit, sd, median, rounds };
}

function fmt(v: number): string {
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** Prints a table and writes `bench/results/<name>.json`. */
export function report(name: string, metrics: Record<string, Metric>, meta: Record<string, unknown>): void {
  const rows = Object.entries(metrics).map(([k, m]) => [
    k,
    `${fmt(m.value)}${m.sd !== undefined ? ` ± ${fmt(m.sd)}` : ''} ${m.unit}`,
    m.median !== undefined ? `${fmt(m.median)} ${m.unit}` : '',
    m.ray ?? '',
    m.target ?? '',
  ]);
  const head = ['metric', 'tsray (mean ± sd)', 'median', 'Ray (64 vCPU)', 'target here'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  const out = path.join(__dirname, 'results', `${name}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const json: Record<string, unknown> = { _meta: meta };
  for (const [k, m] of Object.entries(metrics)) json[k] = m;
  fs.writeFileSync(out, JSON.stringify(json, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
}

/** Records a metric under a name (and prints it as it comes). */
export type Log = (name: string, m: Metric) => void;

/** Metrics by name, and a {@link Log} that records each one and prints it. */
export function collect(): { metrics: Record<string, Metric>; log: Log } {
  const metrics: Record<string, Metric> = {};
  const log: Log = (name, m) => {
    metrics[name] = m;
    console.error(`  ${name}: ${m.value.toFixed(2)} ${m.unit}`);
  };
  return { metrics, log };
}

/** The `_meta` of a results file: this machine, Node, the date, the method. */
export function runMeta(): Record<string, unknown> {
  return {
    machine: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB`,
    node: process.version,
    date: new Date().toISOString(),
    // the machine may be shared: how busy it was (1, 5 and 15 min averages, at the end of the run)
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
    method: 'Ray timeit: 1 s warm-up, 4 rounds of ≥ 2 s; value is the mean of rounds',
  };
}

/** A part of a suite: a name `npm run bench -- <suite> <name>` picks, and what it runs. */
export interface Section {
  name: string;
  run(log: Log, tmp: string): Promise<void>;
}

/**
 * Runs a suite's sections (all, or those in `only`) with a temporary
 * directory each may use, then writes the results as `<suite>.json` (or
 * `<suite>-<sections>.json` for some sections).
 */
export async function runSections(suite: string, sections: readonly Section[], only: string[] | undefined, meta: Record<string, unknown>): Promise<void> {
  const { metrics, log } = collect();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tsray-bench-${suite}-`));
  try {
    for (const s of sections) {
      if (only && !only.includes(s.name)) continue;
      console.error(`${s.name} …`);
      await s.run(log, tmp);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  report(only ? `${suite}-${only.join('+')}` : suite, metrics, { ...runMeta(), ...meta });
}
