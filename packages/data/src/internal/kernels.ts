/**
 * Block kernels of the all-to-all operators: sorting (argsort by key
 * columns, samples, range partitions, merge), shuffling (seeded), even
 * splits, hash partitions, and aggregations with mergeable partial states.
 * Numeric columns are handled as typed arrays; nulls sort last and are
 * left out of aggregations.
 * @internal
 */
import * as arrow from 'apache-arrow';
import { DataError } from '../errors';
import { type Block, blockColumns, concatBlocks, emptyBlock, int64ToFloat64, seededRandom, sliceBlock, takeIndices, toJs } from './block';

// ------------------------------------------------------------------ keys

/** Sort key: columns and, for each, whether it sorts descending. */
export type SortKey = { columns: string[]; descending: boolean[] };

/**
 * A sort key from the public arguments.
 * @throws TypeError when `descending` is a list of another length
 */
export function compileSortKey(key: string | string[], descending: boolean | boolean[] = false): SortKey {
  const columns = typeof key === 'string' ? [key] : [...key];
  const desc = Array.isArray(descending) ? descending : columns.map(() => Boolean(descending));
  if (desc.length !== columns.length) throw new TypeError(`sort: descending has ${desc.length} entries for ${columns.length} key columns; give one boolean, or one per column`);
  return { columns, descending: desc.map(Boolean) };
}

type KeyCol = { num: true; v: Float64Array; valid: Uint8Array | null } | { num: false; v: unknown[] };

function checkHas(block: Block, column: string, what: string): arrow.Vector {
  const col = block.getChild(column);
  if (!col) throw new DataError(`${what}: no column '${column}'; the dataset's columns are ${blockColumns(block).map((c) => `'${c}'`).join(', ')}`);
  return col;
}

/** A numeric column as Float64 values, with validity when it has nulls; undefined when it is not numeric. */
export function numericValues(block: Block, column: string, what: string): { v: Float64Array; valid: Uint8Array | null } | undefined {
  const col = checkHas(block, column, what);
  const t = col.type;
  if (!(arrow.DataType.isInt(t) || arrow.DataType.isFloat(t))) return undefined;
  const n = col.length;
  let v: Float64Array;
  const raw = col.toArray() as ArrayLike<number | bigint>;
  const fast = raw instanceof BigInt64Array ? int64ToFloat64(raw) : undefined;
  if (raw instanceof Float64Array) v = raw;
  else if (fast) v = fast;
  else if (ArrayBuffer.isView(raw) && !(raw instanceof BigInt64Array) && !(raw instanceof BigUint64Array)) v = new Float64Array(raw as unknown as ArrayLike<number>);
  else {
    v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = Number(raw[i]);
  }
  let valid: Uint8Array | null = null;
  if (col.nullCount > 0) {
    valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) valid[i] = col.isValid(i) ? 1 : 0;
  }
  return { v, valid };
}

function keyCol(block: Block, column: string): KeyCol {
  const num = numericValues(block, column, 'sort');
  if (num) return { num: true, ...num };
  const col = block.getChild(column) as arrow.Vector;
  const v = new Array<unknown>(col.length);
  for (let i = 0; i < col.length; i++) v[i] = toJs(col.type, col.get(i));
  return { num: false, v };
}

