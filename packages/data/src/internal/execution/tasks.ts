/**
 * The remote functions the executor runs: reads, fused map chains, slices,
 * zips and the map and reduce stages of the all-to-all operators. They are
 * top-level definitions of this module, so workers find them by importing
 * it. Each returns its block and the block's metadata as two objects, so
 * that the executor learns row counts and sizes without fetching blocks.
 * @internal
 */
import * as ray from '@tsray/core';
import * as arrow from 'apache-arrow';
import { type Block, type BlockMeta, blockMeta, blockColumns, concatBlocks, int64Of, sliceBlock } from '../block';
import { type ReadOptions, runReadTask } from '../io';
import * as K from '../kernels';
import type { ReadSpec, Step, UserFn } from '../plan';
import { applySteps, applyStepsToAll } from './transform';

/** Metadata of a task's output block, with what stats report about the task. */
export interface TaskMeta extends BlockMeta {
  /** column name and Arrow type of each column */
  columns: Array<[string, string]>;
  /** wall time of the task, ms */
  wallMs: number;
  /** CPU time of the task's process while it ran, ms */
  cpuMs: number;
  /** node the task ran on */
  nodeId: string;
}

/** The output of a task: its block and the block's metadata. */
export type BlockAndMeta = [Block, TaskMeta];

/** Times `f` and describes its block. */
export async function timed(f: () => Promise<Block>): Promise<BlockAndMeta> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const block = await f();
  const c = process.cpuUsage(c0);
  const meta: TaskMeta = {
    ...blockMeta(block),
    columns: block.schema.fields.map((fl) => [fl.name, String(fl.type)]),
    wallMs: performance.now() - t0,
    cpuMs: (c.user + c.system) / 1000,
    nodeId: ray.isInitialized() ? ray.getRuntimeContext().nodeId : '',
  };
  return [block, meta];
}

/** Rows [start, end) of range(): column "id" (Int64). */
export function rangeBlock(start: number, end: number): Block {
  const n = Math.max(0, end - start);
  return new arrow.Table({ id: arrow.makeVector(int64Of(n, (i) => start + i)) });
}

async function readBlocks(spec: ReadSpec, options: ReadOptions): Promise<Block[]> {
  if (spec.kind === 'range') {
    const end = options.limit !== undefined ? Math.min(spec.end, spec.start + options.limit) : spec.end;
    return [rangeBlock(spec.start, end)];
  }
  return runReadTask(spec.task, options);
}

/** A read task: reads what `spec` names, then applies the fused steps. */
export const readTask = ray.remote({ name: 'data.read' }, async function readTask(spec: ReadSpec, options: ReadOptions, steps: Step[]): Promise<BlockAndMeta> {
  return timed(async () => applyStepsToAll(await readBlocks(spec, options), steps));
});

/** A map task: the fused steps over its input blocks, concatenated. */
export const mapTask = ray.remote({ name: 'data.map' }, async function mapTask(steps: Step[], ...blocks: Block[]): Promise<BlockAndMeta> {
  return timed(async () => applyStepsToAll(blocks, steps));
});

/** One piece of an input block: block `index` of the task's blocks, rows [start, end). */
export type Slice = [index: number, start: number, end: number];

/** Concatenates slices of the given blocks (repartition, limit, split). */
export const sliceTask = ray.remote({ name: 'data.slice' }, async function sliceTask(slices: Slice[], ...blocks: Block[]): Promise<BlockAndMeta> {
  return timed(async () => concatBlocks(slices.map(([i, s, e]) => sliceBlock(blocks[i] as Block, s, e))));
});

/**
 * Zips one left block with the rows of the right blocks `slices` name
 * (which together have as many rows). A right column whose name the left
 * has takes the suffix `_1`.
 */
export const zipTask = ray.remote({ name: 'data.zip' }, async function zipTask(left: Block, slices: Slice[], ...right: Block[]): Promise<BlockAndMeta> {
  return timed(async () => {
    const r = concatBlocks(slices.map(([i, s, e]) => sliceBlock(right[i] as Block, s, e)));
    const cols: Record<string, arrow.Vector> = {};
    for (const name of blockColumns(left)) cols[name] = left.getChild(name) as arrow.Vector;
    for (const name of blockColumns(r)) {
      let out = name;
      for (let k = 1; out in cols; k++) out = `${name}_${k}`;
      cols[out] = r.getChild(name) as arrow.Vector;
    }
    return new arrow.Table(cols);
  });
});

