import * as ray from '@tsray/core';
import * as serve from '@tsray/serve';
import { Adder, Batched, Broken, Ingress, Narrow, Slow, V1, V2, hello } from './fixtures/apps';
import { alive, until } from './helpers';

const PORT = 18431;
const url = (p: string): string => `http://127.0.0.1:${PORT}${p}`;

beforeAll(async () => {
  await ray.init({ numCpus: 4, logToDriver: false });
  await serve.start({ http: { port: PORT } });
}, 60_000);
afterAll(async () => {
  await serve.shutdown();
  await ray.shutdown();
});

const pidsOf = async (app: string, dep: string): Promise<number[]> =>
  ((await serve.status()).applications[app]?.deployments[dep]?.replicas ?? []).filter((r) => r.state === 'RUNNING').map((r) => r.pid as number);

describe('handles and HTTP', () => {
  beforeAll(async () => {
    await serve.run(Adder.bind(10), { name: 'adder', routePrefix: '/adder' });
  }, 60_000);

  test('a handle calls any method on a replica; two replicas share the calls', async () => {
    const h = await serve.getAppHandle<serve.HandleOf<typeof Adder> extends serve.DeploymentHandle<infer T> ? T : never>('adder');
    expect(await h.add.remote(1)).toBe(11);
    const r = h.add.remote(5);
    expect(r).toBeInstanceOf(serve.DeploymentResponse);
    expect(await r.result({ timeoutMs: 10_000 })).toBe(15);
    const pids = new Set(await Promise.all(Array.from({ length: 40 }, () => h.pid.remote())));
    expect(pids.size).toBe(2);
    expect([...pids].sort()).toEqual((await pidsOf('adder', 'Adder')).sort());
  });

  test('HTTP: JSON in and out, text, bytes, query, routes and health', async () => {
    const post = await fetch(url('/adder/predict'), { method: 'POST', body: JSON.stringify({ x: [1, 2] }), headers: { 'content-type': 'application/json' } });
    expect(post.status).toBe(200);
    expect(await post.json()).toEqual({ got: { x: [1, 2] }, offset: 10, path: '/adder/predict' });
    const get = await fetch(url('/adder?a=1&a=2&b=x'));
    expect(await get.json()).toEqual({ method: 'GET', path: '/adder', query: { a: ['1', '2'], b: 'x' } });
    const text = await fetch(url('/adder/text?name=ann'));
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await text.text()).toBe('hello ann');
    const bytes = await fetch(url('/adder/bytes'));
    expect(bytes.headers.get('content-type')).toBe('application/octet-stream');
    expect([...new Uint8Array(await bytes.arrayBuffer())]).toEqual([1, 2, 3]);
    expect(await (await fetch(url('/-/routes'))).json()).toMatchObject({ '/adder': 'adder' });
    const health = await fetch(url('/-/healthz'));
    expect(health.status).toBe(200);
  });

  test('HTTP errors: unknown route 404, malformed JSON 400, user exception 500 with an error id', async () => {
    const missing = await fetch(url('/nowhere'));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toMatch(/no application is routed at \/nowhere/);
    const bad = await fetch(url('/adder/x'), { method: 'POST', body: '{"x": 1,' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/not valid JSON/);
    const fail = await fetch(url('/adder/fail'));
    expect(fail.status).toBe(500);
    const body = (await fail.json()) as { error: string; errorId: string };
    expect(body.error).toBe('RangeError: the user code failed');
    expect(body.errorId).toMatch(/^[0-9a-f]{8,}$/);
  });

  test("a user exception through a handle rejects with the user's error as cause", async () => {
    const h = await serve.getDeploymentHandle<{ nope(): Promise<void> }>('Adder', 'adder');
    const e = (await h.nope.remote().then(
      () => null,
      (x: unknown) => x,
    )) as ray.TaskError;
    expect(e).toBeInstanceOf(ray.TaskError);
    expect(e.cause.message).toMatch(/deployment 'Adder' \(application 'adder'\) has no method 'nope'; its methods are: add, pid, call/);
  });

  test('composition: a bound deployment arrives as a handle, and a response passed to a call is resolved first', async () => {
    const h = await serve.run(Ingress.bind(Adder.options({ name: 'Inner', numReplicas: 1 }).bind(5)), { name: 'composed', routePrefix: '/composed' });
    expect(await h.twice.remote(2)).toBe(12);
    expect(await (await fetch(url('/composed?x=1'))).json()).toEqual({ y: 11 });
    // the longest prefix wins: /composed is not /adder, / matches nothing here
    expect((await fetch(url('/composedx'))).status).toBe(404);
  });

  test('a function deployment takes handle calls and HTTP requests', async () => {
    const f = await serve.run(hello.bind(), { name: 'fn', routePrefix: '/hello' });
    expect(await f.remote('you')).toBe('hello you');
    expect(await (await fetch(url('/hello'))).text()).toBe('hello over GET');
  });
});

