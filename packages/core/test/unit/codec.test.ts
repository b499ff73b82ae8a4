import { tableFromArrays } from 'apache-arrow';
import { blobReferences, decodeValue, encodeValue, layout, toInlineBlob, type RefFactory } from '../../src/internal/serialization/value-codec';
import { REF_BRAND } from '../../src/internal/serialization/brands';
import { decodeFrame, encodeFrame } from '../../src/internal/protocol/codec';
import { MT, type Address } from '../../src/internal/protocol/messages';
import { TaskError } from '../../src/errors';

const owner: Address = { workerId: 'w1', nodeId: 'n1', endpoint: 'ipc:///x', slot: 3 };
class FakeRef {
  readonly [REF_BRAND] = true as const;
  constructor(
    readonly id: string,
    readonly owner: Address,
  ) {}
}
const factory: RefFactory = { ref: (id, o) => ({ id, owner: o.workerId }), actor: (w) => ({ actor: w.id }) };
const roundTrip = (v: unknown, zeroCopy = false): unknown => decodeValue(toInlineBlob(encodeValue(v)), factory, zeroCopy);

describe('value codec', () => {
  test('plain values, collections, dates, bigints and cycles round-trip', () => {
    const v: Record<string, unknown> = { n: 1, s: 'x', a: [1, 'b'], m: new Map([[1, { k: 2 }]]), set: new Set(['a']), d: new Date(5), big: 2n ** 80n, u: undefined };
    v.self = v;
    const out = roundTrip(v) as Record<string, unknown>;
    expect(out.self).toBe(out);
    delete v.self;
    delete out.self;
    expect(out).toEqual(v);
  });

  test('typed arrays of every kind keep their class, small or large', () => {
    for (const C of [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array]) {
      for (const n of [3, 10_000]) {
        const a = new C(n).fill(7);
        const out = roundTrip(a) as typeof a;
        expect(out.constructor).toBe(C);
        expect(out.length).toBe(n);
        expect(out[n - 1]).toBe(7);
      }
    }
    expect((roundTrip(new BigInt64Array([1n, -2n])) as BigInt64Array)[1]).toBe(-2n);
    expect(Buffer.isBuffer(roundTrip(Buffer.alloc(10_000, 1)))).toBe(true);
    expect((roundTrip(new ArrayBuffer(16)) as ArrayBuffer).byteLength).toBe(16);
  });

  test('large buffers travel out of band, aligned for zero-copy reads', () => {
    const enc = encodeValue({ a: new Float64Array(10_000), b: new Uint8Array(5000) });
    expect(enc.bufs).toHaveLength(2);
    const l = layout(enc);
    for (const off of l.bufOffsets) expect(off % 64).toBe(0);
    const blob = toInlineBlob(enc);
    const zc = decodeValue(blob, factory, true) as { a: Float64Array };
    expect(zc.a.buffer).toBe(blob.buffer);
    const copy = decodeValue(blob, factory, false) as { a: Float64Array };
    expect(copy.a.buffer).not.toBe(blob.buffer);
  });

  test('refs inside values are reported and come back through the factory', () => {
    const r1 = new FakeRef('o1', owner);
    const enc = encodeValue({ list: [r1, new FakeRef('o2', owner)] });
    expect(enc.refs.map((r) => r.id)).toEqual(['o1', 'o2']);
    expect(enc.owners).toEqual([owner]);
    const blob = toInlineBlob(enc);
    expect(decodeValue(blob, factory, false)).toEqual({ list: [{ id: 'o1', owner: 'w1' }, { id: 'o2', owner: 'w1' }] });
    expect(blobReferences(blob).ids).toEqual(['o1', 'o2']);
  });

  test('errors keep their class, message, stack, code and cause; tsray errors stay instanceof', () => {
    const cause = Object.assign(new RangeError('inner'), { code: 'E_INNER' });
    const e = new TaskError({ functionName: 'f', pid: 1, nodeId: 'node', taskId: 't', cause });
    const out = roundTrip(e) as TaskError;
    expect(out).toBeInstanceOf(TaskError);
    expect(out.functionName).toBe('f');
    expect(out.cause).toBeInstanceOf(RangeError);
    expect((out.cause as Error & { code: string }).code).toBe('E_INNER');
    expect(out.stack).toContain('Remote stack');
  });

  test("an error whose own properties hold objects and arrays round-trips (as require()'s MODULE_NOT_FOUND does)", () => {
    let missing: Error | undefined;
    try {
      require('no-such-package-for-tsray-tests');
    } catch (e) {
      missing = e as Error;
    }
    const out = roundTrip(missing) as Error & { code: string; requireStack: string[] };
    expect(out.code).toBe('MODULE_NOT_FOUND');
    expect(out.requireStack).toEqual((missing as Error & { requireStack: string[] }).requireStack);
    expect((roundTrip(Object.assign(new Error('m'), { detail: { a: [1, 2] } })) as Error & { detail: unknown }).detail).toEqual({ a: [1, 2] });
  });

  test('Arrow tables round-trip', () => {
    const t = tableFromArrays({ x: new Float64Array([1, 2, 3]), s: ['a', 'b', 'c'] });
    const out = roundTrip(t, true) as typeof t;
    expect(out.numRows).toBe(3);
    expect(out.getChild('s')?.toArray()).toEqual(['a', 'b', 'c']);
  });

  test('what cannot travel is refused with a TypeError that says why', () => {
    expect(() => encodeValue({ f: () => 1 })).toThrow(/cannot be sent to another process/);
    expect(() => encodeValue(Promise.resolve())).toThrow(/await it first/);
    expect(() => encodeValue(new WeakMap())).toThrow(/cannot be sent/);
    expect(() => encodeValue(Symbol('x'))).toThrow(/Symbol/);
  });

  test('corrupt blobs throw instead of returning garbage', () => {
    const blob = toInlineBlob(encodeValue({ a: new Float64Array(10_000) }));
    expect(() => decodeValue(blob.subarray(0, 100), factory, false)).toThrow();
    expect(() => decodeValue(new Uint8Array(0), factory, false)).toThrow(/empty/);
  });
});

