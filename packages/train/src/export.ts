/**
 * `exportOnnx(model, path)`: a trained tfjs model of dense layers written as
 * an ONNX graph (through `@tsray/serve`'s `serve.onnx.mlp`), ready for
 * `serve.onnx.deployment({ modelPath })`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type * as serveT from '@tsray/serve';
import { TrainError } from './errors';

type Activation = 'relu' | 'sigmoid' | 'tanh' | 'softmax' | 'none';
const ACTIVATIONS: Record<string, Activation> = { relu: 'relu', sigmoid: 'sigmoid', tanh: 'tanh', softmax: 'softmax', linear: 'none' };

/** Options of {@link exportOnnx}. */
export interface ExportOnnxOptions {
  /** @default 'input' */
  inputName?: string;
  /** @default 'output' */
  outputName?: string;
}

/**
 * Writes `model` (a sequence of Dense layers, with Dropout layers that
 * inference skips) as an ONNX model at `file`: input `[batch, inputs]`
 * float32, output `[batch, units of the last layer]`. Resolves to the file's
 * absolute path.
 * @throws TrainError (rejects) for a layer ONNX export does not cover, naming it
 */
export async function exportOnnx(model: tf.LayersModel, file: string, options: ExportOnnxOptions = {}): Promise<string> {
  if (!model || !Array.isArray((model as { layers?: unknown }).layers)) throw new TypeError('exportOnnx takes a tfjs LayersModel first');
  if (typeof file !== 'string' || file === '') throw new TypeError('exportOnnx takes the .onnx file to write second');
  const layers: serveT.DenseLayer[] = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'Dropout' || cls === 'InputLayer') continue;
    const cfg = layer.getConfig() as { activation?: string; useBias?: boolean };
    if (cls === 'Activation') {
      const act = ACTIVATIONS[cfg.activation ?? ''];
      const prev = layers[layers.length - 1];
      if (!act || !prev || (prev.activation ?? 'none') !== 'none') throw new TrainError(`exportOnnx: an Activation layer ('${layer.name}', ${cfg.activation}) must follow a Dense layer without an activation of its own`);
      prev.activation = act;
      continue;
    }
    if (cls !== 'Dense') throw new TrainError(`exportOnnx writes models of Dense layers (and Dropout/Activation); layer '${layer.name}' is a ${cls}; export that model with a converter of your own`);
    const act = ACTIVATIONS[cfg.activation ?? 'linear'];
    if (!act) throw new TrainError(`exportOnnx: layer '${layer.name}' uses activation '${cfg.activation}'; ONNX export covers relu, sigmoid, tanh, softmax and linear`);
    const [kernel, bias] = layer.getWeights();
    if (!kernel) throw new TrainError(`exportOnnx: layer '${layer.name}' has no weights (build the model first)`);
    const [rows, units] = kernel.shape as [number, number];
    const k = (await kernel.data()) as Float32Array;
    const weights: number[][] = [];
    for (let r = 0; r < rows; r++) weights.push(Array.from(k.subarray(r * units, (r + 1) * units)));
    const b = bias ? Array.from((await bias.data()) as Float32Array) : new Array<number>(units).fill(0);
    layers.push({ weights, bias: b, activation: act });
  }
  if (layers.length === 0) throw new TrainError('exportOnnx: the model has no Dense layers');
  const serve = require('@tsray/serve') as typeof serveT;
  const bytes = serve.onnx.mlp({ layers, inputName: options.inputName, outputName: options.outputName });
  const abs = path.resolve(file);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = `${abs}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, abs);
  return abs;
}
