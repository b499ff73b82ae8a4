/**
 * `ds.groupBy(key)`: aggregations per key (one row per key, sorted by key)
 * and mapGroups.
 */
import type { Dataset } from './dataset';
import type { BatchFormat } from './internal/block';
import * as K from './internal/kernels';
import { checkColumns, checkKeys, userFn } from './internal/options';
import { BATCH_FORMATS } from './internal/block';

/** Rows grouped by key columns; aggregate them or map each group. */
export class GroupedData {
  /** @internal use ds.groupBy(key) */
  constructor(
    private readonly ds: Dataset,
    private readonly keys: string[],
  ) {}

  private agg(...aggs: K.AggSpec[]): Dataset {
    const name = `Aggregate(${this.keys.join(', ')}: ${aggs.map(K.aggName).join(', ')})`;
    return this.ds.allToAll(name, { kind: 'aggregate', keys: this.keys, aggs });
  }

  private col(kind: 'sum' | 'min' | 'max' | 'mean' | 'std', column: string): Dataset {
    const c = checkColumns(`groupBy(...).${kind}`, column);
    return this.agg(...c.map((col) => ({ kind, column: col })));
  }

  /** Rows per key: column "count()". */
  count(): Dataset {
    return this.agg({ kind: 'count' });
  }
  /** Sum per key: column "sum(col)". */
  sum(column: string | string[]): Dataset {
    return this.col('sum', column as string);
  }
  /** Smallest per key: "min(col)". */
  min(column: string | string[]): Dataset {
    return this.col('min', column as string);
  }
  /** Largest per key: "max(col)". */
  max(column: string | string[]): Dataset {
    return this.col('max', column as string);
  }
  /** Mean per key: "mean(col)". */
  mean(column: string | string[]): Dataset {
    return this.col('mean', column as string);
  }
  /** Sample standard deviation per key (ddof 1): "std(col)". */
  std(column: string | string[]): Dataset {
    return this.col('std', column as string);
  }

  /** `fn(group, ...fnArgs)` on each group's rows (a batch in `batchFormat`); returns a batch. */
  mapGroups(fn: (group: never, ...args: never[]) => unknown, options?: { batchFormat?: BatchFormat; fnArgs?: unknown[] }): Dataset {
    const o = checkKeys('groupBy(...).mapGroups', options, ['batchFormat', 'fnArgs']);
    const format = (o.batchFormat ?? 'default') as BatchFormat;
    if (!BATCH_FORMATS.includes(format)) throw new TypeError(`groupBy(...).mapGroups: batchFormat must be one of ${BATCH_FORMATS.join(', ')}`);
    const u = userFn('groupBy(...).mapGroups', fn, o.fnArgs);
    const op = `MapGroups(${u.fn.name || 'fn'})`;
    return this.ds.allToAll(op, { kind: 'mapGroups', keys: this.keys, fn: u, op, format });
  }
}
