import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { addOne, addThree, addTwo } from './fixtures/clash';
import { RemoteViewKeeper, crashOnceStream, role } from './fixtures/ownership';
import { collectGarbage, settled } from './helpers/poll';

const MiB = 1024 * 1024;
let dir: string;

beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false, objectStoreMemory: 64 * MiB });
});

afterAll(async () => {
  await ray.shutdown();
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-own-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Puts and drops `n` arrays like `like`, filled with `v`: freed blocks get reused. */
async function churn(like: Float64Array, v: number, n = 4): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = ray.put(new Float64Array(like.length).fill(v));
    expect((await ray.get(r))[0]).toBe(v);
  }
  await collectGarbage();
}

describe('shared memory stays valid while it is in use', () => {
  test('free() of an object whose value is still viewed keeps the bytes until the view is gone', async () => {
    const ref = ray.put(new Float64Array(256 * 1024).fill(7)); // 2 MiB
    const view = await ray.get(ref);
    const used = ray.objectStoreStats().usedBytes;
    ray.free(ref);
    await expect(ray.get(ref)).rejects.toBeInstanceOf(ray.ObjectFreedError);
    // the block is not handed out again while `view` shows it
    await churn(view, 9);
    expect(view.every((x) => x === 7)).toBe(true);
    expect(ray.objectStoreStats().usedBytes).toBeGreaterThanOrEqual(view.byteLength);
    void used;
  });

  test('a large argument an actor keeps a view of outlives the call and the caller dropping it', async () => {
    const keeper = RemoteViewKeeper.remote();
    const n = 256 * 1024;
    expect(await ray.get(keeper.keep.remote(new Float64Array(n).fill(5)))).toBe(n);
    await collectGarbage();
    await churn(new Float64Array(n), 1);
    expect(await ray.get(keeper.sum.remote())).toBe(5 * n);
    ray.kill(keeper);
  });
});

/** The first element of each array a stream yields (in a frame of its own, so that nothing of it stays reachable). */
async function firstElements(gen: ray.ObjectRefGenerator<Float64Array>): Promise<number[]> {
  const seen: number[] = [];
  for await (const ref of gen) seen.push((await ray.get(ref))[0] as number);
  return seen;
}

describe('streaming', () => {
  test('a generator retried after its worker died does not deliver items twice, and drops the repeats', async () => {
    const base = await settled(() => ray.objectStoreStats().usedBytes);
    const seen = await firstElements(crashOnceStream.options({ numReturns: 'streaming' }).remote(dir, 6, 2));
    expect(fs.existsSync(path.join(dir, 'crashed'))).toBe(true);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    // the repeated items of the second attempt were freed, like the consumed ones
    expect(await settled(() => ray.objectStoreStats().usedBytes)).toBe(base);
  });
});

describe('blocking tasks', () => {
  test('tasks handed back by a worker that blocks in get() run elsewhere, not behind it', async () => {
    // learn that `role` is quick, so that calls to it are pushed to one worker in a batch
    await ray.get(Array.from({ length: 20 }, () => role.remote('noop', '')));
    const file = path.join(dir, 'gate');
    // 'block' waits for a file that only 'write' creates; 'write' went to the same worker
    const blocked = role.remote('block', file);
    const writer = role.remote('write', file);
    const [b, w] = await ray.get([blocked, writer], { timeoutMs: 60_000 });
    expect(b).toMatch(/^unblocked /);
    expect(w).toMatch(/^write /);
  });
});

describe('definitions', () => {
  test('two remote closures with the same source cannot be confused: the second is an error naming the fix', async () => {
    expect(await ray.get(addOne.remote(1))).toBe(2);
    expect(() => addTwo.remote(1)).toThrow(/same source[\s\S]*ray\.remote\(\{ name/);
    expect(await ray.get(addThree.remote(1))).toBe(4);
  });
});