function cmpValues(a: unknown, b: unknown): number {
  const an = a === null || a === undefined;
  const bn = b === null || b === undefined;
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** Compares row i of `a` with row j of `b` (nulls last, whatever the direction). */
function cmpRows(a: KeyCol[], i: number, b: KeyCol[], j: number, desc: boolean[]): number {
  for (let c = 0; c < a.length; c++) {
    const x = a[c] as KeyCol;
    const y = b[c] as KeyCol;
    let r: number;
    if (x.num && y.num) {
      const xn = x.valid !== null && x.valid[i] === 0;
      const yn = y.valid !== null && y.valid[j] === 0;
      if (xn || yn) {
        if (xn !== yn) return xn ? 1 : -1;
        continue;
      }
      const p = x.v[i] as number;
      const q = y.v[j] as number;
      r = p < q ? -1 : p > q ? 1 : 0;
    } else {
      const p = x.num ? (x.valid && x.valid[i] === 0 ? null : x.v[i]) : x.v[i];
      const q = y.num ? (y.valid && y.valid[j] === 0 ? null : y.v[j]) : y.v[j];
      if (p === null || p === undefined || q === null || q === undefined) {
        const d = cmpValues(p, q);
        if (d !== 0) return d;
        continue;
      }
      r = cmpValues(p, q);
    }
    if (r !== 0) return desc[c] ? -r : r;
  }
  return 0;
}

function keyCols(block: Block, key: SortKey): KeyCol[] {
  for (const c of key.columns) checkHas(block, c, 'sort');
  return key.columns.map((c) => keyCol(block, c));
}

/** Row order that sorts the block by `key`. */
function argsort(block: Block, key: SortKey): Uint32Array {
  const n = block.numRows;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const cols = keyCols(block, key);
  const only = cols[0];
  if (cols.length === 1 && only?.num && only.valid === null) {
    const v = only.v;
    const d = key.descending[0] ? -1 : 1;
    return idx.sort((a, b) => d * ((v[a] as number) - (v[b] as number)) || a - b);
  }
  return idx.sort((a, b) => cmpRows(cols, a, cols, b, key.descending) || a - b);
}

/** The block sorted by `key` (stable). */
export function sortBlock(block: Block, key: SortKey): Block {
  if (block.numRows <= 1) return block;
  return takeIndices(block, argsort(block, key));
}

/** About `n` evenly spaced rows of the key columns. */
export function sampleKeys(block: Block, key: SortKey, n: number): Block {
  if (block.numRows === 0) return emptyBlock();
  for (const c of key.columns) checkHas(block, c, 'sort');
  const k = Math.min(n, block.numRows);
  const idx = Array.from({ length: k }, (_, i) => Math.floor(((i + 0.5) * block.numRows) / k));
  return takeIndices(block.select(key.columns), idx);
}

/** `numPartitions - 1` boundary rows (key columns) that cut the samples into equal parts. */
export function boundariesFromSamples(samples: Block[], key: SortKey, numPartitions: number): Block {
  const all = sortBlock(concatBlocks(samples.filter((s) => s.numRows > 0)), key);
  if (all.numRows === 0 || numPartitions <= 1) return all.slice(0, 0);
  const idx = Array.from({ length: numPartitions - 1 }, (_, i) => Math.min(all.numRows - 1, Math.floor(((i + 1) * all.numRows) / numPartitions)));
  return takeIndices(all, idx);
}

/** A sorted block cut at the boundaries: rows ≤ boundary p (and > boundary p-1) go to partition p. */
export function partitionByBoundaries(sortedBlock: Block, key: SortKey, boundaries: Block): Block[] {
  const parts = boundaries.numRows + 1;
  if (sortedBlock.numRows === 0) return Array.from({ length: parts }, () => sortedBlock);
  const rows = keyCols(sortedBlock, key);
  const bounds = boundaries.numRows > 0 ? keyCols(boundaries, key) : [];
  const out: Block[] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    let end = sortedBlock.numRows;
    if (p < boundaries.numRows) {
      // first row greater than boundary p (binary search: the block is sorted)
      let lo = start;
      let hi = sortedBlock.numRows;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cmpRows(rows, mid, bounds, p, key.descending) <= 0) lo = mid + 1;
        else hi = mid;
      }
      end = lo;
    }
    out.push(sliceBlock(sortedBlock, start, end));
    start = end;
  }
  return out;
}

/** One sorted block of sorted blocks. */
export function mergeSorted(blocks: Block[], key: SortKey): Block {
  return sortBlock(concatBlocks(blocks), key);
}

// ------------------------------------------------------------------ shuffles and splits

