/**
 * A run's directory, `storagePath/name`: `checkpoint_NNNNNN/` directories
 * (each with `.metrics.json`, the metrics it was reported with), `result.json`
 * (one JSON line per report, as Ray's) and `progress.csv` (the same as a
 * table). Checkpoints are written by the workers into `.tmp_checkpoint_NNNNNN`
 * and renamed into place by rank 0 once every worker has written its part,
 * so a checkpoint directory is always complete.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The files of a run's directory. */
export const RESULT_JSON = 'result.json';
export const PROGRESS_CSV = 'progress.csv';
export const CKPT_METRICS = '.metrics.json';
/** The run's checkpoint ranking settings, for Result.fromPath. */
export const RUN_JSON = '.run.json';
const CKPT_RE = /^checkpoint_(\d{6,})$/;

/** `checkpoint_000007` */
export function checkpointName(index: number): string {
  return `checkpoint_${String(index).padStart(6, '0')}`;
}
/** `.tmp_checkpoint_000007` */
export function tmpCheckpointName(index: number): string {
  return `.tmp_${checkpointName(index)}`;
}

/** A kept checkpoint and the metrics it was reported with. */
export interface StoredCheckpoint {
  index: number;
  path: string;
  metrics: Record<string, unknown>;
}

/** The checkpoints in `dir`, oldest first. */
export function listCheckpoints(dir: string): StoredCheckpoint[] {
  if (!fs.existsSync(dir)) return [];
  const out: StoredCheckpoint[] = [];
  for (const e of fs.readdirSync(dir)) {
    const m = CKPT_RE.exec(e);
    if (!m) continue;
    const p = path.join(dir, e);
    const mp = path.join(p, CKPT_METRICS);
    let metrics: Record<string, unknown> = {};
    try {
      metrics = JSON.parse(fs.readFileSync(mp, 'utf8')) as Record<string, unknown>;
    } catch {
      // a checkpoint without its metrics (made by hand): ranked last
    }
    out.push({ index: Number(m[1]), path: p, metrics });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** The reported metrics of the run in `dir` (result.json), oldest first. */
export function readResults(dir: string): Array<Record<string, unknown>> {
  const p = path.join(dir, RESULT_JSON);
  if (!fs.existsSync(p)) return [];
  return fs
    .readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The driver's view of a run directory while it trains. */
export class RunStore {
  readonly results: Array<Record<string, unknown>>;
  checkpoints: StoredCheckpoint[];

  constructor(
    readonly dir: string,
    private readonly numToKeep: number | undefined,
    private readonly scoreAttribute: string | undefined,
    private readonly scoreOrder: 'min' | 'max',
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.results = readResults(dir);
    this.checkpoints = listCheckpoints(dir);
  }

  /**
   * Before a group starts: removes what a killed group left half-written, and
   * takes in the checkpoints rank 0 completed whose report the trainer did
   * not get before the group went down (their metrics are in the checkpoint).
   */
  refresh(): void {
    for (const e of fs.readdirSync(this.dir)) if (e.startsWith('.tmp_checkpoint_')) fs.rmSync(path.join(this.dir, e), { recursive: true, force: true });
    const known = new Set(this.checkpoints.map((c) => c.path));
    const reported = new Set(this.results.map((r) => r.checkpointDirName));
    for (const c of listCheckpoints(this.dir)) {
      if (known.has(c.path)) continue;
      if (!reported.has(path.basename(c.path))) this.addResult({ ...c.metrics, trainingIteration: this.results.length + 1, timestamp: fs.statSync(c.path).mtimeMs, checkpointDirName: path.basename(c.path) });
      this.addCheckpoint(c.path, c.metrics);
    }
  }

  /** The index the next checkpoint gets. */
  nextIndex(): number {
    const last = this.checkpoints[this.checkpoints.length - 1];
    return last ? last.index + 1 : 0;
  }

  /** The latest checkpoint, to resume from. */
  latest(): StoredCheckpoint | undefined {
    return this.checkpoints[this.checkpoints.length - 1];
  }

  /** Records a report of rank 0 (appends result.json, rewrites progress.csv). */
  addResult(row: Record<string, unknown>): void {
    this.results.push(row);
    fs.appendFileSync(path.join(this.dir, RESULT_JSON), `${JSON.stringify(row)}\n`);
    const cols: string[] = [];
    for (const r of this.results) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
    const lines = [cols.join(','), ...this.results.map((r) => cols.map((c) => csvCell(r[c])).join(','))];
    const tmp = path.join(this.dir, `.${PROGRESS_CSV}.tmp`);
    fs.writeFileSync(tmp, `${lines.join('\n')}\n`);
    fs.renameSync(tmp, path.join(this.dir, PROGRESS_CSV));
  }

  /** Records a new checkpoint and deletes those numToKeep no longer keeps (never the latest). */
  addCheckpoint(p: string, metrics: Record<string, unknown>): void {
    const m = CKPT_RE.exec(path.basename(p));
    this.checkpoints.push({ index: m ? Number(m[1]) : this.nextIndex(), path: p, metrics });
    if (this.numToKeep === undefined) return;
    const latest = this.latest() as StoredCheckpoint;
    const keep = new Set<StoredCheckpoint>([latest, ...this.ranked().slice(0, this.numToKeep)]);
    // the latest counts toward numToKeep when it is among the best; otherwise one fewer of the others
    if (keep.size > this.numToKeep) keep.delete(this.ranked().filter((c) => c !== latest && keep.has(c)).pop() as StoredCheckpoint);
    for (const c of this.checkpoints) if (!keep.has(c)) fs.rmSync(c.path, { recursive: true, force: true });
    this.checkpoints = this.checkpoints.filter((c) => keep.has(c));
  }

  /** The kept checkpoints, best first (by the score attribute; else newest first). */
  ranked(): StoredCheckpoint[] {
    const attr = this.scoreAttribute;
    const all = [...this.checkpoints];
    if (!attr) return all.reverse();
    const score = (c: StoredCheckpoint): number => {
      const v = c.metrics[attr];
      return typeof v === 'number' && !Number.isNaN(v) ? (this.scoreOrder === 'max' ? v : -v) : -Infinity;
    };
    return all.sort((a, b) => score(b) - score(a) || b.index - a.index);
  }
}
