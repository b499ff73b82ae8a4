import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import { collect } from './helpers';

beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
});

async function countEach(its: data.DataIterator[]): Promise<number[]> {
  // the iterators of one streamingSplit are consumed concurrently, as training workers would
  return Promise.all(its.map(async (it) => (await collect(it.iterBatches({ batchSize: 64 }))).reduce((a, b) => a + ((b as data.ColumnBatch).id as Float64Array).length, 0)));
}

describe('streamingSplit', () => {
  test('equal splits of range(1000) get [500, 500] rows every epoch, disjoint and complete', async () => {
    const its = data.range(1000, { overrideNumBlocks: 7 }).streamingSplit(2, { equal: true });
    for (let epoch = 0; epoch < 3; epoch++) expect(await countEach(its)).toEqual([500, 500]);
    const ids = await Promise.all(its.map(async (it) => (await collect(it.iterRows())).map((r) => r.id as number)));
    const all = [...(ids[0] as number[]), ...(ids[1] as number[])].sort((a, b) => a - b);
    expect(all).toEqual([...Array(1000).keys()]);
  });

  test('unequal splits of 10 blocks into 3 get whole blocks: [300, 300, 400]', async () => {
    const its = data.range(1000, { overrideNumBlocks: 10 }).streamingSplit(3);
    expect(await countEach(its)).toEqual([300, 300, 400]);
  });

  test('an iterator sent to an actor reads its split there', async () => {
    const Reader = ray.remote(
      class Reader {
        async count(it: unknown): Promise<number> {
          const dataLib = require('@tsray/data') as typeof import('@tsray/data');
          let n = 0;
          for await (const _ of dataLib.DataIterator.from(it).iterRows()) n++;
          return n;
        }
      },
    );
    const [a, b] = data.range(100, { overrideNumBlocks: 4 }).streamingSplit(2, { equal: true });
    const readers = [Reader.remote(), Reader.remote()];
    expect(await ray.get([(readers[0] as ray.ActorHandleOf<{ count(it: unknown): Promise<number> }>).count.remote(a), (readers[1] as ray.ActorHandleOf<{ count(it: unknown): Promise<number> }>).count.remote(b)])).toEqual([50, 50]);
  });
});
