/**
 * Limit pushdown: a limit moves below operators that keep every row and its
 * order (map, addColumn, column selection), merges with a limit below it,
 * and tells the reads to stop after that many rows each (the limit itself
 * stays, to cut the total). `range(n).map(f).limit(10)` reads 10 rows.
 * @internal
 */
import { type LogicalOp, rowPreserving } from '../plan';
import { type Rule, transformUp } from './rule';

function push(op: LogicalOp): LogicalOp {
  if (op.kind !== 'Limit') return op;
  const below = op.input;
  if (below.kind === 'Limit') return push({ kind: 'Limit', input: below.input, n: Math.min(op.n, below.n) });
  if (below.kind === 'Map' && below.compute.kind === 'tasks' && below.steps.every(rowPreserving)) {
    return { ...below, input: push({ kind: 'Limit', input: below.input, n: op.n }) };
  }
  if (below.kind === 'Source' && below.steps.every(rowPreserving)) {
    return { ...op, input: { ...below, limit: Math.min(op.n, below.limit ?? Number.POSITIVE_INFINITY) } };
  }
  return op;
}

/** The limit pushdown rule. */
export const limitPushdown: Rule = { name: 'LimitPushdown', apply: (plan) => transformUp(plan, push) };
