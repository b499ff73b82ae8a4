/**
 * The file datasources and datasinks: the driver plans read tasks (one per
 * file, one per row group for Parquet); a worker runs one into a block.
 * Parquet goes through parquet-wasm (snappy, zstd), which reads and writes
 * Arrow IPC directly.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import * as ray from '@tsray/core';
import { DataReadError } from '../errors';
import { type Block, blockColumns, blockFromRows, blockToRows, emptyBlock } from './block';
import { type CsvOptions, formatCsv, parseCsv } from './io/csv';
import { expandPaths } from './io/paths';

export type { CsvOptions };

/** Formats readers read. */
export type ReadFormat = 'csv' | 'json' | 'parquet' | 'text' | 'binary';
/** What every reader takes. */
export interface ReadOptions {
  /** read only these columns */
  columns?: string[];
  /** stop after this many rows (each task) */
  limit?: number;
  csv?: CsvOptions;
}
/** One read task. */
export interface ReadTask {
  format: ReadFormat;
  path: string;
  rowGroup?: number;
  numRows?: number;
  sizeBytes: number;
}
/** Formats writers write. */
export type WriteFormat = 'parquet' | 'csv' | 'json';
/** Options of writeParquet. */
export interface WriteOptions {
  /** @default 'snappy' */
  compression?: 'snappy' | 'zstd' | 'none';
}

type ParquetWasm = typeof import('parquet-wasm/node');
let pqModule: ParquetWasm | undefined;
function pq(): ParquetWasm {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  pqModule ??= require('parquet-wasm/node') as ParquetWasm;
  return pqModule;
}

/**
 * Row groups a read task left in wasm memory: its block was read in place
 * from there (no copy), and the task's result was written to the object
 * store before the next task of this worker starts (a worker runs one task
 * at a time), which frees them.
 */
const heldInWasm: Array<{ drop(): void }> = [];

/** True inside a normal task, where tasks run one at a time (not an actor, not the driver). */
function inTask(): boolean {
  if (!ray.isInitialized()) return false;
  const c = ray.getRuntimeContext();
  return c.taskId !== undefined && c.actorId === undefined;
}

/** arrow-js-ffi's reader of Arrow's C data interface (an ES module with a CommonJS build). */
type ParseTable = (buffer: ArrayBuffer, arrayAddrs: ArrayLike<number>, schemaAddr: number, copy: boolean) => arrow.Table;
let parseTableFn: ParseTable | undefined;
function parseTable(buffer: ArrayBuffer, arrayAddrs: ArrayLike<number>, schemaAddr: number, copy: boolean): arrow.Table {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  parseTableFn ??= (require('arrow-js-ffi') as { parseTable: ParseTable }).parseTable;
  return parseTableFn(buffer, arrayAddrs, schemaAddr, copy);
}

/** A wasm Table as an Arrow JS table: viewed in place inside a task, copied elsewhere. */
function fromWasm(t: import('parquet-wasm/node').Table): arrow.Table {
  const ffi = t.intoFFI();
  const inPlace = inTask();
  const table = parseTable(pq().wasmMemory().buffer, ffi.arrayAddrs(), ffi.schemaAddr(), !inPlace);
  if (inPlace) heldInWasm.push(ffi);
  else ffi.drop();
  return table;
}

async function parquetFile(file: string): Promise<import('parquet-wasm/node').ParquetFile> {
  try {
    return await pq().ParquetFile.fromFile(await fs.openAsBlob(file));
  } catch (e) {
    throw new DataReadError(`${file} is not a Parquet file that can be read (${e instanceof Error ? e.message : String(e)})`, file, undefined, { cause: e });
  }
}

/**
 * The read tasks of `paths` (driver side).
 * @throws DataReadError for a path that does not exist or a file that is not Parquet
 */
export async function planRead(format: ReadFormat, paths: string | readonly string[], _opts: ReadOptions = {}): Promise<ReadTask[]> {
  const files = expandPaths(typeof paths === 'string' ? [paths] : paths);
  const tasks: ReadTask[] = [];
  for (const file of files) {
    const sizeBytes = fs.statSync(file).size;
    if (format !== 'parquet') {
      tasks.push({ format, path: file, sizeBytes });
      continue;
    }
    const f = await parquetFile(file);
    const meta = f.metadata();
    const groups = meta.numRowGroups();
    for (let g = 0; g < groups; g++) {
      const rg = meta.rowGroup(g);
      tasks.push({ format, path: file, rowGroup: g, numRows: rg.numRows(), sizeBytes: Math.ceil(sizeBytes / groups) });
      rg.free();
    }
    meta.free();
    f.free();
  }
  return tasks;
}

