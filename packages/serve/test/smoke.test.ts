import * as ray from '@tsray/core';
import * as serve from '@tsray/serve';
import { Adder, Ingress, hello } from './fixtures/apps';

beforeAll(async () => {
  await ray.init({ numCpus: 4, logToDriver: false });
});
afterAll(async () => {
  await serve.shutdown();
  await ray.shutdown();
});

test('smoke', async () => {
  const h = await serve.run(Adder.bind(10), { name: 'adder', routePrefix: '/adder' });
  expect(await h.add.remote(1)).toBe(11);
  const r = await fetch('http://127.0.0.1:8000/adder/x?y=1');
  expect(await r.json()).toEqual({ method: 'GET', path: '/adder/x', query: { y: '1' } });
  const ing = await serve.run(Ingress.bind(Adder.bind(5)), { name: 'ing', routePrefix: '/ing' });
  expect(await (await fetch('http://127.0.0.1:8000/ing?x=1')).json()).toEqual({ y: 11 });
  expect(await ing.twice.remote(2)).toBe(12);
  const f = await serve.run(hello.bind(), { name: 'fn', routePrefix: '/hello' });
  expect(await f.remote('you')).toBe('hello you');
  expect(await (await fetch('http://127.0.0.1:8000/hello')).text()).toBe('hello over GET');
  console.log(JSON.stringify(await serve.status(), null, 1).slice(0, 2000));
});
