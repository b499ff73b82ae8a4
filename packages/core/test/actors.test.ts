import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { BadCtorActor, CallerActor, type Counter, CounterActor, EnvReaderActor, HolderActor, MakerActor, OverlapActor, StreamerActor, callThroughTask } from './fixtures/actors';
import { collectGarbage, until } from './helpers/poll';
import { alive } from './helpers/procs';

let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-actors-'));
  await ray.init({ numCpus: 2, logToDriver: false, namespace: 'actors-test' });
});

afterAll(async () => {
  await ray.shutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('actors', () => {
  test('an actor keeps its state between calls and runs in its own process', async () => {
    const c = CounterActor.remote(10);
    expect(await ray.get(c.inc.remote(5))).toBe(15);
    expect(await ray.get(c.get.remote())).toBe(15);
    const p = await ray.get(c.pid.remote());
    expect(p).not.toBe(process.pid);
    expect(c).toBeInstanceOf(ray.ActorHandle);
    expect(c.className).toBe('Counter');
  });

  test('calls from one caller run in submission order', async () => {
    const c = CounterActor.remote();
    const refs = Array.from({ length: 200 }, () => c.inc.remote(1));
    expect(await ray.get(refs)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });

  test('async methods run one at a time by default', async () => {
    const a = OverlapActor.remote();
    await ray.get(Array.from({ length: 5 }, (_, i) => a.work.remote(i, 20)));
    const s = await ray.get(a.stats.remote());
    expect(s.maxActive).toBe(1);
    expect(s.order).toEqual([0, 1, 2, 3, 4]);
  });

  test('with maxConcurrency > 1 async methods overlap', async () => {
    const a = OverlapActor.options({ maxConcurrency: 4 }).remote();
    await ray.get(Array.from({ length: 8 }, (_, i) => a.work.remote(i, 50)));
    const s = await ray.get(a.stats.remote());
    expect(s.maxActive).toBe(4);
  });

  test('a method error rejects with TaskError and the actor keeps working', async () => {
    const c = CounterActor.remote(1);
    const err = (await ray.get(c.fail.remote('bad input')).catch((e: unknown) => e)) as ray.TaskError;
    expect(err).toBeInstanceOf(ray.TaskError);
    expect(err.functionName).toBe('Counter.fail');
    expect(err.cause).toBeInstanceOf(RangeError);
    expect(await ray.get(c.inc.remote())).toBe(2);
  });

  test('an error in the constructor surfaces on every call as ActorDiedError with the cause', async () => {
    const a = BadCtorActor.remote('cannot build');
    for (let i = 0; i < 2; i++) {
      const err = (await ray.get(a.never.remote()).catch((e: unknown) => e)) as ray.ActorDiedError;
      expect(err).toBeInstanceOf(ray.ActorDiedError);
      expect(err.cause).toBeInstanceOf(ray.TaskError);
      expect(((err.cause as ray.TaskError).cause as Error).message).toBe('cannot build');
    }
  });

  test('actor handles can be passed to tasks and to other actors', async () => {
    const c = CounterActor.remote();
    expect(await ray.get(callThroughTask.remote(c, 3))).toBe(3);
    const caller = CallerActor.remote(c);
    expect(await ray.get(caller.bump.remote(2))).toBe(5);
  });

  test('a handle to an actor made in a worker comes back inside a return value as a handle', async () => {
    const m = MakerActor.options({ numCpus: 0 }).remote();
    const { counter } = await ray.get(m.make.remote());
    expect(String(counter)).toMatch(/^ActorHandle\(Counter, /);
    const [again] = await ray.get(m.again.remote());
    expect(again?.actorId).toBe(counter.actorId);
    expect(await ray.get((again as ray.ActorHandleOf<Counter>).inc.remote(2))).toBe(2);
    expect(typeof again?.inc.remote).toBe('function');
  });

  test('an actor can hold refs it was given and get them later', async () => {
    const h = HolderActor.remote();
    await ray.get(h.keep.remote([ray.put('a'), ray.put({ b: 2 })]));
    expect(await ray.get(h.values.remote())).toEqual(['a', { b: 2 }]);
  });

  test('an actor method can stream values', async () => {
    const s = StreamerActor.remote();
    const out: number[] = [];
    for await (const ref of s.count.options({ numReturns: 'streaming' }).remote(4)) out.push(await ray.get(ref));
    expect(out).toEqual([0, 10, 20, 30]);
  });

  test('runtimeEnv.env of an actor reaches its process', async () => {
    const a = EnvReaderActor.options({ runtimeEnv: { env: { ACTOR_ONLY: 'yes' } } }).remote();
    expect(await ray.get(a.get.remote('ACTOR_ONLY'))).toBe('yes');
    const plain = EnvReaderActor.remote();
    expect(await ray.get(plain.get.remote('ACTOR_ONLY'))).toBeUndefined();
  });

  test('an actor is stopped (its process exits) when the last handle to it is dropped', async () => {
    let a: ray.ActorHandle<InstanceType<typeof import('./fixtures/actors').EnvReader>> | undefined = EnvReaderActor.remote();
    const pid = await ray.get(a.pid.remote());
    expect(alive(pid)).toBe(true);
    a = undefined;
    await until(async () => {
      await collectGarbage();
      return !alive(pid);
    }, 'the actor process to exit');
  });

  test('the runtime context in an actor names the actor', async () => {
    const c = CounterActor.remote();
    const ids = await ray.get(c.ids.remote());
    expect(ids.actorId).toBe(c.actorId);
    expect(typeof ids.taskId).toBe('string');
  });
});

describe('named actors', () => {
  test('getActor finds a named actor in the namespace', async () => {
    const c = CounterActor.options({ name: 'shared-counter' }).remote(7);
    await ray.get(c.get.remote());
    const same = await ray.getActor<InstanceType<typeof import('./fixtures/actors').Counter>>('shared-counter');
    expect(await ray.get(same.inc.remote(1))).toBe(8);
    expect(await ray.listNamedActors()).toContain('shared-counter');
  });

  test('a second actor with the same name fails with ActorNameTakenError', async () => {
    const first = CounterActor.options({ name: 'unique-name' }).remote();
    await ray.get(first.get.remote());
    const dup = CounterActor.options({ name: 'unique-name' }).remote();
    const err = await ray.get(dup.get.remote()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ray.ActorNameTakenError);
    expect((err as Error).message).toContain("'unique-name'");
  });

  test('getIfExists returns the existing actor', async () => {
    const a = CounterActor.options({ name: 'get-or-create' }).remote(100);
    await ray.get(a.inc.remote(1));
    const b = CounterActor.options({ name: 'get-or-create', getIfExists: true }).remote(0);
    expect(await ray.get(b.get.remote())).toBe(101);
  });

  test('names are per namespace', async () => {
    const a = CounterActor.options({ name: 'ns-name', namespace: 'other' }).remote(1);
    await ray.get(a.get.remote());
    await expect(ray.getActor('ns-name')).rejects.toBeInstanceOf(ray.ActorNotFoundError);
    const found = await ray.getActor<InstanceType<typeof import('./fixtures/actors').Counter>>('ns-name', { namespace: 'other' });
    expect(await ray.get(found.get.remote())).toBe(1);
    const all = await ray.listNamedActors(true);
    expect(all).toContainEqual({ name: 'ns-name', namespace: 'other' });
  });

  test('getActor of a missing name rejects with ActorNotFoundError', async () => {
    const err = await ray.getActor('no-such-actor').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ray.ActorNotFoundError);
    expect((err as Error).message).toContain("'no-such-actor'");
  });
});

describe('actor lifetime', () => {
  test('kill ends the actor: pending and later calls fail with ActorDiedError', async () => {
    const c = CounterActor.options({ name: 'to-kill' }).remote();
    await ray.get(c.get.remote());
    const slow = c.slowInc.remote(5000);
    ray.kill(c);
    await expect(ray.get(slow)).rejects.toBeInstanceOf(ray.ActorDiedError);
    await expect(ray.get(c.get.remote())).rejects.toBeInstanceOf(ray.ActorDiedError);
    await until(async () => !(await ray.listNamedActors()).includes('to-kill'), 'the name to be released');
  });

  test('an actor whose process dies restarts up to maxRestarts', async () => {
    const c = CounterActor.options({ maxRestarts: 1 }).remote(5);
    const pid1 = await ray.get(c.pid.remote());
    expect(await ray.get(c.restarted.remote())).toBe(false);
    await expect(ray.get(c.exit.remote())).rejects.toBeInstanceOf(ray.ActorDiedError);
    // state is rebuilt by the constructor, in a new process
    expect(await ray.get(c.get.remote())).toBe(5);
    expect(await ray.get(c.pid.remote())).not.toBe(pid1);
    expect(await ray.get(c.restarted.remote())).toBe(true);
    await expect(ray.get(c.exit.remote())).rejects.toBeInstanceOf(ray.ActorDiedError);
    const err = (await ray.get(c.get.remote()).catch((e: unknown) => e)) as ray.ActorDiedError;
    expect(err).toBeInstanceOf(ray.ActorDiedError);
    expect(err.message).toMatch(/no restarts left/);
  });

  test('with maxTaskRetries a call running when the actor died is retried after the restart', async () => {
    const c = CounterActor.options({ maxRestarts: 1, maxTaskRetries: 1 }).remote(0);
    await ray.get(c.get.remote());
    const pid1 = await ray.get(c.pid.remote());
    const started = path.join(tmp, `marked-${Date.now()}`);
    const slow = c.markedInc.remote(started, 1000);
    await until(() => fs.existsSync(started), 'the call to start');
    fs.rmSync(started);
    process.kill(pid1, 'SIGKILL');
    expect(await ray.get(slow)).toBe(1);
  });

  test('kill with noRestart: false lets the actor restart', async () => {
    const c = CounterActor.options({ maxRestarts: 1 }).remote(3);
    const pid1 = await ray.get(c.pid.remote());
    ray.kill(c, { noRestart: false });
    await until(async () => (await ray.get(c.pid.remote()).catch(() => pid1)) !== pid1, 'the actor to restart');
    expect(await ray.get(c.get.remote())).toBe(3);
  });
});
