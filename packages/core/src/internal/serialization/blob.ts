/**
 * The layout of a serialized value (a *blob*): either a bare msgpack body
 * (no references, no out-of-band buffers), or `0xc1` (a byte msgpack never
 * uses) followed by a header:
 *
 *     u8 0xc1 | u8 version | u16 nbufs | u32 metaLen | u32 bodyLen | u32 flags
 *     nbufs x (f64 offset, f64 length)          offsets from the blob start
 *     meta (msgpack: owner table)  body (msgpack)  buffers...
 *
 * The same layout serves inline values (a Buffer in a message) and values in
 * shared memory, where typed arrays are read in place.
 * @internal
 */
import type { Address } from '../protocol/messages';
import type { ActorLike, RefLike } from './brands';

/** Buffers at least this large are placed at the page offset of their source. */
const PAGE_MATCH_MIN = 256 * 1024;
const FRAMED = 0xc1;
const VERSION = 1;
const HEADER = 16;
/** Out-of-band buffers one blob can hold (the header counts them in a u16). */
export const MAX_BUFFERS = 0xffff;

/** A value encoded but not yet laid out. */
export interface Encoded {
  body: Buffer;
  meta: Buffer | null;
  bufs: ArrayBufferView[];
  refs: RefLike[];
  actors: ActorLike[];
  /** owners of `refs` and `actors`, by index as written */
  owners: Address[];
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;
const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** Where each part of a blob goes. */
export interface Layout {
  size: number;
  bufOffsets: number[];
}

function isFramed(e: Encoded): boolean {
  return e.meta !== null || e.bufs.length > 0 || (e.body.length > 0 && e.body[0] === FRAMED);
}

/**
 * Lays out a blob. With `destMod` (the destination's address mod 4096) and
 * `srcMod`, large buffers keep their source's page offset, which keeps
 * memcpy at full speed; otherwise buffers are 64-byte aligned.
 */
export function layout(e: Encoded, destMod?: number, srcMod?: (v: ArrayBufferView) => number): Layout {
  if (!isFramed(e)) return { size: e.body.length, bufOffsets: [] };
  let pos = HEADER + e.bufs.length * 16 + (e.meta?.length ?? 0) + e.body.length;
  const bufOffsets: number[] = [];
  for (const b of e.bufs) {
    if (destMod !== undefined && srcMod && b.byteLength >= PAGE_MATCH_MIN) {
      const want = srcMod(b);
      pos = align(pos, 64);
      const cur = (destMod + pos) % 4096;
      pos += (want - cur + 4096) % 4096;
    } else {
      pos = align(pos, 64);
    }
    bufOffsets.push(pos);
    pos += b.byteLength;
  }
  return { size: pos, bufOffsets };
}

/** The most bytes `layout` can need, whatever the destination. */
export function maxBlobSize(e: Encoded): number {
  if (!isFramed(e)) return e.body.length;
  let n = HEADER + e.bufs.length * 16 + (e.meta?.length ?? 0) + e.body.length;
  for (const b of e.bufs) n += b.byteLength + (b.byteLength >= PAGE_MATCH_MIN ? 4096 + 64 : 64);
  return n;
}

/** Writes a laid-out blob through `write(offsetInBlob, bytes)`. */
export function writeBlob(e: Encoded, l: Layout, write: (off: number, bytes: Uint8Array) => void): void {
  if (!isFramed(e)) {
    write(0, e.body);
    return;
  }
  const head = Buffer.alloc(HEADER + e.bufs.length * 16);
  head[0] = FRAMED;
  head[1] = VERSION;
  head.writeUInt16LE(e.bufs.length, 2);
  head.writeUInt32LE(e.meta?.length ?? 0, 4);
  head.writeUInt32LE(e.body.length, 8);
  head.writeUInt32LE(0, 12);
  e.bufs.forEach((b, i) => {
    head.writeDoubleLE(l.bufOffsets[i] as number, HEADER + i * 16);
    head.writeDoubleLE(b.byteLength, HEADER + i * 16 + 8);
  });
  write(0, head);
  let pos = head.length;
  if (e.meta) {
    write(pos, e.meta);
    pos += e.meta.length;
  }
  write(pos, e.body);
  e.bufs.forEach((b, i) => write(l.bufOffsets[i] as number, bytesOf(b)));
}

/** The blob as one Buffer (for inline objects). */
export function toInlineBlob(e: Encoded): Buffer {
  if (!isFramed(e)) return e.body;
  const l = layout(e);
  const out = Buffer.alloc(l.size);
  writeBlob(e, l, (off, bytes) => out.set(bytes, off));
  return out;
}

/** The parts of a framed blob's header. */
/** Whether a blob is framed (has a header) rather than a bare msgpack body. */
export function isFramedBlob(blob: Uint8Array): boolean {
  return blob.length > 0 && blob[0] === FRAMED;
}

/** The buffer table, meta section and body of a framed blob; throws on a corrupt header. */
export function parseHeader(blob: Uint8Array): { table: number[]; meta: Uint8Array | undefined; body: Uint8Array } {
  if (blob.length < HEADER || blob[1] !== VERSION) throw new Error('bad blob header');
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const nbufs = dv.getUint16(2, true);
  const metaLen = dv.getUint32(4, true);
  const bodyLen = dv.getUint32(8, true);
  let pos = HEADER + nbufs * 16;
  if (pos + metaLen + bodyLen > blob.length) throw new Error('truncated blob');
  const table: number[] = [];
  for (let i = 0; i < nbufs; i++) {
    const off = dv.getFloat64(HEADER + i * 16, true);
    const len = dv.getFloat64(HEADER + i * 16 + 8, true);
    if (!(off >= 0 && len >= 0 && off + len <= blob.length)) throw new Error('blob buffer out of bounds');
    table.push(off, len);
  }
  const meta = metaLen > 0 ? blob.subarray(pos, pos + metaLen) : undefined;
  pos += metaLen;
  return { table, meta, body: blob.subarray(pos, pos + bodyLen) };
}

