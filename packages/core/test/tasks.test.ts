import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import {
  add,
  countTo,
  crashAlways,
  crashOnce,
  delayed,
  echo,
  fails,
  failsAfter,
  failsWithCode,
  flaky,
  getNested,
  isRefInside,
  makeRef,
  pair,
  pid,
  spinMarked,
  square,
  sumOfSquares,
  throwsString,
  untilCancelled,
  context,
  catchChild,
  parentOfSlow,
  crashTimes,
  gatedStream,
  endlessStream,
  leavesMark,
  gated,
  handleChecks,
} from './fixtures/tasks';
import { CounterActor } from './fixtures/actors';
import { until } from './helpers/poll';
import { alive } from './helpers/procs';

let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-tasks-'));
  await ray.init({ numCpus: 2, logToDriver: false, objectStoreMemory: 256 * 1024 * 1024 });
});

afterAll(async () => {
  await ray.shutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('tasks', () => {
  test('a task runs in another process and returns its value', async () => {
    expect(await ray.get(square.remote(7))).toBe(49);
    const p = await ray.get(pid.remote());
    expect(p).not.toBe(process.pid);
  });

  test('get of an array returns the values in order', async () => {
    const refs = Array.from({ length: 50 }, (_, i) => add.remote(i, 1));
    expect(await ray.get(refs)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  test('async functions are awaited in the worker', async () => {
    expect(await ray.get(delayed.remote('late', 20))).toBe('late');
  });

  test('values keep their types across processes', async () => {
    const v = {
      n: 1.5,
      big: 2n ** 70n,
      s: 'héllo',
      d: new Date(0),
      m: new Map([['k', [1, 2]]]),
      set: new Set([1]),
      arr: new Int32Array([1, 2, 3]),
      nested: { u: undefined, nul: null },
    };
    expect(await ray.get(echo.remote(v))).toEqual(v);
  });

  test('an ObjectRef argument is resolved to its value before the call', async () => {
    const a = square.remote(3);
    expect(await ray.get(add.remote(a, ray.put(1)))).toBe(10);
  });

  test('refs nested inside arguments stay refs, and the task can get them', async () => {
    const inner = ray.put('inside');
    expect(await ray.get(getNested.remote([inner]))).toBe('inside');
    expect(await ray.get(isRefInside.remote(inner, { r: inner }))).toEqual([false, true]);
  });

  test('a task can submit tasks and wait for them', async () => {
    expect(await ray.get(sumOfSquares.remote(10))).toBe(285);
  });

  test('nested tasks do not deadlock when every CPU is busy with a waiting parent', async () => {
    const parents = Array.from({ length: 4 }, () => sumOfSquares.remote(5));
    expect(await ray.get(parents, { timeoutMs: 60_000 })).toEqual([30, 30, 30, 30]);
  });

  test('numReturns gives one ref per returned value', async () => {
    const [a, b] = pair.remote(4);
    expect(await ray.get(a)).toBe(4);
    expect(await ray.get(b)).toBe('#4');
    const three = echo.options({ numReturns: 3 }).remote([1, 2, 3]);
    expect(three).toHaveLength(3);
    expect(await ray.get(three)).toEqual([1, 2, 3]);
  });

  test('a task returning a ref gives a ref to a ref', async () => {
    const outer = makeRef.remote(5);
    const inner = await ray.get(outer);
    expect(inner).toBeInstanceOf(ray.ObjectRef);
    expect(await ray.get(inner)).toBe(5);
  });

  test('an actor handle passed to a task is an ActorHandle there (instanceof works in workers)', async () => {
    const c = CounterActor.remote();
    expect(await ray.get(handleChecks.remote(c, { h: c }))).toEqual([true, true, false]);
  });

  test('workers are reused: sequential tasks run in the same process', async () => {
    const pids = [];
    for (let i = 0; i < 5; i++) pids.push(await ray.get(pid.remote()));
    expect(new Set(pids).size).toBe(1);
  });

  test('the runtime context tells a task where it runs', async () => {
    const c = await ray.get(context.remote());
    const mine = ray.getRuntimeContext();
    expect(c.jobId).toBe(mine.jobId);
    expect(c.nodeId).toBe(mine.nodeId);
    expect(c.ns).toBe(mine.namespace);
    expect(typeof c.taskId).toBe('string');
    expect(c.actorId).toBeUndefined();
    expect(mine.taskId).toBeUndefined();
  });
});

describe('errors', () => {
  test('a thrown error rejects get with TaskError whose cause is the error, rebuilt', async () => {
    const err = (await ray.get(fails.remote('nope')).catch((e: unknown) => e)) as ray.TaskError;
    expect(err).toBeInstanceOf(ray.TaskError);
    expect(err).toBeInstanceOf(ray.RayError);
    expect(err.functionName).toBe('fails');
    expect(err.pid).toBeGreaterThan(0);
    expect(err.pid).not.toBe(process.pid);
    expect(err.nodeId).toBe(ray.getRuntimeContext().nodeId);
    expect(err.cause).toBeInstanceOf(TypeError);
    expect(err.cause.message).toBe('nope');
    expect(err.cause.stack).toContain('tasks.ts');
    expect(err.message).toContain('TypeError: nope');
  });

  test('error properties such as code travel with the cause', async () => {
    const err = (await ray.get(failsWithCode.remote()).catch((e: unknown) => e)) as ray.TaskError;
    expect((err.cause as Error & { code?: string }).code).toBe('ENOSPC');
  });

  test('throwing a non-Error value still gives a TaskError', async () => {
    const err = (await ray.get(throwsString.remote()).catch((e: unknown) => e)) as ray.TaskError;
    expect(err).toBeInstanceOf(ray.TaskError);
    expect(err.cause.message).toContain('a string, not an Error');
  });

  test('inside a worker, errors from child tasks are tsray errors too (instanceof works there)', async () => {
    expect(await ray.get(catchChild.remote())).toEqual({ isTaskError: true, isRayError: true, causeIsTypeError: true });
  });

  test('a failed argument fails the task that depends on it with the same error', async () => {
    const bad = fails.remote('upstream');
    const err = (await ray.get(add.remote(bad, 1)).catch((e: unknown) => e)) as ray.TaskError;
    expect(err).toBeInstanceOf(ray.TaskError);
    expect(err.cause.message).toBe('upstream');
  });

  test('user errors are not retried unless retryExceptions', async () => {
    const counter = path.join(tmp, 'flaky-no-retry');
    await expect(ray.get(flaky.remote(counter, 2))).rejects.toBeInstanceOf(ray.TaskError);
    expect(fs.readFileSync(counter, 'utf8')).toBe('1');
  });

  test('retryExceptions retries user errors up to maxRetries', async () => {
    const counter = path.join(tmp, 'flaky-retry');
    expect(await ray.get(flaky.options({ retryExceptions: true, maxRetries: 3 }).remote(counter, 3))).toBe(3);
    const named = path.join(tmp, 'flaky-named');
    expect(await ray.get(flaky.options({ retryExceptions: [RangeError], maxRetries: 2 }).remote(named, 2))).toBe(2);
    const other = path.join(tmp, 'flaky-other');
    await expect(ray.get(flaky.options({ retryExceptions: ['TypeError'], maxRetries: 2 }).remote(other, 2))).rejects.toBeInstanceOf(ray.TaskError);
  });

  test('a task whose worker dies is retried', async () => {
    const marker = path.join(tmp, 'crash-once');
    expect(await ray.get(crashOnce.remote(marker))).toMatch(/^survived/);
  });

  test('by default a task whose worker dies is retried 3 times: it succeeds on the 4th run', async () => {
    const counter = path.join(tmp, 'crash-3');
    expect(await ray.get(crashTimes.remote(counter, 3))).toBe(4);
  });

  test('by default a worker dying 4 times fails the task with WorkerCrashedError', async () => {
    const counter = path.join(tmp, 'crash-4');
    const err = await ray.get(crashTimes.remote(counter, 4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ray.WorkerCrashedError);
    expect(fs.readFileSync(counter, 'utf8')).toBe('4');
  });

  test('after maxRetries the task fails with WorkerCrashedError', async () => {
    const err = (await ray.get(crashAlways.options({ maxRetries: 1 }).remote()).catch((e: unknown) => e)) as ray.WorkerCrashedError;
    expect(err).toBeInstanceOf(ray.WorkerCrashedError);
    expect(err.message).toMatch(/crashAlways/);
    expect(err.message).toMatch(/code 3/);
    // the cluster keeps working
    expect(await ray.get(square.remote(2))).toBe(4);
  });
});

describe('get and wait', () => {
  test('get with timeoutMs rejects with GetTimeoutError and the task still finishes', async () => {
    const slow = delayed.remote('done', 400);
    const err = await ray.get(slow, { timeoutMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ray.GetTimeoutError);
    expect(await ray.get(slow)).toBe('done');
  });

  test('wait returns the ready refs first and keeps input order', async () => {
    const slow = delayed.remote('slow', 5000);
    const fast = [square.remote(1), square.remote(2)];
    const [ready, notReady] = await ray.wait([slow, ...fast], { numReturns: 2 });
    expect(ready).toEqual(fast);
    expect(notReady).toEqual([slow]);
  });

  test('wait with a timeout returns what is ready', async () => {
    const slow = delayed.remote('slow', 500);
    const [ready, notReady] = await ray.wait([slow], { timeoutMs: 20 });
    expect(ready).toEqual([]);
    expect(notReady).toEqual([slow]);
  });

  test('a failed task counts as ready in wait', async () => {
    const bad = fails.remote('x');
    const [ready] = await ray.wait([bad]);
    expect(ready).toEqual([bad]);
  });
});

describe('streaming', () => {
  test('an async generator streams refs as values are yielded', async () => {
    const seen: number[] = [];
    for await (const ref of countTo.options({ numReturns: 'streaming' }).remote(5)) seen.push(await ray.get(ref));
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  test('items arrive while the generator still runs (incremental delivery)', async () => {
    const gate = path.join(tmp, 'stream-gate');
    const gen = gatedStream.options({ numReturns: 'streaming' }).remote(gate);
    const first = await gen.next();
    // the generator is blocked until the gate exists: the first item came before it finished
    expect(first.done).toBe(false);
    expect(await ray.get(first.value as ray.ObjectRef<number>)).toBe(0);
    expect(fs.existsSync(gate)).toBe(false);
    fs.writeFileSync(gate, '');
    const rest: number[] = [];
    for await (const ref of gen) rest.push(await ray.get(ref));
    expect(rest).toEqual([1, 2]);
  });

  test('breaking out of a for await loop cancels the streaming task', async () => {
    const marker = path.join(tmp, 'stream-cancelled');
    const seen: number[] = [];
    for await (const ref of endlessStream.options({ numReturns: 'streaming' }).remote(marker)) {
      seen.push(await ray.get(ref));
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([0, 1, 2]);
    await until(() => fs.existsSync(marker), 'the generator to be stopped');
    expect(fs.readFileSync(marker, 'utf8')).toBe('cancelled');
  });

  test('a generator function called without numReturns streaming fails at .remote() saying what to do', () => {
    expect(() => countTo.remote(3)).toThrow("countTo is a generator function: call it with countTo.options({ numReturns: 'streaming' }).remote(...)");
  });

  test('a generator that throws yields a ref holding the error', async () => {
    const got: unknown[] = [];
    for await (const ref of failsAfter.options({ numReturns: 'streaming' }).remote(2)) {
      got.push(await ray.get(ref).catch((e: unknown) => e));
    }
    expect(got.slice(0, 2)).toEqual([0, 1]);
    expect(got[2]).toBeInstanceOf(ray.TaskError);
    expect((got[2] as ray.TaskError).cause).toBeInstanceOf(RangeError);
  });
});

describe('cancel', () => {
  test('a queued task is cancelled before it runs and never runs', async () => {
    const gate = path.join(tmp, 'queued-gate');
    const started = [path.join(tmp, 'queued-b0'), path.join(tmp, 'queued-b1')];
    const blockers = started.map((m) => gated.remote(m, gate));
    await until(() => started.every((m) => fs.existsSync(m)), 'both CPUs to be busy');
    const mark = path.join(tmp, 'queued-ran');
    const queued = leavesMark.remote(mark, 3);
    ray.cancel(queued);
    await expect(ray.get(queued)).rejects.toBeInstanceOf(ray.TaskCancelledError);
    fs.writeFileSync(gate, '');
    await ray.get(blockers);
    // a task submitted after it runs once the CPUs are free: the queue has drained
    const after = path.join(tmp, 'queued-after');
    expect(await ray.get(leavesMark.remote(after, 4))).toBe(4);
    expect(fs.existsSync(after)).toBe(true);
    expect(fs.existsSync(mark)).toBe(false);
  });

  test('a running async task sees its signal aborted and get rejects', async () => {
    const marker = path.join(tmp, 'aborted');
    const ref = untilCancelled.remote(marker);
    await until(() => fs.existsSync(`${marker}.started`), 'the task to start');
    ray.cancel(ref);
    await expect(ray.get(ref)).rejects.toBeInstanceOf(ray.TaskCancelledError);
    await until(() => fs.existsSync(marker), 'the task to see its signal aborted');
    expect(fs.readFileSync(marker, 'utf8')).toBe('aborted');
  });

  test('recursive cancel also cancels the tasks a task submitted', async () => {
    const marker = path.join(tmp, 'child-aborted');
    const parent = parentOfSlow.remote(marker);
    await until(() => fs.existsSync(`${marker}.started`), 'the child task to start');
    ray.cancel(parent, { recursive: true });
    await expect(ray.get(parent)).rejects.toBeInstanceOf(ray.TaskCancelledError);
    await until(() => fs.existsSync(marker), 'the child task to see its signal aborted');
    expect(fs.readFileSync(marker, 'utf8')).toBe('aborted');
  });

  test('force cancel kills a task stuck in synchronous code, without retry', async () => {
    const started = path.join(tmp, 'spin-started');
    const ref = spinMarked.options({ maxRetries: 3 }).remote(started, 60_000);
    await until(() => fs.existsSync(started), 'the task to start');
    const workerPid = Number(fs.readFileSync(started, 'utf8'));
    ray.cancel(ref, { force: true });
    await expect(ray.get(ref, { timeoutMs: 10_000 })).rejects.toBeInstanceOf(ray.TaskCancelledError);
    await until(() => !alive(workerPid), 'the worker to be killed');
    expect(await ray.get(square.remote(5))).toBe(25);
  });
});
