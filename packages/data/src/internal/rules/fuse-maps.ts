/**
 * Operator fusion: chains of task maps with the same resources run as one
 * task per block (Read → Map → MapBatches is one read task), and task maps
 * before an actor-pool map run inside its actors. Fewer tasks, and blocks
 * in between never reach the object store.
 * @internal
 */
import { type LogicalOp, sameCompute } from '../plan';
import { type Rule, transformUp } from './rule';

function fuse(op: LogicalOp): LogicalOp {
  if (op.kind !== 'Map') return op;
  const below = op.input;
  if (below.kind === 'Map' && below.compute.kind === 'tasks') {
    if (sameCompute(op.compute, below.compute) || op.compute.kind === 'actors') {
      return { ...op, name: `${below.name}->${op.name}`, input: below.input, steps: [...below.steps, ...op.steps] };
    }
  }
  if (below.kind === 'Source' && below.source.kind !== 'blocks' && op.compute.kind === 'tasks' && sameCompute(op.compute, below.compute)) {
    return { ...below, name: `${below.name}->${op.name}`, steps: [...below.steps, ...op.steps] };
  }
  return op;
}

/** The fusion rule. */
export const fuseMaps: Rule = { name: 'FuseMaps', apply: (plan) => transformUp(plan, fuse) };
