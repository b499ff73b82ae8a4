/**
 * Writing a dataset: one file per output block, written by a task on the
 * node that holds the block, named `<write id>_<block index, 6 digits>`.
 * @internal
 */
import * as ray from '@tsray/core';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { Dataset } from '../dataset';
import type { Block } from './block';
import { type WriteFormat, type WriteOptions, writeBlock } from './io';
import { checkKeys } from './options';

export type { WriteOptions };

/** Writes one block to a file. */
export const writeTask = ray.remote({ name: 'data.write' }, async function writeTask(block: Block, dir: string, name: string, format: WriteFormat, options: WriteOptions): Promise<string> {
  return writeBlock(block, dir, name, format, options);
});

/** Writes every block of `ds` into `dir`; resolves to the files, in order. */
export async function writeDataset(ds: Dataset, dir: string, format: WriteFormat, options?: WriteOptions): Promise<string[]> {
  const what = `ds.write${format === 'parquet' ? 'Parquet' : format === 'csv' ? 'Csv' : 'Json'}`;
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`${what} takes the directory to write into, got ${JSON.stringify(dir)}`);
  const o = checkKeys(what, options, format === 'parquet' ? ['compression'] : []) as WriteOptions;
  const abs = path.resolve(dir);
  const id = randomUUID().slice(0, 8);
  const source = await ds.source();
  const writes: Array<Promise<string>> = [];
  const inFlight = new Set<Promise<string>>();
  try {
    let i = 0;
    for (let b = await source.next(); b; b = await source.next()) {
      if (b.meta.numRows === 0) continue;
      const p = ray.get(writeTask.remote(b.ref, abs, `${id}_${String(i++).padStart(6, '0')}`, format, o));
      writes.push(p);
      inFlight.add(p);
      void p.then(
        () => inFlight.delete(p),
        () => inFlight.delete(p),
      );
      if (inFlight.size >= 4) await Promise.race(inFlight);
    }
  } finally {
    source.close();
  }
  return Promise.all(writes);
}
