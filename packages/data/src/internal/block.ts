/**
 * Blocks: a Dataset's unit of data, an Arrow table. Helpers to build one
 * from rows or a batch, to read it back as rows or as a batch in a user's
 * format, and to slice, concatenate and measure them.
 *
 * Type rules (JS values → Arrow): numbers → Float64 (JS does not tell 1 from
 * 1.0, and every block of a column must agree); strings → Utf8; booleans → Bool; bigints →
 * Int64; Dates → Timestamp (ms); Uint8Arrays/Buffers → Binary; arrays →
 * List; plain objects → Struct; null/undefined → null in any column. Back
 * to JS: Int64 → number (bigint only beyond 2^53), Utf8 → string, Struct →
 * plain object, List → array.
 * @internal
 */
import * as arrow from 'apache-arrow';
import { BlockValueError } from '../errors';

/** A block: an Arrow table. */
export type Block = arrow.Table;
/** A row: a plain object, column name → value. */
export type Row = Record<string, unknown>;
/** A typed array (the numeric columns of a 'default' batch). */
export type TypedArray =
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;
/** A column of a batch in the 'default' format. */
export type Column = TypedArray | unknown[];
/** A batch in the 'default' format: column name → values. */
export type ColumnBatch = Record<string, Column>;
/** The formats a batch is handed to a user's function in. */
export type BatchFormat = 'default' | 'arrow' | 'rows';
/** A batch in any of the formats. */
export type Batch = ColumnBatch | arrow.Table | Row[];

/** What the executor knows about a block without fetching it. */
export interface BlockMeta {
  numRows: number;
  sizeBytes: number;
}

export const BATCH_FORMATS: readonly BatchFormat[] = ['default', 'arrow', 'rows'];

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

// ------------------------------------------------------------------ building

/** The empty block (no rows, no columns). */
export function emptyBlock(): Block {
  return new arrow.Table();
}

type Kind = 'int' | 'float' | 'string' | 'bool' | 'bigint' | 'date' | 'binary' | 'list' | 'struct' | 'null';

function kindOf(v: unknown): Kind | undefined {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'number':
      return Number.isInteger(v) ? 'int' : 'float';
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'bigint':
      return 'bigint';
    case 'object':
      if (v instanceof Date) return 'date';
      if (v instanceof Uint8Array) return 'binary';
      if (Array.isArray(v)) return 'list';
      if (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) return 'struct';
      return undefined;
    default:
      return undefined;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'function') return `a function (${(v as { name?: string }).name || 'anonymous'})`;
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'object' && v !== null) return `an instance of ${v.constructor?.name ?? 'a class'}`;
  return typeof v;
}

function unsupported(column: string, v: unknown, where: string): BlockValueError {
  return new BlockValueError(
    `column '${column}'${where} holds ${describe(v)}, which an Arrow block cannot store; ` +
      'return numbers, strings, booleans, bigints, Dates, Uint8Arrays, arrays or plain objects of these (convert class instances to plain objects)',
    column,
  );
}

/** Arrow type of a column of JS values; throws BlockValueError naming the column. */
function inferType(column: string, values: readonly unknown[], where = ''): arrow.DataType {
  let kind: Kind = 'null';
  for (const v of values) {
    const k = kindOf(v);
    if (k === undefined) throw unsupported(column, v, where);
    if (k === 'null' || k === kind) continue;
    if (kind === 'null') kind = k;
    else if ((kind === 'int' && k === 'float') || (kind === 'float' && k === 'int')) kind = 'float';
    else if ((kind === 'int' && k === 'bigint') || (kind === 'bigint' && k === 'int')) kind = 'bigint';
    else {
      throw new BlockValueError(
        `column '${column}'${where} mixes ${kind === 'int' || kind === 'float' ? 'number' : kind} and ${k === 'int' || k === 'float' ? 'number' : k} values; ` +
          'an Arrow column holds one type: convert the values to one type in your function',
        column,
      );
    }
  }
  switch (kind) {
    case 'null':
      return new arrow.Null();
    case 'int':
    case 'float':
      return new arrow.Float64();
    case 'string':
      return new arrow.Utf8();
    case 'bool':
      return new arrow.Bool();
    case 'bigint':
      return new arrow.Int64();
    case 'date':
      return new arrow.TimestampMillisecond();
    case 'binary':
      return new arrow.Binary();
    case 'list': {
      const items: unknown[] = [];
      for (const v of values) if (Array.isArray(v)) for (const x of v) items.push(x);
      return new arrow.List(new arrow.Field('item', inferType(column, items, where || ' (its list items)'), true));
    }
    case 'struct': {
      const keys = new Set<string>();
      for (const v of values) if (v !== null && v !== undefined) for (const k of Object.keys(v as object)) keys.add(k);
      const fields = [...keys].map((k) => {
        const sub = values.map((v) => (v === null || v === undefined ? null : (v as Record<string, unknown>)[k]));
        return new arrow.Field(k, inferType(`${column}.${k}`, sub, where), true);
      });
      return new arrow.Struct(fields);
    }
  }
}

