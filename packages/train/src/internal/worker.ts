/**
 * A training worker: an actor in one bundle of the group's placement group.
 * The trainer asks where it runs (`info`), sets up its end of the ring
 * (`bind`, `connect`), then calls `run`, a streaming method: it installs the
 * session, sets tfjs up, runs the user's loop and yields rank 0's reports to
 * the trainer as they happen.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { DataIterator } from '@tsray/data';
import { Checkpoint } from '../checkpoint';
import { setupTfjs } from '../backend';
import { setSession, type ReportOptions, type Session, type TrainContext } from '../session';
import { Ring, type BindSpec, type ConnectSpec } from './ring';
import { CKPT_METRICS, checkpointName, tmpCheckpointName } from './store';

/** What the trainer hands `run`. */
export interface RunArgs {
  fn: ray.util.Shippable<(config: unknown) => unknown>;
  config: unknown;
  context: TrainContext;
  /** the checkpoint to resume from */
  checkpointPath: string | undefined;
  shards: Record<string, unknown>;
  /** the index the next checkpoint gets */
  nextIndex: number;
  /** set tfjs up first (TensorflowTrainer) */
  tensorflow: boolean;
  useGpu: boolean;
}

/** What `run` yields. */
export type WorkerEvent =
  | { type: 'backend'; rank: number; backend: string }
  | { type: 'report'; metrics: Record<string, unknown>; checkpoint: string | undefined; rows: number; time: number }
  | { type: 'done' };

/** Where this worker runs. */
export interface WorkerInfo {
  nodeId: string;
  pid: number;
  host: string;
}

/** See the module's notes. */
export class TrainWorker {
  private ring: Ring | undefined;

  /** The node this worker runs on and its address there. */
  async info(): Promise<WorkerInfo> {
    const nodeId = ray.getRuntimeContext().nodeId;
    const node = (await ray.nodes()).find((n) => n.nodeId === nodeId);
    // the node's address: a host, or tcp://host:port
    const host = (node?.address ?? '127.0.0.1').replace(/^tcp:\/\//, '').replace(/:\d+$/, '') || '127.0.0.1';
    return { nodeId, pid: process.pid, host };
  }

  /** Starts this worker's end of the ring; resolves to the address its predecessor pushes to. */
  async bind(rank: number, size: number, token: string, spec: BindSpec): Promise<string> {
    await this.ring?.close();
    this.ring = new Ring(rank, size, token);
    return this.ring.bind(spec);
  }

  /** Connects to the successor in the ring. */
  async connect(spec: ConnectSpec): Promise<void> {
    await (this.ring as Ring).connect(spec);
  }

  /** Runs the training loop (see the module's notes). */
  async *run(args: RunArgs): AsyncGenerator<WorkerEvent> {
    const ring = this.ring as Ring;
    const rank = args.context.worldRank;
    const expDir = args.context.storagePath;
    const queue: WorkerEvent[] = [];
    let wake: (() => void) | undefined;
    const emit = (e: WorkerEvent): void => {
      queue.push(e);
      wake?.();
    };
    let nextIndex = args.nextIndex;
    const shards: Record<string, DataIterator> = {};
    for (const [name, it] of Object.entries(args.shards)) shards[name] = DataIterator.from(it);
    const s: Session = {
      context: Object.freeze({ ...args.context }),
      checkpoint: args.checkpointPath ? Checkpoint.fromDirectory(args.checkpointPath) : undefined,
      shards,
      rows: 0,
      allreduce: (v) => ring.allreduce(v),
      allreduceSync: (v) => ring.allreduceSync(v),
      async report(metrics: Record<string, unknown>, options: ReportOptions): Promise<void> {
        const index = nextIndex;
        const tmp = path.join(expDir, tmpCheckpointName(index));
        const ckpt = options.checkpoint;
        if (ckpt) {
          await fs.promises.mkdir(tmp, { recursive: true });
          await fs.promises.cp(ckpt.path, tmp, { recursive: true, force: true });
          if ((ckpt as Checkpoint).temporary) await fs.promises.rm(ckpt.path, { recursive: true, force: true });
        }
        // the barrier: every worker has written its part of the checkpoint (if any) once this returns
        const flag = await ring.allreduce(new Float32Array([ckpt ? 1 : 0]));
        let final: string | undefined;
        if ((flag[0] as number) > 0) {
          nextIndex++;
          final = path.join(expDir, checkpointName(index));
          if (rank === 0) {
            await fs.promises.mkdir(tmp, { recursive: true });
            await fs.promises.writeFile(path.join(tmp, CKPT_METRICS), JSON.stringify(metrics));
            await fs.promises.rename(tmp, final);
          }
        }
        if (rank === 0) emit({ type: 'report', metrics, checkpoint: final, rows: s.rows, time: Date.now() });
        s.rows = 0;
      },
    };
    let finished = false;
    let error: unknown;
    setSession(s);
    const loop = (async () => {
      if (args.tensorflow) {
        const backend = await setupTfjs(args.useGpu);
        process.stderr.write(`[tsray train] rank ${rank} (pid ${process.pid}): tfjs backend ${backend}\n`);
        emit({ type: 'backend', rank, backend });
      }
      const f = await args.fn.load();
      await f(args.config);
    })().then(
      () => (finished = true),
      (e: unknown) => {
        error = e;
        finished = true;
      },
    );
    void loop.finally(() => wake?.());
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as WorkerEvent;
        if (finished) break;
        await new Promise<void>((r) => {
          wake = r;
          if (queue.length > 0 || finished) r();
        });
        wake = undefined;
      }
    } finally {
      setSession(undefined);
    }
    if (error !== undefined) throw error;
    yield { type: 'done' };
  }

  /** Closes the ring. */
  async close(): Promise<void> {
    await this.ring?.close();
    this.ring = undefined;
  }
}

/** The worker's actor class. */
export const TrainWorkerActor = ray.remote(TrainWorker);
