/**
 * CSV (RFC 4180): a header row names the columns; quoted fields may hold
 * delimiters, quotes ("") and newlines. Each column is typed: integers →
 * Int64, numbers → Float64, true/false → Bool, empty fields → null, anything
 * else → Utf8. A row with the wrong number of fields, or an unterminated
 * quote, is a DataReadError with the file and line.
 * @internal
 */
import * as arrow from 'apache-arrow';
import { DataReadError } from '../../errors';
import type { Block } from '../block';

/** CSV options. */
export interface CsvOptions {
  /** field delimiter @default ',' */
  delimiter?: string;
  /** the first row names the columns @default true */
  header?: boolean;
  /** column names (with header false, or to replace the header's) */
  columnNames?: string[];
}

/** Parses CSV text into rows of fields, with the line each row starts on. */
function parseRecords(text: string, delim: string, file: string, limit: number): { rows: string[][]; lines: number[] } {
  const rows: string[][] = [];
  const lines: number[] = [];
  const n = text.length;
  const d = delim.charCodeAt(0);
  let i = 0;
  let line = 1;
  while (i < n && rows.length < limit) {
    const row: string[] = [];
    const startLine = line;
    const quotedFirst = text.charCodeAt(i) === 34;
    for (;;) {
      let field: string;
      if (text.charCodeAt(i) === 34) {
        // quoted
        let j = i + 1;
        let buf = '';
        for (;;) {
          const q = text.indexOf('"', j);
          if (q < 0) throw new DataReadError(`${file}:${startLine}: a quoted field is not closed (a '"' is missing)`, file, startLine);
          const chunk = text.slice(j, q);
          for (let k = 0; k < chunk.length; k++) if (chunk.charCodeAt(k) === 10) line++;
          buf += chunk;
          if (text.charCodeAt(q + 1) === 34) {
            buf += '"';
            j = q + 2;
            continue;
          }
          i = q + 1;
          break;
        }
        field = buf;
        const c = text.charCodeAt(i);
        if (i < n && c !== d && c !== 10 && c !== 13) throw new DataReadError(`${file}:${line}: unexpected text after a closing quote`, file, line);
      } else {
        let j = i;
        while (j < n) {
          const c = text.charCodeAt(j);
          if (c === d || c === 10 || c === 13) break;
          j++;
        }
        field = text.slice(i, j);
        i = j;
      }
      row.push(field);
      const c = text.charCodeAt(i);
      if (i < n && c === d) {
        i++;
        continue;
      }
      if (c === 13) i++;
      if (text.charCodeAt(i) === 10) i++;
      line++;
      break;
    }
    // a blank line
    if (row.length === 1 && row[0] === '' && !quotedFirst) continue;
    rows.push(row);
    lines.push(startLine);
  }
  return { rows, lines };
}

const INT = /^[-+]?\d+$/;
const NUM = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(Infinity|NaN)$/;

function column(values: string[]): arrow.Vector {
  let allInt = true;
  let allNum = true;
  let allBool = true;
  let any = false;
  for (const v of values) {
    if (v === '') continue;
    any = true;
    if (allInt && !INT.test(v)) allInt = false;
    if (allNum && !allInt && !NUM.test(v)) allNum = false;
    if (allBool && v !== 'true' && v !== 'false' && v !== 'True' && v !== 'False') allBool = false;
    if (!allNum && !allBool) break;
  }
  if (!any) return arrow.vectorFromArray(values.map(() => null), new arrow.Utf8());
  if (allInt && allNum) {
    const safe = values.every((v) => v === '' || Number.isSafeInteger(Number(v)));
    if (safe && !values.includes('')) {
      const a = new BigInt64Array(values.length);
      for (let i = 0; i < values.length; i++) a[i] = BigInt(values[i] as string);
      return arrow.makeVector(a);
    }
    return arrow.vectorFromArray(values.map((v) => (v === '' ? null : BigInt(v))), new arrow.Int64());
  }
  if (allNum) {
    if (!values.includes('')) return arrow.makeVector(Float64Array.from(values, Number));
    return arrow.vectorFromArray(values.map((v) => (v === '' ? null : Number(v))), new arrow.Float64());
  }
  if (allBool) return arrow.vectorFromArray(values.map((v) => (v === '' ? null : v.toLowerCase() === 'true')), new arrow.Bool());
  return arrow.vectorFromArray(values.map((v) => (v === '' ? null : v)), new arrow.Utf8());
}

/** The rows of a CSV file's text as a block. */
export function parseCsv(text: string, file: string, options: CsvOptions = {}, limit = Number.POSITIVE_INFINITY): Block {
  const delim = options.delimiter ?? ',';
  if (delim.length !== 1) throw new TypeError(`readCsv: delimiter must be one character, got ${JSON.stringify(delim)}`);
  const header = options.header ?? true;
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const { rows, lines } = parseRecords(body, delim, file, header ? limit + 1 : limit);
  if (rows.length === 0) return new arrow.Table();
  const names = options.columnNames ?? (header ? (rows[0] as string[]) : (rows[0] as string[]).map((_, i) => `column${i}`));
  const start = header ? 1 : 0;
  for (let r = start; r < rows.length; r++) {
    const got = (rows[r] as string[]).length;
    if (got !== names.length) {
      const line = lines[r] as number;
      throw new DataReadError(`${file}:${line}: the row has ${got} fields but the header has ${names.length} (${names.join(', ')}); fix the row, or quote fields that hold the delimiter`, file, line);
    }
  }
  const cols: Record<string, arrow.Vector> = {};
  for (const [c, name] of names.entries()) {
    const values = new Array<string>(rows.length - start);
    for (let r = start; r < rows.length; r++) values[r - start] = (rows[r] as string[])[c] as string;
    cols[name] = column(values);
  }
  return new arrow.Table(cols);
}

function quote(v: string, delim: string): string {
  return v.includes(delim) || v.includes('"') || v.includes('\n') || v.includes('\r') ? `"${v.replace(/"/g, '""')}"` : v;
}

/** A block as CSV text with a header. */
export function formatCsv(rows: Array<Record<string, unknown>>, names: string[], delim = ','): string {
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return '';
    if (v instanceof Date) return v.toISOString();
    if (typeof v === 'object') return quote(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x)), delim);
    return quote(String(v), delim);
  };
  const out = [names.map((n) => quote(n, delim)).join(delim)];
  for (const r of rows) out.push(names.map((n) => cell(r[n])).join(delim));
  return `${out.join('\n')}\n`;
}
