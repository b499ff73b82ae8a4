/**
 * @tsray/data benchmarks (issue 9), each against a peer in the same run:
 * a CPU-bound mapBatches against the same loop in one process, groupBy-sum
 * against arquero and DuckDB, a Parquet scan against DuckDB, a 10 GB
 * streaming pipeline within a 1 GB object store, and a shuffle + sort of
 * 2 GB within 512 MB (spilling). Run with `npm run bench -- data [section…]`;
 * writes bench/results/data.json. `BENCH_DATA_SCALE=0.1` shrinks every size.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import { runSections, summarize, type Section } from './harness';
import { RssSampler, timeOnce, warmTimes } from './data-util';

const SCALE = Number(process.env.BENCH_DATA_SCALE ?? 1);
const scaled = (n: number): number => Math.max(1, Math.round(n * SCALE));

/** The CPU-bound transform both sides run: 50 rounds of x = sqrt(x*x + 1). */
function burn(xs: Float64Array): Float64Array {
  const out = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    let x = xs[i] as number;
    for (let r = 0; r < 50; r++) x = Math.sqrt(x * x + 1);
    out[i] = x;
  }
  return out;
}

const mapBatchesCpu: Section = {
  name: 'map_batches_cpu',
  async run(log) {
    const n = scaled(20_000_000);
    await ray.init({ numCpus: 2, logToDriver: true });
    try {
      // the peer: the same loop over the same Arrow column, in this process
      const table = new arrow.Table({ id: arrow.makeVector(Float64Array.from({ length: n }, (_, i) => i)) });
      const single: number[] = [];
      single.push(...(await warmTimes(async () => burn(table.getChild('id')?.toArray() as Float64Array).length)));
      const ds = data.range(n, { overrideNumBlocks: 40 });
      const ours: number[] = [];
      {
        ours.push(
          ...(await warmTimes(() =>
            ds
              .mapBatches(
                (b: { id: Float64Array }) => {
                  const out = new Float64Array(b.id.length);
                  for (let i = 0; i < b.id.length; i++) {
                    let x = b.id[i] as number;
                    for (let k = 0; k < 50; k++) x = Math.sqrt(x * x + 1);
                    out[i] = x;
                  }
                  return { y: out };
                },
                { batchSize: null },
              )
              .count(),
          )),
        );
      }
      const s = summarize(single.map((t) => n / t), 'rows/s');
      const o = summarize(ours.map((t) => n / t), 'rows/s');
      log('map_batches_cpu_one_process', { ...s, note: `${n.toLocaleString()} rows, the loop over the Arrow column in one process` });
      log('map_batches_cpu_tsray_2cpus', { ...o, note: 'range → mapBatches on 2 CPUs, counted' });
      log('map_batches_cpu_speedup', { value: (o.median as number) / (s.median as number), unit: '×', target: '≥ 1.6×', note: 'medians of 5 runs each after a warm-up, same run' });
    } finally {
      await ray.shutdown();
    }
  },
};

