/**
 * Execution statistics: per operator, tasks, blocks, rows, bytes, wall and
 * CPU time, as `ds.stats()` reports them.
 * @internal
 */
import type { TaskMeta } from './execution/tasks';

/** What one operator did in one execution. */
export class OpStats {
  tasks = 0;
  running = 0;
  blocks = 0;
  rows = 0;
  bytes = 0;
  taskWallMs: number[] = [];
  cpuMs = 0;
  nodes = new Set<string>();
  firstStart: number | undefined;
  lastEnd: number | undefined;

  constructor(readonly name: string) {}

  taskStarted(): void {
    this.running++;
    this.firstStart ??= performance.now();
  }

  /** A task ended; `output` false for an intermediate task of a stage (its block is not an output of the operator). */
  taskDone(meta: TaskMeta, output = true): void {
    this.tasks++;
    this.taskWallMs.push(meta.wallMs);
    this.cpuMs += meta.cpuMs;
    if (meta.nodeId) this.nodes.add(meta.nodeId);
    if (!output) return;
    this.running--;
    this.blocks++;
    this.rows += meta.numRows;
    this.bytes += meta.sizeBytes;
    this.lastEnd = performance.now();
  }

  /** Rows that passed through without a task (a limit, a union). */
  passed(meta: TaskMeta): void {
    this.blocks++;
    this.rows += meta.numRows;
    this.bytes += meta.sizeBytes;
    this.firstStart ??= performance.now();
    this.lastEnd = performance.now();
  }
}

const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const fmtBytes = (b: number): string => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`);

function quantiles(xs: number[]): string {
  if (xs.length === 0) return 'n/a';
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  return `min ${fmtMs(s[0] as number)}, median ${fmtMs(at(0.5))}, max ${fmtMs(s[s.length - 1] as number)}`;
}

/** The text of `ds.stats()` for one execution. */
export function formatStats(ops: readonly OpStats[], wallMs: number): string {
  const lines: string[] = [];
  for (const [i, s] of ops.entries()) {
    const span = s.firstStart !== undefined && s.lastEnd !== undefined ? s.lastEnd - s.firstStart : 0;
    lines.push(`Operator ${i} ${s.name}: ${s.tasks} tasks, ${s.blocks} blocks, ${s.rows} rows, ${fmtBytes(s.bytes)}`);
    if (s.tasks > 0) {
      lines.push(`* task wall time: ${quantiles(s.taskWallMs)}, total ${fmtMs(s.taskWallMs.reduce((a, b) => a + b, 0))}`);
      lines.push(`* CPU time: ${fmtMs(s.cpuMs)}`);
      lines.push(`* nodes: ${s.nodes.size}`);
    }
    if (s.blocks > 0) lines.push(`* rows per block: ${Math.round(s.rows / s.blocks)}, bytes per block: ${fmtBytes(Math.round(s.bytes / s.blocks))}`);
    if (span > 0) lines.push(`* throughput: ${Math.round((s.rows / span) * 1000)} rows/s over ${fmtMs(span)}`);
  }
  lines.push(`Dataset: ${ops.length} operators, total wall time ${fmtMs(wallMs)}`);
  return lines.join('\n');
}

export { fmtBytes };
