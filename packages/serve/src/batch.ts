/**
 * `serve.batch()` (dynamic batching) and `serve.multiplexed()` (many models
 * per replica), for the methods of a deployment's class.
 */
import { ServeError } from './errors';
import { checkKeys } from './internal/options';
import { currentModelId, requestContext } from './internal/context';

/** Options of {@link batch}. */
export interface BatchOptions {
  /** the most items in one call of the batch function @default 10 */
  maxBatchSize?: number;
  /** how long the first item of a batch waits for more @default 0.01 */
  batchWaitTimeoutS?: number;
}

type Pending<I, O> = { item: I; resolve: (v: O) => void; reject: (e: unknown) => void };

class BatchQueue<I, O> {
  private items: Array<Pending<I, O>> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly max: number,
    private readonly waitMs: number,
    private readonly name: string,
  ) {}

  push(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.items.push({ item, resolve, reject });
      if (this.items.length >= this.max) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.waitMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.items.length > 0) {
      const batch = this.items.splice(0, this.max);
      void this.runBatch(batch);
      if (this.items.length < this.max) break;
    }
    if (this.items.length > 0) this.timer = setTimeout(() => this.flush(), this.waitMs);
  }

  private async runBatch(batch: Array<Pending<I, O>>): Promise<void> {
    let out: O[];
    try {
      out = await this.run(batch.map((p) => p.item));
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
    if (!Array.isArray(out) || out.length !== batch.length) {
      const got = Array.isArray(out) ? `${out.length} results` : `${typeof out === 'object' ? (out === null ? 'null' : 'an object') : typeof out}`;
      const err = new ServeError(`the batch function ${this.name} returned ${got} for a batch of ${batch.length} requests: it must return an array with one result per item, in order`);
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(out[i] as O));
  }
}

/**
 * Dynamic batching: wraps `fn`, which takes a list of items and returns a
 * list of results (one per item, in order), into a function of one item.
 * Concurrent calls are gathered into one call of `fn` of at most
 * `maxBatchSize` items, waiting at most `batchWaitTimeoutS` after the first.
 * Use it for a method of a deployment's class (one queue per instance):
 *
 * ```ts
 * class Model {
 *   predict = serve.batch({ maxBatchSize: 16, batchWaitTimeoutS: 0.005 }, async (xs: number[][]) => this.session.run(xs));
 * }
 * ```
 * Each caller gets its own result, or the batch's error; a batch function
 * that returns the wrong number of results fails every caller with an error
 * that says so.
 */
export function batch<I, O>(options: BatchOptions, fn: (items: I[]) => Promise<O[]> | O[]): (item: I) => Promise<O> {
  if (typeof options !== 'object' || options === null) throw new TypeError('serve.batch() takes (options, fn): options must be an object');
  checkKeys(options, ['maxBatchSize', 'batchWaitTimeoutS'], 'serve.batch()');
  const max = options.maxBatchSize ?? 10;
  const waitS = options.batchWaitTimeoutS ?? 0.01;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`serve.batch() maxBatchSize must be a whole number ≥ 1, got ${String(max)}`);
  if (typeof waitS !== 'number' || !(waitS >= 0)) throw new RangeError(`serve.batch() batchWaitTimeoutS must be a number of seconds ≥ 0, got ${String(waitS)}`);
  if (typeof fn !== 'function') throw new TypeError('serve.batch() takes (options, fn): fn must be a function of a list of items');
  const queues = new WeakMap<object, BatchQueue<I, O>>();
  const shared = { key: {} };
  const name = fn.name || 'anonymous';
  return function batched(this: unknown, item: I): Promise<O> {
    const self = typeof this === 'object' && this !== null ? this : shared.key;
    let q = queues.get(self);
    if (!q) {
      q = new BatchQueue<I, O>(async (items) => fn.call(this, items), max, waitS * 1000, name);
      queues.set(self, q);
    }
    return q.push(item);
  };
}

/** Options of {@link multiplexed}. */
export interface MultiplexedOptions {
  /** models one replica keeps loaded; the least recently used goes first @default 3 */
  maxNumModelsPerReplica?: number;
}

/** Model ids loaded by this process's multiplexed loaders (reported to the controller for routing). */
export const loadedModels = new Set<string>();

/**
 * Model multiplexing: wraps `loader(modelId)` into a function that returns
 * the model for the current request's `serve.getMultiplexedModelId()` (or the
 * id passed), loading it on first use and keeping at most
 * `maxNumModelsPerReplica` (least recently used evicted; a model with a
 * `dispose()` or `release()` method has it called).
 */
export function multiplexed<M>(options: MultiplexedOptions, loader: (modelId: string) => Promise<M> | M): (modelId?: string) => Promise<M> {
  if (typeof options !== 'object' || options === null) throw new TypeError('serve.multiplexed() takes (options, loader): options must be an object');
  checkKeys(options, ['maxNumModelsPerReplica'], 'serve.multiplexed()');
  const max = options.maxNumModelsPerReplica ?? 3;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`serve.multiplexed() maxNumModelsPerReplica must be a whole number ≥ 1, got ${String(max)}`);
  const models = new Map<string, Promise<M>>();
  return async function get(this: unknown, modelId?: string): Promise<M> {
    const id = modelId ?? currentModelId();
    if (id === undefined || id === '') {
      throw new ServeError('no multiplexed model id: the request has no serve_multiplexed_model_id header (or handle.options({ multiplexedModelId })), and none was passed');
    }
    let m = models.get(id);
    if (m) {
      models.delete(id);
      models.set(id, m);
      return m;
    }
    m = Promise.resolve(loader.call(this, id));
    models.set(id, m);
    m.catch(() => models.delete(id));
    while (models.size > max) {
      const [old, p] = models.entries().next().value as [string, Promise<M>];
      models.delete(old);
      loadedModels.delete(old);
      void p.then((x) => {
        const d = x as { dispose?: () => unknown; release?: () => unknown };
        if (typeof d?.dispose === 'function') d.dispose();
        else if (typeof d?.release === 'function') d.release();
      }, () => undefined);
    }
    const model = await m;
    loadedModels.add(id);
    return model;
  };
}

/** The model id of the request being served (multiplexing), or '' outside a multiplexed request. */
export function getMultiplexedModelId(): string {
  return requestContext.getStore()?.multiplexedModelId ?? '';
}