/** Rows sent at random (seeded) to `numPartitions` partitions. */
export function shufflePartition(block: Block, numPartitions: number, seed: number): Block[] {
  const r = seededRandom(seed);
  const lists: number[][] = Array.from({ length: numPartitions }, () => []);
  for (let i = 0; i < block.numRows; i++) (lists[Math.floor(r() * numPartitions)] as number[]).push(i);
  return lists.map((l) => takeIndices(block, l));
}

/** The rows in a random (seeded) order. */
export function shuffleBlock(block: Block, seed: number): Block {
  const r = seededRandom(seed);
  const idx = new Uint32Array(block.numRows);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = idx[i] as number;
    idx[i] = idx[j] as number;
    idx[j] = t;
  }
  return takeIndices(block, idx);
}

/** Contiguous parts of about equal rows. */
export function splitEvenly(block: Block, numPartitions: number): Block[] {
  return Array.from({ length: numPartitions }, (_, i) => sliceBlock(block, Math.floor((i * block.numRows) / numPartitions), Math.floor(((i + 1) * block.numRows) / numPartitions)));
}

function groupKeyOf(cols: KeyCol[], i: number): string | number {
  if (cols.length === 1) {
    const c = cols[0] as KeyCol;
    if (c.num) return c.valid && c.valid[i] === 0 ? '\u0000null' : (c.v[i] as number);
  }
  let s = '';
  for (const c of cols) {
    const v = c.num ? (c.valid && c.valid[i] === 0 ? null : c.v[i]) : c.v[i];
    s += `${typeof v === 'string' ? 's' : 'v'}${v instanceof Date ? v.getTime() : String(v)}\u0001`;
  }
  return s;
}

/** Rows sent to partitions by a hash of their key columns. */
export function hashPartition(block: Block, keyColumns: string[], numPartitions: number): Block[] {
  const cols = keyColumns.map((c) => (checkHas(block, c, 'groupBy'), keyCol(block, c)));
  const lists: number[][] = Array.from({ length: numPartitions }, () => []);
  for (let i = 0; i < block.numRows; i++) {
    const k = String(groupKeyOf(cols, i));
    let h = 2166136261;
    for (let j = 0; j < k.length; j++) h = Math.imul(h ^ k.charCodeAt(j), 16777619);
    (lists[(h >>> 0) % numPartitions] as number[]).push(i);
  }
  return lists.map((l) => takeIndices(block, l));
}

// ------------------------------------------------------------------ aggregation

/** One aggregation. */
export type AggSpec = { kind: 'count' } | { kind: 'sum' | 'min' | 'max' | 'mean' | 'std'; column: string };

/** The output column of an aggregation: "count()", "sum(x)", … */
export function aggName(a: AggSpec): string {
  return a.kind === 'count' ? 'count()' : `${a.kind}(${a.column})`;
}

/** The smallest and largest of `v` ([Infinity, -Infinity] when empty). */
function minMax(v: ArrayLike<number>): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return [min, max];
}

/**
 * Groups of integer keys in a small range, through a table indexed by key
 * (no hashing); false (nothing written) when the keys are not such.
 */
function denseGroups(v: Float64Array, group: Uint32Array, firsts: number[]): boolean {
  const [min, max] = minMax(v);
  if (!(max - min <= 1 << 22) || !Number.isInteger(min) || !Number.isInteger(max)) return false;
  for (let i = 0; i < v.length; i++) if (!Number.isInteger(v[i] as number)) return false;
  const slot = new Int32Array(max - min + 1).fill(-1);
  for (let i = 0; i < v.length; i++) {
    const k = (v[i] as number) - min;
    let g = slot[k] as number;
    if (g < 0) {
      g = firsts.length;
      slot[k] = g;
      firsts.push(i);
    }
    group[i] = g;
  }
  return true;
}

