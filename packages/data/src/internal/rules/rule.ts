/**
 * An optimizer rule: a rewrite of the logical plan that keeps its result.
 * One rule a file; `rules/index.ts` lists them in the order they run.
 * @internal
 */
import type { LogicalOp } from '../plan';

/** A rewrite of the logical plan. */
export interface Rule {
  /** the rule's name, for debugging */
  readonly name: string;
  /** the rewritten plan (the same object when nothing applies) */
  apply(op: LogicalOp): LogicalOp;
}

/** Applies `f` to every operator bottom-up (inputs first). */
export function transformUp(op: LogicalOp, f: (op: LogicalOp) => LogicalOp): LogicalOp {
  switch (op.kind) {
    case 'Source':
      return f(op);
    case 'Union':
      return f({ ...op, inputs: op.inputs.map((i) => transformUp(i, f)) });
    case 'Zip':
      return f({ ...op, left: transformUp(op.left, f), right: transformUp(op.right, f) });
    default:
      return f({ ...op, input: transformUp(op.input, f) });
  }
}