/** Converts JS values for an Arrow column of `type` (Int64 wants bigints; Struct/List recurse). */
function toArrowValues(type: arrow.DataType, values: readonly unknown[]): unknown[] {
  if (arrow.DataType.isInt(type) && type.bitWidth === 64) {
    return values.map((v) => (v === null || v === undefined ? null : typeof v === 'bigint' ? v : BigInt(v as number)));
  }
  if (arrow.DataType.isList(type)) {
    const child = (type as arrow.List).children[0]!.type;
    return values.map((v) => (Array.isArray(v) ? toArrowValues(child, v) : null));
  }
  if (arrow.DataType.isStruct(type)) {
    const fields = (type as arrow.Struct).children;
    return values.map((v) => {
      if (v === null || v === undefined) return null;
      const o: Record<string, unknown> = {};
      for (const f of fields) o[f.name] = toArrowValues(f.type, [(v as Record<string, unknown>)[f.name]])[0];
      return o;
    });
  }
  return values.map((v) => (v === undefined ? null : v));
}

/** An Arrow vector of JS values (type inferred unless given). */
export function vectorOf(column: string, values: readonly unknown[], where = ''): arrow.Vector {
  const type = inferType(column, values, where);
  if (arrow.DataType.isNull(type)) return nullVector(type, values.length);
  return arrow.vectorFromArray(toArrowValues(type, values), type);
}

/** A column given as a typed array becomes an Arrow vector without copying. */
function vectorOfColumn(name: string, col: unknown, where: string): arrow.Vector {
  if (col instanceof arrow.Vector) return col;
  if (ArrayBuffer.isView(col) && !(col instanceof DataView)) {
    if (col instanceof Uint8ClampedArray) return arrow.makeVector(new Uint8Array(col.buffer, col.byteOffset, col.length));
    return arrow.makeVector(col as TypedArray);
  }
  if (Array.isArray(col)) return vectorOf(name, col, where);
  throw new BlockValueError(
    `column '${name}'${where} is ${describe(col)}; a batch's columns are arrays or typed arrays (Float64Array, Int32Array, …) of equal length`,
    name,
  );
}

/** A block from rows (plain objects; the columns are the union of their keys, in first-seen order). */
export function blockFromRows(rows: readonly unknown[], where = ''): Block {
  if (rows.length === 0) return emptyBlock();
  const names: string[] = [];
  const seen = new Set<string>();
  for (const [i, r] of rows.entries()) {
    if (r === null || typeof r !== 'object' || Array.isArray(r) || kindOf(r) !== 'struct') {
      throw new BlockValueError(`row ${i}${where} is ${r === null ? 'null' : Array.isArray(r) ? 'an array' : describe(r)}; rows are plain objects ({ column: value })`, undefined);
    }
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        names.push(k);
      }
    }
  }
  const cols: Record<string, arrow.Vector> = {};
  for (const name of names) cols[name] = vectorOf(name, rows.map((r) => (r as Row)[name]), where);
  return new arrow.Table(cols);
}

/** A block from items: plain objects are rows; anything else goes in column "item". */
export function blockFromItems(items: readonly unknown[]): Block {
  if (items.length === 0) return emptyBlock();
  if (items.every((x) => kindOf(x) === 'struct' && x !== null && x !== undefined)) return blockFromRows(items);
  return new arrow.Table({ item: vectorOf('item', items) });
}