/** Groups of a block: for each row its group, and the first row of each group. */
function groupRows(block: Block, keys: string[]): { group: Uint32Array; firsts: number[] } {
  const group = new Uint32Array(block.numRows);
  const firsts: number[] = [];
  if (keys.length === 0) {
    if (block.numRows > 0) firsts.push(0);
    return { group, firsts };
  }
  const cols = keys.map((c) => (checkHas(block, c, 'groupBy'), keyCol(block, c)));
  const only = cols[0] as KeyCol;
  if (cols.length === 1 && only.num && only.valid === null) {
    const dense = denseGroups(only.v, group, firsts);
    if (dense) return { group, firsts };
  }
  const ids = new Map<string | number, number>();
  for (let i = 0; i < block.numRows; i++) {
    const k = groupKeyOf(cols, i);
    let g = ids.get(k);
    if (g === undefined) {
      g = firsts.length;
      ids.set(k, g);
      firsts.push(i);
    }
    group[i] = g;
  }
  return { group, firsts };
}

// partial state columns of an aggregation: n (values seen), s (sum), m (mean), q (M2), v (min/max)
const stateCol = (a: AggSpec, part: string): string => `${aggName(a)}#${part}`;

function valuesFor(block: Block, a: AggSpec): { v: Float64Array; valid: Uint8Array | null } {
  const column = (a as { column: string }).column;
  const num = numericValues(block, column, `${a.kind}(${column})`);
  if (!num) throw new DataError(`${a.kind}(${column}) needs a numeric column, but '${column}' is ${String(block.getChild(column)?.type)}`);
  return num;
}

/** Integer typed arrays a dense key column can be read from directly. */
type IntArray = Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;

/**
 * A single integer key column without nulls whose values span a small
 * range: groups are `value - min`, read straight from the column (no
 * per-row arrays are allocated: fresh pages cost more than the work here).
 */
function denseKey(block: Block, keyColumns: string[]): { raw: IntArray; min: number; range: number } | undefined {
  if (keyColumns.length !== 1) return undefined;
  const col = checkHas(block, keyColumns[0] as string, 'groupBy');
  if (!arrow.DataType.isInt(col.type) || col.type.bitWidth === 64 || col.nullCount > 0 || col.length === 0) return undefined;
  const raw = col.toArray() as IntArray;
  const [min, max] = minMax(raw);
  const range = max - min + 1;
  return range <= Math.min(1 << 20, 4 * raw.length + 1024) ? { raw, min, range } : undefined;
}

/** Accumulates one aggregation's partial state: group of row i is `gidx[i] - off` (or 0 when `gidx` is null). */
function accumulate(
  kind: AggSpec['kind'],
  rows: number,
  gidx: ArrayLike<number> | null,
  off: number,
  v: Float64Array | null,
  valid: Uint8Array | null,
  st: { n: Float64Array; s: Float64Array; m: Float64Array; q: Float64Array; x: Float64Array },
): void {
  const { n, s, m, q, x } = st;
  // one loop per kind: no per-row dispatch
  if (kind === 'count' || v === null) {
    for (let i = 0; i < rows; i++) {
      const g = gidx === null ? 0 : (gidx[i] as number) - off;
      n[g] = (n[g] as number) + 1;
    }
  } else if (kind === 'sum' || kind === 'mean') {
    for (let i = 0; i < rows; i++) {
      if (valid !== null && valid[i] === 0) continue;
      const g = gidx === null ? 0 : (gidx[i] as number) - off;
      n[g] = (n[g] as number) + 1;
      s[g] = (s[g] as number) + (v[i] as number);
    }
  } else if (kind === 'min' || kind === 'max') {
    const lo = kind === 'min';
    for (let i = 0; i < rows; i++) {
      if (valid !== null && valid[i] === 0) continue;
      const g = gidx === null ? 0 : (gidx[i] as number) - off;
      n[g] = (n[g] as number) + 1;
      const val = v[i] as number;
      if (lo ? val < (x[g] as number) : val > (x[g] as number)) x[g] = val;
    }
  } else {
    // Welford
    for (let i = 0; i < rows; i++) {
      if (valid !== null && valid[i] === 0) continue;
      const g = gidx === null ? 0 : (gidx[i] as number) - off;
      const val = v[i] as number;
      const c = (n[g] as number) + 1;
      n[g] = c;
      const d = val - (m[g] as number);
      m[g] = (m[g] as number) + d / c;
      q[g] = (q[g] as number) + d * (val - (m[g] as number));
    }
  }
}

