/**
 * `@tsray/data`'s errors. Each extends core's `RayError`, so `instanceof`
 * works in drivers and workers alike (an error raised in a worker is rebuilt
 * in the driver as the same class). Bad arguments to public functions are
 * the standard `TypeError` / `RangeError`, with a message that names the
 * argument or option.
 */
import { RayError } from '@tsray/core';

/** Thrown for any failure of a Dataset; the base class of the errors below. */
export class DataError extends RayError {
  static override readonly kind: string = 'DataError';
}

/**
 * Thrown when a user's function (map, filter, mapBatches, a class's
 * constructor or `call`, a groupBy's mapGroups…) throws. `operator` names
 * the operator (`Map(parse)`); `cause` is the user's error.
 */
export class UserCodeError extends DataError {
  static override readonly kind: string = 'UserCodeError';
  /** the operator whose function threw */
  readonly operator: string;

  constructor(operator: string, cause: unknown) {
    const c = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(`${operator} failed: the user's function threw ${c}`, { cause });
    this.operator = operator;
  }
}

/**
 * Thrown when a value cannot be stored in an Arrow block: a function, a
 * class instance, a column mixing numbers and strings, columns of unequal
 * length. `column` names the column, when there is one.
 */
export class BlockValueError extends DataError {
  static override readonly kind: string = 'BlockValueError';
  /** the column that holds the value */
  readonly column: string | undefined;

  constructor(message: string, column: string | undefined) {
    super(message);
    this.column = column;
  }
}

/**
 * Thrown when a file cannot be read: a path that does not exist, a
 * malformed CSV row or JSON line (with the file and line number), a file
 * that is not Parquet.
 */
export class DataReadError extends DataError {
  static override readonly kind: string = 'DataReadError';
  /** the file (or path pattern) */
  readonly path: string;
  /** 1-based line of the problem, when the format has lines */
  readonly line: number | undefined;

  constructor(message: string, path: string, line?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.path = path;
    this.line = line;
  }
}

/** Thrown when datasets that must match do not: `union` of different schemas, `zip` of different row counts. */
export class SchemaMismatchError extends DataError {
  static override readonly kind: string = 'SchemaMismatchError';
}

/** Thrown when an operation needs rows and the dataset has none (`takeBatch` of an empty dataset). */
export class EmptyDatasetError extends DataError {
  static override readonly kind: string = 'EmptyDatasetError';
}