describe('wire frames', () => {
  test('a batch of messages round-trips', () => {
    const msgs = [
      { t: MT.ReturnIdleLeases } as const,
      { t: MT.Reply, reqId: 3, ok: true, data: { x: 1 } } as const,
    ];
    expect(decodeFrame(encodeFrame(msgs)).msgs).toEqual(msgs);
  });

  test('malformed frames and messages are dropped with a reason, never thrown', () => {
    expect(decodeFrame(Buffer.from([0xff, 0x00])).dropped[0]).toMatch(/undecodable|not/);
    expect(decodeFrame(encodeFrame([]).subarray(0, 1)).msgs).toEqual([]);
    const bad = decodeFrame(encodeFrame([{ t: MT.Reply, reqId: 'x' } as never, { t: 12345 } as never, { t: MT.ReturnIdleLeases }]));
    expect(bad.msgs).toEqual([{ t: MT.ReturnIdleLeases }]);
    expect(bad.dropped).toEqual(['fields of type 1 do not match its schema', 'unknown type 12345']);
  });
});

describe('values that cannot travel and error chains', () => {
  test('iterators and generator objects are rejected, naming what they are and what to do', () => {
    expect(() => encodeValue([1, 2].values())).toThrow(/^an Array Iterator cannot be sent to another process: its state lives in this process/);
    expect(() => encodeValue({ it: new Map([[1, 2]]).entries() })).toThrow(/a Map Iterator cannot be sent/);
    function* gen(): Generator<number> {
      yield 1;
    }
    expect(() => encodeValue(gen())).toThrow(/a Generator cannot be sent.*numReturns: 'streaming'/);
    async function* agen(): AsyncGenerator<number> {
      yield 1;
    }
    expect(() => encodeValue([agen()])).toThrow(/an AsyncGenerator cannot be sent/);
  });

  test('class instances travel as plain objects: own fields kept, prototype lost', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
      norm(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    const out = roundTrip(new Point(3, 4)) as Record<string, unknown>;
    expect(out).toEqual({ x: 3, y: 4 });
    expect(out).not.toBeInstanceOf(Point);
  });

  test('an object with more than 65535 large buffers is rejected clearly', () => {
    const many = Array.from({ length: 65_536 }, () => new Uint8Array(4096));
    expect(() => encodeValue(many)).toThrow('the value holds 65536 typed arrays, Buffers or Arrow tables of 4096 bytes or more; at most 65535 fit in one object');
  });

  test('an error whose cause refers to itself travels, with the cycle cut', () => {
    const e = new Error('loop') as Error & { cause?: unknown; self?: unknown };
    e.cause = e;
    e.self = e;
    const out = roundTrip(e) as Error & { cause?: unknown; self?: unknown };
    expect(out).toBeInstanceOf(Error);
    expect(out.message).toBe('loop');
    expect(out.cause).toBeUndefined();
    expect(out.self).toBe('[circular reference to an error]');
  });

  test('a two-error cause cycle and a long cause chain are cut, the rest kept', () => {
    const a = new RangeError('a');
    const b = new TypeError('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    const out = roundTrip(a) as Error;
    expect(out).toBeInstanceOf(RangeError);
    expect((out.cause as Error).message).toBe('b');
    expect(out.cause).toBeInstanceOf(TypeError);
    expect((out.cause as Error).cause).toBeUndefined();
    let deep: Error = new Error('e0');
    for (let i = 1; i < 20; i++) deep = new Error(`e${i}`, { cause: deep });
    let got = roundTrip(deep) as Error | undefined;
    let depth = 0;
    while (got) {
      depth++;
      got = got.cause as Error | undefined;
    }
    expect(depth).toBe(8);
  });
});
