/**
 * Trains a small MLP classifier on the Palmer penguins (344 birds, 3 species;
 * the CSV-like JSON that the `vega-datasets` npm package ships) on 2 workers
 * with data-parallel tfjs, reads the data with @tsray/data, and prints the
 * validation accuracy. The trained model is exported to ONNX for
 * @tsray/serve.
 *
 *   npx tsx examples/train-mlp.ts
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import { Checkpoint, TensorflowTrainer, exportOnnx, getDatasetShard, prepareModel, report, setupTfjs } from '@tsray/train';

const SPECIES = ['Adelie', 'Chinstrap', 'Gentoo'];
const FEATURES: Array<[string, number, number]> = [
  // column, mean, spread (for standardizing)
  ['Beak Length (mm)', 44, 5.5],
  ['Beak Depth (mm)', 17, 2],
  ['Flipper Length (mm)', 200, 14],
  ['Body Mass (g)', 4200, 800],
];

/** A batch of rows → standardized features and species indices. */
function tensors(batch: Record<string, ArrayLike<unknown>>): { x: tf.Tensor2D; y: tf.Tensor1D } {
  const n = (batch.Species as ArrayLike<unknown>).length;
  const x = new Float32Array(n * FEATURES.length);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    FEATURES.forEach(([col, mean, spread], j) => (x[i * FEATURES.length + j] = ((batch[col] as ArrayLike<number>)[i] as number - mean) / spread));
    y[i] = SPECIES.indexOf((batch.Species as ArrayLike<string>)[i] as string);
  }
  return { x: tf.tensor2d(x, [n, FEATURES.length]), y: tf.tensor1d(y) };
}

/** Runs on each worker: its shard of 'train', all of 'valid'. */
export async function trainLoop(config: { lr: number; epochs: number; batchSize: number }): Promise<void> {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [FEATURES.length], units: 16, activation: 'relu' }), tf.layers.dense({ units: SPECIES.length, activation: 'softmax' })],
  });
  prepareModel(model); // rank 0's initial weights everywhere; gradients averaged every step
  model.compile({ optimizer: tf.train.adam(config.lr), loss: 'sparseCategoricalCrossentropy' });
  for (let epoch = 0; epoch < config.epochs; epoch++) {
    let loss = 0;
    let steps = 0;
    for await (const batch of getDatasetShard('train').iterBatches({ batchSize: config.batchSize })) {
      const { x, y } = tensors(batch as Record<string, ArrayLike<unknown>>);
      loss += (await model.trainOnBatch(x, y)) as number;
      steps++;
      tf.dispose([x, y]);
    }
    let right = 0;
    let total = 0;
    for await (const batch of getDatasetShard('valid').iterBatches({ batchSize: 256 })) {
      const { x, y } = tensors(batch as Record<string, ArrayLike<unknown>>);
      const predicted = tf.tidy(() => (model.predict(x) as tf.Tensor).argMax(-1).dataSync());
      const truth = y.dataSync();
      predicted.forEach((p, i) => (right += p === truth[i] ? 1 : 0));
      total += truth.length;
      tf.dispose([x, y]);
    }
    const last = epoch === config.epochs - 1;
    await report({ epoch, loss: loss / Math.max(steps, 1), validAccuracy: right / total }, last ? { checkpoint: await Checkpoint.fromModel(model) } : undefined);
  }
}

async function main(): Promise<void> {
  const t0 = Date.now();
  await ray.init({ logToDriver: false });
  const file = path.join(path.dirname(require.resolve('vega-datasets')), '..', 'data', 'penguins.json');
  const penguins = data.readJson(file).filter((r) => r['Beak Length (mm)'] !== null && r['Body Mass (g)'] !== null && r.Species !== null);
  const [train, valid] = await penguins.trainTestSplit(0.25, { shuffle: true, seed: 7 });
  console.log(`penguins: ${await train.count()} to train on, ${await valid.count()} to validate`);
  const storagePath = path.join(os.tmpdir(), 'tsray_results');
  const trainer = new TensorflowTrainer(trainLoop, {
    trainLoopConfig: { lr: 0.02, epochs: 40, batchSize: 16 },
    scalingConfig: { numWorkers: 2 },
    runConfig: { name: `penguins-${process.pid}`, storagePath, verbose: 0 },
    datasets: { train, valid },
    datasetConfig: { datasetsToSplit: ['train'] },
  });
  const result = await trainer.fit();
  const acc = result.metrics.validAccuracy as number;
  console.log(`trained on 2 workers for ${result.metrics.epoch as number + 1} epochs: loss ${(result.metrics.loss as number).toFixed(3)}, validation accuracy ${(acc * 100).toFixed(1)}%`);
  await setupTfjs(); // the backend the workers used
  const model = await (result.checkpoint as Checkpoint).loadModel();
  const onnx = await exportOnnx(model, path.join(result.path, 'model.onnx'));
  console.log(`exported ${path.relative(storagePath, onnx)}; results in ${result.path}; done in ${Date.now() - t0} ms`);
  await ray.shutdown();
}

if (require.main === module) {
  main().catch(async (e: unknown) => {
    console.error(e);
    await ray.shutdown();
    process.exit(1);
  });
}
