/**
 * randomSample: each row kept with probability `fraction`, as a batch step.
 * @internal
 */
import type * as arrow from 'apache-arrow';
import { seededRandom, takeIndices } from './block';
import type { Step } from './plan';

/** Keeps each row with probability `fraction` (a seeded stream per block: seed and the block's first values). */
export function sampleRows(batch: arrow.Table, fraction: number, seed: number | null): arrow.Table {
  let s = seed ?? Math.floor(Math.random() * 2 ** 31);
  if (seed !== null) {
    const first = batch.numRows > 0 ? JSON.stringify(batch.get(0)?.toJSON(), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) : '';
    for (let i = 0; i < first.length; i++) s = (Math.imul(s, 31) + first.charCodeAt(i)) >>> 0;
    s = (s + batch.numRows) >>> 0;
  }
  const r = seededRandom(s);
  const keep: number[] = [];
  for (let i = 0; i < batch.numRows; i++) if (r() < fraction) keep.push(i);
  return keep.length === batch.numRows ? batch : takeIndices(batch, keep);
}

/** The step of ds.randomSample(fraction, { seed }). */
export function sampleRowsStep(fraction: number, seed: number | undefined): Step {
  return { t: 'sample', op: `RandomSample(${fraction})`, fraction, seed: seed ?? null };
}
