import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { gated, pid } from './fixtures/tasks';
import { until } from './helpers/poll';
import { descendants } from './helpers/procs';

let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-defaults-'));
  // no numCpus: the node gets the machine's cores
  await ray.init({ logToDriver: false });
});

afterAll(async () => {
  await ray.shutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const workerPids = (): number[] =>
  descendants(process.pid).filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(path.join('worker', 'main.js'));
    } catch {
      return false;
    }
  });

test('the node has as many CPUs as the machine has cores', async () => {
  expect((await ray.clusterResources()).CPU).toBe(os.availableParallelism());
});

test('workers are prestarted: one per CPU is running before any task is submitted', async () => {
  await until(() => workerPids().length >= os.availableParallelism(), 'the prestarted workers');
});

test('a task holds 1 CPU while it runs, by default', async () => {
  const total = (await ray.clusterResources()).CPU as number;
  const started = path.join(tmp, 'started');
  const gate = path.join(tmp, 'gate');
  const ref = gated.remote(started, gate);
  await until(() => fs.existsSync(started), 'the task to start');
  await until(async () => (await ray.availableResources()).CPU === total - 1, 'one CPU to be taken');
  fs.writeFileSync(gate, '');
  await ray.get(ref);
  await until(async () => (await ray.availableResources()).CPU === total, 'the CPU to come back');
});

test('sequential tasks reuse a prestarted worker', async () => {
  const before = new Set(workerPids());
  const p1 = await ray.get(pid.remote());
  const p2 = await ray.get(pid.remote());
  expect(p2).toBe(p1);
  expect(before.has(p1)).toBe(true);
});

test('soon after init the node allocates the first 1 GiB of the object store and this driver maps a quarter of the store of it, in the background', async () => {
  const shmem = (p: number | 'self'): number => Number(/RssShmem:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1]) * 1024;
  const raylet = descendants(process.pid).find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(path.join('raylet', 'main.js')));
  expect(raylet).toBeDefined();
  const GiB = 1024 ** 3;
  const capacity = ray.objectStoreStats().capacityBytes;
  // a thread in each process using a quarter of a CPU: slow on a loaded machine, hence the long deadline
  await until(() => ray.objectStoreStats().prefaultedBytes >= Math.min(GiB, capacity), 'the store to be pre-faulted', 100_000);
  expect(ray.objectStoreStats().prefaultedBytes).toBe(Math.min(GiB, capacity));
  const mapped = Math.min(GiB, Math.floor(capacity / 4)) - 1024 * 1024;
  await until(() => shmem('self') >= mapped, 'this driver to map its share of the pre-faulted pages', 100_000);
  // the node manager allocated them without mapping them: they count in no process's RSS until used
  expect(shmem(raylet as number)).toBeLessThan(64 * 1024 * 1024);
});

test('a driver without a namespace gets its own anonymous one', () => {
  const ns = ray.getRuntimeContext().namespace;
  expect(typeof ns).toBe('string');
  expect(ns.length).toBeGreaterThan(0);
});
