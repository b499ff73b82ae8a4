/**
 * `DataParallelTrainer` and `TensorflowTrainer`: run a training loop on a
 * group of worker actors (one per bundle of a placement group), feed them
 * shards of the datasets, keep rank 0's reports and the checkpoints, and
 * restart the whole group from the latest checkpoint when a worker dies.
 *
 * The trainer's coordination runs in the calling process and holds no
 * resources: `numWorkers × resourcesPerWorker` is the run's whole demand.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import type { Dataset } from '@tsray/data';
import * as zmq from 'zeromq';
import { Checkpoint } from './checkpoint';
import { checkKeys, resolveConfig, type DataConfig, type ResolvedConfig, type RunConfig, type ScalingConfig } from './config';
import { TrainConfigError, TrainError, TrainingFailedError } from './errors';
import { findPackage, noGpuBackend } from './backend';
import { Result } from './result';
import type { TrainContext } from './session';
import { RUN_JSON, RunStore } from './internal/store';
import { TrainWorkerActor, type RunArgs, type TrainWorker, type WorkerEvent, type WorkerInfo } from './internal/worker';
import type { BindSpec } from './internal/ring';

/** A training loop: runs on every worker with `trainLoopConfig`. */
export type TrainLoopPerWorker<C> = (config: C) => void | Promise<void>;

/** Options of a trainer. */
export interface DataParallelTrainerOptions<C = Record<string, unknown>> {
  /** What each worker's loop is called with. @default {} */
  trainLoopConfig?: C;
  scalingConfig?: ScalingConfig;
  runConfig?: RunConfig;
  /** Datasets by name; the loop reads its shard with `getDatasetShard(name)`. */
  datasets?: Record<string, Dataset>;
  /** Which datasets are split among the workers. @default all of them */
  datasetConfig?: DataConfig;
  /** Start from this checkpoint when the run has none of its own. */
  resumeFromCheckpoint?: Checkpoint;
}

const OPTION_KEYS = ['trainLoopConfig', 'scalingConfig', 'runConfig', 'datasets', 'datasetConfig', 'resumeFromCheckpoint'];

type Worker = ray.ActorHandleOf<TrainWorker>;

/** Why a group stopped: the first failure, and the worker it came from. */
interface Failure {
  error: unknown;
  rank: number | undefined;
}

function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(4);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function describeResources(r: Record<string, number>): string {
  return `{ ${Object.entries(r)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')} }`;
}

/**
 * Runs `trainLoopPerWorker` on `scalingConfig.numWorkers` workers (Ray
 * Train's DataParallelTrainer): no framework set up, bring your own. See
 * {@link TensorflowTrainer} for tfjs.
 *
 * ```ts
 * const trainer = new DataParallelTrainer(async (config: { steps: number }) => {
 *   const { report, getContext } = require('@tsray/train');
 *   for (let i = 0; i < config.steps; i++) await report({ step: i, rank: getContext().worldRank });
 * }, { trainLoopConfig: { steps: 3 }, scalingConfig: { numWorkers: 2 } });
 * const result = await trainer.fit();
 * ```
 */
export class DataParallelTrainer<C = Record<string, unknown>> {
  /** @internal */
  protected readonly cfg: ResolvedConfig;
  private readonly fn: ray.util.Shippable<(config: unknown) => unknown>;
  private readonly datasets: Record<string, Dataset>;
  private readonly loopConfig: C;
  private readonly resumeFrom: Checkpoint | undefined;
  /** @internal set up tfjs in the workers */
  protected readonly tensorflow: boolean = false;
  /** @internal the Tune trial this run is */
  trialName: string | undefined;