/** A block from a batch in the 'default' format (equal-length columns). */
export function blockFromColumns(batch: ColumnBatch, where = ''): Block {
  const cols: Record<string, arrow.Vector> = {};
  let length: number | undefined;
  let first = '';
  for (const [name, col] of Object.entries(batch)) {
    const v = vectorOfColumn(name, col, where);
    if (length === undefined) {
      length = v.length;
      first = name;
    } else if (v.length !== length) {
      throw new BlockValueError(`column '${name}'${where} has ${v.length} values but column '${first}' has ${length}; a batch's columns must have equal lengths`, name);
    }
    cols[name] = v;
  }
  return length === undefined ? emptyBlock() : new arrow.Table(cols);
}

/**
 * A block from whatever a user's batch function returned: an Arrow table,
 * an array of rows, or a column object.
 * @throws BlockValueError naming the column or row that cannot be stored
 */
export function blockFromBatch(out: unknown, where = ''): Block {
  if (out instanceof arrow.Table) return out;
  if (Array.isArray(out)) return blockFromRows(out, where);
  if (out !== null && typeof out === 'object' && kindOf(out) === 'struct') return blockFromColumns(out as ColumnBatch, where);
  throw new BlockValueError(
    `the batch${where} is ${out === null ? 'null' : out === undefined ? 'undefined (did the function forget to return?)' : describe(out)}; ` +
      "return { column: values } ('default'), an Arrow Table ('arrow') or an array of row objects ('rows')",
    undefined,
  );
}

// ------------------------------------------------------------------ reading

function fromInt64(v: unknown): unknown {
  if (typeof v !== 'bigint') return v;
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
}

/** A JS value of an Arrow value of `type` (as `get(i)` returns it). */
export function toJs(type: arrow.DataType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (arrow.DataType.isInt(type)) return type.bitWidth === 64 ? fromInt64(v) : v;
  if (arrow.DataType.isDictionary(type)) return toJs((type as arrow.Dictionary).dictionary, v);
  if (arrow.DataType.isTimestamp(type) || arrow.DataType.isDate(type)) return typeof v === 'number' ? new Date(v) : typeof v === 'bigint' ? new Date(Number(v)) : v;
  if (arrow.DataType.isStruct(type)) {
    const o: Row = {};
    for (const f of (type as arrow.Struct).children) o[f.name] = toJs(f.type, (v as Record<string, unknown>)[f.name]);
    return o;
  }
  if (arrow.DataType.isList(type) || arrow.DataType.isFixedSizeList(type)) {
    const child = (type as arrow.List).children[0]!.type;
    return [...(v as Iterable<unknown>)].map((x) => toJs(child, x));
  }
  if (arrow.DataType.isMap(type)) return Object.fromEntries([...(v as Iterable<[unknown, unknown]>)]);
  return v;
}

/** A column as JS values. */
export function columnValues(t: Block, name: string): unknown[] {
  const col = t.getChild(name);
  if (!col) return [];
  const type = col.type;
  const out = new Array<unknown>(col.length);
  for (let i = 0; i < col.length; i++) out[i] = toJs(type, col.get(i));
  return out;
}

/** The block's rows as plain objects. */
export function blockToRows(t: Block): Row[] {
  const names = t.schema.fields.map((f) => f.name);
  const cols = names.map((n) => columnValues(t, n));
  const rows = new Array<Row>(t.numRows);
  for (let i = 0; i < t.numRows; i++) {
    const r: Row = {};
    for (let c = 0; c < names.length; c++) r[names[c] as string] = (cols[c] as unknown[])[i];
    rows[i] = r;
  }
  return rows;
}

/**
 * A column in the 'default' format: a typed array for numeric columns
 * without nulls (zero-copy when the column is one contiguous chunk; Int64
 * as a Float64Array of its values when all are safe integers), otherwise an
 * array of JS values.
 */
export function columnOf(t: Block, name: string): Column {
  const col = t.getChild(name);
  if (!col) return [];
  const type = col.type;
  const numeric = arrow.DataType.isInt(type) || arrow.DataType.isFloat(type);
  if (numeric && col.nullCount === 0) {
    if (arrow.DataType.isInt(type) && type.bitWidth === 64) {
      const raw = col.toArray() as BigInt64Array | BigUint64Array;
      if (raw instanceof BigInt64Array) return int64ToFloat64(raw) ?? raw;
      const out = new Float64Array(raw.length);
      for (let i = 0; i < raw.length; i++) {
        const v = raw[i] as bigint;
        if (v > MAX_SAFE) return raw;
        out[i] = Number(v);
      }
      return out;
    }
    return col.toArray() as TypedArray;
  }
  return columnValues(t, name);
}

