/**
 * Training loops of the train benchmark (top-level, so that workers import
 * this module) and the single-process peer's helpers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Checkpoint, allreduce, barrier, getCheckpoint, getContext, prepareModel, report } from '@tsray/train';

/** The benchmark's MLP: 64 → 128 → 64 → 2. */
export function mlp(seed: number): tf.Sequential {
  const init = (s: number): ReturnType<typeof tf.initializers.glorotUniform> => tf.initializers.glorotUniform({ seed: s });
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [64], units: 128, activation: 'relu', kernelInitializer: init(seed) }),
      tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(seed + 1) }),
      tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: init(seed + 2) }),
    ],
  });
}

/** Rows `from … from+n` of the synthetic classification set (label: a fixed linear rule of the features, with noise). */
export function rows(from: number, n: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(n * 64);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = ((from + i) * 2654435761) >>> 0 || 1;
    let dot = 0;
    for (let j = 0; j < 64; j++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const v = ((s >>> 0) / 4294967296) * 2 - 1;
      x[i * 64 + j] = v;
      dot += v * (j % 3 === 0 ? 1 : j % 3 === 1 ? -0.5 : 0.25);
    }
    y[i] = dot + (((s >>> 8) & 255) / 255 - 0.5) * 0.5 > 0 ? 1 : 0;
  }
  return { x, y };
}

/** Trains one epoch over this worker's share of `rows` rows; reports samples/s of the group. */
export async function throughputLoop(config: { rows: number; batchSize: number }): Promise<void> {
  const { worldRank, worldSize } = getContext();
  const share = Math.floor(config.rows / worldSize);
  const d = rows(worldRank * share, share);
  const xs = tf.tensor2d(d.x, [share, 64]);
  const ys = tf.tensor1d(d.y);
  const model = prepareModel(mlp(1));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
  await barrier();
  const t0 = performance.now();
  await model.fit(xs, ys, { batchSize: config.batchSize, epochs: 1, shuffle: false, verbose: 0 });
  await barrier();
  const seconds = (performance.now() - t0) / 1000;
  await report({ samplesPerS: (share * worldSize) / seconds, seconds });
  tf.dispose([xs, ys]);
}

/** Allreduces a vector of `floats` values `iterations` times after a warm-up; reports the median seconds. */
export async function allreduceLoop(config: { floats: number; iterations: number }): Promise<void> {
  const v = new Float32Array(config.floats).fill(getContext().worldRank + 1);
  await allreduce(v);
  const times: number[] = [];
  for (let i = 0; i < config.iterations; i++) {
    v.fill(1);
    await barrier();
    const t0 = performance.now();
    await allreduce(v);
    times.push((performance.now() - t0) / 1000);
  }
  if (v[0] !== getContext().worldSize) throw new Error(`allreduce summed to ${v[0]}, not ${getContext().worldSize}`);
  times.sort((a, b) => a - b);
  await report({ medianS: times[times.length >> 1], times });
}

/** A global batch of `2·batchSize` rows split between 2 workers, interleaved so that step k of both is global batch k. */
export function shareOf(d: { x: Float32Array; y: Float32Array }, n: number, rank: number, size: number, batchSize: number): { x: Float32Array; y: Float32Array; n: number } {
  const global = batchSize * size;
  const steps = Math.floor(n / global);
  const x = new Float32Array(steps * batchSize * 64);
  const y = new Float32Array(steps * batchSize);
  for (let k = 0; k < steps; k++) {
    const from = k * global + rank * batchSize;
    x.set(d.x.subarray(from * 64, (from + batchSize) * 64), k * batchSize * 64);
    y.set(d.y.subarray(from, from + batchSize), k * batchSize);
  }
  return { x, y, n: steps * batchSize };
}

/** Trains `epochs` epochs on this worker's part of every global batch; reports the loss over all rows. */
export async function convergenceLoop(config: { rows: number; batchSize: number; epochs: number }): Promise<void> {
  const { worldRank, worldSize } = getContext();
  const all = rows(0, config.rows);
  const mine = shareOf(all, config.rows, worldRank, worldSize, config.batchSize);
  const xs = tf.tensor2d(mine.x, [mine.n, 64]);
  const ys = tf.tensor1d(mine.y);
  const model = prepareModel(mlp(1));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
  await model.fit(xs, ys, { batchSize: config.batchSize, epochs: config.epochs, shuffle: false, verbose: 0 });
  const loss = (model.evaluate(tf.tensor2d(all.x, [config.rows, 64]), tf.tensor1d(all.y)) as tf.Scalar).dataSync()[0] as number;
  await report({ loss });
}

/** Checkpoints every epoch; rank 1 kills itself once at `killAt`; a resumed group writes when it started. */
export async function recoveryLoop(config: { epochs: number; killAt: number; dir: string }): Promise<void> {
  const { worldRank } = getContext();
  const resumed = getCheckpoint();
  let start = 0;
  if (resumed) {
    start = (resumed.getMetadata().epoch as number) + 1;
    if (worldRank === 0) fs.writeFileSync(path.join(config.dir, 'resumed'), String(Date.now()));
  }
  const model = prepareModel(resumed ? await resumed.loadModel() : mlp(1));
  if (!resumed) model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
  const d = rows(worldRank * 2048, 2048);
  const xs = tf.tensor2d(d.x, [2048, 64]);
  const ys = tf.tensor1d(d.y);
  for (let epoch = start; epoch < config.epochs; epoch++) {
    if (epoch === config.killAt && worldRank === 1 && !fs.existsSync(path.join(config.dir, 'killed'))) {
      fs.writeFileSync(path.join(config.dir, 'killed'), String(Date.now()));
      process.kill(process.pid, 'SIGKILL');
    }
    await model.fit(xs, ys, { batchSize: 256, epochs: 1, verbose: 0 });
    await report({ epoch }, { checkpoint: worldRank === 0 ? await Checkpoint.fromModel(model, { metadata: { epoch } }) : undefined });
  }
}
