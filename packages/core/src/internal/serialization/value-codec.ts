/**
 * Serialization of user values. A value is encoded once, by its producer,
 * into a *blob* (see blob.ts): msgpack for the structure, with large typed
 * arrays, Buffers and Arrow tables kept out of band as raw, aligned byte
 * ranges so that a blob placed in shared memory is read in place (zero-copy).
 * ObjectRefs and ActorHandles inside a value stay references; the serializer
 * reports them so the runtime can count them.
 * @internal
 */
import { Packr, addExtension } from 'msgpackr';
import { errorFromWire, errorToWire, type ErrorWire } from './error-wire';
import { MAX_BUFFERS, isFramedBlob, parseHeader, type Encoded } from './blob';
import type { Address } from '../protocol/messages';
import { isActorHandle, isRef, isShippable, type ActorLike, type ActorWire, type RefLike, type ShippableLike, type ShippableWire } from './brands';

export { layout, maxBlobSize, toInlineBlob, writeBlob, type Encoded, type Layout } from './blob';
export { errorFromWire, errorToWire } from './error-wire';

/** Typed arrays at least this large travel out of band. */
export const OOB_MIN = 4096;
/** Values whose blob is at most this large are kept inline (Ray: 100 KiB). */
export const INLINE_MAX = 100 * 1024;


// msgpack extension types; msgpackr itself uses letter codes (0x42 'B' for
// BigInt, 0x65 'e', 0x70 'p', 0x72 'r', 0x73 's', 0x74 't', ...)
const EXT_REF = 20;
const EXT_ACTOR = 21;
const EXT_BUF = 22;
const EXT_ARROW = 23;
const EXT_ERROR = 24;
const EXT_REJECT = 25;
const EXT_SMALL_VIEW = 26;
const EXT_SHIPPABLE = 27;

/** Creates ObjectRefs and ActorHandles while a blob is read. */
export interface RefFactory {
  ref(id: string, owner: Address): unknown;
  actor(wire: ActorWire, owner: Address): unknown;
}



interface PackCtx {
  bufs: ArrayBufferView[];
  owners: Map<string, number>;
  ownerList: Address[];
  refs: RefLike[];
  actors: ActorLike[];
}

interface UnpackCtx {
  blob: Uint8Array;
  table: number[];
  owners: Address[];
  zeroCopy: boolean;
  factory: RefFactory | null;
}

let packCtx: PackCtx | null = null;
let unpackCtx: UnpackCtx | null = null;

// ---------------------------------------------------------------------------
// typed arrays