/** The block as a batch in the 'default' format. */
export function blockToColumns(t: Block): ColumnBatch {
  const out: ColumnBatch = {};
  for (const f of t.schema.fields) out[f.name] = columnOf(t, f.name);
  return out;
}

/** The block as a batch in `format`. */
export function blockToBatch(t: Block, format: BatchFormat): Batch {
  if (format === 'arrow') return t;
  if (format === 'rows') return blockToRows(t);
  return blockToColumns(t);
}

// ------------------------------------------------------------------ shaping

/** Bytes the block's buffers take. */
export function blockSizeBytes(t: Block): number {
  let n = 0;
  const visit = (d: arrow.Data): void => {
    for (const b of [d.values, d.valueOffsets, d.nullBitmap, d.typeIds] as Array<ArrayBufferView | undefined>) if (b) n += b.byteLength;
    for (const c of d.children ?? []) visit(c);
    if (d.dictionary) for (const dd of d.dictionary.data) visit(dd);
  };
  for (const b of t.batches) visit(b.data);
  return n;
}

/** What the executor keeps about a block. */
export function blockMeta(t: Block): BlockMeta {
  return { numRows: t.numRows, sizeBytes: blockSizeBytes(t) };
}

/** Rows [start, end) of a block (no copy). */
export function sliceBlock(t: Block, start: number, end: number): Block {
  return t.slice(start, end);
}

function typeKey(t: arrow.DataType): string {
  return String(t);
}

/** The wider of two column types, for blocks that inferred differently (Int64 + Float64 → Float64; Null + T → T). */
function widen(a: arrow.DataType, b: arrow.DataType): arrow.DataType | undefined {
  if (typeKey(a) === typeKey(b)) return a;
  if (arrow.DataType.isNull(a)) return b;
  if (arrow.DataType.isNull(b)) return a;
  const num = (t: arrow.DataType): boolean => arrow.DataType.isInt(t) || arrow.DataType.isFloat(t);
  if (num(a) && num(b)) return new arrow.Float64();
  if (arrow.DataType.isDictionary(a) && typeKey((a as arrow.Dictionary).dictionary) === typeKey(b)) return b;
  if (arrow.DataType.isDictionary(b) && typeKey((b as arrow.Dictionary).dictionary) === typeKey(a)) return a;
  if (arrow.DataType.isDictionary(a) && arrow.DataType.isDictionary(b)) return (a as arrow.Dictionary).dictionary;
  return undefined;
}

/** A column of `length` nulls of `type`. */
function nullVector(type: arrow.DataType, length: number): arrow.Vector {
  if (arrow.DataType.isNull(type)) return arrow.makeVector(arrow.makeData({ type, length, nullCount: length }));
  return arrow.vectorFromArray(new Array<null>(length).fill(null), type);
}

/** The column `name` of `t` as a vector of `type` (converted through JS values when it differs). */
function castColumn(t: Block, name: string, type: arrow.DataType): arrow.Vector {
  const col = t.getChild(name);
  if (!col) return nullVector(type, t.numRows);
  if (typeKey(col.type) === typeKey(type)) return col;
  if (arrow.DataType.isNull(type)) return col;
  const values = columnValues(t, name);
  return arrow.vectorFromArray(toArrowValues(type, arrow.DataType.isFloat(type) ? values.map((v) => (typeof v === 'bigint' ? Number(v) : v)) : values), type);
}

/**
 * The schema blocks share once each column takes the widest type any block
 * gave it; undefined (with the clashing column) when two blocks' types cannot meet.
 */
export function unifySchemas(blocks: readonly Block[]): { fields: Map<string, arrow.DataType> } | { clash: string; a: string; b: string } {
  const fields = new Map<string, arrow.DataType>();
  for (const t of blocks) {
    if (t.numCols === 0 && t.numRows === 0) continue;
    for (const f of t.schema.fields) {
      const had = fields.get(f.name);
      if (!had) {
        fields.set(f.name, f.type);
        continue;
      }
      const w = widen(had, f.type);
      if (!w) return { clash: f.name, a: String(had), b: String(f.type) };
      fields.set(f.name, w);
    }
  }
  return { fields };
}

