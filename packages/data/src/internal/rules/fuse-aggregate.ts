/**
 * Map-side aggregation fusion: the partial aggregation of an aggregate
 * runs inside the tasks that make its input blocks (a read, a task map),
 * so only one row of partial states per key and block reaches the object
 * store, and no task runs just to aggregate a block.
 * @internal
 */
import type { LogicalOp, Step } from '../plan';
import { type Rule, transformUp } from './rule';

function fuse(op: LogicalOp): LogicalOp {
  if (op.kind !== 'AllToAll' || op.spec.kind !== 'aggregate' || op.spec.partial) return op;
  const below = op.input;
  const step: Step = { t: 'partialAgg', op: `${op.name}.partial`, keys: op.spec.keys, aggs: op.spec.aggs };
  const spec = { ...op.spec, partial: true };
  const name = `${below.kind === 'Source' || below.kind === 'Map' ? below.name : ''}->${step.op}`;
  if (below.kind === 'Source' && below.source.kind !== 'blocks') return { ...op, spec, input: { ...below, name, steps: [...below.steps, step] } };
  if (below.kind === 'Map' && below.compute.kind === 'tasks') return { ...op, spec, input: { ...below, name, steps: [...below.steps, step] } };
  return op;
}

/** The rule. */
export const fuseAggregate: Rule = { name: 'FuseAggregate', apply: (plan) => transformUp(plan, fuse) };