  /**
   * @throws TypeError / RangeError for an unknown or invalid option (named), or a loop that captures a local variable
   */
  constructor(trainLoopPerWorker: TrainLoopPerWorker<C>, options: DataParallelTrainerOptions<C> = {}) {
    const what = new.target.name;
    if (typeof trainLoopPerWorker !== 'function') throw new TypeError(`${what} takes the training loop (a function of its config) first, got ${typeof trainLoopPerWorker}`);
    const o = checkKeys(`${what} options`, options, OPTION_KEYS) as DataParallelTrainerOptions<C>;
    const datasets = (o.datasets ?? {}) as Record<string, Dataset>;
    if (typeof datasets !== 'object' || Array.isArray(datasets)) throw new TypeError(`${what}: datasets must be an object of name → Dataset`);
    for (const [k, d] of Object.entries(datasets)) {
      if (!d || typeof (d as { streamingSplit?: unknown }).streamingSplit !== 'function') throw new TypeError(`${what}: datasets.${k} is not a Dataset (make one with @tsray/data: data.readCsv(...), data.fromItems(...))`);
    }
    if (o.resumeFromCheckpoint !== undefined && !(o.resumeFromCheckpoint instanceof Checkpoint)) throw new TypeError(`${what}: resumeFromCheckpoint must be a Checkpoint`);
    this.cfg = resolveConfig(what, o.scalingConfig, o.runConfig, o.datasetConfig, Object.keys(datasets));
    this.fn = ray.util.shippable(trainLoopPerWorker as (config: unknown) => unknown, { what: `${what}'s trainLoopPerWorker`, name: trainLoopPerWorker.name || 'trainLoopPerWorker' });
    this.datasets = datasets;
    this.loopConfig = (o.trainLoopConfig ?? {}) as C;
    this.resumeFrom = o.resumeFromCheckpoint;
  }

  /** The run's directory: `storagePath/name`. */
  get path(): string {
    return path.join(this.cfg.storagePath, this.cfg.name);
  }

  /**
   * Trains: starts the worker group, runs the loop on every worker until it
   * returns, and resolves to the run's Result. When a worker dies or the loop
   * throws, the group restarts from the latest checkpoint, up to
   * `failureConfig.maxFailures` times. Calling fit() again with the same name
   * and storagePath resumes from the run's latest checkpoint.
   * @throws TrainConfigError (rejects) when the cluster can never hold the group, or useGpu finds no GPU backend
   * @throws TrainingFailedError (rejects) when training failed more than maxFailures times; `cause` is the last failure
   */
  async fit(): Promise<Result> {
    if (!ray.isInitialized()) await ray.init();
    const cfg = this.cfg;
    if (this.tensorflow && cfg.useGpu && !findPackage('@tensorflow/tfjs-node-gpu')) throw new TrainConfigError(noGpuBackend());
    await this.checkDemand();
    await this.materializeIfStarved();
    const store = new RunStore(this.path, cfg.numToKeep, cfg.scoreAttribute, cfg.scoreOrder);
    fs.writeFileSync(path.join(this.path, RUN_JSON), JSON.stringify({ name: cfg.name, scoreAttribute: cfg.scoreAttribute, scoreOrder: cfg.scoreOrder, numWorkers: cfg.numWorkers }));
    let failures = 0;
    for (;;) {
      store.refresh();
      const failure = await this.runGroup(store);
      if (!failure) break;
      failures++;
      const why = describeFailure(failure);
      if (failures > cfg.maxFailures) {
        fs.writeFileSync(path.join(this.path, 'error.txt'), why);
        throw new TrainingFailedError(`training of '${cfg.name}' failed${cfg.maxFailures > 0 ? ` after ${failures - 1} restart${failures === 2 ? '' : 's'}` : ''}: ${why}${cfg.maxFailures === 0 ? ' (runConfig.failureConfig.maxFailures restarts the group from its latest checkpoint)' : ''}`, {
          cause: failure.error,
          worldRank: failure.rank,
          restarts: failures - 1,
        });
      }
      const from = store.latest();
      this.log(`[train ${cfg.name}] ${why}; restarting the worker group (${failures}/${cfg.maxFailures === Infinity ? '∞' : cfg.maxFailures}) from ${from ? path.basename(from.path) : 'the start'}`);
    }
    try {
      fs.rmSync(path.join(this.path, 'error.txt'), { force: true });
    } catch {
      // nothing to remove
    }
    const latest = store.latest();
    const last = store.results[store.results.length - 1] ?? {};
    return new Result(
      last,
      latest ? Checkpoint.fromDirectory(latest.path) : undefined,
      this.path,
      undefined,
      store.ranked().map((c) => ({ checkpoint: Checkpoint.fromDirectory(c.path), metrics: c.metrics })),
      store.results,
    );
  }

