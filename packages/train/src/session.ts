/**
 * What a training loop calls while it runs in a worker: `report`,
 * `getContext`, `getCheckpoint`, `getDatasetShard`, `allreduce`, `barrier`.
 * The worker that runs the loop keeps its session on `globalThis`, so the
 * loop finds it whichever copy of this module it imported.
 */
import type { Batch, IterBatchesOptions, Row, DataIterator } from '@tsray/data';
import type { Checkpoint } from './checkpoint';
import { NotInTrainingLoopError, TrainError } from './errors';

/** Where this worker sits in the group (`getContext()`). */
export interface TrainContext {
  /** workers in the group */
  readonly worldSize: number;
  /** this worker's rank, 0 … worldSize−1; rank 0's reports are the run's results */
  readonly worldRank: number;
  /** this worker's rank among the group's workers on its node */
  readonly localRank: number;
  /** the group's workers on this worker's node */
  readonly localWorldSize: number;
  /** the rank of this worker's node among the group's nodes */
  readonly nodeRank: number;
  /** the run's name (`runConfig.name`) */
  readonly experimentName: string;
  /** the Tune trial this run is, when Tune runs it */
  readonly trialName: string | undefined;
  /** the run's directory (`storagePath/name`) */
  readonly storagePath: string;
}

/** Options of {@link report}. */
export interface ReportOptions {
  /** this worker's part of the checkpoint; every worker's files go into the same checkpoint directory */
  checkpoint?: Checkpoint;
}

/** One worker's shard of a dataset (`getDatasetShard(name)`): iterate it once per epoch. */
export interface DatasetShard {
  /** Batches of this worker's rows (one epoch), as `ds.iterBatches` gives them. */
  iterBatches(options?: IterBatchesOptions): AsyncGenerator<Batch>;
  /** This worker's rows (one epoch). */
  iterRows(): AsyncGenerator<Row>;
}

/** The hooks a worker installs while it runs a training loop. @internal */
export interface Session {
  context: TrainContext;
  checkpoint: Checkpoint | undefined;
  shards: Record<string, DataIterator>;
  /** rows handed out by the shards since the last report */
  rows: number;
  report(metrics: Record<string, unknown>, options: ReportOptions): Promise<void>;
  allreduce(values: Float32Array): Promise<Float32Array>;
  allreduceSync(values: Float32Array): Float32Array;
}

const KEY = Symbol.for('tsray.train.session');
type Holder = { [KEY]?: Session };

/** @internal */
export function setSession(s: Session | undefined): void {
  (globalThis as Holder)[KEY] = s;
}

/** @internal the running session, or a NotInTrainingLoopError naming `what` */
export function session(what: string): Session {
  const s = (globalThis as Holder)[KEY];
  if (!s) throw new NotInTrainingLoopError(`${what} was called outside a training loop; call it inside the trainLoopPerWorker function that trainer.fit() runs on each worker`);
  return s;
}

/**
 * Reports metrics (and optionally a checkpoint) from this worker. Every
 * worker must call it the same number of times: it is a barrier across the
 * group. Rank 0's metrics become the run's results (`result.metrics`,
 * progress.csv, result.json); each worker's checkpoint files are kept in one
 * checkpoint directory under the run's storage path.
 *
 * ```ts
 * await report({ epoch, loss }, { checkpoint: await Checkpoint.fromModel(model) });
 * ```
 * @throws NotInTrainingLoopError outside a training loop
 * @throws TypeError when `metrics` is not a plain object of JSON-able values
 */
export async function report(metrics: Record<string, unknown>, options?: ReportOptions): Promise<void> {
  const s = session('report()');
  if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) throw new TypeError(`report() takes an object of metrics ({ loss: 0.1, epoch: 2 }), got ${Array.isArray(metrics) ? 'an array' : typeof metrics}`);
  for (const k of Object.keys(options ?? {})) if (k !== 'checkpoint') throw new TypeError(`report(): unknown option '${k}' (known: checkpoint)`);
  const ckpt = options?.checkpoint;
  if (ckpt !== undefined && (typeof ckpt !== 'object' || ckpt === null || typeof (ckpt as { path?: unknown }).path !== 'string')) {
    throw new TypeError('report(): checkpoint must be a Checkpoint (Checkpoint.fromDirectory(dir) or await Checkpoint.fromModel(model))');
  }
  try {
    JSON.stringify(metrics);
  } catch (e) {
    throw new TypeError(`report(): metrics must be JSON-able (numbers, strings, arrays, objects): ${(e as Error).message}`);
  }
  await s.report(metrics, { checkpoint: ckpt });
}

/**
 * This worker's place in the group.
 * @throws NotInTrainingLoopError outside a training loop
 */
export function getContext(): TrainContext {
  return session('getContext()').context;
}

/**
 * The checkpoint to resume from: the latest one of this run (after a restart,
 * or when `fit()` runs again with the same name and storage path), or
 * undefined on a fresh start.
 * @throws NotInTrainingLoopError outside a training loop
 */
export function getCheckpoint(): Checkpoint | undefined {
  return session('getCheckpoint()').checkpoint;
}

/**
 * This worker's shard of the dataset passed as `datasets[name]` (disjoint
 * rows when the dataset is split among the workers; all of it otherwise).
 * @throws TrainError when `name` is not one of the trainer's datasets
 */
export function getDatasetShard(name: string): DatasetShard {
  const s = session('getDatasetShard()');
  const it = s.shards[name];
  if (!it) {
    const names = Object.keys(s.shards);
    throw new TrainError(`getDatasetShard('${name}'): the trainer has no dataset named '${name}' (${names.length ? `it has ${names.map((n) => `'${n}'`).join(', ')}` : 'it was given no datasets'}); pass it in the trainer's datasets option`);
  }
  return {
    async *iterBatches(options?: IterBatchesOptions): AsyncGenerator<Batch> {
      for await (const b of it.iterBatches(options)) {
        s.rows += batchRows(b);
        yield b;
      }
    },
    async *iterRows(): AsyncGenerator<Row> {
      for await (const r of it.iterRows()) {
        s.rows++;
        yield r;
      }
    },
  };
}

function batchRows(b: Batch): number {
  if (Array.isArray(b)) return b.length;
  if (typeof (b as { numRows?: unknown }).numRows === 'number') return (b as { numRows: number }).numRows;
  const first = Object.values(b as Record<string, { length: number }>)[0];
  return first ? first.length : 0;
}

/**
 * Sums `values` across the group's workers, in place, and resolves to them:
 * every worker gets bit-identical sums. Every worker must call it with the
 * same length, the same number of times.
 * @throws NotInTrainingLoopError outside a training loop
 */
export function allreduce(values: Float32Array): Promise<Float32Array> {
  if (!(values instanceof Float32Array)) throw new TypeError('allreduce() takes a Float32Array');
  return session('allreduce()').allreduce(values);
}

/** Waits until every worker of the group has called barrier(). */
export async function barrier(): Promise<void> {
  await session('barrier()').allreduce(new Float32Array(1));
}
