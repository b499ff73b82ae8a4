import * as ray from '@tsray/core';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gpuInfo, hold, holdTogether, square, envVar } from './fixtures/tasks';
import { GpuUserActor } from './fixtures/actors';
import { until } from './helpers/poll';

beforeAll(async () => {
  await ray.init({
    numCpus: 3,
    numGpus: 2,
    resources: { custom: 2 },
    logToDriver: false,
    runtimeEnv: { env: { JOB_LEVEL: 'job', OVERRIDE_ME: 'job' } },
  });
});

afterAll(async () => {
  await ray.shutdown();
});

test('cluster resources report what the node was started with', async () => {
  const r = await ray.clusterResources();
  expect(r.CPU).toBe(3);
  expect(r.GPU).toBe(2);
  expect(r.custom).toBe(2);
  const nodes = await ray.nodes();
  expect(nodes).toHaveLength(1);
  expect(nodes[0]?.alive).toBe(true);
  expect(nodes[0]?.nodeId).toBe(ray.getRuntimeContext().nodeId);
});

test('available resources go down while a task holds them', async () => {
  const ref = hold.options({ numCpus: 2, resources: { custom: 1.5 } }).remote(1500);
  await until(async () => (await ray.availableResources()).CPU === 1, 'CPUs to be taken');
  expect((await ray.availableResources()).custom).toBe(0.5);
  await ray.get(ref);
  await until(async () => (await ray.availableResources()).CPU === 3, 'CPUs to come back');
});

test('a task holding GPUs sees exactly its GPU ids', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-gpu-'));
  const a = holdTogether.options({ numGpus: 1 }).remote(dir, 2);
  const b = holdTogether.options({ numGpus: 1 }).remote(dir, 2);
  const [ra, rb] = await ray.get([a, b] as const);
  fs.rmSync(dir, { recursive: true, force: true });
  expect(ra.overlapped && rb.overlapped).toBe(true);
  expect(ra.ids).toHaveLength(1);
  expect(rb.ids).toHaveLength(1);
  expect(new Set([...ra.ids, ...rb.ids])).toEqual(new Set(['0', '1']));
  expect(ra.cuda).toBe(ra.ids[0]);
  expect(rb.cuda).toBe(rb.ids[0]);
  const both = await ray.get(gpuInfo.options({ numGpus: 2 }).remote());
  expect(both.ids.sort()).toEqual(['0', '1']);
  expect(both.cuda?.split(',').sort()).toEqual(['0', '1']);
});

test('a task without GPUs sees none', async () => {
  const r = await ray.get(gpuInfo.remote());
  expect(r.ids).toEqual([]);
  expect(r.cuda).toBeUndefined();
});

test('fractional GPUs pack several tasks on one GPU', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-gpu-'));
  const refs = Array.from({ length: 4 }, () => holdTogether.options({ numGpus: 0.5, numCpus: 0.5 }).remote(dir, 4));
  const got = await ray.get(refs);
  fs.rmSync(dir, { recursive: true, force: true });
  expect(got.every((g) => g.overlapped)).toBe(true);
  const ids = got.map((g) => g.ids[0]);
  // four half-GPU holders fit on two GPUs at once: each id is shared by two
  expect(ids.filter((x) => x === '0')).toHaveLength(2);
  expect(ids.filter((x) => x === '1')).toHaveLength(2);
});

test('actors need a CPU to be placed but hold none while they run', async () => {
  const actors = Array.from({ length: 5 }, () => GpuUserActor.remote());
  await ray.get(actors.map((a) => a.info.remote()));
  expect((await ray.availableResources()).CPU).toBe(3);
  for (const a of actors) ray.kill(a);
});

test('an actor holding a GPU sees its id', async () => {
  const a = GpuUserActor.options({ numGpus: 1 }).remote();
  const info = await ray.get(a.info.remote());
  expect(info.ids).toHaveLength(1);
  expect(info.cuda).toBe(info.ids[0]);
  ray.kill(a);
});

test('a request no node can ever satisfy waits, with a warning naming the resources', async () => {
  const lines: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(String(chunk));
    return (orig as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    const ref = square.options({ numGpus: 4 }).remote(2);
    await until(() => lines.some((l) => l.includes('cannot be scheduled')), 'the warning');
    const warning = lines.find((l) => l.includes('cannot be scheduled')) as string;
    expect(warning).toContain('GPU: 4');
    expect(warning).toContain('node has 2');
    await expect(ray.get(ref, { timeoutMs: 200 })).rejects.toBeInstanceOf(ray.GetTimeoutError);
    ray.cancel(ref);
  } finally {
    process.stderr.write = orig;
  }
});

test('the job environment reaches tasks, and task environments override it', async () => {
  expect(await ray.get(envVar.remote('JOB_LEVEL'))).toBe('job');
  const t = envVar.options({ runtimeEnv: { env: { OVERRIDE_ME: 'task' } } });
  expect(await ray.get(t.remote('OVERRIDE_ME'))).toBe('task');
  expect(await ray.get(t.remote('JOB_LEVEL'))).toBe('job');
  expect(await ray.get(envVar.remote('OVERRIDE_ME'))).toBe('job');
});
