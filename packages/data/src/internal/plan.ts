/**
 * The logical plan of a Dataset: a tree of operators, built lazily by the
 * Dataset's methods and rewritten by the rules in `rules/` before the
 * planner turns it into physical operators. Plain data: no methods, no
 * execution state.
 * @internal
 */
import type * as ray from '@tsray/core';
import type { Block, BlockMeta, BatchFormat } from './block';
import type { ReadOptions, ReadTask, ReadFormat } from './io';
import type { AggSpec, SortKey } from './kernels';

/** A block in the object store and what is known about it. */
export interface Bundle {
  ref: ray.ObjectRef<Block>;
  meta: BlockMeta;
}

/** A user's function as it travels, with its extra arguments. */
export interface UserFn {
  fn: ray.util.Shippable;
  args: unknown[];
}

/** One transformation a map task (or a pool actor) applies to a block. */
export type Step =
  | ({ t: 'map' | 'flatMap' | 'filter'; op: string } & UserFn)
  | ({ t: 'mapBatches'; op: string; batchSize: number | null; format: BatchFormat; zeroCopy: boolean } & UserFn)
  /** mapBatches with a class: the pool actor's instance's `call` */
  | { t: 'callBatches'; op: string; batchSize: number | null; format: BatchFormat; args: unknown[] }
  | ({ t: 'addColumn'; op: string; column: string } & UserFn)
  | { t: 'select'; op: string; columns: string[] }
  | { t: 'drop'; op: string; columns: string[] }
  | { t: 'rename'; op: string; names: Record<string, string> }
  | { t: 'limit'; op: string; n: number }
  | { t: 'sample'; op: string; fraction: number; seed: number | null }
  /** the map side of an aggregation, fused into the task that makes the block: one row of partial states per key */
  | { t: 'partialAgg'; op: string; keys: string[]; aggs: AggSpec[] };

/** What one read task reads. */
export type ReadSpec = { kind: 'range'; start: number; end: number } | { kind: 'file'; task: ReadTask };

/** Where a dataset's rows come from. */
export type Source =
  | { kind: 'blocks'; bundles: Bundle[] }
  | { kind: 'range'; n: number; numBlocks: number }
  | { kind: 'files'; format: ReadFormat; paths: string[]; options: ReadOptions };

/** Tasks of these resources. */
export type TaskCompute = { kind: 'tasks'; numCpus: number; numGpus: number; concurrency: number | undefined };
/** How a map operator computes: tasks, or a pool of actors of the user's class. */
export type Compute =
  | TaskCompute
  | { kind: 'actors'; cls: ray.util.Shippable; ctorArgs: unknown[]; min: number; max: number; numCpus: number; numGpus: number };

/** An all-to-all operation: every output block may depend on every input block. */
export type AllToAll =
  | { kind: 'sort'; key: SortKey }
  | { kind: 'randomShuffle'; seed: number | undefined }
  | { kind: 'repartition'; n: number; shuffle: boolean }
  /** `partial`: the input's blocks already hold partial states (the map side was fused into the tasks that make them) */
  | { kind: 'aggregate'; keys: string[]; aggs: AggSpec[]; partial?: boolean }
  | { kind: 'mapGroups'; keys: string[]; fn: UserFn; op: string; format: BatchFormat }
  | { kind: 'randomizeBlocks'; seed: number | undefined };

/** A logical operator. */
export type LogicalOp =
  /** steps fused into the read tasks (by the fusion rule); columns and limit pushed into the reads */
  | { kind: 'Source'; name: string; source: Source; steps: Step[]; compute: TaskCompute; columns?: string[]; limit?: number }
  | { kind: 'Map'; name: string; input: LogicalOp; steps: Step[]; compute: Compute }
  | { kind: 'Limit'; input: LogicalOp; n: number }
  | { kind: 'AllToAll'; name: string; input: LogicalOp; spec: AllToAll }
  | { kind: 'Union'; inputs: LogicalOp[] }
  | { kind: 'Zip'; left: LogicalOp; right: LogicalOp };

/** True for steps that keep every row and its order (a limit can move above them). */
export function rowPreserving(s: Step): boolean {
  return s.t === 'map' || s.t === 'addColumn' || s.t === 'select' || s.t === 'drop' || s.t === 'rename';
}

/** The operator's name for stats and progress. */
export function opName(op: LogicalOp): string {
  switch (op.kind) {
    case 'Limit':
      return `Limit[${op.n}]`;
    case 'Union':
      return 'Union';
    case 'Zip':
      return 'Zip';
    default:
      return op.name;
  }
}

/** A compact description of the plan (`Read → Map(f) → Limit[10]`), for `toString` and stats. */
export function describePlan(op: LogicalOp): string {
  switch (op.kind) {
    case 'Source':
      return opName(op);
    case 'Union':
      return `Union(${op.inputs.map(describePlan).join(', ')})`;
    case 'Zip':
      return `Zip(${describePlan(op.left)}, ${describePlan(op.right)})`;
    default:
      return `${describePlan(op.input)} → ${opName(op)}`;
  }
}

/** Tasks of 1 CPU, as many as the cluster runs at once. */
export const DEFAULT_COMPUTE: TaskCompute = { kind: 'tasks', numCpus: 1, numGpus: 0, concurrency: undefined };

/** True when two task computes ask for the same resources (their steps can share a task). */
export function sameCompute(a: Compute, b: Compute): boolean {
  return a.kind === 'tasks' && b.kind === 'tasks' && a.numCpus === b.numCpus && a.numGpus === b.numGpus && a.concurrency === b.concurrency;
}