const groupBySum: Section = {
  name: 'groupby_sum',
  async run(log) {
    const n = scaled(10_000_000);
    const blocks = 10;
    const k = Int32Array.from({ length: n }, (_, i) => (i * 7919) % 1000);
    const v = Float64Array.from({ length: n }, (_, i) => (i % 1013) / 7);
    // arquero
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const aq = require("arquero") as { table(c: Record<string, unknown>): { groupby(k: string): { rollup(o: Record<string, unknown>): { numRows(): number } } } };
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { op } = require('arquero') as { op: { sum(c: string): unknown } };
    const aqTable = aq.table({ k, v });
    const aqTimes: number[] = [];
    aqTimes.push(...(await warmTimes(async () => aqTable.groupby('k').rollup({ s: op.sum('v') }).numRows())));
    // DuckDB, on a table in its memory
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const con = await db.connect();
    await con.run(`CREATE TABLE t AS SELECT CAST((i * 7919) % 1000 AS INTEGER) AS k, (i % 1013) / 7.0 AS v FROM range(${n}) r(i)`);
    const duckTimes: number[] = [];
    duckTimes.push(...(await warmTimes(async () => (await con.runAndReadAll('SELECT k, sum(v) FROM t GROUP BY k')).getRows().length)));
    con.closeSync();
    // tsray: the same columns as blocks in the object store
    await ray.init({ numCpus: 2, logToDriver: true });
    try {
      const tables = Array.from({ length: blocks }, (_, b) => {
        const s = Math.floor((b * n) / blocks);
        const e = Math.floor(((b + 1) * n) / blocks);
        return new arrow.Table({ k: arrow.makeVector(k.subarray(s, e)), v: arrow.makeVector(v.subarray(s, e)) });
      });
      const ds = data.fromArrow(tables);
      const ours: number[] = [];
      ours.push(...(await warmTimes(async () => (await ds.groupBy('k').sum('v').takeAll()).length)));
      const med = (xs: number[]): number => summarize(xs, 's').median as number;
      log('groupby_sum_tsray', { ...summarize(ours, 's'), note: `${n.toLocaleString()} rows, 1,000 keys, ${blocks} blocks, 2 CPUs` });
      log('groupby_sum_arquero', summarize(aqTimes, 's'));
      log('groupby_sum_duckdb', summarize(duckTimes, 's'));
      log('groupby_sum_vs_arquero', { value: med(aqTimes) / med(ours), unit: '×', target: '≥ 2×', note: 'arquero time / tsray time, medians' });
      log('groupby_sum_vs_duckdb', { value: med(duckTimes) / med(ours), unit: '×', target: 'goal ≥ 0.25×', note: 'DuckDB time / tsray time, medians' });
    } finally {
      await ray.shutdown();
    }
  },
};

const readParquet: Section = {
  name: 'read_parquet',
  async run(log, tmp) {
    const rows = scaled(60_000_000);
    const file = path.join(tmp, 'big.parquet');
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const con = await db.connect();
    await con.run(
      `COPY (SELECT i AS id, (i % 1013) / 7.0 AS v, i * 3 AS w FROM range(${rows}) r(i)) TO '${file}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 1000000)`,
    );
    const mb = fs.statSync(file).size / 1e6;
    const duck: number[] = [];
    duck.push(...(await warmTimes(async () => (await con.runAndReadAll(`SELECT count(*), sum(v) FROM read_parquet('${file}')`)).getRows().length)));
    con.closeSync();
    await ray.init({ numCpus: 2, logToDriver: true });
    try {
      const ours: number[] = [];
      {
        ours.push(
          ...(await warmTimes(async () => {
            const ds = data.readParquet(file, { columns: ['v'] });
            const [count, sum] = await Promise.all([ds.count(), ds.sum('v')]);
            if (count !== rows || sum === null) throw new Error(`read ${count} rows`);
          })),
        );
      }
      const o = summarize(ours.map((t) => mb / t), 'MB/s');
      const d = summarize(duck.map((t) => mb / t), 'MB/s');
      log('read_parquet_tsray', { ...o, note: `${mb.toFixed(0)} MB file, ${rows.toLocaleString()} rows; count and sum of one column` });
      log('read_parquet_duckdb', d);
      log('read_parquet_vs_duckdb', { value: (o.median as number) / (d.median as number), unit: '×', target: '≥ 0.3×' });
    } finally {
      await ray.shutdown();
      fs.rmSync(file, { force: true });
    }
  },
};

/** A 'default' batch's ids → a column of 1 KiB strings (built straight into Arrow buffers). */
function kibRows(b: { id: Float64Array }): Record<string, unknown> {
  const arrowLib = require('apache-arrow') as typeof arrow;
  const n = b.id.length;
  const width = 1024;
  const values = new Uint8Array(n * width).fill(97);
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) offsets[i] = i * width;
  const payload = arrowLib.makeVector(arrowLib.makeData({ type: new arrowLib.Utf8(), length: n, valueOffsets: offsets, data: values }));
  return { id: b.id, payload } as unknown as Record<string, unknown>;
}

