/**
 * tsray Data: distributed, streaming Datasets of Arrow blocks, on
 * `@tsray/core`. A Dataset is a lazy plan; consuming it runs tasks and actor
 * pools on every node of the cluster, streaming blocks through the object
 * store within a memory budget.
 *
 * ```ts
 * import * as ray from '@tsray/core';
 * import * as data from '@tsray/data';
 *
 * await ray.init();
 * const ds = data
 *   .range(1000)
 *   .map((r) => ({ id: r.id, sq: (r.id as number) ** 2 }))
 *   .filter((r) => (r.sq as number) % 3 === 0);
 * console.log(await ds.count());                       // 334
 * for await (const batch of ds.iterBatches({ batchSize: 100 })) {
 *   // batch: { id: Float64Array, sq: Float64Array }
 * }
 * console.log(await ds.groupBy('id').count().take(3));
 * ```
 * User functions are written inline and shipped by value (a captured
 * variable is an error at the call: pass values with `fnArgs`).
 *
 * @packageDocumentation
 */
export { Dataset, MaterializedDataset, type MapOptions, type MapBatchesOptions, type DatasetSchema, type IterBatchesOptions } from './dataset';
export { GroupedData } from './grouped';
export { DataIterator } from './internal/split';
export { range, fromItems, fromArrow, readCsv, readJson, readParquet, readText, readBinaryFiles, type RangeOptions, type ReadCsvOptions, type ReadParquetOptions } from './read-api';
export type { Row, Batch, BatchFormat, ColumnBatch, Column, TypedArray } from './internal/block';
export type { WriteOptions } from './internal/write';
export * from './errors';
