import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import { DataParallelTrainer, Result, TensorflowTrainer, TrainingFailedError, setupTfjs } from '@tsray/train';
import { contextLoop, mlpLoop } from './fixtures/loops';

let storage: string;

beforeAll(async () => {
  await setupTfjs();
  await ray.init({ numCpus: 2, logToDriver: false });
  storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-train-test-'));
});
afterAll(async () => {
  await ray.shutdown();
  fs.rmSync(storage, { recursive: true, force: true });
});

test('two workers: context, allreduce, disjoint shards, reports of rank 0', async () => {
  const trainer = new DataParallelTrainer(contextLoop, {
    trainLoopConfig: { reports: 3 },
    scalingConfig: { numWorkers: 2 },
    runConfig: { name: 'ctx', storagePath: storage },
    datasets: { train: data.range(100, { overrideNumBlocks: 4 }) },
  });
  const result = await trainer.fit();
  expect(result.path).toBe(path.join(storage, 'ctx'));
  expect(result.metrics).toMatchObject({ step: 2, rankSum: 1, world: 2, rank: 0, rows: 50, trainingIteration: 3 });
  const ranks = [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(result.path, `rank${r}.json`), 'utf8')) as { worldRank: number; worldSize: number; localRank: number; localWorldSize: number; nodeRank: number; experimentName: string; ids: number[]; pid: number });
  expect(ranks.map((r) => [r.worldRank, r.worldSize, r.localRank, r.localWorldSize, r.nodeRank, r.experimentName])).toEqual([
    [0, 2, 0, 2, 0, 'ctx'],
    [1, 2, 1, 2, 0, 'ctx'],
  ]);
  expect(ranks[0]?.pid).not.toBe(ranks[1]?.pid);
  const all = [...(ranks[0]?.ids ?? []), ...(ranks[1]?.ids ?? [])].sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i));
  const df = result.metricsDataframe;
  expect(df.numRows).toBe(3);
  expect(Array.from(df.getChild('step')?.toArray() as ArrayLike<number>)).toEqual([0, 1, 2]);
  expect(fs.readFileSync(path.join(result.path, 'progress.csv'), 'utf8').split('\n')[0]).toContain('step');
  expect(Result.fromPath(result.path).metrics).toMatchObject({ step: 2 });
});

test('data-parallel MLP: bit-identical weights on every worker, checkpoints kept by score', async () => {
  const trainer = new TensorflowTrainer(mlpLoop, {
    trainLoopConfig: { epochs: 3, inputs: 8, rows: 256 },
    scalingConfig: { numWorkers: 2 },
    runConfig: { name: 'mlp', storagePath: storage, checkpointConfig: { numToKeep: 2, checkpointScoreAttribute: 'loss', checkpointScoreOrder: 'min' } },
  });
  const result = await trainer.fit();
  const w0 = fs.readFileSync(path.join(result.path, 'rank0.weights'));
  const w1 = fs.readFileSync(path.join(result.path, 'rank1.weights'));
  expect(w0.length).toBe(4 * (8 * 16 + 16 + 16 * 2 + 2));
  expect(Buffer.compare(w0, w1)).toBe(0);
  expect(result.metrics.epoch).toBe(2);
  expect(result.checkpoint?.path).toBe(path.join(result.path, 'checkpoint_000002'));
  const kept = fs.readdirSync(result.path).filter((e) => e.startsWith('checkpoint_'));
  expect(kept.length).toBeLessThanOrEqual(2);
  expect(kept).toContain('checkpoint_000002');
  expect(result.bestCheckpoints.length).toBe(kept.length);
  const model = await (result.checkpoint as NonNullable<typeof result.checkpoint>).loadModel();
  expect(model.layers.length).toBe(2);
});

test('a worker killed mid-training: the group restarts from the latest checkpoint', async () => {
  const marker = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-train-kill-'));
  try {
    const trainer = new TensorflowTrainer(mlpLoop, {
      trainLoopConfig: { epochs: 4, inputs: 8, rows: 128, killAtEpoch: 2, killRank: 1, markerDir: marker },
      scalingConfig: { numWorkers: 2 },
      runConfig: { name: 'kill', storagePath: storage, failureConfig: { maxFailures: 1 } },
    });
    const result = await trainer.fit();
    expect(fs.existsSync(path.join(marker, 'killed'))).toBe(true);
    expect(result.metrics.epoch).toBe(3);
    const epochs = result.metricsDataframe.getChild('epoch')?.toArray() as number[];
    // epochs 0, 1 before the kill; resumed at 2 from checkpoint 1
    expect(Array.from(epochs)).toEqual([0, 1, 2, 3]);
    const w0 = fs.readFileSync(path.join(result.path, 'rank0.weights'));
    expect(Buffer.compare(w0, fs.readFileSync(path.join(result.path, 'rank1.weights')))).toBe(0);
  } finally {
    fs.rmSync(marker, { recursive: true, force: true });
  }
});

test('without maxFailures a killed worker fails fit() with TrainingFailedError', async () => {
  const marker = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-train-kill-'));
  try {
    const trainer = new TensorflowTrainer(mlpLoop, {
      trainLoopConfig: { epochs: 3, inputs: 8, rows: 64, killAtEpoch: 1, killRank: 0, markerDir: marker },
      scalingConfig: { numWorkers: 2 },
      runConfig: { name: 'kill0', storagePath: storage },
    });
    const err = (await trainer.fit().catch((e: unknown) => e)) as TrainingFailedError;
    expect(err).toBeInstanceOf(TrainingFailedError);
    expect(err.message).toMatch(/rank 0 died/);
  } finally {
    fs.rmSync(marker, { recursive: true, force: true });
  }
});