/** Per key of `keyColumns` (none: the whole block), the partial states of `aggs`. */
export function partialAggregate(block: Block, keyColumns: string[], aggs: AggSpec[]): Block {
  const rows = block.numRows;
  const dense = denseKey(block, keyColumns);
  let gidx: ArrayLike<number> | null = null;
  let off = 0;
  let G: number;
  let firsts: number[] | undefined;
  if (keyColumns.length === 0) G = rows > 0 ? 1 : 0;
  else if (dense) {
    gidx = dense.raw;
    off = dense.min;
    G = dense.range;
  } else {
    const r = groupRows(block, keyColumns);
    gidx = r.group;
    firsts = r.firsts;
    G = firsts.length;
  }
  const states = aggs.map((a) => {
    const num = a.kind === 'count' ? null : valuesFor(block, a);
    const st = { n: new Float64Array(G), s: new Float64Array(G), m: new Float64Array(G), q: new Float64Array(G), x: new Float64Array(G).fill(a.kind === 'min' ? Infinity : -Infinity) };
    accumulate(a.kind, rows, gidx, off, num ? num.v : null, num ? num.valid : null, st);
    return st;
  });
  // the dense path keeps the keys that occur, in ascending order
  let keep: Uint32Array | undefined;
  if (dense) {
    const seen = new Uint8Array(G);
    for (let i = 0; i < rows; i++) seen[(dense.raw[i] as number) - off] = 1;
    let c = 0;
    for (let g = 0; g < G; g++) c += seen[g] as number;
    keep = new Uint32Array(c);
    for (let g = 0, j = 0; g < G; g++) if (seen[g] === 1) keep[j++] = g;
  }
  const pick = (a: Float64Array): Float64Array => (keep ? Float64Array.from(keep, (g) => a[g] as number) : a);
  const cols: Record<string, arrow.Vector> = {};
  if (dense && keep) {
    const name = keyColumns[0] as string;
    const Ctor = dense.raw.constructor as new (n: number) => IntArray;
    const keys = new Ctor(keep.length);
    for (let j = 0; j < keep.length; j++) keys[j] = (keep[j] as number) + off;
    cols[name] = arrow.makeVector(keys);
  } else if (firsts) {
    const keyBlock = takeIndices(block.select(keyColumns), firsts);
    for (const k of keyColumns) cols[k] = keyBlock.getChild(k) as arrow.Vector;
  }
  for (const [i, a] of aggs.entries()) {
    const st = states[i] as (typeof states)[number];
    cols[stateCol(a, 'n')] = arrow.makeVector(pick(st.n));
    if (a.kind === 'sum' || a.kind === 'mean') cols[stateCol(a, 's')] = arrow.makeVector(pick(st.s));
    else if (a.kind === 'min' || a.kind === 'max') cols[stateCol(a, 'v')] = arrow.makeVector(pick(st.x));
    else if (a.kind === 'std') {
      cols[stateCol(a, 'm')] = arrow.makeVector(pick(st.m));
      cols[stateCol(a, 'q')] = arrow.makeVector(pick(st.q));
    }
  }
  return new arrow.Table(cols);
}

const f64 = (b: Block, name: string): Float64Array => (b.getChild(name) as arrow.Vector).toArray() as Float64Array;