describe('batching', () => {
  test('20 concurrent calls with maxBatchSize 5 run in fewer than 20 batches, each caller gets its own result', async () => {
    const h = await serve.run(Batched.bind(), { name: 'batched', routePrefix: null });
    const xs = Array.from({ length: 20 }, (_, i) => i);
    expect(await Promise.all(xs.map((x) => h.square.remote(x)))).toEqual(xs.map((x) => x * x));
    const sizes = await h.batchSizes.remote();
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(20);
    expect(sizes.length).toBeLessThan(20);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(5);
  });

  test('a batch function returning the wrong number of results fails each caller with a clear error', async () => {
    const h = await serve.getAppHandle<serve.HandleOf<typeof Batched> extends serve.DeploymentHandle<infer T> ? T : never>('batched');
    const rs = await Promise.allSettled([1, 2, 3, 4].map((x) => h.wrong.remote(x)));
    for (const r of rs) {
      expect(r.status).toBe('rejected');
      expect(((r as PromiseRejectedResult).reason as ray.TaskError).cause.message).toMatch(/returned 3 results for a batch of 4 requests: it must return an array with one result per item/);
    }
  });
});

describe('replicas: config, health, streaming, capacity', () => {
  let h: serve.HandleOf<typeof Slow>;
  beforeAll(async () => {
    h = await serve.run(Slow.bind(), { name: 'slow', routePrefix: '/slow' });
  }, 60_000);

  test('a userConfig change is applied in place: same replica pid, new config', async () => {
    const before = await h.work.remote(1);
    expect(before.factor).toBe(1);
    await serve.run(Slow.options({ userConfig: { factor: 2 } }).bind(), { name: 'slow', routePrefix: '/slow' });
    const after = await h.work.remote(1);
    expect(after).toEqual({ factor: 2, pid: before.pid });
  });

  test('a streaming response arrives item by item, through a handle and over HTTP (chunked)', async () => {
    const t0 = Date.now();
    const times: number[] = [];
    const items: number[] = [];
    for await (const x of h.options({ stream: true }).count.remote(5)) {
      items.push(x);
      times.push(Date.now() - t0);
    }
    expect(items).toEqual([0, 1, 2, 3, 4]);
    expect((times[4] as number) - (times[0] as number)).toBeGreaterThanOrEqual(60);
    const res = await fetch(url('/slow?n=3'));
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const chunks: Array<{ text: string; t: number }> = [];
    const dec = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push({ text: dec.decode(value), t: Date.now() });
    }
    expect(chunks.map((c) => c.text).join('')).toBe('chunk 0\nchunk 1\nchunk 2\n');
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect((chunks[chunks.length - 1] as { t: number }).t - (chunks[0] as { t: number }).t).toBeGreaterThanOrEqual(100);
  });

  test('maxOngoingRequests + maxQueuedRequests: beyond them BackPressureError through a handle, 503 over HTTP', async () => {
    const n = await serve.run(Narrow.bind(), { name: 'narrow', routePrefix: '/narrow' });
    const rs = await Promise.allSettled([n.remote(400), n.remote(400), n.remote(400)]);
    expect(rs.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    const rejected = rs.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(serve.BackPressureError);
    expect((rejected.reason as Error).message).toMatch(/maxQueuedRequests 1/);
    const codes = await Promise.all([0, 1, 2].map(() => fetch(url('/narrow?ms=400')).then((r) => r.status)));
    expect(codes.sort()).toEqual([200, 200, 503]);
  });

  test('a failing checkHealth replaces its replica', async () => {
    const pid = await h.breakHealth.remote();
    await until(async () => {
      const pids = await pidsOf('slow', 'Slow');
      return pids.length === 1 && pids[0] !== pid;
    }, 'a new replica');
    await until(() => !alive(pid), 'the unhealthy replica to exit');
    expect((await h.work.remote(1)).pid).not.toBe(pid);
  });
});

