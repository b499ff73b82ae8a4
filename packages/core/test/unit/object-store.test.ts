import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { arenaAddon, type ArenaHandle } from '../../src/internal/native';
import { ObjectStoreClient, spillDirOf } from '../../src/internal/objects/object-store';
import type { Encoded } from '../../src/internal/serialization/value-codec';
import { ObjectStoreFullError } from '../../src/errors';
import { DEFAULT_PREFAULT_BYTES, prefaultSetting } from '../../src/internal/objects/prefault';

const A = arenaAddon();
const KiB = 1024;

function raw(bytes: number, fill = 7): Encoded {
  return { body: Buffer.alloc(bytes, fill), meta: null, bufs: [], refs: [], actors: [], owners: [] };
}

let arena: ArenaHandle;
let root: string;
const clients: ObjectStoreClient[] = [];

function client(slot: number, onPressure: () => boolean = () => false, ownsRoot = false): ObjectStoreClient {
  const c = ObjectStoreClient.open(`/proc/${process.pid}/fd/${A.fd(arena)}`, 'node-1', slot, root, onPressure, ownsRoot);
  clients.push(c);
  return c;
}

beforeEach(() => {
  arena = A.create(256 * KiB, 'store-unit');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-spill-'));
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  A.close(arena);
  fs.rmSync(root, { recursive: true, force: true });
});

describe('ObjectStoreClient', () => {
  test('every method that needs the store throws a clear error after close; free and account do nothing', () => {
    const c = client(1);
    const loc = c.put(raw(100), 'o1', 1);
    c.close();
    expect(() => c.put(raw(10), 'o2', 1)).toThrow(/object store client was closed/);
    expect(() => c.read(loc, 'o1')).toThrow(/object store client was closed/);
    expect(() => c.stats()).toThrow(/object store client was closed/);
    expect(() => c.check()).toThrow(/object store client was closed/);
    expect(() => c.free(loc)).not.toThrow();
    expect(() => c.account(100)).not.toThrow();
    expect(() => c.close()).not.toThrow();
  });

  test('objects that do not fit spill into their owner\'s directory, which close removes', () => {
    const c = client(3);
    const big = c.put(raw(300 * KiB), 'big', 5);
    expect(big.spill).toBe(path.join(spillDirOf(root, 5), 'big'));
    const mine = c.put(raw(300 * KiB), 'mine', 3);
    expect(mine.spill).toBe(path.join(spillDirOf(root, 3), 'mine'));
    expect(Buffer.from(c.read(big, 'big').bytes).equals(Buffer.alloc(300 * KiB, 7))).toBe(true);
    c.close();
    expect(fs.existsSync(spillDirOf(root, 3))).toBe(false);
    // objects owned by another process stay until that one goes
    expect(fs.existsSync(big.spill as string)).toBe(true);
  });

  test('a client that owns its spill root removes all of it at close', () => {
    const c = client(3, () => false, true);
    c.put(raw(300 * KiB), 'big', 3);
    c.close();
    expect(fs.existsSync(root)).toBe(false);
  });

  test('a failed write into the arena frees the block it allocated', () => {
    const c = client(1);
    const u8 = new Uint8Array(8 * KiB).fill(1);
    const enc: Encoded = { ...raw(64), meta: Buffer.from([1, 2, 3]), bufs: [u8] };
    structuredClone(u8.buffer, { transfer: [u8.buffer] }); // detaches the buffer: copying it throws
    expect(() => c.put(enc, 'detached', 1)).toThrow();
    expect(c.stats().objects).toBe(0);
    expect(c.check()).toBeNull();
  });

  test('a failed spill leaves no file and says where it tried', () => {
    fs.rmSync(root, { recursive: true, force: true });
    fs.writeFileSync(root, 'not a directory');
    const c = client(1);
    expect(() => c.put(raw(300 * KiB), 'big', 1)).toThrow(ObjectStoreFullError);
    expect(() => c.put(raw(300 * KiB), 'big', 1)).toThrow(/spilling to .*slot-1 failed/);
    expect(c.stats().objects).toBe(0);
  });

  test('the pressure callback runs once per put and never inside itself', () => {
    let calls = 0;
    let depth = 0;
    let maxDepth = 0;
    const c: ObjectStoreClient = client(1, () => {
      calls++;
      depth++;
      maxDepth = Math.max(maxDepth, depth);
      // a finalizer that stores something while the store is full
      try {
        c.put(raw(200 * KiB), `nested-${calls}`, 1);
      } finally {
        depth--;
      }
      return false;
    });
    const first = c.put(raw(200 * KiB), 'first', 1);
    expect(first.off).toBeDefined();
    expect(calls).toBe(0);
    const second = c.put(raw(200 * KiB), 'second', 1);
    expect(second.spill).toBeDefined();
    expect(calls).toBe(1);
    expect(maxDepth).toBe(1);
  });
});

describe('TSRAY_PREFAULT', () => {
  test('is a number of bytes, 1 GiB when unset, 0 for none; anything else is refused with the fix', () => {
    expect(prefaultSetting({})).toBe(DEFAULT_PREFAULT_BYTES);
    expect(DEFAULT_PREFAULT_BYTES).toBe(1024 ** 3);
    expect(prefaultSetting({ TSRAY_PREFAULT: '' })).toBe(DEFAULT_PREFAULT_BYTES);
    expect(prefaultSetting({ TSRAY_PREFAULT: '0' })).toBe(0);
    expect(prefaultSetting({ TSRAY_PREFAULT: '268435456' })).toBe(256 * 1024 * 1024);
    for (const bad of ['1G', '-1', '1.5', 'off']) expect(() => prefaultSetting({ TSRAY_PREFAULT: bad })).toThrow(`TSRAY_PREFAULT must be a whole number of bytes of the object store to fault in ahead of use (0 turns it off), got '${bad}'`);
  });
});
