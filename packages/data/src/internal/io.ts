/**
 * The file datasources and datasinks, as the rest of the library sees them.
 * @internal
 */
import type { Block } from './block';

// PLACEHOLDER until feat/io merges: the signatures the executor uses.
export type ReadFormat = 'csv' | 'json' | 'parquet' | 'text' | 'binary';
export interface CsvOptions { delimiter?: string; header?: boolean; columnNames?: string[] }
export interface ReadOptions { columns?: string[]; limit?: number; csv?: CsvOptions }
export interface ReadTask { format: ReadFormat; path: string; rowGroup?: number; numRows?: number; sizeBytes: number }
export type WriteFormat = 'parquet' | 'csv' | 'json';
export interface WriteOptions { compression?: 'snappy' | 'zstd' | 'none' }
export declare function planRead(format: ReadFormat, paths: string | readonly string[], opts?: ReadOptions): Promise<ReadTask[]>;
export declare function runReadTask(task: ReadTask, opts?: ReadOptions): Promise<Block[]>;
export declare function writeBlock(block: Block, dir: string, fileName: string, format: WriteFormat, opts?: WriteOptions): Promise<string>;
