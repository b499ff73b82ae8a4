/**
 * Projection pushdown: a column selection right after a file read becomes
 * the read's column list, so Parquet reads only those columns.
 * @internal
 */
import type { LogicalOp } from '../plan';
import { type Rule, transformUp } from './rule';

function push(op: LogicalOp): LogicalOp {
  if (op.kind !== 'Map' || op.compute.kind !== 'tasks') return op;
  const first = op.steps[0];
  const src = op.input;
  if (first?.t !== 'select' || src.kind !== 'Source' || src.source.kind !== 'files' || src.steps.length > 0) return op;
  const columns = src.columns ? first.columns.filter((c) => (src.columns as string[]).includes(c)) : first.columns;
  return { ...op, input: { ...src, columns } };
}

/** The projection pushdown rule. */
export const projectionPushdown: Rule = { name: 'ProjectionPushdown', apply: (plan) => transformUp(plan, push) };
