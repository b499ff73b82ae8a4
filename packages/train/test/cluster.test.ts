import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { TensorflowTrainer, DataParallelTrainer } from '@tsray/train';
import { contextLoop, mlpLoop } from './fixtures/loops';

let cluster: ray.Cluster;
let storage: string;
beforeAll(async () => {
  cluster = await ray.Cluster.start({ head: { numCpus: 1 } });
  await cluster.addNode({ numCpus: 1 });
  await cluster.waitForNodes();
  await ray.init({ address: cluster.address, logToDriver: false });
  storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-train-cluster-'));
}, 60_000);
afterAll(async () => {
  await ray.shutdown();
  await cluster?.shutdown();
  fs.rmSync(storage, { recursive: true, force: true });
});

test('workers on two nodes (SPREAD): node ranks, and a ring over tcp with CURVE keeps weights bit-identical', async () => {
  const ctx = await new DataParallelTrainer(contextLoop, {
    trainLoopConfig: { reports: 1 },
    scalingConfig: { numWorkers: 2, placementStrategy: 'STRICT_SPREAD' },
    runConfig: { name: 'spread', storagePath: storage },
  }).fit();
  expect(ctx.metrics).toMatchObject({ rankSum: 1, world: 2 });
  const ranks = [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(ctx.path, `rank${r}.json`), 'utf8')) as { nodeRank: number; localRank: number; localWorldSize: number });
  expect(ranks.map((r) => [r.nodeRank, r.localRank, r.localWorldSize])).toEqual([
    [0, 0, 1],
    [1, 0, 1],
  ]);
  const result = await new TensorflowTrainer(mlpLoop, {
    trainLoopConfig: { epochs: 2, inputs: 8, rows: 128 },
    scalingConfig: { numWorkers: 2, placementStrategy: 'STRICT_SPREAD' },
    runConfig: { name: 'spread-mlp', storagePath: storage },
  }).fit();
  const w0 = fs.readFileSync(path.join(result.path, 'rank0.weights'));
  expect(Buffer.compare(w0, fs.readFileSync(path.join(result.path, 'rank1.weights')))).toBe(0);
});
