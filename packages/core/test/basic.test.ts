import * as ray from '@tsray/core';
import { CounterActor, add, fails, square } from './fixtures/basic';

beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
});

test('a task runs in another process and returns its value', async () => {
  expect(await ray.get(square.remote(7))).toBe(49);
  expect(await ray.get([1, 2, 3].map((x) => add.remote(x, 1)))).toEqual([2, 3, 4]);
});

test('an error thrown by a task rejects get with TaskError carrying the cause', async () => {
  const err = await ray.get(fails.remote('nope')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ray.TaskError);
  expect((err as ray.TaskError).cause).toBeInstanceOf(TypeError);
  expect((err as ray.TaskError).cause.message).toBe('nope');
});

test('an actor keeps state between calls', async () => {
  const c = CounterActor.remote(10);
  expect(await ray.get(c.inc.remote(5))).toBe(15);
  expect(await ray.get(c.get.remote())).toBe(15);
});
