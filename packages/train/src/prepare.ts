/**
 * `prepareModel` / `prepareOptimizer`: data-parallel training of a tfjs
 * model. Each worker computes gradients on its own batch; the optimizer's
 * `applyGradients` first sums them across the group (the ring allreduce),
 * divides by the group's size and then applies the average, so that every
 * worker takes the same step and keeps bit-identical weights. tfjs calls
 * `applyGradients` synchronously inside `model.fit`, so the wait for the
 * ring is synchronous too (see `internal/ring.ts`); `model.fit`,
 * `trainOnBatch`, `optimizer.minimize` and callbacks all work unchanged.
 */
import type * as tf from '@tensorflow/tfjs';
import { session } from './session';

const PREPARED = Symbol.for('tsray.train.prepared');
type Marked = { [PREPARED]?: true };

/** A tensor with its variable's name (tfjs's NamedTensor, not exported by @tensorflow/tfjs). */
type NamedTensor = { name: string; tensor: tf.Tensor };
type Grads = tf.NamedTensorMap | NamedTensor[];

/**
 * Makes `optimizer` average its gradients across the training workers before
 * it applies them. Called by `prepareModel` on the model's optimizer; call it
 * yourself for a custom loop (`optimizer.minimize(() => loss)`).
 * @throws NotInTrainingLoopError outside a training loop
 */
export function prepareOptimizer<O extends tf.Optimizer>(optimizer: O): O {
  const s = session('prepareOptimizer()');
  const size = s.context.worldSize;
  if (size === 1 || (optimizer as Marked)[PREPARED]) return optimizer;
  const tfjs = require('@tensorflow/tfjs') as typeof tf;
  const apply = optimizer.applyGradients.bind(optimizer);
  optimizer.applyGradients = (grads: Grads): void => {
    // the order tfjs produced them in: the model's variables, the same on every worker
    const list: NamedTensor[] = Array.isArray(grads) ? grads : Object.keys(grads).map((name) => ({ name, tensor: grads[name] as tf.Tensor }));
    let total = 0;
    for (const g of list) total += g.tensor.size;
    const flat = new Float32Array(total);
    let off = 0;
    for (const g of list) {
      flat.set(g.tensor.dataSync() as Float32Array, off);
      off += g.tensor.size;
    }
    s.allreduceSync(flat);
    for (let i = 0; i < flat.length; i++) flat[i] = (flat[i] as number) / size;
    off = 0;
    const averaged: NamedTensor[] = list.map((g) => {
      const t = tfjs.tensor(flat.subarray(off, off + g.tensor.size), g.tensor.shape, 'float32');
      off += g.tensor.size;
      return { name: g.name, tensor: t };
    });
    try {
      if (Array.isArray(grads)) apply(averaged);
      else {
        const map: tf.NamedTensorMap = {};
        for (const a of averaged) map[a.name] = a.tensor;
        apply(map);
      }
    } finally {
      for (const a of averaged) a.tensor.dispose();
    }
  };
  (optimizer as Marked)[PREPARED] = true;
  return optimizer;
}

/**
 * Makes a tfjs LayersModel train data-parallel across the workers: its
 * weights are broadcast from rank 0 now (so every worker starts from the
 * same weights whatever its seed) and its optimizer — now, or the one
 * `compile()` sets later — averages gradients across the group at every
 * step. Returns the same model.
 *
 * ```ts
 * const model = prepareModel(buildModel());
 * model.compile({ optimizer: tf.train.adam(config.lr), loss: 'categoricalCrossentropy' });
 * await model.fit(xs, ys, { batchSize: 64, epochs: 1 });
 * ```
 * @throws NotInTrainingLoopError outside a training loop
 */
export function prepareModel<M extends tf.LayersModel>(model: M): M {
  const s = session('prepareModel()');
  if (s.context.worldSize === 1 || (model as Marked)[PREPARED]) return model;
  broadcastWeights(model);
  if (model.optimizer) prepareOptimizer(model.optimizer);
  const compile = model.compile.bind(model);
  model.compile = (args: tf.ModelCompileArgs): void => {
    compile(args);
    if (model.optimizer) prepareOptimizer(model.optimizer);
  };
  (model as Marked)[PREPARED] = true;
  return model;
}

/** Sets every worker's weights to rank 0's (an allreduce to which the others add zeros). */
export function broadcastWeights(model: tf.LayersModel): void {
  const s = session('prepareModel()');
  const tfjs = require('@tensorflow/tfjs') as typeof tf;
  const weights = model.getWeights();
  let total = 0;
  for (const w of weights) total += w.size;
  const flat = new Float32Array(total);
  if (s.context.worldRank === 0) {
    let off = 0;
    for (const w of weights) {
      flat.set(w.dataSync() as Float32Array, off);
      off += w.size;
    }
  }
  s.allreduceSync(flat);
  let off = 0;
  const next = weights.map((w) => {
    const t = tfjs.tensor(flat.subarray(off, off + w.size), w.shape, w.dtype);
    off += w.size;
    return t;
  });
  model.setWeights(next);
  for (const t of next) t.dispose();
}
