/**
 * `@tsray/train`'s errors. Each extends core's `RayError`. Bad options to a
 * trainer are the standard `TypeError` / `RangeError`, with a message that
 * names the option.
 */
import { RayError } from '@tsray/core';

/** The base class of Train's errors. */
export class TrainError extends RayError {
  static override readonly kind: string = 'TrainError';
}

/**
 * Thrown by `trainer.fit()` when training failed and `failureConfig.maxFailures`
 * restarts did not help: `cause` is the last failure (the user's error with
 * the rank of the worker that raised it, or the death of a worker), and
 * `worldRank` the rank it came from when one worker is to blame.
 */
export class TrainingFailedError extends TrainError {
  static override readonly kind: string = 'TrainingFailedError';
  /** the rank of the worker that failed, when one did */
  readonly worldRank: number | undefined;
  /** how many times the group was restarted before giving up */
  readonly restarts: number;
  constructor(message: string, options: { cause?: unknown; worldRank?: number; restarts: number }) {
    super(message, { cause: options.cause });
    this.worldRank = options.worldRank;
    this.restarts = options.restarts;
  }
}

/**
 * Thrown by `trainer.fit()` before anything starts when the cluster can never
 * hold the worker group (numWorkers × resourcesPerWorker), or when
 * `useGpu: true` finds no GPU backend for tfjs.
 */
export class TrainConfigError extends TrainError {
  static override readonly kind: string = 'TrainConfigError';
}

/** Thrown by `report`, `getContext` and the other in-loop functions when called outside a training loop. */
export class NotInTrainingLoopError extends TrainError {
  static override readonly kind: string = 'NotInTrainingLoopError';
}
