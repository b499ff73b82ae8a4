import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import { DataParallelTrainer, NotInTrainingLoopError, TensorflowTrainer, TrainConfigError, TrainingFailedError, getContext, report } from '@tsray/train';
import { throwingLoop } from './fixtures/loops';

let storage: string;
beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false });
  storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-train-err-'));
});
afterAll(async () => {
  await ray.shutdown();
  fs.rmSync(storage, { recursive: true, force: true });
});

const run = (name: string) => ({ name, storagePath: storage });

test('numWorkers larger than the cluster can ever hold: a clear error naming the demand, not a hang', async () => {
  const t = new DataParallelTrainer(throwingLoop, { scalingConfig: { numWorkers: 5 }, runConfig: run('big') });
  const e = (await t.fit().catch((x: unknown) => x)) as Error;
  expect(e).toBeInstanceOf(TrainConfigError);
  expect(e.message).toMatch(/needs 5 workers × \{ CPU: 1 \} = \{ CPU: 5 \}.*\{ CPU: 2 \}.*lower scalingConfig\.numWorkers/);
  const strict = new DataParallelTrainer(throwingLoop, { scalingConfig: { numWorkers: 2, placementStrategy: 'STRICT_SPREAD' }, runConfig: run('spread') });
  await expect(strict.fit()).rejects.toThrow(/STRICT_SPREAD/);
});

test('a training loop that throws: TrainingFailedError with the worker rank and the cause', async () => {
  const t = new DataParallelTrainer(throwingLoop, { scalingConfig: { numWorkers: 2 }, runConfig: run('throws') });
  const e = (await t.fit().catch((x: unknown) => x)) as TrainingFailedError;
  expect(e).toBeInstanceOf(TrainingFailedError);
  expect(e.worldRank).toBe(1);
  expect(e.message).toMatch(/worker rank 1 raised Error: boom at step 1/);
  expect(e.cause).toBeInstanceOf(ray.TaskError);
  // the cluster is whole again: the group's resources came back
  const deadline = Date.now() + 10_000;
  while ((await ray.availableResources()).CPU !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect((await ray.availableResources()).CPU).toBe(2);
});

test('report, getContext outside a training loop', async () => {
  await expect(report({ loss: 1 })).rejects.toThrow(NotInTrainingLoopError);
  expect(() => getContext()).toThrow(/outside a training loop; call it inside the trainLoopPerWorker/);
});

test('unknown options and bad values are named', () => {
  expect(() => new DataParallelTrainer(throwingLoop, { scalingConfig: { numWorker: 2 } as never })).toThrow(/scalingConfig: unknown option 'numWorker'/);
  expect(() => new DataParallelTrainer(throwingLoop, { runConfig: { failureConfig: { maxFailure: 1 } as never } })).toThrow(/failureConfig: unknown option 'maxFailure'/);
  expect(() => new DataParallelTrainer(throwingLoop, { bogus: 1 } as never)).toThrow(/unknown option 'bogus'/);
  expect(() => new DataParallelTrainer(throwingLoop, { scalingConfig: { numWorkers: 0 } })).toThrow(/numWorkers must be an integer >= 1/);
  expect(() => new DataParallelTrainer(throwingLoop, { scalingConfig: { placementStrategy: 'TIGHT' as never } })).toThrow(/placementStrategy must be one of/);
  expect(() => new DataParallelTrainer(throwingLoop, { datasets: { train: data.range(4) }, datasetConfig: { datasetsToSplit: ['valid'] } })).toThrow(/names 'valid', which is not in datasets \(train\)/);
  const captured = 3;
  expect(() => new DataParallelTrainer(async () => void captured)).toThrow(/captures `captured`/);
});

test('a dataset name not in datasets: the error lists the ones there are', async () => {
  const t = new DataParallelTrainer(
    async () => {
      const { getDatasetShard } = require('@tsray/train') as typeof import('@tsray/train');
      getDatasetShard('valid');
    },
    { scalingConfig: { numWorkers: 1 }, runConfig: run('noname'), datasets: { train: data.range(4) } },
  );
  await expect(t.fit()).rejects.toThrow(/getDatasetShard\('valid'\): the trainer has no dataset named 'valid' \(it has 'train'\)/);
});

test('useGpu without a GPU backend for tfjs fails with the fix', async () => {
  const t = new TensorflowTrainer(throwingLoop, { scalingConfig: { numWorkers: 1, useGpu: true }, runConfig: run('gpu') });
  await expect(t.fit()).rejects.toThrow(/@tensorflow\/tfjs-node-gpu is not installed/);
});
