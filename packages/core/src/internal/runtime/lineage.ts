/**
 * Lineage reconstruction, after Ray's task manager: an owner keeps what it
 * needs to run a finished normal task again while any of the task's returns
 * is referenced, and runs it again when a return's only copy is lost (its
 * node died, or pulling it failed). Arguments lost with it are rebuilt the
 * same way first. Rebuilds count against the task's `maxRetries`.
 *
 * Only returns whose bytes live on another node than the owner's can be lost
 * while their owner lives, so only tasks with such returns keep lineage: the
 * record hangs off the returns' entries and goes with the last of them. While
 * it lives it holds the task's arguments (as a running task does). Objects
 * made with `put` (and large arguments stored by value) and actor method
 * results are not rebuilt (Ray's rule too): they fail with ObjectLostError.
 * @internal
 */
import { ObjectLostError } from '../../errors';
import type { Address, TaskResult } from '../protocol/messages';
import { TaskStatus } from '../protocol/messages';
import { log } from '../log';
import { ValueState, type ReferenceTable, type RefEntry } from './refs';
import type { NormalTask } from './task-submitter';

/** What is kept of a finished task to run it again. */
interface LineageRecord {
  /** the run that made the values (its spec, arguments, returns) */
  readonly task: NormalTask;
  /** runs left (the task's maxRetries that its runs did not use) */
  retriesLeft: number;
  /** highest attempt number used for the task so far */
  attempt: number;
  /** a run that rebuilds the returns is in flight */
  rebuilding: boolean;
}

/** What lineage needs from the runtime. */
export interface LineageHooks {
  readonly self: Address;
  readonly refs: ReferenceTable;
  /** Submits a task again (TaskSubmitter.submit). */
  resubmit(t: NormalTask): void;
  /** Frees the accounting of a value whose bytes are gone. */
  forgetLoc(e: RefEntry): void;
}

/** Whether an object id is one `put` made (see ids.ts). */
const isPutId = (id: string): boolean => /^[0-9a-f]+p[0-9a-z]+$/.test(id);

/** Whether the task of `rec` may run only on `node` (a hard node affinity to it). */
const onlyOn = (rec: LineageRecord, node: string | undefined): boolean => node !== undefined && rec.task.sched?.nodeId === node && rec.task.sched.soft !== true;

/** See the module comment. */
export class Lineage {
  /** a record's arguments are held until it is collected */
  private readonly pins: FinalizationRegistry<RefEntry[]>;

  constructor(private readonly h: LineageHooks) {
    this.pins = new FinalizationRegistry((holds) => {
      for (const e of holds) this.h.refs.removeSubmitted(e);
    });
  }

  /**
   * A normal task is about to finish with result `r` (call before its
   * arguments are released): keep its lineage if a return lives on another node.
   */
  keep(t: NormalTask, r: TaskResult): void {
    if (r.st !== TaskStatus.Ok || t.stream || t.returns.length === 0) return;
    const remote = (r.rets ?? []).some((x) => x.val.loc !== undefined && x.val.loc.node !== this.h.self.nodeId);
    if (!remote) return;
    const prev = t.returns[0]?.lineage as LineageRecord | undefined;
    const rec: LineageRecord = { task: t, retriesLeft: t.retriesLeft, attempt: Math.max(t.attempt, prev?.attempt ?? 0), rebuilding: false };
    for (const e of t.returns) e.lineage = rec;
    for (const e of t.holds) this.h.refs.addSubmitted(e);
    this.pins.register(rec, [...t.holds]);
  }

  /** Node `nodeId` died: owned objects whose bytes were there are rebuilt or fail. */
  onNodeDied(nodeId: string): void {
    const lost = this.h.refs.ownedOn(nodeId);
    if (lost.length > 0) this.recover(lost, `its only copy was on node ${nodeId}, which died`, nodeId);
  }

  /**
   * The bytes of these owned objects are gone (`why` says how): each is
   * rebuilt by running its task again, or fails with ObjectLostError. This
   * is also where the object transfer reports a pull that failed for good.
   */
  recover(entries: RefEntry[], why: string, deadNode?: string): void {
    const runs = new Set<LineageRecord>();
    for (const e of entries) {
      if (!e.owned || e.state !== ValueState.Ready || !e.loc) continue;
      this.h.forgetLoc(e);
      e.loc = undefined;
      // the local copy of the old value goes with it (its node manager frees it): the rebuilt one is pulled afresh
      e.local = undefined;
      const rec = e.lineage as LineageRecord | undefined;
      if (rec && (rec.rebuilding || rec.retriesLeft > 0) && !onlyOn(rec, deadNode)) {
        e.state = ValueState.Pending;
        runs.add(rec);
        continue;
      }
      e.state = ValueState.Lost;
      e.errObj = new ObjectLostError(e.id, this.cannotRebuild(e, rec, why, deadNode));
      e.notify();
    }
    for (const rec of runs) this.rebuild(rec, why);
  }

  private cannotRebuild(e: RefEntry, rec: LineageRecord | undefined, why: string, deadNode?: string): string {
    if (isPutId(e.id)) return `${why}. It was stored with ray.put() (or passed by value as a large argument), and such objects cannot be rebuilt: put the value again`;
    if (rec && onlyOn(rec, deadNode)) return `${why}, and the task that made it (${rec.task.name}) may run only there (scheduling: { nodeId, soft: false }), so it cannot be rebuilt`;
    if (rec) return `${why}, and the task that made it (${rec.task.name}) has no retries left to rebuild it (raise maxRetries)`;
    return `${why}, and it cannot be rebuilt (actor method results and values already handed over are not rebuilt; call again)`;
  }

  /** Runs the record's task again; its returns settle when it finishes. */
  private rebuild(rec: LineageRecord, why: string): void {
    if (rec.rebuilding) return;
    rec.rebuilding = true;
    rec.retriesLeft--;
    rec.attempt++;
    const o = rec.task;
    log.info(`rebuilding the results of ${o.name} (task ${o.taskId}): ${why}`);
    // an argument lost with it is being rebuilt too (same sweep): the run waits for it
    for (const e of o.holds) this.h.refs.addSubmitted(e);
    const t: NormalTask = {
      ...o,
      attempt: rec.attempt,
      retriesLeft: rec.retriesLeft,
      cancelled: false,
      finished: false,
      crashes: 0,
      spec: { ...o.spec, att: rec.attempt, deps: undefined },
      depsLeft: 0,
      lease: undefined,
      queued: false,
      expectedUs: 0,
    };
    delete (t.spec as { deps?: unknown }).deps;
    const done = (): void => {
      rec.rebuilding = false;
    };
    for (const e of o.returns) e.whenSettled(done);
    this.h.resubmit(t);
  }
}