describe('redeploys and failures', () => {
  test('a code change replaces the replicas a few at a time with no failed request during the roll', async () => {
    const h = await serve.run(V1.bind(), { name: 'roll', routePrefix: null });
    const oldPids = await pidsOf('roll', 'versioned');
    expect(oldPids).toHaveLength(2);
    let stop = false;
    const seen: number[] = [];
    const errors: unknown[] = [];
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          seen.push(((await h.remote()) as { v: number }).v);
        } catch (e) {
          errors.push(e);
        }
      }
    });
    await until(() => seen.length > 20, 'load on v1');
    await serve.run(V2.bind(), { name: 'roll', routePrefix: null });
    const mark = seen.length;
    await until(() => seen.length > mark + 20, 'load on v2');
    stop = true;
    await Promise.all(loops);
    expect(errors).toEqual([]);
    expect(seen.slice(-10).every((v) => v === 2)).toBe(true);
    const newPids = await pidsOf('roll', 'versioned');
    expect(newPids).toHaveLength(2);
    for (const p of oldPids) expect(newPids).not.toContain(p);
    await until(() => oldPids.every((p) => !alive(p)), 'the old replicas to exit');
  });

  test("killing a replica's process under load loses no request", async () => {
    const h = await serve.getAppHandle<serve.HandleOf<typeof Adder> extends serve.DeploymentHandle<infer T> ? T : never>('adder');
    const [victim] = await pidsOf('adder', 'Adder');
    let stop = false;
    let done = 0;
    const errors: unknown[] = [];
    const loops = Array.from({ length: 6 }, async () => {
      while (!stop) {
        try {
          await h.add.remote(1);
          done++;
        } catch (e) {
          errors.push(e);
        }
      }
    });
    await until(() => done > 50, 'load');
    process.kill(victim as number, 'SIGKILL');
    const mark = done;
    await until(async () => done > mark + 100 && (await pidsOf('adder', 'Adder')).length === 2, 'load to go on and the replica to be replaced');
    stop = true;
    await Promise.all(loops);
    expect(errors).toEqual([]);
    expect(await pidsOf('adder', 'Adder')).not.toContain(victim);
  });

  test('a constructor that throws fails serve.run with the error; other applications keep serving', async () => {
    const e = (await serve.run(Broken.bind(), { name: 'broken', routePrefix: '/broken' }).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(serve.DeployFailedError);
    expect(e.message).toMatch(/application 'broken' failed to deploy: deployment 'Broken': a replica failed to start \(3 of 3 tries\): Error: cannot load the model/);
    expect((await serve.status()).applications.broken?.status).toBe('DEPLOY_FAILED');
    expect(await (await serve.getAppHandle<serve.HandleOf<typeof Adder> extends serve.DeploymentHandle<infer T> ? T : never>('adder')).add.remote(1)).toBe(11);
    await serve.delete('broken');
    expect((await serve.status()).applications.broken).toBeUndefined();
  });

  test('serve.delete drains and stops an application; its handle then fails clearly', async () => {
    const h = await serve.getAppHandle<(x: string) => Promise<string>>('fn');
    const pids = await pidsOf('fn', 'hello');
    await serve.delete('fn');
    expect((await serve.status()).applications.fn).toBeUndefined();
    await until(() => pids.every((p) => !alive(p)), 'the replicas to exit');
    await expect(h.remote('x')).rejects.toThrow(/there is no deployment 'hello' in application 'fn'/);
    expect((await fetch(url('/hello'))).status).toBe(404);
  });
});