  private log(line: string): void {
    if (this.cfg.verbose && process.stdout.isTTY) process.stdout.write(`${line}\n`);
  }

  /**
   * Data's tasks need CPUs outside the worker group; when the group would hold
   * every CPU of the cluster, the datasets are materialized first (while the
   * CPUs are free), so that the workers read blocks that already exist
   * instead of waiting forever for read tasks that cannot be placed.
   */
  private async materializeIfStarved(): Promise<void> {
    const names = Object.keys(this.datasets);
    if (names.length === 0) return;
    const cpus = (await ray.clusterResources()).CPU ?? 0;
    const held = (this.cfg.resourcesPerWorker.CPU ?? 0) * this.cfg.numWorkers;
    if (cpus - held >= 1) return;
    this.log(`[train ${this.cfg.name}] the worker group holds ${held} of the cluster's ${cpus} CPUs, leaving none for Data's tasks: materializing ${names.join(', ')} before training (lower resourcesPerWorker.CPU to stream them instead)`);
    for (const n of names) {
      const ds = this.datasets[n] as Dataset;
      if (typeof (ds as { blocks?: unknown }).blocks === 'undefined') this.datasets[n] = await ds.materialize();
    }
  }

  /** Fails at once when no way of placing the group's bundles on the cluster's nodes exists. */
  private async checkDemand(): Promise<void> {
    const { numWorkers, resourcesPerWorker: per, placementStrategy } = this.cfg;
    const nodes = (await ray.nodes()).filter((n) => n.alive);
    const fits = (res: Record<string, number>): number => {
      let k = Infinity;
      for (const [r, v] of Object.entries(per)) if (v > 0) k = Math.min(k, Math.floor(((res[r] ?? 0) + 1e-9) / v));
      return k === Infinity ? numWorkers : k;
    };
    const perNode = nodes.map((n) => fits(n.resources));
    let ok: boolean;
    if (placementStrategy === 'STRICT_PACK') ok = perNode.some((k) => k >= numWorkers);
    else if (placementStrategy === 'STRICT_SPREAD') ok = perNode.filter((k) => k >= 1).length >= numWorkers;
    else ok = perNode.reduce((a, k) => a + k, 0) >= numWorkers;
    if (ok) return;
    const total: Record<string, number> = {};
    for (const [r, v] of Object.entries(per)) total[r] = v * numWorkers;
    const cluster: Record<string, number> = {};
    for (const n of nodes) for (const r of Object.keys(per)) cluster[r] = (cluster[r] ?? 0) + (n.resources[r] ?? 0);
    const strict = placementStrategy.startsWith('STRICT') ? ` with placementStrategy '${placementStrategy}'` : '';
    throw new TrainConfigError(
      `the worker group needs ${numWorkers} worker${numWorkers === 1 ? '' : 's'} × ${describeResources(per)} = ${describeResources(total)}${strict}, but the cluster can never hold it: its ${nodes.length} node${nodes.length === 1 ? ' has' : 's have'} ${describeResources(cluster)} in all${strict ? '' : ` (room for ${perNode.reduce((a, k) => a + k, 0)} such workers)`}; lower scalingConfig.numWorkers or resourcesPerWorker, or add nodes`,
    );
  }

