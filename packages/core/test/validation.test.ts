import * as ray from '@tsray/core';
import { add, countTo, echo, returnsFunction, square } from './fixtures/tasks';
import { Counter, CounterActor } from './fixtures/actors';

describe('before init', () => {
  test('every verb says that init() is needed', async () => {
    expect(ray.isInitialized()).toBe(false);
    expect(() => ray.put(1)).toThrow(ray.NotInitializedError);
    expect(() => square.remote(1)).toThrow(/call `await ray.init\(\)` first/);
    await expect(ray.get([])).rejects.toBeInstanceOf(ray.NotInitializedError);
    await expect(ray.clusterResources()).rejects.toBeInstanceOf(ray.NotInitializedError);
    await expect(ray.shutdown()).resolves.toBeUndefined();
  });

  test('init rejects bad options with a message naming the option', async () => {
    await expect(ray.init({ numCPUs: 2 } as unknown as ray.InitOptions)).rejects.toThrow("unknown init() option 'numCPUs' (did you mean 'numCpus'?)");
    await expect(ray.init({ numCpus: -1 })).rejects.toThrow('options.numCpus must be a non-negative number, got -1');
    await expect(ray.init({ numCpus: Number.NaN })).rejects.toThrow(RangeError);
    await expect(ray.init({ numGpus: 1.5 })).rejects.toThrow('options.numGpus above 1 must be a whole number, got 1.5');
    await expect(ray.init({ resources: { CPU: 4 } })).rejects.toThrow("options.resources cannot set 'CPU'; use options.numCpus");
    await expect(ray.init({ resources: { custom: -1 } })).rejects.toThrow('options.resources.custom must be a non-negative number, got -1');
    await expect(ray.init({ objectStoreMemory: 10 })).rejects.toThrow(/at least 1 MiB/);
    await expect(ray.init({ runtimeEnv: { env: { A: 1 } } } as unknown as ray.InitOptions)).rejects.toThrow('options.runtimeEnv.env.A must be a string, got 1');
    await expect(ray.init({ address: 'not an address' })).rejects.toThrow(/HOST:PORT/);
    await expect(ray.init('fast' as unknown as ray.InitOptions)).rejects.toThrow('init() options must be an object, got string');
    expect(ray.isInitialized()).toBe(false);
  });

  test('init rejects a TSRAY_PREFAULT that is not a number of bytes before starting anything', async () => {
    process.env.TSRAY_PREFAULT = '1G';
    try {
      await expect(ray.init()).rejects.toThrow("TSRAY_PREFAULT must be a whole number of bytes of the object store to fault in ahead of use (0 turns it off), got '1G'");
    } finally {
      delete process.env.TSRAY_PREFAULT;
    }
    expect(ray.isInitialized()).toBe(false);
  });
});

