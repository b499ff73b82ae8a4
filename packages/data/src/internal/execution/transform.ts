/**
 * Applies a fused chain of steps to blocks, inside a map task or a pool
 * actor: user functions are loaded (once per process), called row by row or
 * batch by batch, and what they return becomes a block again. A user
 * function that throws becomes a UserCodeError naming the operator.
 * @internal
 */
import { BlockValueError, DataError, UserCodeError } from '../../errors';
import {
  type Block,
  type Row,
  blockColumns,
  blockFromBatch,
  blockFromRows,
  blockToBatch,
  blockToColumns,
  blockToRows,
  concatBlocks,
  emptyBlock,
  sliceBlock,
  vectorOf,
} from '../block';
import * as arrow from 'apache-arrow';
import type { Step, UserFn } from '../plan';
import { partialAggregate } from '../kernels';
import { sampleRows } from '../sample';

/** The instance of the user's class in a pool actor (for 'callBatches'). */
export interface CallTarget {
  call(batch: unknown, ...args: unknown[]): unknown;
}

type Fn = (...args: unknown[]) => unknown;

async function load(u: UserFn): Promise<Fn> {
  return (await u.fn.load()) as unknown as Fn;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/** Calls `f`, turning what it throws (or rejects with) into a UserCodeError of `op`. */
async function guarded<T>(op: string, f: () => T | Promise<T>): Promise<T> {
  try {
    const r = f();
    return isThenable(r) ? await r : r;
  } catch (e) {
    if (e instanceof UserCodeError) throw e;
    throw new UserCodeError(op, e);
  }
}

/** What a user's function returned could not be stored: name the operator. */
function rethrowValue(op: string, e: unknown): never {
  if (e instanceof BlockValueError) throw new BlockValueError(`${op} returned a value that cannot be stored: ${e.message}`, e.column);
  throw e;
}

async function mapRows(block: Block, step: Extract<Step, { t: 'map' | 'flatMap' | 'filter' }>): Promise<Block> {
  const f = await load(step);
  const rows = blockToRows(block);
  const out: unknown[] = [];
  for (const row of rows) {
    let r: unknown;
    try {
      r = f(row, ...step.args);
      if (isThenable(r)) r = await r;
    } catch (e) {
      throw new UserCodeError(step.op, e);
    }
    if (step.t === 'map') out.push(r);
    else if (step.t === 'filter') {
      if (r) out.push(row);
    } else {
      if (r === null || r === undefined || typeof (r as Iterable<unknown>)[Symbol.iterator] !== 'function' || typeof r === 'string') {
        throw new UserCodeError(step.op, new TypeError(`flatMap's function must return an array (or iterable) of rows, got ${r === null ? 'null' : typeof r}`));
      }
      for (const x of r as Iterable<unknown>) out.push(x);
    }
  }
  if (step.t === 'filter') {
    // keep the input's types: rebuild from the kept rows only when some were dropped
    if (out.length === rows.length) return block;
    if (out.length === 0) return block.slice(0, 0);
  }
  if (out.length === 0) return emptyBlock();
  try {
    return blockFromRows(out as Row[]);
  } catch (e) {
    return rethrowValue(step.op, e);
  }
}

/** Splits a block into batches of `size` rows (the whole block when null). */
function* batchesOf(block: Block, size: number | null): Generator<Block> {
  if (size === null || block.numRows <= size) {
    yield block;
    return;
  }
  for (let i = 0; i < block.numRows; i += size) yield sliceBlock(block, i, Math.min(block.numRows, i + size));
}

async function mapBatches(block: Block, step: Extract<Step, { t: 'mapBatches' | 'callBatches' }>, target: CallTarget | undefined): Promise<Block> {
  let call: (batch: unknown) => unknown;
  if (step.t === 'mapBatches') {
    const f = await load(step);
    call = (b) => f(b, ...step.args);
  } else {
    if (!target) throw new DataError(`${step.op} needs the actor's instance: this is a bug in @tsray/data`);
    call = (b) => target.call(b, ...step.args);
  }
  const outs: Block[] = [];
  for (const b of batchesOf(block, step.batchSize)) {
    const r = await guarded(step.op, () => call(blockToBatch(b, step.format)));
    try {
      outs.push(blockFromBatch(r));
    } catch (e) {
      rethrowValue(step.op, e);
    }
  }
  try {
    return concatBlocks(outs);
  } catch (e) {
    return rethrowValue(step.op, e);
  }
}

async function addColumn(block: Block, step: Extract<Step, { t: 'addColumn' }>): Promise<Block> {
  const f = await load(step);
  const col = await guarded(step.op, () => f(blockToColumns(block), ...step.args));
  let v: arrow.Vector;
  try {
    if (col instanceof arrow.Vector) v = col;
    else if (ArrayBuffer.isView(col) && !(col instanceof DataView)) v = arrow.makeVector(col as Float64Array);
    else if (Array.isArray(col)) v = vectorOf(step.column, col);
    else throw new BlockValueError(`addColumn's function must return the new column as an array or typed array, got ${col === null ? 'null' : typeof col}`, step.column);
  } catch (e) {
    return rethrowValue(step.op, e);
  }
  if (v.length !== block.numRows) {
    throw new BlockValueError(`${step.op} returned ${v.length} values for a batch of ${block.numRows} rows; return one value per row`, step.column);
  }
  const cols: Record<string, arrow.Vector> = {};
  for (const name of blockColumns(block)) if (name !== step.column) cols[name] = block.getChild(name) as arrow.Vector;
  cols[step.column] = v;
  return new arrow.Table(cols);
}

function project(block: Block, step: Extract<Step, { t: 'select' | 'drop' | 'rename' }>): Block {
  const have = blockColumns(block);
  if (step.t === 'select' || step.t === 'drop') {
    const missing = step.columns.filter((c) => !have.includes(c));
    if (missing.length > 0 && block.numCols > 0) {
      throw new DataError(`${step.op}: no column ${missing.map((c) => `'${c}'`).join(', ')}; the dataset's columns are ${have.map((c) => `'${c}'`).join(', ')}`);
    }
    const keep = step.t === 'select' ? step.columns : have.filter((c) => !step.columns.includes(c));
    return block.numCols === 0 ? block : block.select(keep);
  }
  const cols: Record<string, arrow.Vector> = {};
  for (const name of have) cols[step.names[name] ?? name] = block.getChild(name) as arrow.Vector;
  return new arrow.Table(cols);
}

/** State a chain keeps across the blocks of one task (a limit counts rows). */
export interface ChainState {
  /** rows each limit step has let through so far, by step index */
  seen: Map<number, number>;
}

/** Applies `steps` to one block. */
export async function applySteps(block: Block, steps: readonly Step[], target?: CallTarget, state: ChainState = { seen: new Map() }): Promise<Block> {
  let b = block;
  for (const [i, step] of steps.entries()) {
    switch (step.t) {
      case 'map':
      case 'flatMap':
      case 'filter':
        b = await mapRows(b, step);
        break;
      case 'mapBatches':
      case 'callBatches':
        b = await mapBatches(b, step, target);
        break;
      case 'addColumn':
        b = await addColumn(b, step);
        break;
      case 'select':
      case 'drop':
      case 'rename':
        b = project(b, step);
        break;
      case 'sample':
        b = sampleRows(b, step.fraction, step.seed);
        break;
      case 'partialAgg':
        b = partialAggregate(b, step.keys, step.aggs);
        break;
      case 'limit': {
        const seen = state.seen.get(i) ?? 0;
        const take = Math.max(0, Math.min(b.numRows, step.n - seen));
        state.seen.set(i, seen + take);
        if (take < b.numRows) b = sliceBlock(b, 0, take);
        break;
      }
    }
  }
  return b;
}

/** Applies `steps` to each block in turn and concatenates the results. */
export async function applyStepsToAll(blocks: readonly Block[], steps: readonly Step[], target?: CallTarget): Promise<Block> {
  const state: ChainState = { seen: new Map() };
  const outs: Block[] = [];
  for (const b of blocks) outs.push(await applySteps(b, steps, target, state));
  return concatBlocks(outs);
}