/** Merges partial states of equal keys and finishes them: one row per key, sorted by key ascending. */
export function finalizeAggregate(partials: Block[], keyColumns: string[], aggs: AggSpec[]): Block {
  const all = concatBlocks(partials.filter((p) => p.numRows > 0));
  const { group, firsts } = groupRows(all, keyColumns);
  const G = keyColumns.length === 0 ? 1 : firsts.length;
  const cols: Record<string, arrow.Vector> = {};
  if (keyColumns.length > 0) {
    const keyBlock = takeIndices(all.select(keyColumns), firsts);
    for (const k of keyColumns) cols[k] = keyBlock.getChild(k) as arrow.Vector;
  }
  for (const a of aggs) {
    const name = aggName(a);
    const N = new Float64Array(G);
    const rows = all.numRows;
    const n = rows > 0 ? f64(all, stateCol(a, 'n')) : new Float64Array(0);
    for (let i = 0; i < rows; i++) N[group[i] as number] = (N[group[i] as number] as number) + (n[i] as number);
    if (a.kind === 'count') {
      cols[name] = arrow.vectorFromArray(Array.from(N, (c) => BigInt(c)), new arrow.Int64());
      continue;
    }
    const out = new Array<number | null>(G).fill(null);
    if (a.kind === 'sum' || a.kind === 'mean') {
      const s = rows > 0 ? f64(all, stateCol(a, 's')) : new Float64Array(0);
      const S = new Float64Array(G);
      for (let i = 0; i < rows; i++) S[group[i] as number] = (S[group[i] as number] as number) + (s[i] as number);
      for (let g = 0; g < G; g++) if ((N[g] as number) > 0) out[g] = a.kind === 'sum' ? (S[g] as number) : (S[g] as number) / (N[g] as number);
    } else if (a.kind === 'min' || a.kind === 'max') {
      const v = rows > 0 ? f64(all, stateCol(a, 'v')) : new Float64Array(0);
      const X = new Float64Array(G).fill(a.kind === 'min' ? Infinity : -Infinity);
      for (let i = 0; i < rows; i++) {
        const g = group[i] as number;
        X[g] = a.kind === 'min' ? Math.min(X[g] as number, v[i] as number) : Math.max(X[g] as number, v[i] as number);
      }
      for (let g = 0; g < G; g++) if ((N[g] as number) > 0) out[g] = X[g] as number;
    } else {
      // Chan et al.: merge (n, mean, M2) pairwise
      const m = rows > 0 ? f64(all, stateCol(a, 'm')) : new Float64Array(0);
      const q = rows > 0 ? f64(all, stateCol(a, 'q')) : new Float64Array(0);
      const cn = new Float64Array(G);
      const cm = new Float64Array(G);
      const cq = new Float64Array(G);
      for (let i = 0; i < rows; i++) {
        const g = group[i] as number;
        const nb = n[i] as number;
        if (nb === 0) continue;
        const na = cn[g] as number;
        const d = (m[i] as number) - (cm[g] as number);
        const nn = na + nb;
        cm[g] = (cm[g] as number) + (d * nb) / nn;
        cq[g] = (cq[g] as number) + (q[i] as number) + (d * d * na * nb) / nn;
        cn[g] = nn;
      }
      for (let g = 0; g < G; g++) if ((cn[g] as number) > 1) out[g] = Math.sqrt((cq[g] as number) / ((cn[g] as number) - 1));
    }
    cols[name] = arrow.vectorFromArray(out, new arrow.Float64());
  }
  const result = new arrow.Table(cols);
  return keyColumns.length > 0 ? sortBlock(result, compileSortKey(keyColumns)) : result;
}

/** A block sorted by `keyColumns`, cut into one block per key. */
export function groupsOf(block: Block, keyColumns: string[]): Block[] {
  if (block.numRows === 0) return [];
  const cols = keyColumns.map((c) => (checkHas(block, c, 'groupBy'), keyCol(block, c)));
  const out: Block[] = [];
  let start = 0;
  for (let i = 1; i <= block.numRows; i++) {
    if (i === block.numRows || groupKeyOf(cols, i) !== groupKeyOf(cols, start)) {
      out.push(sliceBlock(block, start, i));
      start = i;
    }
  }
  return out;
}