// ------------------------------------------------------------------ all-to-all stages

/** Sort, map stage 1: a sample of the block's keys. */
export const sampleTask = ray.remote({ name: 'data.sort.sample' }, async function sampleTask(block: Block, key: K.SortKey, n: number): Promise<Block> {
  return K.sampleKeys(block, key, n);
});

/** How a map stage cuts a block into partitions. */
export type Partitioning = { kind: 'range'; key: K.SortKey; boundaries: Block } | { kind: 'random'; n: number; seed: number } | { kind: 'hash'; keys: string[]; n: number };

function partitionBlock(how: Partitioning, block: Block): Block[] {
  if (how.kind === 'range') return K.partitionByBoundaries(K.sortBlock(block, how.key), how.key, how.boundaries);
  if (how.kind === 'random') return K.shufflePartition(block, how.n, how.seed);
  return K.hashPartition(block, how.keys, how.n);
}

/** Sort, map stage 2 (and shuffles): the block cut into partitions, one object each (numReturns = partitions, 2 or more). */
export const partitionTask = ray.remote({ name: 'data.partition' }, async function partitionTask(how: Partitioning, block: Block): Promise<Block[]> {
  return partitionBlock(how, block);
});

/** partitionTask for one partition (a single return value). */
export const partitionOneTask = ray.remote({ name: 'data.partition1' }, async function partitionOneTask(how: Partitioning, block: Block): Promise<Block> {
  return partitionBlock(how, block)[0] as Block;
});

/** The partitions of `block`, one ref each. */
export function partitionRefs(how: Partitioning, block: ray.ObjectRef<Block>, n: number, name: string): ray.ObjectRef<Block>[] {
  if (n === 1) return [partitionOneTask.options({ name }).remote(how, block)];
  return partitionTask.options({ numReturns: n, name }).remote(how, block) as unknown as ray.ObjectRef<Block>[];
}

/** Partial aggregation of one block (one row per key), with its metadata (the reduce stage is sized by the partials' rows). */
export const partialAggTask = ray.remote({ name: 'data.aggregate.partial' }, async function partialAggTask(keys: string[], aggs: K.AggSpec[], block: Block): Promise<BlockAndMeta> {
  return timed(async () => K.partialAggregate(block, keys, aggs));
});

/** A reduce stage: what one output partition gets from every map task. */
export type Reduce =
  | { kind: 'merge'; key: K.SortKey }
  | { kind: 'shuffle'; seed: number }
  | { kind: 'concat' }
  | { kind: 'aggregate'; keys: string[]; aggs: K.AggSpec[] }
  | { kind: 'mapGroups'; key: K.SortKey; fn: UserFn; op: string; format: 'default' | 'arrow' | 'rows' };

/** The reduce stage of the all-to-all operators. */
export const reduceTask = ray.remote({ name: 'data.reduce' }, async function reduceTask(how: Reduce, ...parts: Block[]): Promise<BlockAndMeta> {
  return timed(async () => {
    switch (how.kind) {
      case 'merge':
        return K.mergeSorted(parts, how.key);
      case 'shuffle':
        return K.shuffleBlock(concatBlocks(parts), how.seed);
      case 'concat':
        return concatBlocks(parts);
      case 'aggregate':
        return K.finalizeAggregate(parts, how.keys, how.aggs);
      case 'mapGroups': {
        const sorted = K.mergeSorted(parts, how.key);
        const step: Step = { t: 'mapBatches', op: how.op, fn: how.fn.fn, args: how.fn.args, batchSize: null, format: how.format, zeroCopy: false };
        const outs: Block[] = [];
        for (const g of K.groupsOf(sorted, how.key.columns)) outs.push(await applySteps(g, [step]));
        return concatBlocks(outs);
      }
    }
  });
});
