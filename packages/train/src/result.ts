/**
 * `Result`: what `trainer.fit()` resolves to, and what `Result.fromPath`
 * reads back from a run's directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { Checkpoint } from './checkpoint';
import { TrainError } from './errors';
import { listCheckpoints, readResults, RESULT_JSON, RUN_JSON, RunStore } from './internal/store';

/** A kept checkpoint with the metrics it was reported with. */
export interface CheckpointWithMetrics {
  checkpoint: Checkpoint;
  metrics: Record<string, unknown>;
}

/** A run's outcome. */
export class Result {
  /** @internal */
  constructor(
    /** The last metrics rank 0 reported (with `trainingIteration` and `timestamp`). */
    readonly metrics: Record<string, unknown>,
    /** The latest checkpoint, if any was reported. */
    readonly checkpoint: Checkpoint | undefined,
    /** The run's directory (`storagePath/name`). */
    readonly path: string,
    /** The error the run ended with, if it failed (fit() rejects instead; Result.fromPath of a failed run has it). */
    readonly error: Error | undefined,
    /** The kept checkpoints, best first (by checkpointScoreAttribute; newest first without one). */
    readonly bestCheckpoints: CheckpointWithMetrics[],
    private readonly rows: Array<Record<string, unknown>>,
  ) {}

  /** Every report's metrics as an Arrow table, one row per report (the columns of progress.csv). */
  get metricsDataframe(): arrow.Table {
    if (this.rows.length === 0) return new arrow.Table();
    const cols: string[] = [];
    for (const r of this.rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
    const scalar = (v: unknown): unknown => (v === undefined ? null : typeof v === 'object' && v !== null ? JSON.stringify(v) : v);
    return arrow.tableFromJSON(this.rows.map((r) => Object.fromEntries(cols.map((c) => [c, scalar(r[c])]))));
  }

  /**
   * The result of the run kept in `dir` (a run's `storagePath/name`).
   * @throws TrainError when `dir` holds no run
   */
  static fromPath(dir: string): Result {
    const abs = path.resolve(dir);
    if (!fs.existsSync(path.join(abs, RESULT_JSON)) && listCheckpoints(abs).length === 0) {
      throw new TrainError(`Result.fromPath: ${abs} holds no training run (no ${RESULT_JSON}, no checkpoints); pass the directory fit() reported as result.path`);
    }
    const rows = readResults(abs);
    const ckpts = listCheckpoints(abs);
    const errFile = path.join(abs, 'error.txt');
    const error = fs.existsSync(errFile) ? new TrainError(fs.readFileSync(errFile, 'utf8')) : undefined;
    const latest = ckpts[ckpts.length - 1];
    return new Result(
      rows[rows.length - 1] ?? {},
      latest ? Checkpoint.fromDirectory(latest.path) : undefined,
      abs,
      error,
      rankedIn(abs).map((c) => ({ checkpoint: Checkpoint.fromDirectory(c.path), metrics: c.metrics })),
      rows,
    );
  }
}

/** The checkpoints of the run in `dir`, best first, by the score the run was configured with (.run.json). */
function rankedIn(dir: string): ReturnType<RunStore['ranked']> {
  let cfg: { scoreAttribute?: string; scoreOrder?: 'min' | 'max' } = {};
  try {
    cfg = JSON.parse(fs.readFileSync(path.join(dir, RUN_JSON), 'utf8')) as typeof cfg;
  } catch {
    // a run without its settings: newest first
  }
  return new RunStore(dir, undefined, cfg.scoreAttribute, cfg.scoreOrder ?? 'max').ranked();
}
