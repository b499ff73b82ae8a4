/**
 * Consuming a dataset: blocks fetched ahead of use, cut and joined into
 * batches of `batchSize` rows (across block boundaries), optionally drawn at
 * random from a local shuffle buffer, and handed out in the user's format.
 * @internal
 */
import * as ray from '@tsray/core';
import { type Batch, type BatchFormat, type Block, type Row, blockToBatch, blockToRows, concatBlocks, seededRandom, sliceBlock, takeIndices } from './block';
import type { Bundle } from './plan';

/** Options of iterBatches. */
export interface IterBatchesOptions {
  /** rows per batch; null: one batch per block @default 256 */
  batchSize?: number | null;
  /** @default 'default' */
  batchFormat?: BatchFormat;
  /** batches fetched ahead of the one in use @default 1 */
  prefetchBatches?: number;
  /** leave out a last batch smaller than batchSize @default false */
  dropLast?: boolean;
  /** rows in a buffer that batches are drawn from at random (a local shuffle) */
  localShuffleBufferSize?: number;
  /** seed of the local shuffle */
  localShuffleSeed?: number;
}

/** A bundle for a consumer: the rows [start, end) of the block when `slice` is set. */
export interface SourceBundle extends Bundle {
  slice?: [number, number];
}

/** A source of bundles, in order; `close` stops it early. */
export interface BundleSource {
  next(): Promise<SourceBundle | undefined>;
  close(): void;
}

/** The blocks of `source`, `ahead` of them fetched before they are needed. */
export async function* blocksOf(source: BundleSource, ahead: number): AsyncGenerator<Block> {
  const pending: Array<Promise<Block>> = [];
  let done = false;
  const fill = async (): Promise<void> => {
    while (!done && pending.length < ahead + 1) {
      const b = await source.next();
      if (!b) {
        done = true;
        break;
      }
      const slice = b.slice;
      const p = (ray.get(b.ref) as Promise<Block>).then((blk) => (slice ? sliceBlock(blk, slice[0], slice[1]) : blk));
      p.catch(() => undefined);
      pending.push(p);
    }
  };
  try {
    for (;;) {
      await fill();
      const p = pending.shift();
      if (!p) return;
      yield await p;
    }
  } finally {
    source.close();
  }
}

/** Blocks → batches of `size` rows (the last one smaller unless dropLast), shuffled locally when asked. */
export async function* rebatch(blocks: AsyncIterable<Block>, size: number | null, options: { dropLast: boolean; shuffleBuffer?: number; seed?: number }): AsyncGenerator<Block> {
  if (size === null) {
    for await (const b of blocks) if (b.numRows > 0) yield b;
    return;
  }
  const shuffle = options.shuffleBuffer !== undefined && options.shuffleBuffer > 0;
  const random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  let buf: Block[] = [];
  let rows = 0;
  const cut = (n: number): Block => {
    const all = concatBlocks(buf);
    if (!shuffle) {
      const head = sliceBlock(all, 0, n);
      const rest = sliceBlock(all, n, all.numRows);
      buf = rest.numRows > 0 ? [rest] : [];
      rows -= n;
      return head;
    }
    // draw n rows at random from the buffer; the others stay
    const idx = Uint32Array.from({ length: all.numRows }, (_, i) => i);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(random() * (idx.length - i));
      const t = idx[i] as number;
      idx[i] = idx[j] as number;
      idx[j] = t;
    }
    const out = takeIndices(all, idx.subarray(0, n));
    const rest = takeIndices(all, idx.subarray(n));
    buf = rest.numRows > 0 ? [rest] : [];
    rows -= n;
    return out;
  };
  const want = (): number => size + (shuffle ? (options.shuffleBuffer as number) : 0);
  for await (const b of blocks) {
    if (b.numRows === 0) continue;
    buf.push(b);
    rows += b.numRows;
    while (rows >= want()) yield cut(size);
  }
  while (rows >= size) yield cut(size);
  if (rows > 0 && !options.dropLast) yield cut(rows);
}

/** Batches in the user's format. */
export async function* batchesOf(source: BundleSource, options: IterBatchesOptions): AsyncGenerator<Batch> {
  const size = options.batchSize === undefined ? 256 : options.batchSize;
  const blocks = blocksOf(source, Math.max(0, options.prefetchBatches ?? 1));
  const shuffle = options.localShuffleBufferSize !== undefined ? { shuffleBuffer: options.localShuffleBufferSize } : {};
  const seed = options.localShuffleSeed !== undefined ? { seed: options.localShuffleSeed } : {};
  for await (const b of rebatch(blocks, size, { dropLast: options.dropLast ?? false, ...shuffle, ...seed })) yield blockToBatch(b, options.batchFormat ?? 'default');
}

/** Rows, one at a time. */
export async function* rowsOf(source: BundleSource): AsyncGenerator<Row> {
  for await (const b of blocksOf(source, 1)) for (const r of blockToRows(b)) yield r;
}