/**
 * One block of the rows of `blocks`, in order. Columns missing from a block
 * are null there; types that differ widen (Int64 with Float64 → Float64).
 * @throws BlockValueError when two blocks give a column types that cannot meet
 */
export function concatBlocks(blocks: readonly Block[]): Block {
  const nonEmpty = blocks.filter((b) => b.numRows > 0);
  if (nonEmpty.length === 0) return blocks.find((b) => b.numCols > 0) ?? emptyBlock();
  if (nonEmpty.length === 1) return nonEmpty[0] as Block;
  const u = unifySchemas(nonEmpty);
  if ('clash' in u) throw new BlockValueError(`column '${u.clash}' is ${u.a} in one block and ${u.b} in another; they cannot be combined`, u.clash);
  const first = nonEmpty[0] as Block;
  const same = nonEmpty.every((b) => b.schema.fields.length === u.fields.size && b.schema.fields.every((f) => typeKey(f.type) === typeKey(u.fields.get(f.name) as arrow.DataType)));
  if (same && nonEmpty.every((b) => b.schema.fields.every((f, i) => f.name === first.schema.fields[i]?.name))) {
    return new arrow.Table(first.schema, nonEmpty.flatMap((b) => b.batches.map((rb) => (rb.schema === first.schema ? rb : new arrow.RecordBatch(first.schema, rb.data)))));
  }
  const parts = nonEmpty.map((b) => {
    const cols: Record<string, arrow.Vector> = {};
    for (const [name, type] of u.fields) cols[name] = castColumn(b, name, type);
    return new arrow.Table(cols);
  });
  const schema = (parts[0] as Block).schema;
  return new arrow.Table(
    schema,
    parts.flatMap((p) => p.batches.map((rb) => new arrow.RecordBatch(schema, rb.data))),
  );
}

/** A block with only `columns`, in that order. */
export function selectBlockColumns(t: Block, columns: readonly string[]): Block {
  return t.select([...columns]);
}

/** Column names of a block. */
export function blockColumns(t: Block): string[] {
  return t.schema.fields.map((f) => f.name);
}

/** Rows `indices` of a block, in that order (a gather). */
export function takeIndices(t: Block, indices: ArrayLike<number>): Block {
  const cols: Record<string, arrow.Vector> = {};
  for (const f of t.schema.fields) {
    const col = t.getChild(f.name) as arrow.Vector;
    const numeric = arrow.DataType.isInt(f.type) || arrow.DataType.isFloat(f.type);
    if (numeric && col.nullCount === 0) {
      const src = col.toArray() as TypedArray;
      const out = new (src.constructor as new (n: number) => TypedArray)(indices.length);
      for (let i = 0; i < indices.length; i++) out[i] = src[indices[i] as number] as never;
      cols[f.name] = arrow.makeVector(out as Float64Array);
    } else {
      const vals = new Array<unknown>(indices.length);
      for (let i = 0; i < indices.length; i++) vals[i] = col.get(indices[i] as number);
      cols[f.name] = arrow.vectorFromArray(vals, f.type);
    }
  }
  return new arrow.Table(cols);
}

/** A seeded pseudo-random generator (mulberry32): numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TWO32 = 4294967296;

/** An Int64 column of safe integers `f(0..n-1)`, written through 32-bit halves (no BigInt per value). */
export function int64Of(n: number, f: (i: number) => number): BigInt64Array {
  const out = new BigInt64Array(n);
  const w = new Int32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const v = f(i);
    const hi = Math.floor(v / TWO32);
    w[2 * i] = (v - hi * TWO32) | 0;
    w[2 * i + 1] = hi | 0;
  }
  return out;
}

/** Int64 values as numbers; undefined when one is beyond 2^53 (little-endian halves, no BigInt per value). */
export function int64ToFloat64(raw: BigInt64Array): Float64Array | undefined {
  const lo = new Uint32Array(raw.buffer, raw.byteOffset, raw.length * 2);
  const hi = new Int32Array(raw.buffer, raw.byteOffset, raw.length * 2);
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const h = hi[2 * i + 1] as number;
    if (h >= 2097152 || h < -2097152) return undefined;
    out[i] = h * TWO32 + (lo[2 * i] as number);
  }
  return out;
}