describe('after init', () => {
  beforeAll(async () => {
    await ray.init({ numCpus: 2, logToDriver: false });
  });
  afterAll(async () => {
    await ray.shutdown();
  });

  test('a second init fails, unless ignoreReinitError', async () => {
    await expect(ray.init()).rejects.toThrow(/already initialized/);
    await expect(ray.init({ ignoreReinitError: true })).resolves.toBeUndefined();
  });

  test('remote rejects what is not a function or class, and bad options', () => {
    expect(() => ray.remote(42 as unknown as () => void)).toThrow('remote() takes a function or a class, got 42');
    expect(() => ray.remote({ numCpus: -2 }, () => 1)).toThrow('options.numCpus must be a non-negative number, got -2');
    expect(() => ray.remote({ maxRetries: 1.5 }, () => 1)).toThrow('options.maxRetries must be an integer >= -1, got 1.5');
    expect(() => ray.remote({ num_cpus: 1 } as unknown as ray.TaskOptions, () => 1)).toThrow("unknown remote function option 'num_cpus' (did you mean 'numCpus'?)");
    expect(() => square.options({ numReturns: -1 })).toThrow("options.numReturns must be an integer >= 1 or 'streaming', got -1");
    expect(() => square.options({ numReturns: 0 })).toThrow("options.numReturns must be an integer >= 1 or 'streaming', got 0");
    expect(() => square.options({ numReturns: 'many' as unknown as number })).toThrow("options.numReturns must be an integer >= 1 or 'streaming', got \"many\"");
    expect(() => square.options({ numCpus: 'two' as unknown as number })).toThrow('options.numCpus must be a non-negative number, got "two"');
    expect(() => square.options({ timeout: 1 } as unknown as ray.TaskOptions)).toThrow(
      "unknown remote function option 'timeout'; valid options: numCpus, numGpus, memory, resources, maxRetries, retryExceptions, name, runtimeEnv, numReturns",
    );
    expect(() => square.options({ retryExceptions: 'yes' as unknown as boolean })).toThrow(/retryExceptions must be a boolean or a list/);
    expect(() => CounterActor.options({ lifetime: 'forever' as 'detached' })).toThrow("options.lifetime must be 'detached' or 'non_detached', got \"forever\"");
    expect(() => CounterActor.options({ maxConcurrency: 0 })).toThrow('options.maxConcurrency must be an integer >= 1, got 0');
    expect(() => CounterActor.options({ getIfExists: true })).toThrow('options.getIfExists needs options.name');
  });

  test('runtimeEnv takes env, workingDir and excludes, and names what is wrong with them', () => {
    const bad = (runtimeEnv: unknown): (() => unknown) => () => square.options({ runtimeEnv } as unknown as ray.TaskOptions);
    expect(bad({ working_dir: '.' })).toThrow("unknown runtimeEnv field 'working_dir' (did you mean 'workingDir'?); supported: env, workingDir, excludes");
    expect(bad({ pip: ['x'] })).toThrow("unknown runtimeEnv field 'pip'; supported: env, workingDir, excludes");
    expect(bad('./src')).toThrow("options.runtimeEnv must be an object like { env: {...}, workingDir: './src' }, got \"./src\"");
    expect(bad({ workingDir: 3 })).toThrow('options.runtimeEnv.workingDir must be the path of a directory (a non-empty string), got 3');
    expect(bad({ workingDir: '' })).toThrow('options.runtimeEnv.workingDir must be the path of a directory (a non-empty string), got ""');
    expect(bad({ workingDir: '.', excludes: 'node_modules' })).toThrow("options.runtimeEnv.excludes must be an array of glob patterns like ['node_modules', '*.log'], got \"node_modules\"");
    expect(bad({ workingDir: '.', excludes: ['ok', 7] })).toThrow('options.runtimeEnv.excludes[1] must be a non-empty glob pattern, got 7');
    expect(bad({ excludes: ['node_modules'] })).toThrow('options.runtimeEnv.excludes only applies with options.runtimeEnv.workingDir: give the directory too');
    expect(() => CounterActor.options({ runtimeEnv: { workingDir: 5 } } as unknown as ray.ActorOptions)).toThrow('options.runtimeEnv.workingDir must be the path of a directory');
    expect(() => square.options({ runtimeEnv: { workingDir: '.', excludes: ['node_modules'], env: { A: 'b' } } })).not.toThrow();
  });

  test('remote() explains what it takes', () => {
    expect(() => ray.remote({ numCpus: 1 }, undefined as unknown as () => void)).toThrow('remote(options, fn) takes a function or a class as its second argument, got undefined');
    expect(() => ray.remote({ numCpus: 1 } as unknown as () => void)).toThrow('remote() takes a function or a class, got an object; to give options, call remote(options, fn)');
    expect(() => ray.remote(new Map() as unknown as () => void)).toThrow('remote() takes a function or a class, got an instance of Map');
    expect(() => (ray.remote as (...a: unknown[]) => unknown)()).toThrow('remote() takes a function or a class, or (options, function or class); got 0 arguments');
  });

  test('an actor class with a method named like a handle member is rejected at remote()', () => {
    class Clash {
      actorId(): string {
        return 'mine';
      }
      toString(): string {
        return 'clash';
      }
    }
    expect(() => ray.remote(Clash)).toThrow(
      "the actor class Clash has method(s) 'actorId', 'toString', which clash with members of its ActorHandle (actorId, className, toString); rename them",
    );
  });

  test('a generator function without numReturns streaming fails at .remote()', () => {
    expect(() => countTo.remote(2)).toThrow(/countTo is a generator function: call it with countTo\.options\(\{ numReturns: 'streaming' \}\)/);
    expect(countTo.options({ numReturns: 'streaming' }).remote(0)).toBeInstanceOf(ray.ObjectRefGenerator);
  });

  test('every public function rejects unknown and mistyped options, naming the key and the valid ones', async () => {
    const r = square.remote(2);
    await expect(ray.get(r, { timeout: 5 } as unknown as ray.GetOptions)).rejects.toThrow("unknown get() option 'timeout' (did you mean 'timeoutMs'?); valid options: timeoutMs");
    await expect(ray.get(r, 5 as unknown as ray.GetOptions)).rejects.toThrow('get() options must be an object, got number');
    await expect(ray.get(r, { timeoutMs: 'soon' } as unknown as ray.GetOptions)).rejects.toThrow('options.timeoutMs must be a non-negative number, got "soon"');
    await expect(ray.wait([r], { num_returns: 1 } as unknown as ray.WaitOptions)).rejects.toThrow(
      "unknown wait() option 'num_returns' (did you mean 'numReturns'?); valid options: numReturns, timeoutMs, fetchLocal",
    );
    await expect(ray.wait([r], { fetchLocal: 'yes' } as unknown as ray.WaitOptions)).rejects.toThrow('options.fetchLocal must be a boolean, got "yes"');
    await expect(ray.wait([r], { numReturns: 0 })).rejects.toThrow('options.numReturns must be an integer >= 1, got 0');
    await expect(ray.wait([r], { numReturns: 1.5 })).rejects.toThrow('options.numReturns must be an integer >= 1, got 1.5');
    await expect(ray.wait([r], { timeoutMs: -1 })).rejects.toThrow('options.timeoutMs must be a non-negative number, got -1');
    expect(() => ray.cancel(r, { forced: true } as unknown as ray.CancelOptions)).toThrow("unknown cancel() option 'forced' (did you mean 'force'?); valid options: force, recursive");
    expect(() => ray.cancel(r, { force: 1 } as unknown as ray.CancelOptions)).toThrow('options.force must be a boolean, got 1');
    expect(() => ray.cancel([r] as unknown as ray.ObjectRef<number>)).toThrow(/cancel\(\) takes one ObjectRef/);
    const c = CounterActor.remote();
    expect(() => ray.kill(c, { no_restart: true } as unknown as ray.KillOptions)).toThrow("unknown kill() option 'no_restart' (did you mean 'noRestart'?); valid options: noRestart");
    expect(() => ray.kill(c, { noRestart: 'no' } as unknown as ray.KillOptions)).toThrow('options.noRestart must be a boolean, got "no"');
    await expect(ray.getActor('x', { ns: 'a' } as unknown as ray.GetActorOptions)).rejects.toThrow("unknown getActor() option 'ns'; valid options: namespace");
    await expect(ray.getActor('x', { namespace: 3 } as unknown as ray.GetActorOptions)).rejects.toThrow('options.namespace must be a non-empty string, got 3');
    expect(() => c.inc.options({ numReturn: 2 } as unknown as ray.ActorMethodOptions)).toThrow(
      "unknown actor method option 'numReturn' (did you mean 'numReturns'?); valid options: numReturns, name",
    );
    expect(() => c.inc.options({ numReturns: 0 })).toThrow("options.numReturns must be an integer >= 1 or 'streaming', got 0");
    expect(() => c.inc.options('fast' as unknown as ray.ActorMethodOptions)).toThrow('actor method options must be an object, got string');
    expect(() => CounterActor.options({ max_restarts: 1 } as unknown as ray.ActorOptions)).toThrow("unknown actor option 'max_restarts' (did you mean 'maxRestarts'?)");
    // valid options still work, and merge
    expect(await ray.get(c.inc.options({ name: 'named-inc' }).remote(2))).toBe(2);
    expect(await ray.get(r, { timeoutMs: 10_000 })).toBe(4);
    expect(await ray.wait([r], { numReturns: 1, timeoutMs: 1000, fetchLocal: false })).toEqual([[r], []]);
  });

  test('wait([]) resolves to [[], []]', async () => {
    await expect(ray.wait([])).resolves.toEqual([[], []]);
  });

  test('bad values are described by their class in messages', async () => {
    await expect(ray.get(new Date() as unknown as ray.ObjectRef<number>)).rejects.toThrow('get() takes an ObjectRef or an array of ObjectRefs, got an instance of Date');
    expect(() => ray.kill(new Counter() as unknown as ray.ActorHandle)).toThrow('kill() takes an ActorHandle, got an instance of Counter');
  });

  test('get, wait and put reject bad arguments with TypeError or RangeError', async () => {
    await expect(ray.get(42 as unknown as ray.ObjectRef<number>)).rejects.toThrow('get() takes an ObjectRef or an array of ObjectRefs, got 42');
    await expect(ray.get([square.remote(1), 'x'] as unknown as ray.ObjectRef<number>[])).rejects.toThrow('get() takes an array of ObjectRefs; element 1 is "x"');
    await expect(ray.get(square.remote(1), { timeoutMs: -5 })).rejects.toThrow('options.timeoutMs must be a non-negative number, got -5');
    await expect(ray.wait('refs' as unknown as ray.ObjectRef<number>[])).rejects.toThrow(TypeError);
    const r = square.remote(2);
    await expect(ray.wait([r], { numReturns: 2 })).rejects.toThrow('options.numReturns (2) is more than the number of refs (1)');
    await expect(ray.wait([r, r])).rejects.toThrow(/duplicates/);
    expect(() => ray.put(r)).toThrow(/put\(\) of an ObjectRef is not allowed/);
    expect(() => ray.kill({} as ray.ActorHandle)).toThrow('kill() takes an ActorHandle, got an object');
    await expect(ray.getActor('')).rejects.toThrow('getActor() takes a non-empty name, got ""');
  });

  test('arguments that cannot be serialized fail at .remote() naming the argument', () => {
    expect(() => add.remote(1, (() => 2) as unknown as number)).toThrow(/argument 1 of add cannot be serialized: the function cannot be sent/);
    expect(() => echo.remote(Promise.resolve(1))).toThrow(/argument 0 of echo cannot be serialized: a Promise cannot be sent to another process; await it first/);
    expect(() => echo.remote(Symbol('s'))).toThrow(/a Symbol cannot be sent/);
    expect(() => echo.remote(new Set([1]).values())).toThrow(/argument 0 of echo cannot be serialized: a Set Iterator cannot be sent to another process/);
  });

  test('a return value that cannot be serialized fails the task with a clear cause', async () => {
    const err = (await ray.get(returnsFunction.remote()).catch((e: unknown) => e)) as ray.TaskError;
    expect(err).toBeInstanceOf(ray.TaskError);
    expect(err.cause.message).toMatch(/cannot be sent to another process/);
  });

  test('after all the bad input the runtime still works', async () => {
    expect(await ray.get(square.remote(9))).toBe(81);
    const c = CounterActor.remote(1);
    expect(await ray.get(c.inc.remote())).toBe(2);
  });
});
