/**
 * Caller side of actor method calls. Calls go straight from the caller to
 * the actor's worker, in submission order, numbered per caller and per actor
 * incarnation; the actor runs them in that order. The head tells callers
 * where an actor lives and when it restarts or dies.
 * @internal
 */
import { ActorDiedError, RuntimeEnvSetupError } from '../../errors';
import { ActorState, MT, type ActorCall, type ActorInfo, type Address, type Dep, type TaskResult } from '../protocol/messages';
import type { Endpoint } from '../transport/endpoint';
import { whenArgsReady, type ArgRef, type PendingTask, type TaskManager } from './task-manager';
import type { RefEntry } from './refs';

/** An actor call as its caller tracks it. */
export interface ActorCallTask extends PendingTask {
  readonly call: ActorCall;
  readonly client: ActorClient;
  depsLeft: number;
  sent: boolean;
}

/** Call numbering towards one actor (by its real id), shared by all its handles here. */
interface SeqState {
  incarnation: number;
  next: number;
}

/** What this process knows about one actor (by the id its handle carries). */
export class ActorClient {
  info: ActorInfo | undefined = undefined;
  /** calls not finished, in submission order */
  readonly calls: ActorCallTask[] = [];
  subscribed = false;
  /** a creation error known locally (name taken) */
  createError: Error | undefined = undefined;
  /** no handle refers to it here any more: drop it once its calls finish */
  released = false;
  constructor(
    readonly actorId: string,
    readonly className: string,
  ) {}
}

/** What the actor submitter needs from the runtime. */
export interface ActorSubmitterHooks {
  readonly self: Address;
  readonly endpoint: Endpoint;
  readonly headAddress: string;
  fetch(e: RefEntry): void;
  depValue(e: RefEntry): Dep['val'];
  busy(delta: number): void;
  /** Decodes the constructor error the head reports. */
  decodeError(err: Uint8Array): Error;
  /** The error a failed or lost object's readers get. */
  errorOf(e: RefEntry): Error;
}

/** See the module comment. */
export class ActorSubmitter {
  readonly clients = new Map<string, ActorClient>();
  /** per real actor id: handles found with getIfExists share the actor's numbering */
  private readonly seqs = new Map<string, SeqState>();

  constructor(
    private readonly h: ActorSubmitterHooks,
    private readonly tm: TaskManager,
  ) {}

  /** The client for `actorId`, subscribing to its updates on first use. */
  client(actorId: string, className: string): ActorClient {
    let c = this.clients.get(actorId);
    if (!c) {
      c = new ActorClient(actorId, className);
      this.clients.set(actorId, c);
    }
    return c;
  }

  private subscribe(c: ActorClient): void {
    if (c.subscribed) return;
    c.subscribed = true;
    this.h.endpoint.send(this.h.headAddress, { t: MT.SubscribeActor, actorId: c.actorId });
  }

  /** Stops following an actor nobody here refers to any more (once its calls finish). */
  forget(actorId: string): void {
    const c = this.clients.get(actorId);
    if (!c) return;
    c.released = true;
    this.dropIfReleased(c);
  }

  private dropIfReleased(c: ActorClient): void {
    if (!c.released || c.calls.length > 0 || this.clients.get(c.actorId) !== c) return;
    this.clients.delete(c.actorId);
    if (c.subscribed) this.h.endpoint.send(this.h.headAddress, { t: MT.UnsubscribeActor, actorId: c.actorId });
  }

  /** The actor could not be created (name taken, head unreachable): its calls fail with `err`. */
  createFailed(actorId: string, className: string, err: Error): void {
    const c = this.client(actorId, className);
    c.createError = err;
    for (const t of c.calls.splice(0)) this.failCall(t, err);
    this.dropIfReleased(c);
  }

  /** Takes a new call. */
  submit(t: ActorCallTask, deps: ArgRef[]): void {
    const c = t.client;
    this.tm.add(t);
    this.h.busy(1);
    if (c.createError) {
      this.failCall(t, c.createError);
      return;
    }
    if (c.info?.state === ActorState.Dead) {
      this.failCall(t, this.deathError(c));
      return;
    }
    c.calls.push(t);
    this.subscribe(c);
    t.depsLeft = deps.length;
    if (deps.length > 0) {
      const specDeps: Dep[] = [];
      (t.call as { deps?: Dep[] }).deps = specDeps;
      whenArgsReady(
        deps,
        t,
        this.h,
        specDeps,
        () => this.flush(c),
        (e) => {
          this.removeCall(t);
          this.tm.abort(t, e.err, e.err ? undefined : this.h.errorOf(e));
          this.h.busy(-1);
          this.flush(c);
        },
      );
    }
    this.flush(c);
  }

