/**
 * The block kernels of the all-to-all operators, as the rest of the library sees them.
 * @internal
 */
import type { Block } from './block';

// PLACEHOLDER until feat/kernels merges: the signatures the executor uses.
export type SortKey = { columns: string[]; descending: boolean[] };
export declare function compileSortKey(key: string | string[], descending?: boolean | boolean[]): SortKey;
export declare function sortBlock(block: Block, key: SortKey): Block;
export declare function sampleKeys(block: Block, key: SortKey, n: number): Block;
export declare function boundariesFromSamples(samples: Block[], key: SortKey, numPartitions: number): Block;
export declare function partitionByBoundaries(sortedBlock: Block, key: SortKey, boundaries: Block): Block[];
export declare function mergeSorted(blocks: Block[], key: SortKey): Block;
export declare function shufflePartition(block: Block, numPartitions: number, seed: number): Block[];
export declare function shuffleBlock(block: Block, seed: number): Block;
export declare function splitEvenly(block: Block, numPartitions: number): Block[];
export declare function hashPartition(block: Block, keyColumns: string[], numPartitions: number): Block[];
export type AggSpec = { kind: 'count' } | { kind: 'sum' | 'min' | 'max' | 'mean' | 'std'; column: string };
export declare function aggName(a: AggSpec): string;
export declare function partialAggregate(block: Block, keyColumns: string[], aggs: AggSpec[]): Block;
export declare function finalizeAggregate(partials: Block[], keyColumns: string[], aggs: AggSpec[]): Block;
export declare function groupsOf(block: Block, keyColumns: string[]): Block[];
export declare function uniqueValues(block: Block, column: string): unknown[];
