/**
 * mapBatches with a class: a pool of actors, each constructing the user's
 * class once (`new Cls(...fnConstructorArgs)`) and calling its
 * `call(batch, ...fnArgs)` for every batch. The pool starts with `min`
 * actors and adds one (up to `max`) while blocks wait and every actor is busy.
 * @internal
 */
import * as ray from '@tsray/core';
import type { AnyClass } from '@tsray/core';
import type { Block } from '../block';
import type { Step } from '../plan';
import { UserCodeError } from '../../errors';
import { type ExecBundle, type ExecContext, PhysicalOp } from './operator';
import { type BlockAndMeta, timed } from './tasks';
import { type CallTarget, applyStepsToAll } from './transform';

/** Calls one actor runs at once (one running, one waiting in its mailbox). */
const CALLS_PER_ACTOR = 2;

/** The pool's actor: holds one instance of the user's class. */
export class MapWorker {
  private target: Promise<CallTarget> | undefined;

  constructor(
    private readonly cls: ray.util.Shippable<AnyClass>,
    private readonly ctorArgs: unknown[],
    private readonly op: string,
  ) {}

  private instance(): Promise<CallTarget> {
    this.target ??= (async () => {
      const C = (await this.cls.load()) as unknown as new (...a: unknown[]) => CallTarget;
      let inst: CallTarget;
      try {
        inst = new C(...this.ctorArgs);
      } catch (e) {
        throw new UserCodeError(`${this.op} (constructing ${this.cls.name})`, e);
      }
      if (typeof (inst as Partial<CallTarget>).call !== 'function') {
        throw new UserCodeError(this.op, new TypeError(`class ${this.cls.name} has no call(batch) method; mapBatches with a class calls instance.call(batch, ...fnArgs) for each batch`));
      }
      return inst;
    })();
    return this.target;
  }

  /** Constructs the user's class (so that a constructor that throws fails early). */
  async ready(): Promise<boolean> {
    await this.instance();
    return true;
  }

  /** Applies the steps (one is the instance's call) to the blocks. */
  async process(steps: Step[], ...blocks: Block[]): Promise<BlockAndMeta> {
    const t = await this.instance();
    return timed(async () => applyStepsToAll(blocks, steps, t));
  }
}

/** The pool's actor class. */
export const MapWorkerActor = ray.remote(MapWorker);

type Worker = { handle: ray.ActorHandleOf<MapWorker>; inFlight: number };

/** The actor-pool map operator. */
export class ActorPoolOp extends PhysicalOp {
  private readonly workers: Worker[] = [];
  /** the most actors: the pool's max, or as many as the cluster's CPUs (GPUs) fit */
  private readonly max: number;

  constructor(
    name: string,
    input: PhysicalOp,
    private readonly steps: Step[],
    private readonly pool: { cls: ray.util.Shippable; ctorArgs: unknown[]; min: number; max: number; numCpus: number; numGpus: number },
    ctx: ExecContext,
  ) {
    super(name, [input], ctx);
    const fit = Math.max(1, Math.min(pool.numCpus > 0 ? Math.floor(ctx.cpus / pool.numCpus) : ctx.cpus, pool.numGpus > 0 ? Math.floor(ctx.gpus / pool.numGpus) : Number.POSITIVE_INFINITY));
    this.max = Number.isFinite(pool.max) ? pool.max : Math.max(pool.min, fit);
    for (let i = 0; i < pool.min; i++) this.addWorker();
  }

  private addWorker(): Worker {
    const handle = MapWorkerActor.options({ numCpus: this.pool.numCpus, numGpus: this.pool.numGpus }).remote(
      this.pool.cls as unknown as ray.util.Shippable<AnyClass>,
      this.pool.ctorArgs,
      this.name,
    ) as unknown as ray.ActorHandleOf<MapWorker>;
    const w = { handle, inFlight: 0 };
    this.workers.push(w);
    return w;
  }

  /** Actors in the pool now. */
  get size(): number {
    return this.workers.length;
  }

  get maxConcurrency(): number {
    return this.max * CALLS_PER_ACTOR;
  }

  hasWork(): boolean {
    if ((this.queues[0] as ExecBundle[]).length === 0 || this.cancelled) return false;
    return this.workers.some((w) => w.inFlight < CALLS_PER_ACTOR) || this.workers.length < this.max;
  }

  startOne(): void {
    const b = this.take() as ExecBundle;
    let w = this.workers.reduce<Worker | undefined>((best, x) => (best === undefined || x.inFlight < best.inFlight ? x : best), undefined);
    if (!w || (w.inFlight > 0 && this.workers.length < this.max)) w = this.addWorker();
    const worker = w;
    worker.inFlight++;
    const refs = worker.handle.process.options({ numReturns: 2 }).remote(this.steps, b.ref) as unknown as ray.ObjectRef<unknown>[];
    this.track(this.reserve(), refs, [b], () => worker.inFlight--);
  }

  override shutdown(): void {
    for (const w of this.workers.splice(0)) {
      try {
        ray.kill(w.handle as unknown as ray.ActorHandle<unknown>);
      } catch {
        // already gone
      }
    }
  }
}