  /** Sends, in order, every call that can go now. */
  private flush(c: ActorClient): void {
    const info = c.info;
    if (!info || info.state !== ActorState.Alive || !info.address) return;
    let seq = this.seqs.get(info.id);
    if (!seq) this.seqs.set(info.id, (seq = { incarnation: info.numRestarts, next: 0 }));
    if (seq.incarnation !== info.numRestarts) {
      seq.incarnation = info.numRestarts;
      seq.next = 0;
    }
    const batch: ActorCall[] = [];
    for (const t of c.calls) {
      if (t.sent) continue;
      if (t.depsLeft > 0) break;
      t.sent = true;
      const call = t.call as { seq: number; att: number };
      call.seq = seq.next++;
      call.att = t.attempt;
      batch.push(t.call);
    }
    if (batch.length > 0) {
      this.h.endpoint.send(info.address.endpoint, {
        t: MT.PushActorTasks,
        actorId: info.id,
        caller: this.h.self,
        incarnation: seq.incarnation,
        calls: batch,
      });
    }
  }

  /** The head reports a change of an actor's state (`as`: the id we know it by). */
  onUpdate(info: ActorInfo, as: string): void {
    const c = this.clients.get(as);
    if (!c) return;
    const prev = c.info;
    if (prev && prev.numRestarts > info.numRestarts) return;
    c.info = info;
    if (info.state === ActorState.Alive) {
      if (prev && (prev.state !== ActorState.Alive || prev.numRestarts !== info.numRestarts)) this.onRestart(c);
      this.flush(c);
    } else if (info.state === ActorState.Restarting) {
      this.onRestart(c);
    } else if (info.state === ActorState.Dead) {
      const err = this.deathError(c);
      for (const t of c.calls.splice(0)) this.failCall(t, err);
      this.seqs.delete(info.id);
    }
  }

  /** Calls sent to a previous incarnation: resend if they may retry. */
  private onRestart(c: ActorClient): void {
    const keep: ActorCallTask[] = [];
    for (const t of c.calls) {
      if (!t.sent) {
        keep.push(t);
        continue;
      }
      if (t.retriesLeft > 0 && !t.cancelled) {
        t.retriesLeft--;
        t.attempt++;
        t.sent = false;
        keep.push(t);
      } else {
        this.failCall(t, this.deathError(c, 'its process died while running this call'));
      }
    }
    c.calls.length = 0;
    c.calls.push(...keep);
  }

  /** The ActorDiedError a call to `c` fails with (carrying the constructor's error, if that is why). */
  deathError(c: ActorClient, reason?: string): Error {
    const info = c.info;
    if (info?.deathKind === 'runtimeEnv' && reason === undefined) {
      return new RuntimeEnvSetupError(`The actor ${info.className} (${c.actorId}) cannot run: ${info.death ?? 'its runtime environment could not be set up'}`);
    }
    const cause = info?.cause ? this.h.decodeError(info.cause) : undefined;
    return new ActorDiedError({
      actorId: c.actorId,
      className: info?.className ?? c.className,
      reason: reason ?? info?.death ?? 'it died',
      ...(cause ? { cause } : {}),
    });
  }

  private failCall(t: ActorCallTask, err: Error): void {
    this.tm.abort(t, undefined, err);
    this.h.busy(-1);
    this.dropIfReleased(t.client);
  }

  private removeCall(t: ActorCallTask): void {
    const i = t.client.calls.indexOf(t);
    if (i >= 0) t.client.calls.splice(i, 1);
    this.dropIfReleased(t.client);
  }

  /** A call's result arrived from the actor. */
  onResult(t: ActorCallTask, r: TaskResult): void {
    this.removeCall(t);
    this.tm.finish(t, r);
    this.h.busy(-1);
  }

  /** Cancels a call that has not been sent yet; a running call is told to stop. */
  cancel(t: ActorCallTask, recursive: boolean): void {
    if (t.finished) return;
    t.cancelled = true;
    if (!t.sent) {
      this.removeCall(t);
      this.tm.cancelled(t);
      this.h.busy(-1);
      return;
    }
    const addr = t.client.info?.address;
    if (addr) this.h.endpoint.send(addr.endpoint, { t: MT.CancelTask, taskId: t.taskId, force: false, recursive });
  }
}