  /** One attempt: starts the group, runs the loop, and tears the group down; resolves to the failure, or undefined when the loop finished. */
  private async runGroup(store: RunStore): Promise<Failure | undefined> {
    const cfg = this.cfg;
    const n = cfg.numWorkers;
    const bundle = cfg.resourcesPerWorker;
    const pg = ray.placementGroup(
      Array.from({ length: n }, () => ({ ...bundle })),
      { strategy: cfg.placementStrategy },
    );
    let workers: Worker[] = [];
    try {
      if (!(await pg.wait(10_000))) {
        this.log(`[train ${cfg.name}] waiting for the cluster to free ${n} × ${describeResources(bundle)} for the worker group`);
        await pg.ready();
      }
      const { CPU, GPU, ...custom } = bundle;
      const created = Array.from({ length: n }, (_, i) =>
        TrainWorkerActor.options({ placementGroup: pg, placementGroupBundleIndex: i, numCpus: CPU ?? 0, numGpus: GPU ?? 0, resources: custom, maxConcurrency: 4 }).remote(),
      ) as unknown as Worker[];
      workers = created;
      const infos = (await ray.get(created.map((w) => w.info.remote()))) as WorkerInfo[];
      // ranks by node, so that a node's workers have consecutive ranks (as Ray's)
      const nodeOrder: string[] = [];
      for (const i of infos) if (!nodeOrder.includes(i.nodeId)) nodeOrder.push(i.nodeId);
      const order = infos.map((info, i) => ({ info, i })).sort((a, b) => nodeOrder.indexOf(a.info.nodeId) - nodeOrder.indexOf(b.info.nodeId) || a.i - b.i);
      workers = order.map((o) => created[o.i] as Worker);
      const ranked = order.map((o) => o.info);
      const contexts: TrainContext[] = ranked.map((info, rank) => {
        const local = ranked.filter((x) => x.nodeId === info.nodeId);
        return {
          worldSize: n,
          worldRank: rank,
          localRank: local.indexOf(info),
          localWorldSize: local.length,
          nodeRank: nodeOrder.indexOf(info.nodeId),
          experimentName: cfg.name,
          trialName: this.trialName,
          storagePath: this.path,
        };
      });
      await this.connectRing(workers, ranked);
      const shards = this.makeShards(n);
      const latest = store.latest();
      const resume = latest?.path ?? this.resumeFrom?.path;
      const base: Omit<RunArgs, 'context' | 'shards'> = {
        fn: this.fn,
        config: this.loopConfig,
        checkpointPath: resume,
        nextIndex: store.nextIndex(),
        tensorflow: this.tensorflow,
        useGpu: cfg.useGpu,
      };
      return await this.drive(store, workers, (rank) => ({ ...base, context: contexts[rank] as TrainContext, shards: shards[rank] as Record<string, unknown> }));
    } catch (e) {
      return { error: e, rank: undefined };
    } finally {
      for (const w of workers) {
        try {
          ray.kill(w as unknown as ray.ActorHandle<unknown>);
        } catch {
          // already gone
        }
      }
      await ray.removePlacementGroup(pg).catch(() => undefined);
    }
  }

  /** Binds each worker's socket and connects it to its successor's. */
  private async connectRing(workers: Worker[], ranked: WorkerInfo[]): Promise<void> {
    const n = workers.length;
    const token = crypto.randomBytes(16).toString('hex');
    const keys = zmq.curveKeyPair();
    const specs: BindSpec[] = ranked.map((info, r) => {
      const prev = ranked[(r - 1 + n) % n] as WorkerInfo;
      return prev.nodeId === info.nodeId ? { kind: 'ipc' } : { kind: 'tcp', host: info.host, publicKey: keys.publicKey, secretKey: keys.secretKey };
    });
    const addresses = (await ray.get(workers.map((w, r) => w.bind.remote(r, n, token, specs[r] as BindSpec)))) as string[];
    await ray.get(
      workers.map((w, r) => {
        const next = (r + 1) % n;
        const tcp = (specs[next] as BindSpec).kind === 'tcp';
        return w.connect.remote({ address: addresses[next] as string, ...(tcp ? { publicKey: keys.publicKey, secretKey: keys.secretKey } : {}) });
      }),
    );
  }

