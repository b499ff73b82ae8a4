import * as fs from 'node:fs';
import { arenaAddon, type ArenaHandle } from '../../src/internal/native';
import { until } from '../helpers/poll';

const A = arenaAddon();
const MiB = 1024 * 1024;
let h: ArenaHandle;

beforeEach(() => {
  h = A.create(64 * MiB, 'unit');
});
afterEach(() => {
  A.close(h);
});

describe('shared-memory arena', () => {
  test('allocations are 64-byte aligned, disjoint and counted', () => {
    const offs = [1, 100, 4096, 100_000].map((n) => A.alloc(h, n, 1));
    for (const o of offs) expect(o % 64).toBe(0);
    const sorted = [...offs].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) expect((sorted[i] as number) - (sorted[i - 1] as number)).toBeGreaterThanOrEqual(64);
    expect(A.stats(h).objects).toBe(4);
    expect(A.check(h)).toBeNull();
  });

  test('freed blocks merge with their neighbours and are reused from the lowest address', () => {
    const a = A.alloc(h, MiB, 1);
    const b = A.alloc(h, MiB, 1);
    const c = A.alloc(h, MiB, 1);
    expect(A.free(h, a)).toBe(true);
    expect(A.free(h, b)).toBe(true);
    expect(A.check(h)).toBeNull();
    // a and b merged: 2 MiB fits where a was
    expect(A.alloc(h, 2 * MiB, 1)).toBe(a);
    expect(A.free(h, c)).toBe(true);
  });

  test('freeing garbage offsets or twice is refused, not corrupting', () => {
    const a = A.alloc(h, 1000, 1);
    expect(A.free(h, 123)).toBe(false);
    expect(A.free(h, a + 64)).toBe(false);
    expect(A.free(h, a)).toBe(true);
    expect(A.free(h, a)).toBe(false);
    expect(A.check(h)).toBeNull();
  });

  test('allocation fails with -1 when nothing fits, and -2 when it would grow past the high-water mark', () => {
    expect(A.alloc(h, 128 * MiB, 1)).toBe(-1);
    const a = A.alloc(h, 4 * MiB, 1);
    A.free(h, a);
    expect(A.alloc(h, 8 * MiB, 1, true)).toBe(-2);
    expect(A.alloc(h, 4 * MiB, 1, true)).toBe(a);
  });

  test('a random workload keeps every invariant', () => {
    let seed = 42;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const live: number[] = [];
    for (let i = 0; i < 5000; i++) {
      if (rnd() < 0.55) {
        const o = A.alloc(h, Math.floor(rnd() * 300_000), 1 + (i % 3));
        if (o >= 0) live.push(o);
      } else if (live.length) {
        const k = Math.floor(rnd() * live.length);
        expect(A.free(h, live[k] as number)).toBe(true);
        live.splice(k, 1);
      }
      if (i % 500 === 0) expect(A.check(h)).toBeNull();
    }
    expect(A.stats(h).objects).toBe(live.length);
    for (const o of live) A.free(h, o);
    const s = A.stats(h);
    expect(s.used).toBe(0);
    expect(s.freeBlocks).toBe(1);
  });

  test('sweep frees what a dead process allocated or owned, and nothing else', () => {
    const mine = A.alloc(h, 1000, 7);
    const sealedForOther = A.alloc(h, 1000, 7);
    A.seal(h, sealedForOther, 9);
    const theirs = A.alloc(h, 1000, 8);
    A.seal(h, theirs, 7);
    expect(A.sweep(h, 7)).toBe(2);
    expect(A.free(h, mine)).toBe(false);
    expect(A.free(h, theirs)).toBe(false);
    expect(A.free(h, sealedForOther)).toBe(true);
    expect(A.check(h)).toBeNull();
  });

  test('views see what was written, and survive close until collected', () => {
    const o = A.alloc(h, 800, 1);
    A.write(h, o, new Float64Array([1.5, 2.5]));
    const v = new Float64Array(A.view(h, o, 16));
    expect([...v]).toEqual([1.5, 2.5]);
    A.close(h);
    expect(v[1]).toBe(2.5);
    expect(() => A.alloc(h, 10, 1)).toThrow(/closed/);
    h = A.create(64 * MiB, 'unit');
  });

  test('another process can open the arena by /proc path and read it', () => {
    const o = A.alloc(h, 64, 1);
    A.write(h, o, Buffer.from('shared!'));
    const other = A.open(`/proc/${process.pid}/fd/${A.fd(h)}`);
    expect(Buffer.from(A.view(other, o, 7)).toString()).toBe('shared!');
    A.close(other);
  });

  test('prefault maps the start of the arena on a background thread, once per handle, and publishes how far it got', async () => {
    const shmem = (): number => Number(/RssShmem:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024;
    const before = shmem();
    expect(A.prefault(h, 16 * MiB, 100)).toBe(true);
    expect(A.prefault(h, 16 * MiB, 100)).toBe(false);
    await until(() => A.prefaultStatus(h).state !== 'running', 'the prefault to end');
    expect(A.prefaultStatus(h)).toEqual({ state: 'done', bytes: 16 * MiB });
    expect(A.stats(h).prefaulted).toBe(16 * MiB);
    expect(shmem() - before).toBeGreaterThanOrEqual(15 * MiB); // (the header page and first block were mapped already)
    // those pages count as touched: a large allocation that must not grow into fresh memory may use them, and no more
    expect(A.alloc(h, 8 * MiB, 1, true)).toBeGreaterThan(0);
    expect(A.alloc(h, 16 * MiB, 1, true)).toBe(-2);
    expect(A.check(h)).toBeNull();
  });

  test('prefault with map false allocates the pages of the memfd without mapping them in this process', async () => {
    const shmem = (): number => Number(/RssShmem:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024;
    const g = A.create(64 * MiB, 'unit-alloc-only');
    try {
      const allocated = (): number => fs.statSync(`/proc/self/fd/${A.fd(g)}`).blocks * 512;
      const before = { rss: shmem(), allocated: allocated() };
      expect(before.allocated).toBeLessThan(MiB);
      expect(A.prefault(g, 32 * MiB, 100, false)).toBe(true);
      await until(() => A.prefaultStatus(g).state !== 'running', 'the prefault to end');
      expect(A.prefaultStatus(g)).toEqual({ state: 'done', bytes: 32 * MiB });
      expect(A.stats(g).prefaulted).toBe(32 * MiB);
      expect(allocated()).toBeGreaterThanOrEqual(32 * MiB);
      expect(shmem() - before.rss).toBeLessThan(MiB); // allocated, not mapped here
      expect(A.check(g)).toBeNull();
    } finally {
      A.close(g);
    }
  });

  test('closing the handle stops a prefault that is still running', async () => {
    const g = A.create(256 * MiB, 'unit-stop');
    expect(A.prefault(g, 256 * MiB, 1)).toBe(true); // 1% of a CPU: far from done when closed
    A.close(g);
    await until(() => A.prefaultStatus(g).state !== 'running', 'the prefault to stop');
    expect(A.prefaultStatus(g).state).toBe('stopped');
    expect(A.prefaultStatus(g).bytes).toBeLessThan(256 * MiB);
  });

  test('bad arguments throw errors instead of crashing', () => {
    expect(() => A.prefault(h, MiB, 0)).toThrow(/duty cycle is a percentage/);
    expect(() => A.alloc(h, -1, 1)).toThrow(/non-negative number/);
    expect(() => A.view(h, 64 * MiB, 100)).toThrow(/bounds/);
    expect(() => A.open('/nonexistent/arena')).toThrow(/could not open/);
    expect(() => (A.alloc as (x: unknown) => number)({})).toThrow(/arena handle/);
  });
});
