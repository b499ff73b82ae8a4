/**
 * Progress on a TTY: one bar per operator (rows done, running tasks) and a
 * total (rows out, memory held), drawn with cli-progress on stderr. Nothing
 * when stderr is not a TTY, or with TSRAY_DATA_PROGRESS=0.
 * @internal
 */
import * as cliProgress from 'cli-progress';
import type { OpStats } from './stats';
import { fmtBytes } from './stats';

/** Redraws at most this often. */
const REDRAW_MS = 100;

/** The bars of one execution. */
export class Progress {
  private bars: cliProgress.SingleBar[] = [];
  private total: cliProgress.SingleBar | undefined;
  private ops: readonly OpStats[] = [];
  private last = 0;

  private constructor(private readonly multi: cliProgress.MultiBar) {}

  /** Bars when stderr is a TTY; undefined otherwise. */
  static create(): Progress | undefined {
    if (!process.stderr.isTTY || process.env.TSRAY_DATA_PROGRESS === '0') return undefined;
    const multi = new cliProgress.MultiBar(
      {
        stream: process.stderr,
        clearOnComplete: true,
        hideCursor: true,
        format: '{name} {bar} {rows} rows, {running} running{extra}',
        barsize: 20,
        noTTYOutput: false,
      },
      cliProgress.Presets.shades_classic,
    );
    return new Progress(multi);
  }

  start(ops: readonly OpStats[]): void {
    this.ops = ops;
    this.bars = ops.map((o) => this.multi.create(1, 0, { name: o.name.padEnd(24).slice(0, 24), rows: 0, running: 0, extra: '' }));
    this.total = this.multi.create(1, 0, { name: 'Total'.padEnd(24), rows: 0, running: 0, extra: '' });
  }

  update(heldBytes: number): void {
    const now = performance.now();
    if (now - this.last < REDRAW_MS) return;
    this.last = now;
    let running = 0;
    for (const [i, o] of this.ops.entries()) {
      running += Math.max(0, o.running);
      const bar = this.bars[i];
      const frac = o.tasks + o.running > 0 ? o.tasks / (o.tasks + Math.max(0, o.running)) : 0;
      bar?.update(frac, { rows: o.rows, running: Math.max(0, o.running), extra: '' });
    }
    const last = this.ops[this.ops.length - 1];
    this.total?.update(0, { rows: last?.rows ?? 0, running, extra: `, ${fmtBytes(heldBytes)} held` });
  }

  stop(): void {
    this.multi.stop();
  }
}