  /** Each worker's iterators over the datasets: a disjoint streaming shard, or the whole dataset. */
  private makeShards(n: number): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = Array.from({ length: n }, () => ({}));
    for (const [name, ds] of Object.entries(this.datasets)) {
      const split = this.cfg.datasetsToSplit === 'all' || this.cfg.datasetsToSplit.includes(name);
      const its = split ? ds.streamingSplit(n, { equal: true }) : Array.from({ length: n }, () => ds.iterator());
      its.forEach((it, r) => ((out[r] as Record<string, unknown>)[name] = it));
    }
    return out;
  }

  /** Runs the loop on every worker and records rank 0's reports; resolves to the first failure, or undefined. */
  private async drive(store: RunStore, workers: Worker[], argsOf: (rank: number) => RunArgs): Promise<Failure | undefined> {
    const cfg = this.cfg;
    let failure: Failure | undefined;
    let iteration = store.results.length;
    let last = Date.now();
    const started = Date.now();
    let abort: (() => void) | undefined;
    const aborted = new Promise<void>((r) => (abort = r));
    const onEvent = (ev: WorkerEvent): void => {
      if (ev.type !== 'report') return;
      iteration++;
      const dt = (ev.time - last) / 1000;
      last = ev.time;
      const row: Record<string, unknown> = { ...ev.metrics, trainingIteration: iteration, timestamp: ev.time, timeThisIterS: dt, timeTotalS: (ev.time - started) / 1000 };
      if (ev.checkpoint) row.checkpointDirName = path.basename(ev.checkpoint);
      store.addResult(row);
      if (ev.checkpoint) store.addCheckpoint(ev.checkpoint, ev.metrics);
      const shown = Object.entries(ev.metrics)
        .slice(0, 6)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(' · ');
      const rate = ev.rows > 0 && dt > 0 ? ` · ${Math.round((ev.rows * cfg.numWorkers) / dt).toLocaleString('en-US')} rows/s` : '';
      this.log(`[train ${cfg.name}] #${iteration} · ${shown}${rate}${ev.checkpoint ? ` · ${path.basename(ev.checkpoint)}` : ''}`);
    };
    const streams = workers.map(async (w, rank) => {
      try {
        const gen = w.run.options({ numReturns: 'streaming' }).remote(argsOf(rank)) as unknown as ray.ObjectRefGenerator<WorkerEvent>;
        for await (const ref of gen) {
          const ev = (await ray.get(ref)) as WorkerEvent;
          if (!failure) onEvent(ev);
        }
      } catch (e) {
        if (!failure) {
          failure = { error: e, rank };
          abort?.();
        }
      }
    });
    await Promise.race([Promise.all(streams), aborted]);
    if (failure) return failure;
    await Promise.all(workers.map((w) => ray.get(w.close.remote()).catch(() => undefined)));
    return undefined;
  }
}

/** One line for a failure: the user's error with its rank, or the worker's death. */
function describeFailure(f: Failure): string {
  const e = f.error;
  const where = f.rank === undefined ? '' : `worker rank ${f.rank} `;
  if (e instanceof ray.TaskError) return `${where}raised ${e.cause.name}: ${e.cause.message}`;
  if (e instanceof ray.ActorDiedError || e instanceof ray.WorkerCrashedError) return `${where}died (${(e as Error).message})`;
  if (e instanceof TrainError || e instanceof Error) return `${where}failed: ${e.message}`;
  return `${where}failed: ${String(e)}`;
}

/**
 * A DataParallelTrainer for tfjs (Ray Train's TensorflowTrainer): each worker
 * sets up tfjs before the loop runs — `@tensorflow/tfjs-node-gpu` with
 * useGpu, `@tensorflow/tfjs-node` when installed, else the WASM backend,
 * else the CPU backend — and logs the backend it chose. In the loop,
 * `prepareModel(model)` makes `model.fit` data-parallel.
 *
 * ```ts
 * // train.ts
 * import * as tf from '@tensorflow/tfjs';
 * import { TensorflowTrainer, prepareModel, report, getDatasetShard } from '@tsray/train';
 *
 * export async function trainLoop(config: { lr: number; epochs: number }) {
 *   const model = prepareModel(tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax' })] }));
 *   model.compile({ optimizer: tf.train.adam(config.lr), loss: 'sparseCategoricalCrossentropy' });
 *   for (let epoch = 0; epoch < config.epochs; epoch++) {
 *     for await (const b of getDatasetShard('train').iterBatches({ batchSize: 32 })) { ... await model.trainOnBatch(x, y) }
 *     await report({ epoch });
 *   }
 * }
 * const result = await new TensorflowTrainer(trainLoop, { trainLoopConfig: { lr: 1e-2, epochs: 5 }, scalingConfig: { numWorkers: 2 }, datasets: { train } }).fit();
 * ```
 */
export class TensorflowTrainer<C = Record<string, unknown>> extends DataParallelTrainer<C> {
  /** @internal */
  protected override readonly tensorflow: boolean = true;
}
