import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { arenaAddon, type ArenaHandle } from '../../src/internal/native';

const A = arenaAddon();
const MiB = 1024 * 1024;
const ADDON = path.join(__dirname, '..', '..', 'build', 'Release', 'tsray_arena.node');

/** Runs `body` in a child node process that has opened the arena as `h`; returns its exit status. */
function inChild(h: ArenaHandle, body: string): { status: number | null; stderr: string } {
  const script = `const A = require(${JSON.stringify(ADDON)}); const h = A.open(${JSON.stringify(`/proc/${process.pid}/fd/${A.fd(h)}`)}); ${body}`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('arena handles after close', () => {
  test('every function that takes a handle throws a clear error once it is closed, with no view alive', () => {
    const h = A.create(4 * MiB, 'closed');
    const o = A.alloc(h, 100, 1);
    A.close(h);
    const calls: Array<[string, () => unknown]> = [
      ['fd', () => A.fd(h)],
      ['alloc', () => A.alloc(h, 10, 1)],
      ['seal', () => A.seal(h, o, 1)],
      ['free', () => A.free(h, o)],
      ['sweep', () => A.sweep(h, 1)],
      ['view', () => A.view(h, o, 10)],
      ['write', () => A.write(h, o, new Uint8Array(4))],
      ['populate', () => A.populate(h, o, 10)],
      ['stats', () => A.stats(h)],
      ['check', () => A.check(h)],
      ['testAbandonLock', () => A.testAbandonLock(h, false)],
    ];
    for (const [name, call] of calls) expect({ name, error: errorOf(call) }).toEqual({ name, error: expect.stringMatching(/arena was closed/) });
    expect(() => A.close(h)).not.toThrow();
  });

  test('objects that are not handles are refused', () => {
    expect(() => A.stats({} as ArenaHandle)).toThrow(/expected an arena handle/);
    expect(() => A.stats(new Uint8Array(8) as unknown as ArenaHandle)).toThrow(/expected an arena handle/);
  });
});

describe('arena argument checks', () => {
  let h: ArenaHandle;
  beforeEach(() => {
    h = A.create(4 * MiB, 'args');
  });
  afterEach(() => A.close(h));

  test('sizes, offsets and slots must be non-negative safe integers', () => {
    expect(() => A.alloc(h, 2 ** 64, 1)).toThrow(/safe integer/);
    expect(() => A.alloc(h, Number.MAX_SAFE_INTEGER + 2, 1)).toThrow(/safe integer/);
    expect(() => A.alloc(h, 1.5, 1)).toThrow(/safe integer/);
    expect(() => A.alloc(h, Infinity, 1)).toThrow(/safe integer/);
    expect(() => A.alloc(h, NaN, 1)).toThrow(/safe integer/);
    expect(() => A.view(h, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)).toThrow(/bounds/);
    expect(() => A.alloc(h, 10, 2 ** 33)).toThrow(/slot out of range/);
    expect(() => A.create(2 ** 52, 'huge')).toThrow(/too large/);
  });

  test('a request larger than the heap fails with -1 instead of wrapping around', () => {
    expect(A.alloc(h, Number.MAX_SAFE_INTEGER, 1)).toBe(-1);
    expect(A.alloc(h, Number.MAX_SAFE_INTEGER - 100, 1)).toBe(-1);
    expect(A.check(h)).toBeNull();
  });
});

describe('a process that dies holding the arena lock', () => {
  let h: ArenaHandle;
  beforeEach(() => {
    h = A.create(16 * MiB, 'robust');
  });
  afterEach(() => A.close(h));

  test('the next locker goes on, and the allocator stays consistent', () => {
    const a = A.alloc(h, 1000, 1);
    expect(inChild(h, 'A.testAbandonLock(h, false); process.exit(0);').status).toBe(0);
    expect(A.alloc(h, 1000, 1)).toBeGreaterThan(a);
    expect(A.check(h)).toBeNull();
  });

  test('the free list and counters are rebuilt from the boundary tags when it left them damaged', () => {
    const live = [A.alloc(h, 1000, 1), A.alloc(h, 50_000, 1), A.alloc(h, 3000, 1), A.alloc(h, 200, 1)];
    A.seal(h, live[1] as number, 2);
    // two free neighbours in a row, and a free tail
    expect(A.free(h, live[0] as number)).toBe(true);
    const before = A.stats(h);
    const r = inChild(h, 'A.testAbandonLock(h, true); process.exit(0);');
    expect(r.status).toBe(0);
    expect(A.check(h)).toBeNull();
    const after = A.stats(h);
    expect(after.used).toBe(before.used);
    expect(after.objects).toBe(3);
    expect(after.freeBlocks).toBe(before.freeBlocks);
    // memory is usable again: everything freed merges back into one block
    for (const o of live.slice(1)) expect(A.free(h, o)).toBe(true);
    expect(A.stats(h)).toMatchObject({ used: 0, objects: 0, freeBlocks: 1 });
    expect(A.check(h)).toBeNull();
  });

  test('blocks the dead process allocated are still swept by its slot', () => {
    const r = inChild(h, 'A.alloc(h, 4096, 9); A.alloc(h, 4096, 9); A.testAbandonLock(h, false); process.exit(0);');
    expect(r.status).toBe(0);
    expect(A.stats(h).objects).toBe(2);
    expect(A.sweep(h, 9)).toBe(2);
    expect(A.stats(h)).toMatchObject({ used: 0, objects: 0 });
    expect(A.check(h)).toBeNull();
  });
});

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}