const streaming: Section = {
  name: 'streaming_10gb',
  async run(log) {
    const rows = scaled(10 * 1024 * 1024); // × 1 KiB = 10 GiB
    await ray.init({ numCpus: 2, logToDriver: true, objectStoreMemory: 1024 ** 3 });
    const rss = new RssSampler(() => ray.objectStoreStats().usedBytes);
    try {
      const ds = data.range(rows, { overrideNumBlocks: Math.max(1, Math.round(rows / 32768)) }).mapBatches(kibRows, { batchSize: null });
      let seen = 0;
      const t = await timeOnce(async () => {
        for await (const b of ds.iterBatches({ batchSize: 4096, batchFormat: 'arrow' })) seen += (b as arrow.Table).numRows;
      });
      const peak = rss.stop();
      if (seen !== rows) throw new Error(`streamed ${seen} of ${rows} rows`);
      log('streaming_rows_per_s', { value: rows / t, unit: 'rows/s', note: `${((rows * 1024) / 1024 ** 3).toFixed(1)} GiB of 1 KiB rows through a 1 GiB object store in ${t.toFixed(1)} s` });
      log('streaming_peak_store_bytes', { value: peak.store / 1024 ** 3, unit: 'GiB', target: '< 2 GiB' });
      log('streaming_peak_summed_pss', { value: peak.pss / 1024 ** 3, unit: 'GiB', target: '< 2 GiB', note: 'PSS of the driver + every process it started (shared memory counted once), sampled every 200 ms' });
      log('streaming_peak_summed_rss_store_once', { value: peak.rssStoreOnce / 1024 ** 3, unit: 'GiB', target: '< 2 GiB', note: 'RSS summed with the shared object store counted once: private RSS of every process + the most of the store one process maps' });
      log('streaming_peak_summed_rss', { value: peak.rss / 1024 ** 3, unit: 'GiB', target: '< 2 GiB', note: `RSS summed (counts a shared page once per process that maps it); peaks: ${rss.breakdown()}` });
    } finally {
      rss.stop();
      await ray.shutdown();
    }
  },
};

const shuffleSort: Section = {
  name: 'shuffle_sort_2gb',
  async run(log) {
    const rows = scaled(2 * 1024 * 1024); // × 1 KiB ≈ 2 GiB
    await ray.init({ numCpus: 2, logToDriver: true, objectStoreMemory: 512 * 1024 ** 2 });
    const rss = new RssSampler(() => ray.objectStoreStats().usedBytes);
    try {
      const ds = data.range(rows, { overrideNumBlocks: Math.max(1, Math.round(rows / 65536)) }).mapBatches(kibRows, { batchSize: null });
      let first = -1;
      let n = 0;
      const t = await timeOnce(async () => {
        for await (const b of ds.randomShuffle({ seed: 1 }).sort('id').iterBatches({ batchSize: 65536, batchFormat: 'arrow' })) {
          const tb = b as arrow.Table;
          if (first < 0) first = Number(tb.getChild('id')?.get(0));
          n += tb.numRows;
        }
      });
      const peak = rss.stop();
      if (n !== rows || first !== 0) throw new Error(`sorted ${n} of ${rows} rows, first id ${first}`);
      log('shuffle_sort_seconds', { value: t, unit: 's', note: `${((rows * 1024) / 1024 ** 3).toFixed(1)} GiB, objectStoreMemory 512 MiB (spilling)` });
      log('shuffle_sort_peak_summed_pss', { value: peak.pss / 1024 ** 3, unit: 'GiB', note: 'PSS of the driver + every process it started' });
      log('shuffle_sort_peak_summed_rss', { value: peak.rss / 1024 ** 3, unit: 'GiB', note: `peaks: ${rss.breakdown()}` });
    } finally {
      rss.stop();
      await ray.shutdown();
    }
  },
};

const SECTIONS: Section[] = [mapBatchesCpu, groupBySum, readParquet, streaming, shuffleSort];
export const SECTION_NAMES: readonly string[] = SECTIONS.map((s) => s.name);

/** Runs the sections (all, or those named) and writes the results. */
export async function run(only?: string[]): Promise<void> {
  await runSections('data', SECTIONS, only, { method: 'each figure: 3 runs, median (and mean ± sd); ratios of medians measured in the same run', scale: SCALE });
}
