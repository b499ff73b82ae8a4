import * as ray from '@tsray/core';
import { add, echo, returnsFunction, square } from './fixtures/tasks';
import { CounterActor } from './fixtures/actors';

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
    expect(() => ray.remote(42 as unknown as () => void)).toThrow('remote() takes a function or a class, got number');
    expect(() => ray.remote({ numCpus: -2 }, () => 1)).toThrow('options.numCpus must be a non-negative number, got -2');
    expect(() => ray.remote({ maxRetries: 1.5 }, () => 1)).toThrow('options.maxRetries must be an integer >= -1, got 1.5');
    expect(() => ray.remote({ num_cpus: 1 } as unknown as ray.TaskOptions, () => 1)).toThrow("unknown remote function option 'num_cpus' (did you mean 'numCpus'?)");
    expect(() => square.options({ numReturns: -1 })).toThrow("options.numReturns must be a non-negative integer or 'streaming', got -1");
    expect(() => square.options({ retryExceptions: 'yes' as unknown as boolean })).toThrow(/retryExceptions must be a boolean or a list/);
    expect(() => CounterActor.options({ lifetime: 'forever' as 'detached' })).toThrow("options.lifetime must be 'detached' or 'non_detached', got \"forever\"");
    expect(() => CounterActor.options({ maxConcurrency: 0 })).toThrow('options.maxConcurrency must be an integer >= 1, got 0');
    expect(() => CounterActor.options({ getIfExists: true })).toThrow('options.getIfExists needs options.name');
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
    expect(() => ray.kill({} as ray.ActorHandle)).toThrow('kill() takes an ActorHandle, got object');
    await expect(ray.getActor('')).rejects.toThrow('getActor() takes a non-empty name, got ""');
  });

  test('arguments that cannot be serialized fail at .remote() naming the argument', () => {
    expect(() => add.remote(1, (() => 2) as unknown as number)).toThrow(/argument 1 of add cannot be serialized: the function cannot be sent/);
    expect(() => echo.remote(Promise.resolve(1))).toThrow(/argument 0 of echo cannot be serialized: a Promise cannot be sent to another process; await it first/);
    expect(() => echo.remote(Symbol('s'))).toThrow(/a Symbol cannot be sent/);
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