function readJsonText(text: string, file: string, limit: number): Block {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let rows: unknown;
    try {
      rows = JSON.parse(text);
    } catch (e) {
      throw new DataReadError(`${file}: the file starts with '[' but is not valid JSON: ${(e as Error).message}`, file, undefined, { cause: e });
    }
    const list = rows as unknown[];
    for (const [i, r] of list.entries()) {
      if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new DataReadError(`${file}: item ${i} of the array is not an object; readJson reads an array of objects (rows)`, file);
    }
    return blockFromRows(list.slice(0, limit));
  }
  const rows: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length && rows.length < limit; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (e) {
      throw new DataReadError(`${file}:${i + 1}: the line is not valid JSON (${(e as Error).message}); JSON Lines files hold one JSON object per line`, file, i + 1, { cause: e });
    }
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new DataReadError(`${file}:${i + 1}: the line is not a JSON object; JSON Lines files hold one object (a row) per line`, file, i + 1);
    rows.push(r);
  }
  return blockFromRows(rows);
}

function project(block: Block, columns: string[] | undefined, file: string): Block {
  if (!columns) return block;
  const have = blockColumns(block);
  const missing = columns.filter((c) => !have.includes(c));
  if (missing.length > 0 && block.numRows > 0) throw new DataReadError(`${file} has no column ${missing.map((c) => `'${c}'`).join(', ')}; its columns are ${have.join(', ')}`, file);
  return block.select(columns);
}

/** One read task's rows (worker side). */
export async function runReadTask(task: ReadTask, opts: ReadOptions = {}): Promise<Block[]> {
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const file = task.path;
  if (task.format === 'parquet') {
    for (const h of heldInWasm.splice(0)) h.drop();
    const f = await parquetFile(file);
    try {
      const options: Record<string, unknown> = { rowGroups: [task.rowGroup ?? 0], batchSize: 1 << 20 };
      if (opts.columns) options.columns = opts.columns;
      if (Number.isFinite(limit)) options.limit = limit;
      return [fromWasm(await f.read(options))];
    } catch (e) {
      if (e instanceof DataReadError) throw e;
      throw new DataReadError(`${file}: row group ${task.rowGroup ?? 0} could not be read (${e instanceof Error ? e.message : String(e)})`, file, undefined, { cause: e });
    } finally {
      // the table read from it lives on in wasm memory (heldInWasm) without the file
      f.free();
    }
  }
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new DataReadError(`${file} could not be read: ${(e as Error).message}`, file, undefined, { cause: e });
  }
  switch (task.format) {
    case 'binary':
      return [blockFromRows([{ bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path: file }])];
    case 'text': {
      const lines = bytes.toString('utf8').split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      const rows = lines.slice(0, Number.isFinite(limit) ? limit : undefined).map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
      return [new arrow.Table({ text: arrow.vectorFromArray(rows, new arrow.Utf8()) })];
    }
    case 'json':
      return [project(readJsonText(bytes.toString('utf8'), file, limit), opts.columns, file)];
    case 'csv':
      return [project(parseCsv(bytes.toString('utf8'), file, opts.csv, limit), opts.columns, file)];
  }
}

const jsonValue = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v);

/** Writes one block to `<dir>/<fileName>.<ext>`; resolves to the path. */
export async function writeBlock(block: Block, dir: string, fileName: string, format: WriteFormat, opts: WriteOptions = {}): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${fileName}.${format === 'json' ? 'jsonl' : format}`);
  if (format === 'parquet') {
    const P = pq();
    const c = opts.compression ?? 'snappy';
    const compression = c === 'zstd' ? P.Compression.ZSTD : c === 'none' ? P.Compression.UNCOMPRESSED : P.Compression.SNAPPY;
    const props = new P.WriterPropertiesBuilder().setCompression(compression).build();
    const t = P.Table.fromIPCStream(arrow.tableToIPC(block.numCols > 0 ? block : emptyBlock(), 'stream'));
    fs.writeFileSync(file, P.writeParquet(t, props));
    return file;
  }
  const rows = blockToRows(block);
  if (format === 'csv') fs.writeFileSync(file, formatCsv(rows, blockColumns(block)));
  else fs.writeFileSync(file, rows.map((r) => JSON.stringify(r, jsonValue)).join('\n') + (rows.length > 0 ? '\n' : ''));
  return file;
}
