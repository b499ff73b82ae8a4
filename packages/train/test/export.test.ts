import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ray from '@tsray/core';
import * as serve from '@tsray/serve';
import { Checkpoint, TensorflowTrainer, exportOnnx, setupTfjs } from '@tsray/train';
import { mlpLoop } from './fixtures/loops';

let storage: string;
beforeAll(async () => {
  await setupTfjs();
  await ray.init({ numCpus: 2, logToDriver: false });
  storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-train-export-'));
});
afterAll(async () => {
  await serve.shutdown();
  await ray.shutdown();
  fs.rmSync(storage, { recursive: true, force: true });
});

test('a trained model exported to ONNX is served by serve.onnx.deployment with the same predictions (1e-5)', async () => {
  const result = await new TensorflowTrainer(mlpLoop, {
    trainLoopConfig: { epochs: 2, inputs: 8, rows: 128 },
    scalingConfig: { numWorkers: 2 },
    runConfig: { name: 'export', storagePath: storage },
  }).fit();
  const model = await (result.checkpoint as Checkpoint).loadModel();
  const file = await exportOnnx(model, path.join(storage, 'model.onnx'));
  const xs = Array.from({ length: 10 }, (_, i) => Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j)));
  const expected = (model.predict(tf.tensor2d(xs)) as tf.Tensor).arraySync() as number[][];
  await serve.start({ http: { port: 18435 } }); // a port of its own: suites run side by side
  const app = serve.onnx.deployment({ modelPath: file, deployment: { name: 'exported', rayActorOptions: { numCpus: 0 } } }).bind();
  const h = await serve.run(app, { name: 'exported', routePrefix: '/exported' });
  const out = (await h.predict.remote(xs)).outputs.output as number[][];
  expect(out.length).toBe(10);
  out.forEach((row, i) => row.forEach((v, k) => expect(Math.abs(v - ((expected[i] as number[])[k] as number))).toBeLessThan(1e-5)));
  // a layer ONNX export does not cover is named
  const conv = tf.sequential({ layers: [tf.layers.conv1d({ inputShape: [4, 1], filters: 1, kernelSize: 2 })] });
  await expect(exportOnnx(conv, path.join(storage, 'x.onnx'))).rejects.toThrow(/layer 'conv1d\w*' is a Conv1D/);
});

test('fit() again with the same name and storagePath resumes from the latest checkpoint', async () => {
  const opts = { scalingConfig: { numWorkers: 1 }, runConfig: { name: 'resume', storagePath: storage } };
  const first = await new TensorflowTrainer(mlpLoop, { ...opts, trainLoopConfig: { epochs: 2, inputs: 8, rows: 64 } }).fit();
  expect(first.metrics.epoch).toBe(1);
  const second = await new TensorflowTrainer(mlpLoop, { ...opts, trainLoopConfig: { epochs: 4, inputs: 8, rows: 64 } }).fit();
  expect(Array.from(second.metricsDataframe.getChild('epoch')?.toArray() as ArrayLike<number>)).toEqual([0, 1, 2, 3]);
  expect(second.checkpoint?.path).toBe(path.join(storage, 'resume', 'checkpoint_000003'));
});