type ViewCtor = { new (buf: ArrayBufferLike, off: number, len: number): ArrayBufferView; BYTES_PER_ELEMENT: number };
const VIEW_KINDS: ViewCtor[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as unknown as ViewCtor[];
const KIND_BUFFER = 100;
const KIND_DATAVIEW = 101;
const KIND_ARRAYBUFFER = 102;

const TAG = Object.prototype.toString;
const VIEW_BY_TAG = new Map<string, number>(VIEW_KINDS.map((c, i) => [`[object ${(c as unknown as { name: string }).name}]`, i]));

function isArrayBufferLike(v: unknown): v is ArrayBuffer {
  const t = TAG.call(v);
  return t === '[object ArrayBuffer]' || t === '[object SharedArrayBuffer]';
}

/** Kind of a view or buffer, by tag (works across realms, e.g. under jest). */
function viewKind(v: ArrayBufferView | ArrayBuffer): number {
  if (isArrayBufferLike(v)) return KIND_ARRAYBUFFER;
  if (Buffer.isBuffer(v)) return KIND_BUFFER;
  const tag = TAG.call(v);
  if (tag === '[object DataView]') return KIND_DATAVIEW;
  return VIEW_BY_TAG.get(tag) ?? 1;
}

function bytesOf(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  return isArrayBufferLike(v) ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function viewSize(v: unknown): number {
  if (ArrayBuffer.isView(v)) return v.byteLength;
  if (isArrayBufferLike(v)) return v.byteLength;
  return -1;
}

class LargeViewMatcher {
  static [Symbol.hasInstance](v: unknown): boolean {
    return packCtx !== null && viewSize(v) >= OOB_MIN;
  }
}

class SmallViewMatcher {
  static [Symbol.hasInstance](v: unknown): boolean {
    if (packCtx === null) return false;
    const n = viewSize(v);
    return n >= 0 && n < OOB_MIN;
  }
}

/** A small view, copied into our realm's class of the same kind. */
function makeView(kind: number, bytes: Uint8Array): unknown {
  if (kind === KIND_BUFFER) return Buffer.from(bytes);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (kind === KIND_ARRAYBUFFER) return copy.buffer;
  if (kind === KIND_DATAVIEW) return new DataView(copy.buffer);
  const Ctor = VIEW_KINDS[kind];
  if (!Ctor) throw new Error(`unknown typed array kind ${kind}`);
  if (bytes.length % Ctor.BYTES_PER_ELEMENT !== 0) throw new Error('typed array length is not a multiple of its element size');
  return new Ctor(copy.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT);
}

function readBuffer(index: number, kind: number): unknown {
  const c = unpackCtx;
  if (!c) throw new Error('out-of-band buffer outside a value');
  const off = c.table[index * 2];
  const len = c.table[index * 2 + 1];
  if (off === undefined || len === undefined) throw new Error('bad buffer index');
  const absolute = c.blob.byteOffset + off;
  const ab = c.blob.buffer;
  if (kind === KIND_ARRAYBUFFER) return ab.slice(absolute, absolute + len);
  if (kind === KIND_BUFFER) return c.zeroCopy ? Buffer.from(ab, absolute, len) : Buffer.from(c.blob.subarray(off, off + len));
  if (kind === KIND_DATAVIEW) return c.zeroCopy ? new DataView(ab, absolute, len) : new DataView(c.blob.slice(off, off + len).buffer);
  const Ctor = VIEW_KINDS[kind];
  if (!Ctor) throw new Error(`unknown typed array kind ${kind}`);
  const w = Ctor.BYTES_PER_ELEMENT;
  if (len % w !== 0) throw new Error('typed array length is not a multiple of its element size');
  if (c.zeroCopy && absolute % w === 0) return new Ctor(ab, absolute, len / w);
  const copy = new Uint8Array(len);
  copy.set(c.blob.subarray(off, off + len));
  return new Ctor(copy.buffer, 0, len / w);
}

// ---------------------------------------------------------------------------
// references

function ownerIndex(ctx: PackCtx, owner: Address): number {
  let i = ctx.owners.get(owner.workerId);
  if (i === undefined) {
    i = ctx.ownerList.length;
    ctx.ownerList.push(owner);
    ctx.owners.set(owner.workerId, i);
  }
  return i;
}

class RefMatcher {
  static [Symbol.hasInstance](v: unknown): boolean {
    return isRef(v);
  }
}
class ActorMatcher {
  static [Symbol.hasInstance](v: unknown): boolean {
    return isActorHandle(v);
  }
}

function readOwner(idx: unknown): Address {
  const c = unpackCtx;
  const o = c && typeof idx === 'number' ? c.owners[idx] : undefined;
  if (!o) throw new Error('reference with an unknown owner');
  return o;
}

// ---------------------------------------------------------------------------
// shippables (ray.util.shippable): code that travels inside values

class ShippableMatcher {
  static [Symbol.hasInstance](v: unknown): boolean {
    return isShippable(v);
  }
}

let shippableFactory: ((w: ShippableWire) => unknown) | undefined;

/** Sets how a Shippable read from a value is made (api/shippable.ts). */
export function setShippableFactory(f: (w: ShippableWire) => unknown): void {
  shippableFactory = f;
}

function readShippable(d: unknown): unknown {
  if (!Array.isArray(d) || d.length !== 7) throw new Error('bad shippable');
  const [module, key, name, src, needs, what, kind] = d as unknown[];
  if (typeof module !== 'string' || typeof key !== 'string' || typeof name !== 'string') throw new Error('bad shippable');
  if ((src !== null && typeof src !== 'string') || (needs !== null && !Array.isArray(needs)) || (what !== null && typeof what !== 'string')) throw new Error('bad shippable');
  const w: ShippableWire = {
    code: { module, key, name, ...(src !== null ? { src } : {}), ...(needs !== null ? { needs: (needs as unknown[]).map(String) } : {}) },
    kind: kind === 'class' ? 'class' : 'function',
    what: what ?? undefined,
  };
  return shippableFactory ? shippableFactory(w) : w;
}

// ---------------------------------------------------------------------------
// errors


class ErrorMatcher {
  static [Symbol.hasInstance](v: unknown): boolean {
    return v instanceof Error || Object.prototype.toString.call(v) === '[object Error]';
  }
}

// ---------------------------------------------------------------------------
// values that cannot travel

/** Iterators and generator objects keep their state in this process. */
function isIterator(v: object): boolean {
  const tag = TAG.call(v);
  if (tag === '[object Generator]' || tag === '[object AsyncGenerator]' || / Iterator\]$/.test(tag)) return true;
  const o = v as { next?: unknown; [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown };
  return typeof o.next === 'function' && (typeof o[Symbol.iterator] === 'function' || typeof o[Symbol.asyncIterator] === 'function');
}

class RejectMatcher {
  static [Symbol.hasInstance](v: unknown): boolean {
    if (packCtx === null || typeof v !== 'object' || v === null) return false;
    return (
      v instanceof Promise ||
      v instanceof WeakMap ||
      v instanceof WeakSet ||
      v instanceof WeakRef ||
      typeof (v as { then?: unknown }).then === 'function' ||
      isIterator(v)
    );
  }
}

function rejectReason(v: object): string {
  if (v instanceof Promise || typeof (v as { then?: unknown }).then === 'function')
    return 'a Promise cannot be sent to another process; await it first and pass the result';
  if (isIterator(v)) {
    const tag = TAG.call(v).slice(8, -1);
    const what = tag === 'Object' ? (v.constructor?.name && v.constructor.name !== 'Object' ? `an iterator (${v.constructor.name})` : 'an iterator') : `${/^[AEIOU]/.test(tag) ? 'an' : 'a'} ${tag}`;
    return (
      `${what} cannot be sent to another process: its state lives in this process. ` +
      'Collect its values first (e.g. Array.from(it), or a for await loop); a remote generator function streams its values ' +
      "when called with .options({ numReturns: 'streaming' })"
    );
  }
  return `a ${v.constructor?.name ?? 'weak collection'} cannot be sent to another process`;
}

// ---------------------------------------------------------------------------
// arrow

let arrowModule: typeof import('apache-arrow') | undefined;
function arrow(): typeof import('apache-arrow') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  arrowModule ??= require('apache-arrow') as typeof import('apache-arrow');
  return arrowModule;
}

/** True for an Apache Arrow Table (from any copy of apache-arrow). */
export function isArrowTable(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { constructor?: { name?: string }; schema?: unknown; batches?: unknown };
  return o.constructor?.name === 'Table' && typeof o.schema === 'object' && Array.isArray(o.batches);
}

class ArrowMatcher {
  static [Symbol.hasInstance](v: unknown): boolean {
    return packCtx !== null && isArrowTable(v);
  }
}

// ---------------------------------------------------------------------------
// the packers

const ctxOf = (): PackCtx => {
  if (!packCtx) throw new Error('tsray value extension used outside serialization');
  return packCtx;
};

addExtension({
  Class: SmallViewMatcher as unknown as new () => unknown,
  type: EXT_SMALL_VIEW,
  pack(v: ArrayBufferView | ArrayBuffer): Buffer {
    const bytes = bytesOf(v);
    const out = Buffer.allocUnsafe(bytes.length + 1);
    out[0] = viewKind(v);
    out.set(bytes, 1);
    return out;
  },
  unpack(b: Buffer): unknown {
    return makeView(b[0] as number, b.subarray(1));
  },
});

addExtension({
  Class: LargeViewMatcher as unknown as new () => unknown,
  type: EXT_BUF,
  write(v: ArrayBufferView | ArrayBuffer): unknown {
    const c = ctxOf();
    c.bufs.push(isArrayBufferLike(v) ? new Uint8Array(v) : v);
    return [c.bufs.length - 1, viewKind(v)];
  },
  read(d: unknown): unknown {
    if (!Array.isArray(d)) throw new Error('bad buffer reference');
    return readBuffer(d[0] as number, d[1] as number);
  },
});

addExtension({
  Class: ArrowMatcher as unknown as new () => unknown,
  type: EXT_ARROW,
  write(t: unknown): unknown {
    const c = ctxOf();
    const a = arrow();
    if (!(t instanceof a.Table)) {
      throw new TypeError(
        'this Arrow Table was made by a different copy of apache-arrow than the one tsray uses ' +
          `(${require.resolve('apache-arrow')}); install one compatible apache-arrow version so npm dedupes it`,
      );
    }
    const ipc = a.tableToIPC(t, 'stream');
    c.bufs.push(ipc);
    return c.bufs.length - 1;
  },
  read(d: unknown): unknown {
    const bytes = readBuffer(d as number, 1) as Uint8Array;
    return arrow().tableFromIPC(bytes);
  },
});

addExtension({
  Class: RefMatcher as unknown as new () => unknown,
  type: EXT_REF,
  write(r: RefLike): unknown {
    const c = ctxOf();
    c.refs.push(r);
    return [r.id, ownerIndex(c, r.owner)];
  },
  read(d: unknown): unknown {
    const c = unpackCtx;
    if (!Array.isArray(d) || typeof d[0] !== 'string' || !c?.factory) throw new Error('bad object reference');
    return c.factory.ref(d[0], readOwner(d[1]));
  },
});

addExtension({
  Class: ActorMatcher as unknown as new () => unknown,
  type: EXT_ACTOR,
  write(h: ActorLike): unknown {
    const c = ctxOf();
    c.actors.push(h);
    return [h.__wire(), ownerIndex(c, h.__owner())];
  },
  read(d: unknown): unknown {
    const c = unpackCtx;
    if (!Array.isArray(d) || !c?.factory) throw new Error('bad actor handle');
    return c.factory.actor(d[0] as ActorWire, readOwner(d[1]));
  },
});

addExtension({
  Class: ShippableMatcher as unknown as new () => unknown,
  type: EXT_SHIPPABLE,
  write(s: ShippableLike): unknown {
    const w = s.__wire();
    return [w.code.module, w.code.key, w.code.name, w.code.src ?? null, w.code.needs ?? null, w.what ?? null, w.kind];
  },
  read: readShippable,
});

addExtension({
  Class: ErrorMatcher as unknown as new () => unknown,
  type: EXT_ERROR,
  write(e: Error): unknown {
    return errorToWire(e);
  },
  read(d: unknown): unknown {
    const w = d as Partial<ErrorWire> | null;
    if (typeof w !== 'object' || w === null || typeof w.n !== 'string' || typeof w.m !== 'string') throw new Error('bad error value');
    return errorFromWire(w as ErrorWire);
  },
});

addExtension({
  Class: RejectMatcher as unknown as new () => unknown,
  type: EXT_REJECT,
  write(v: object): unknown {
    throw new TypeError(rejectReason(v));
  },
  read(): unknown {
    throw new Error('unexpected rejected value');
  },
});

function rejectFunction(f: unknown): never {
  const name = typeof f === 'function' && f.name ? ` ${f.name}` : '';
  throw new TypeError(
    `the function${name} cannot be sent to another process as a plain value; wrap it with ray.util.shippable(fn) (the receiver calls it with ` +
      '`await s.call(...args)`), or make it a remote function with ray.remote() and call that',
  );
}

/**
 * Called by msgpackr for every object whose constructor is `Object`; built-in
 * iterators (`map.entries()`, `array.values()`) are such objects in Node 20
 * and would silently travel as `{}`.
 */
function useRecords(o: object): boolean {
  const p = Object.getPrototypeOf(o) as object | null;
  if (p !== Object.prototype && p !== null && isIterator(o)) throw new TypeError(rejectReason(o));
  return true;
}

const valuePackr = new Packr({
  useRecords,
  structuredClone: true,
  moreTypes: true,
  copyBuffers: true,
  writeFunction: rejectFunction,
} as unknown as ConstructorParameters<typeof Packr>[0]);

const plainPackr = new Packr({ useRecords: false, moreTypes: true, copyBuffers: true });

// ---------------------------------------------------------------------------
// encoding

/** Encodes `value`; throws a TypeError naming what cannot be serialized. */
export function encodeValue(value: unknown): Encoded {
  const outer = packCtx;
  const ctx: PackCtx = { bufs: [], owners: new Map(), ownerList: [], refs: [], actors: [] };
  packCtx = ctx;
  let body: Buffer;
  try {
    body = valuePackr.pack(value);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/Unknown type: symbol/.test(msg)) throw new TypeError('a Symbol cannot be sent to another process');
    if (e instanceof RangeError && /call stack/.test(msg)) throw new TypeError('the value is nested too deeply to serialize');
    throw e instanceof TypeError ? e : new TypeError(msg);
  } finally {
    packCtx = outer;
  }
  if (ctx.bufs.length > MAX_BUFFERS) {
    throw new TypeError(
      `the value holds ${ctx.bufs.length} typed arrays, Buffers or Arrow tables of ${OOB_MIN} bytes or more; at most ${MAX_BUFFERS} fit in one object. ` +
        'Put them in fewer, larger arrays, or store them as several objects (ray.put each part)',
    );
  }
  const meta = ctx.ownerList.length > 0 ? plainPackr.pack(ctx.ownerList.map((a) => [a.workerId, a.nodeId, a.endpoint, a.slot])) : null;
  return { body, meta, bufs: ctx.bufs, refs: ctx.refs, actors: ctx.actors, owners: ctx.ownerList };
}


