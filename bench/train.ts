/**
 * `npm run bench -- train`: @tsray/train on this machine, with its peers in
 * the same run — plain tfjs in one process (same backend, same batch size)
 * for throughput and convergence, the machine's memcpy for the allreduce.
 *
 * Sections: throughput (1M × 64 synthetic set, 1 epoch: plain tfjs, 1 and 2
 * workers), allreduce (10M floats across 2 and 4 workers), convergence
 * (2 workers vs one process with the same global batch and seed),
 * recovery (a worker killed → training resumed from the checkpoint).
 * TRAIN_BENCH_ROWS sets the throughput set's rows.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ray from '@tsray/core';
import { DataParallelTrainer, TensorflowTrainer, setupTfjs } from '@tsray/train';
import { runSections, type Section } from './harness';
import { allreduceLoop, convergenceLoop, mlp, recoveryLoop, rows, throughputLoop } from './train-loops';

const ROWS = Number(process.env.TRAIN_BENCH_ROWS ?? 1_000_000);
const BATCH = 256;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

async function plainThroughput(n: number): Promise<number> {
  const d = rows(0, n);
  const xs = tf.tensor2d(d.x, [n, 64]);
  const ys = tf.tensor1d(d.y);
  const model = mlp(1);
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
  const t0 = performance.now();
  await model.fit(xs, ys, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  const s = (performance.now() - t0) / 1000;
  tf.dispose([xs, ys]);
  model.dispose();
  return n / s;
}

const runIn = (tmp: string, name: string) => ({ name, storagePath: tmp, verbose: 0 as const });

const SECTIONS: Section[] = [
  {
    name: 'throughput',
    async run(log, tmp) {
      const plain = await plainThroughput(ROWS);
      log('plain tfjs, one process (samples/s)', { value: plain, unit: 'samples/s', note: `${ROWS} × 64, batch ${BATCH}, backend ${tf.getBackend()}` });
      const fit = async (n: number): Promise<number> =>
        (await new TensorflowTrainer(throughputLoop, { trainLoopConfig: { rows: ROWS, batchSize: BATCH }, scalingConfig: { numWorkers: n }, runConfig: runIn(tmp, `tp${n}`) }).fit()).metrics.samplesPerS as number;
      const one = await fit(1);
      log('1 worker (samples/s)', { value: one, unit: 'samples/s' });
      log('1 worker overhead vs plain tfjs', { value: (1 - one / plain) * 100, unit: '%', target: '≤ 10%' });
      const two = await fit(2);
      log('2 workers (samples/s)', { value: two, unit: 'samples/s', note: `batch ${BATCH} per worker` });
      log('2 workers vs 1 worker', { value: two / one, unit: '×', target: '≥ 1.6×' });
    },
  },
  {
    name: 'allreduce',
    async run(log, tmp) {
      const floats = 10_000_000;
      const a = new Float32Array(floats).fill(1);
      const b = new Float32Array(floats);
      const copies: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        b.set(a);
        copies.push((performance.now() - t0) / 1000);
      }
      const memcpy = (floats * 4) / median(copies) / 1e9;
      log('memcpy of 40 MB (GB/s)', { value: memcpy, unit: 'GB/s' });
      for (const n of [2, 4]) {
        const r = await new DataParallelTrainer(allreduceLoop, {
          trainLoopConfig: { floats, iterations: 7 },
          scalingConfig: { numWorkers: n, resourcesPerWorker: { CPU: 0.5 } },
          runConfig: runIn(tmp, `ar${n}`),
        }).fit();
        const gbps = (floats * 4) / (r.metrics.medianS as number) / 1e9;
        log(`allreduce 10M floats, ${n} workers (GB/s)`, { value: gbps, unit: 'GB/s', note: 'vector bytes / time (algorithm bandwidth)' });
        log(`allreduce ${n} workers vs memcpy`, { value: gbps / memcpy, unit: '×' });
      }
    },
  },
  {
    name: 'convergence',
    async run(log, tmp) {
      const cfg = { rows: 16_384, batchSize: 64, epochs: 5 };
      const d = rows(0, cfg.rows);
      const xs = tf.tensor2d(d.x, [cfg.rows, 64]);
      const ys = tf.tensor1d(d.y);
      const model = mlp(1);
      model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
      await model.fit(xs, ys, { batchSize: cfg.batchSize * 2, epochs: cfg.epochs, shuffle: false, verbose: 0 });
      const single = (model.evaluate(xs, ys) as tf.Scalar).dataSync()[0] as number;
      const two = (await new TensorflowTrainer(convergenceLoop, { trainLoopConfig: cfg, scalingConfig: { numWorkers: 2 }, runConfig: runIn(tmp, 'conv') }).fit()).metrics.loss as number;
      log('final loss, one process (global batch 128)', { value: single, unit: '' });
      log('final loss, 2 workers × batch 64', { value: two, unit: '' });
      log('2-worker loss vs one process', { value: (Math.abs(two - single) / single) * 100, unit: '%', target: '≤ 2%' });
    },
  },
  {
    name: 'recovery',
    async run(log, tmp) {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const dir = fs.mkdtempSync(path.join(tmp, 'kill-'));
        await new TensorflowTrainer(recoveryLoop, {
          trainLoopConfig: { epochs: 5, killAt: 3, dir },
          scalingConfig: { numWorkers: 2 },
          runConfig: { ...runIn(tmp, `rec${i}`), failureConfig: { maxFailures: 1 } },
        }).fit();
        times.push((Number(fs.readFileSync(path.join(dir, 'resumed'), 'utf8')) - Number(fs.readFileSync(path.join(dir, 'killed'), 'utf8'))) / 1000);
      }
      log('worker killed → training resumed from the checkpoint (s)', { value: median(times), unit: 's', median: median(times), rounds: times });
    },
  },
];

/** Section names (for `npm run bench -- train <section>`). */
export const SECTION_NAMES: readonly string[] = SECTIONS.map((s) => s.name);

/** Runs the sections (all, or `only`). */
export async function run(only?: string[]): Promise<void> {
  await setupTfjs();
  await ray.init({ numCpus: 2, logToDriver: false });
  try {
    await runSections('train', SECTIONS, only, { method: 'one run per figure (medians where repeated); peers measured in the same run', rows: ROWS, batchSize: BATCH, backend: tf.getBackend() });
  } finally {
    await ray.shutdown();
  }
}
