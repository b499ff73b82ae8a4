import * as ray from '@tsray/core';
import { defineActorInside, defineInside, defineWithEval, named } from './fixtures/definitions';

beforeAll(async () => {
  await ray.init({ numCpus: 1, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
});

test('a remote function defined inside a function fails at .remote() and says why', () => {
  const f = defineInside();
  let err: unknown;
  try {
    f.remote(1);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ray.RemoteDefinitionError);
  const msg = (err as Error).message;
  expect(msg).toContain('insideHelper was defined inside defineInside');
  expect(msg).toContain('definitions.ts');
  expect(msg).toContain('top level of a module');
});

test('a remote function made by eval fails at .remote(): it has no module file', () => {
  expect(() => defineWithEval().remote()).toThrow(/evaled was defined in code that has no module file/);
});

test('an actor class defined inside a function fails at .remote()', () => {
  expect(() => defineActorInside().remote()).toThrow(ray.RemoteDefinitionError);
});

test('the name option gives a definition an explicit stable key', async () => {
  expect(await ray.get(named.remote(1))).toBe(101);
});