// ---------------------------------------------------------------------------
// decoding


/**
 * Decodes a blob. With `zeroCopy`, out-of-band typed arrays are views of
 * `blob`'s memory (use for shared-memory blobs); otherwise they are copies.
 */
export function decodeValue(blob: Uint8Array, factory: RefFactory | null, zeroCopy: boolean): unknown {
  if (blob.length === 0) throw new Error('empty blob');
  const outer = unpackCtx;
  let body: Uint8Array;
  if (isFramedBlob(blob)) {
    const h = parseHeader(blob);
    unpackCtx = { blob, table: h.table, owners: h.meta ? readOwners(h.meta) : [], zeroCopy, factory };
    body = h.body;
  } else {
    unpackCtx = { blob, table: [], owners: [], zeroCopy, factory };
    body = blob;
  }
  try {
    return valuePackr.unpack(body);
  } finally {
    unpackCtx = outer;
    // msgpackr keeps a DataView of the last buffer it read in a module
    // variable; reading one byte moves it off shared memory, so the object
    // can be freed once the user's views of it are gone
    if (zeroCopy) plainPackr.unpack(RESET);
  }
}

function readOwners(meta: Uint8Array): Address[] {
  const raw = plainPackr.unpack(meta) as unknown;
  if (!Array.isArray(raw)) throw new Error('bad blob owner table');
  return raw.map((o: unknown) => {
    if (!Array.isArray(o) || o.length !== 4 || typeof o[0] !== 'string' || typeof o[1] !== 'string' || typeof o[2] !== 'string' || typeof o[3] !== 'number')
      throw new Error('bad owner entry');
    return { workerId: o[0], nodeId: o[1], endpoint: o[2], slot: o[3] };
  });
}

const RESET = Buffer.from([0xc0]);

/** The references a blob contains, without decoding the rest of the value. */
export function blobReferences(blob: Uint8Array): { ids: string[]; owners: Address[] } {
  const ids: string[] = [];
  const ownersSeen: Address[] = [];
  decodeValue(
    blob,
    {
      ref(id, owner) {
        ids.push(id);
        ownersSeen.push(owner);
        return null;
      },
      actor(w, owner) {
        ids.push(w.id);
        ownersSeen.push(owner);
        return null;
      },
    },
    true,
  );
  return { ids, owners: ownersSeen };
}
