import * as ray from '@tsray/core';
import { defineActorInside, defineCapturing, defineInside, defineWithEval, named } from './fixtures/definitions';

beforeAll(async () => {
  await ray.init({ numCpus: 1, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
});

test('a remote function defined inside a function is shipped by value and runs', async () => {
  expect(await ray.get(defineInside().remote(2))).toBe(6);
});

test('a remote function made by eval has no module file: it ships by value and require resolves from the working directory', async () => {
  expect(await ray.get(defineWithEval().remote())).toBe('[shipped]');
});

test('an actor class defined inside a function is shipped by value and runs', async () => {
  const a = defineActorInside().remote();
  expect(await ray.get(a.ping.remote())).toBe('pong');
});

test('a definition inside a function that uses its parameter fails at ray.remote() and says why', () => {
  let err: unknown;
  try {
    defineCapturing(1);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ray.RemoteDefinitionError);
  const msg = (err as Error).message;
  expect(msg).toContain('the function addOffset given to ray.remote() captures `offset`');
  expect(msg).toContain('made inside defineCapturing at definitions.ts:');
  expect(msg).toContain('top level of a module');
});

test('the name option gives a definition an explicit stable key', async () => {
  expect(await ray.get(named.remote(1))).toBe(101);
});
