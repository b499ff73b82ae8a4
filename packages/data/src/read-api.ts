/**
 * Creating datasets: from numbers, items, Arrow tables, and files.
 */
import * as ray from '@tsray/core';
import * as arrow from 'apache-arrow';
import { Dataset, MaterializedDataset } from './dataset';
import { blockFromItems, blockMeta, concatBlocks } from './internal/block';
import type { CsvOptions, ReadFormat, ReadOptions } from './internal/io';
import { checkInt, checkKeys } from './internal/options';
import { DEFAULT_COMPUTE, type Bundle } from './internal/plan';

/** Options of range. */
export interface RangeOptions {
  /** the number of blocks @default enough for every CPU twice, at most ~1M rows each */
  overrideNumBlocks?: number;
}

/** A dataset of the integers 0..n-1 in column "id". */
export function range(n: number, options?: RangeOptions): Dataset {
  checkInt('data.range: n', n, 0);
  const o = checkKeys('data.range', options, ['overrideNumBlocks']);
  const numBlocks = o.overrideNumBlocks === undefined ? 0 : checkInt('data.range: overrideNumBlocks', o.overrideNumBlocks, 1);
  return new Dataset({ kind: 'Source', name: 'ReadRange', source: { kind: 'range', n, numBlocks }, steps: [], compute: DEFAULT_COMPUTE });
}

function putBlocks(blocks: arrow.Table[]): Bundle[] {
  return blocks.map((t) => ({ ref: ray.put(t), meta: { ...blockMeta(t), columns: t.schema.fields.map((f) => [f.name, String(f.type)] as [string, string]) } as Bundle['meta'] }));
}

function requireInit(what: string): void {
  if (!ray.isInitialized()) throw new ray.NotInitializedError(what);
}

/**
 * A dataset of `items`: plain objects are rows; other values go in column
 * "item". tsray must be initialized (the items are put in the object store).
 */
export function fromItems(items: readonly unknown[], options?: { overrideNumBlocks?: number }): MaterializedDataset {
  if (!Array.isArray(items)) throw new TypeError(`data.fromItems takes an array, got ${typeof items}`);
  const o = checkKeys('data.fromItems', options, ['overrideNumBlocks']);
  requireInit('data.fromItems');
  const n = o.overrideNumBlocks === undefined ? Math.max(1, Math.min(items.length, 8)) : checkInt('data.fromItems: overrideNumBlocks', o.overrideNumBlocks, 1);
  const blocks: arrow.Table[] = [];
  for (let i = 0; i < n; i++) {
    const part = items.slice(Math.floor((i * items.length) / n), Math.floor(((i + 1) * items.length) / n));
    if (part.length > 0 || items.length === 0) blocks.push(blockFromItems(part));
  }
  // one schema for all blocks: a column one block inferred as Int64 and another as Float64 is Float64 in both
  const unified = blocks.length > 1 ? splitLike(concatBlocks(blocks), blocks.map((b) => b.numRows)) : blocks;
  return new MaterializedDataset(putBlocks(unified));
}

function splitLike(t: arrow.Table, counts: number[]): arrow.Table[] {
  const out: arrow.Table[] = [];
  let off = 0;
  for (const c of counts) {
    out.push(t.slice(off, off + c));
    off += c;
  }
  return out;
}

/** A dataset of Arrow tables (one block each). */
export function fromArrow(tables: arrow.Table | readonly arrow.Table[]): MaterializedDataset {
  const list = Array.isArray(tables) ? tables : [tables];
  for (const t of list) if (!(t instanceof arrow.Table)) throw new TypeError('data.fromArrow takes an Arrow Table or an array of them');
  requireInit('data.fromArrow');
  return new MaterializedDataset(putBlocks(list as arrow.Table[]));
}

function checkPaths(what: string, paths: unknown): string[] {
  const list = typeof paths === 'string' ? [paths] : paths;
  if (!Array.isArray(list) || list.length === 0 || !list.every((p) => typeof p === 'string' && p !== '')) {
    throw new TypeError(`${what} takes a path (a file, a directory or a glob) or a non-empty list of them, got ${JSON.stringify(paths)}`);
  }
  return list as string[];
}

function read(format: ReadFormat, what: string, name: string, paths: unknown, options: ReadOptions): Dataset {
  return new Dataset({ kind: 'Source', name, source: { kind: 'files', format, paths: checkPaths(what, paths), options }, steps: [], compute: DEFAULT_COMPUTE });
}

/** Options of readCsv. */
export interface ReadCsvOptions extends CsvOptions {}

/** CSV files (a header row names the columns; numbers, booleans and empty fields are typed). */
export function readCsv(paths: string | string[], options?: ReadCsvOptions): Dataset {
  const o = checkKeys('data.readCsv', options, ['delimiter', 'header', 'columnNames']) as CsvOptions;
  return read('csv', 'data.readCsv', 'ReadCSV', paths, { csv: o });
}

/** JSON Lines files, or files that hold one JSON array of objects. */
export function readJson(paths: string | string[]): Dataset {
  return read('json', 'data.readJson', 'ReadJSON', paths, {});
}

/** Options of readParquet. */
export interface ReadParquetOptions {
  /** read only these columns */
  columns?: string[];
}

/** Parquet files, one read task per row group. */
export function readParquet(paths: string | string[], options?: ReadParquetOptions): Dataset {
  const o = checkKeys('data.readParquet', options, ['columns']);
  if (o.columns !== undefined && (!Array.isArray(o.columns) || !o.columns.every((c) => typeof c === 'string'))) throw new TypeError('data.readParquet: columns must be an array of column names');
  return read('parquet', 'data.readParquet', 'ReadParquet', paths, o.columns ? { columns: o.columns as string[] } : {});
}

/** Text files, one row per line in column "text". */
export function readText(paths: string | string[]): Dataset {
  return read('text', 'data.readText', 'ReadText', paths, {});
}

/** Whole files: columns "bytes" and "path". */
export function readBinaryFiles(paths: string | string[]): Dataset {
  return read('binary', 'data.readBinaryFiles', 'ReadBinary', paths, {});
}
