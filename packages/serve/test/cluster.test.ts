import * as ray from '@tsray/core';
import * as serve from '@tsray/serve';
import { Spread } from './fixtures/apps';
import { until } from './helpers';

const PORT = 18434;
let cluster: ray.Cluster;

beforeAll(async () => {
  cluster = await ray.Cluster.start({ head: { numCpus: 1 } });
  await cluster.addNode({ numCpus: 1 });
  await cluster.waitForNodes();
  await ray.init({ address: cluster.address, logToDriver: false });
  await serve.start({ http: { port: PORT } });
}, 60_000);
afterAll(async () => {
  await serve.shutdown();
  await ray.shutdown();
  await cluster?.shutdown();
});

test('replicas on two nodes serve handles and HTTP; when a node dies the others keep answering and its replica comes back when a node joins', async () => {
  const h = await serve.run(Spread.bind(), { name: 'spread', routePrefix: '/spread' });
  const nodesOf = async (): Promise<string[]> => ((await serve.status()).applications.spread?.deployments.Spread?.replicas ?? []).filter((r) => r.state === 'RUNNING').map((r) => r.nodeId as string);
  const nodes = await nodesOf();
  expect(new Set(nodes).size).toBe(2);
  const seen = new Set((await Promise.all(Array.from({ length: 30 }, () => h.where.remote()))).map((w) => w.node));
  expect(seen.size).toBe(2);
  const viaHttp = new Set<string>();
  for (let i = 0; i < 30; i++) viaHttp.add(((await (await fetch(`http://127.0.0.1:${PORT}/spread`)).json()) as { node: string }).node);
  expect(viaHttp.size).toBe(2);

  const worker = cluster.nodes.find((n) => n.nodeId !== cluster.head.nodeId) as ray.ClusterNode;
  await cluster.removeNode(worker);
  // every call is answered meanwhile (a call on the dead node's replica is retried on the other)
  const answers = await Promise.all(Array.from({ length: 20 }, () => h.where.remote()));
  expect(answers.every((a) => a.node === cluster.head.nodeId)).toBe(true);
  await until(async () => (await nodesOf()).every((n) => n === cluster.head.nodeId), 'the dead replica to be dropped');
  // a new node gives the deployment room for its second replica again
  const fresh = await cluster.addNode({ numCpus: 1 });
  await until(async () => (await nodesOf()).includes(fresh.nodeId), 'a replica on the new node', 60_000).catch(async (e: unknown) => {
    console.log(JSON.stringify((await serve.status()).applications.spread, null, 1), JSON.stringify(await ray.nodes()));
    throw e;
  });
  expect((await nodesOf()).length).toBe(2);
}, 120_000);
