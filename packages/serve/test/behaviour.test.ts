import * as http from 'node:http';
import * as ray from '@tsray/core';
import * as serve from '@tsray/serve';
import { Multi, Scaled } from './fixtures/apps';
import { until } from './helpers';

const PORT = 18432;

beforeAll(async () => {
  await ray.init({ numCpus: 4, logToDriver: false });
}, 60_000);
afterAll(async () => {
  await serve.shutdown();
  await ray.shutdown();
});

describe('bad input', () => {
  test('an invalid deployment option fails at serve.deployment() naming the option', () => {
    class M {
      call(): number {
        return 1;
      }
    }
    expect(() => serve.deployment({ numReplicas: -1 }, M)).toThrow("serve.deployment() options.numReplicas must be a whole number ≥ 0, got -1");
    expect(() => serve.deployment({ maxOngoingRequest: 5 } as unknown as serve.DeploymentOptions, M)).toThrow(/unknown serve.deployment\(\) option 'maxOngoingRequest'; the options are: name, numReplicas, maxOngoingRequests/);
    expect(() => serve.deployment({ autoscalingConfig: { minReplicas: 3, maxReplicas: 2 } }, M)).toThrow('serve.deployment() options.autoscalingConfig.maxReplicas (2) must be at least minReplicas (3)');
    expect(() => serve.deployment({ numReplicas: 2, autoscalingConfig: {} }, M)).toThrow(/numReplicas \(2\) and autoscalingConfig cannot both be set/);
    expect(() => serve.deployment({ rayActorOptions: { numCpu: 1 } } as unknown as serve.DeploymentOptions, M)).toThrow(/unknown serve.deployment\(\) rayActorOptions option 'numCpu'; the options are: numCpus, numGpus, resources, runtimeEnv/);
    expect(() => serve.deployment({ maxQueuedRequests: -2 }, M)).toThrow(/maxQueuedRequests must be a whole number ≥ 0 \(or -1\), got -2/);
    expect(() => serve.batch({ maxBatchSize: 0 }, async (xs: number[]) => xs)).toThrow('serve.batch() maxBatchSize must be a whole number ≥ 1, got 0');
  });

  test('a deployment made inside a function that captures a variable fails at serve.deployment() naming it', () => {
    const secret = 42;
    expect(() =>
      serve.deployment(
        {},
        class Capturing {
          call(): number {
            return secret;
          }
        },
      ),
    ).toThrow(/secret/);
  });

  test('a port in use gives a clear error at start, and Serve can start afterwards on a free port', async () => {
    const blocker = http.createServer(() => undefined);
    await new Promise<void>((r) => blocker.listen(PORT, '127.0.0.1', () => r()));
    try {
      await expect(serve.start({ http: { port: PORT } })).rejects.toThrow(`Serve's HTTP proxy cannot listen on 127.0.0.1:${PORT}: the port is in use; stop what uses it, or pass serve.start({ http: { port } }) with another port`);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
    await until(async () => !(await ray.listNamedActors(true)).some((a) => a.name === 'SERVE_CONTROLLER'), 'the failed controller to go');
    await serve.start({ http: { port: PORT } });
    expect((await serve.status()).proxies).toEqual({ '127.0.0.1': 'HEALTHY' });
  });
});

describe('autoscaling', () => {
  test('from zero: the first request cold-starts a replica within 3 s; a burst scales up, and idle scales back to zero', async () => {
    const h = await serve.run(Scaled.bind(), { name: 'scaled', routePrefix: null });
    const replicas = async (): Promise<number> => (await serve.status()).applications.scaled?.deployments.Scaled?.replicaStates.RUNNING ?? 0;
    expect(await replicas()).toBe(0);
    const t0 = Date.now();
    await h.work.remote(1);
    expect(Date.now() - t0).toBeLessThan(3000);
    let peak = 0;
    const burst = Promise.all(Array.from({ length: 6 }, () => h.work.remote(2500)));
    await until(async () => {
      peak = Math.max(peak, await replicas());
      return peak >= 3;
    }, 'scaling up to 3 replicas');
    await burst;
    await until(async () => (await replicas()) === 0, 'scaling back to zero', 30_000);
  });
});

describe('multiplexing', () => {
  test('the model id comes from the header or the handle option; requests for a loaded model prefer its replica', async () => {
    await serve.start({ http: { port: PORT } });
    const h = await serve.run(Multi.bind(), { name: 'multi', routePrefix: '/multi' });
    const r = await fetch(`http://127.0.0.1:${PORT}/multi`, { headers: { serve_multiplexed_model_id: 'm1' } });
    const first = (await r.json()) as { model: string; header: string; pid: number };
    expect(first).toMatchObject({ model: 'm1', header: 'm1' });
    // once the controller has seen where m1 is loaded, m1's requests go there
    let holder: number | undefined;
    await until(async () => {
      holder = (await serve.status()).applications.multi?.deployments.Multi?.replicas.find((x) => x.models.includes('m1'))?.pid;
      return holder !== undefined;
    }, 'the controller to see m1 loaded');
    expect(holder).toBe(first.pid);
    const rs: Array<{ model: string; pid: number }> = [];
    for (let i = 0; i < 10; i++) rs.push(await h.options({ multiplexedModelId: 'm1' }).which.remote());
    expect(rs.map((x) => x.pid)).toEqual(Array.from({ length: 10 }, () => first.pid));
    expect(rs[0]?.model).toBe('m1');
    await expect(h.which.remote()).rejects.toThrow(/no multiplexed model id/);
  });
});
