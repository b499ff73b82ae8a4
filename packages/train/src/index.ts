/**
 * `@tsray/train`: data-parallel training on tfjs across a group of workers
 * (Ray Train in camelCase). A trainer starts `numWorkers` worker actors in a
 * placement group, runs your training loop on each with its shard of the
 * data, averages gradients among the workers (a ring allreduce straight
 * between them), keeps rank 0's reports and the checkpoints under
 * `storagePath/name`, and restarts the group from the latest checkpoint when
 * a worker dies.
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import * as data from '@tsray/data';
 * import { TensorflowTrainer, Checkpoint, getCheckpoint, getDatasetShard, prepareModel, report } from '@tsray/train';
 *
 * export async function trainLoop(config: { lr: number; epochs: number }) {
 *   const resumed = getCheckpoint();
 *   const model = resumed ? await resumed.loadModel() : buildModel();
 *   prepareModel(model);
 *   if (!resumed) model.compile({ optimizer: tf.train.adam(config.lr), loss: 'sparseCategoricalCrossentropy' });
 *   for (let epoch = 0; epoch < config.epochs; epoch++) {
 *     for await (const batch of getDatasetShard('train').iterBatches({ batchSize: 64 })) {
 *       // batch: column name → values
 *       await model.trainOnBatch(toX(batch), toY(batch));
 *     }
 *     await report({ epoch }, { checkpoint: await Checkpoint.fromModel(model) });
 *   }
 * }
 *
 * const trainer = new TensorflowTrainer(trainLoop, {
 *   trainLoopConfig: { lr: 1e-3, epochs: 5 },
 *   scalingConfig: { numWorkers: 2 },
 *   runConfig: { name: 'mlp', checkpointConfig: { numToKeep: 2 }, failureConfig: { maxFailures: 2 } },
 *   datasets: { train: data.readCsv('train.csv') },
 * });
 * const result = await trainer.fit(); // result.metrics, result.checkpoint, result.metricsDataframe
 * ```
 *
 * The training loop is shipped to the workers like every user function of
 * tsray: a top-level function of a module is imported there; an inline one
 * travels by value and must `require` what it uses inside its body.
 * @packageDocumentation
 */
export { DataParallelTrainer, TensorflowTrainer, type DataParallelTrainerOptions, type TrainLoopPerWorker } from './trainer';
export { ScalingConfig, RunConfig, CheckpointConfig, FailureConfig, DataConfig } from './config';
export { Checkpoint, type FromModelOptions } from './checkpoint';
export { Result, type CheckpointWithMetrics } from './result';
export { report, getContext, getCheckpoint, getDatasetShard, allreduce, barrier, type TrainContext, type ReportOptions, type DatasetShard } from './session';
export { prepareModel, prepareOptimizer } from './prepare';
export { exportOnnx, type ExportOnnxOptions } from './export';
export { setupTfjs } from './backend';
export { TrainError, TrainingFailedError, TrainConfigError, NotInTrainingLoopError } from './errors';
