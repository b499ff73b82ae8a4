/**
 * Submits normal tasks the way Ray's owners do: tasks wait in a queue per
 * scheduling key (resource shape and environment) until their arguments are
 * ready; the owner leases workers from the node manager for that key and
 * pushes tasks to them directly, several at a time, keeping each lease busy
 * while its queue has work and giving it back once idle.
 * @internal
 */
import { TaskStatus, MT, type Address, type Dep, type Resources, type Scheduling, type TaskResult, type TaskSpec } from '../protocol/messages';
import type { Endpoint } from '../transport/endpoint';
import { log } from '../log';
import { RuntimeEnvSetupError, TaskUnschedulableError } from '../../errors';
import { whenArgsReady, type ArgRef, type PendingTask, type TaskManager } from './task-manager';
import type { RefEntry } from './refs';
import type { NpmEnvSpec } from '../runtime-env/npm-spec';

/** A normal task as its owner tracks it. */
export interface NormalTask extends PendingTask {
  readonly spec: TaskSpec;
  /** scheduling key (set for good once its working directory is known) */
  key: string;
  /** its working-directory package, once known (absent: none, or the job's) */
  pkg: string | undefined;
  /** its npm packages (absent: the job's); part of `key` */
  readonly npm: NpmEnvSpec | undefined;
  readonly resources: Resources;
  readonly env: Record<string, string> | undefined;
  /** where it may run (absent: the default policy) */
  readonly sched: Scheduling | undefined;
  depsLeft: number;
  lease: Lease | undefined;
  queued: boolean;
  /** function identity, for duration estimates */
  readonly fnKey: string;
  /** execution time expected when it was pushed, microseconds */
  expectedUs: number;
  /** its top-level ObjectRef arguments (set at submit; lineage resolves them again) */
  args?: ArgRef[];
}

interface Lease {
  readonly id: string;
  /** the node manager that granted it */
  readonly raylet: string;
  readonly queue: SchedulingQueue;
  readonly worker: Address;
  readonly gpus: string[];
  readonly inflight: Map<string, NormalTask>;
  /** sum of the expected times of the tasks in flight */
  expectedUs: number;
  /**
   * returns the lease once it has been idle for LEASE_IDLE_MS; armed when it
   * goes idle and left running while it works again (a timer per task would
   * cost more than the tasks of a sync loop), then re-armed for what is left
   */
  idleTimer: NodeJS.Timeout | undefined;
  /** when its last task in flight finished (performance.now()) */
  idleSince: number;
  returned: boolean;
  /**
   * its worker handed tasks back because the running one blocks in get/wait:
   * send it no more until what it runs now finishes
   */
  blocked: boolean;
}

class SchedulingQueue {
  /** waiting tasks from `head` on; slots before it are cleared (a taken task must not stay reachable from here) */
  tasks: Array<NormalTask | undefined> = [];
  head = 0;
  readonly leases = new Set<Lease>();
  readonly requests = new Set<string>();
  warned = false;
  constructor(
    readonly key: string,
    readonly resources: Resources,
    readonly env: Record<string, string> | undefined,
    readonly sched: Scheduling | undefined,
    readonly pkg: string | undefined,
    readonly npm: NpmEnvSpec | undefined,
  ) {}
  /** Tasks waiting in the queue. */
  get length(): number {
    return this.tasks.length - this.head;
  }
  /** Takes the first waiting task (compacting the array now and then). */
  shift(): NormalTask | undefined {
    if (this.head >= this.tasks.length) return undefined;
    const t = this.tasks[this.head];
    this.tasks[this.head++] = undefined;
    if (this.head === this.tasks.length) {
      this.tasks = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.tasks.length) {
      this.tasks = this.tasks.slice(this.head);
      this.head = 0;
    }
    return t;
  }
  /** Puts a task back in front. */
  unshift(t: NormalTask): void {
    if (this.head > 0) this.tasks[--this.head] = t;
    else this.tasks.unshift(t);
  }
  /** Removes a waiting task (cancel). */
  remove(t: NormalTask): boolean {
    const i = this.tasks.indexOf(t, this.head);
    if (i < 0) return false;
    this.tasks.splice(i, 1);
    return true;
  }
}

/** How long an idle lease is kept for the next task before it is returned. */
const LEASE_IDLE_MS = 200;
/** At most this many lease requests in flight per queue. */
const MAX_LEASE_REQUESTS = 8;
/**
 * Work kept in flight per leased worker, in expected microseconds: tiny tasks
 * go in batches (throughput), long or unknown ones one at a time (balance).
 */
const BUDGET_US = 4000;
const MAX_IN_FLIGHT = 256;

/**
 * Adds a locality hint: a task whose large arguments live on another node
 * prefers that node (when it has room).
 */
function withLocality(sched: Scheduling | undefined, first: NormalTask | undefined, self: string): Scheduling | undefined {
  if (sched?.nodeId !== undefined || sched?.spread || !first?.spec.deps) return sched;
  const bytes = new Map<string, number>();
  for (const d of first.spec.deps) {
    const loc = d.val?.loc;
    if (loc && loc.spill === undefined) bytes.set(loc.node, (bytes.get(loc.node) ?? 0) + loc.size);
  }
  let best: string | undefined;
  let most = LOCALITY_MIN_BYTES - 1;
  for (const [node, n] of bytes) {
    if (n > most) {
      best = node;
      most = n;
    }
  }
  if (best === undefined || best === self) return sched;
  return { ...sched, prefer: best };
}

/**
 * Whether a lease runs one task and goes back: SPREAD leases (each task is
 * placed afresh), and soft-affinity leases on another node than the wanted
 * one (the next task tries that node again).
 */
function oneShot(l: Lease): boolean {
  const s = l.queue.sched;
  return s?.spread === true || (s?.nodeId !== undefined && s.soft === true && l.worker.nodeId !== s.nodeId);
}

/** What the submitter needs from the runtime. */
export interface SubmitterHooks {
  readonly self: Address;
  readonly jobId: string;
  readonly endpoint: Endpoint;
  readonly rayletAddress: string;
  /** Asks the owner of a borrowed entry for its value (no-op if asked already). */
  fetch(e: RefEntry): void;
  /** The dependency's value as it travels to the worker. */
  depValue(e: RefEntry): Dep['val'];
  /** Something to keep the process receiving messages for. */
  busy(delta: number): void;
  /** Prints a warning to the user. */
  warn(msg: string): void;
  /** The error a failed or lost object's readers get. */
  errorOf(e: RefEntry): Error;
  /** A task is about to finish with `r`: keep what rebuilding its returns needs (lineage). */
  keepLineage?(t: NormalTask, r: TaskResult): void;
}

/** A lease request in flight: its queue, and the node manager that has it now. */
interface LeaseRequest {
  readonly queue: SchedulingQueue;
  raylet: string;
  /** the node manager passed it on to another: that one grants it or queues it */
  spilled: boolean;
}

/** Arguments at least this large make a task prefer the node that holds them. */
const LOCALITY_MIN_BYTES = 1 << 20;

/** See the module comment. */
export class TaskSubmitter {
  private readonly queues = new Map<string, SchedulingQueue>();
  private readonly leases = new Map<string, Lease>();
  private readonly requests = new Map<string, LeaseRequest>();
  private requestCounter = 0;
  /** moving average of each function's execution time, microseconds */
  private readonly durations = new Map<string, number>();

  constructor(
    private readonly h: SubmitterHooks,
    private readonly tm: TaskManager,
  ) {}

  /**
   * Takes a new task; `deps` are its top-level ObjectRef arguments. With
   * `setup` (its working directory being packed and stored), it waits for
   * that first, and fails with its error.
   */
  submit(t: NormalTask, deps: ArgRef[], setup?: Promise<void>): void {
    this.tm.add(t);
    this.h.busy(1);
    t.args = deps;
    if (setup) {
      setup.then(
        () => {
          if (!t.finished) this.afterSetup(t, deps);
        },
        (e: Error) => {
          if (t.finished) return;
          this.tm.abort(t, undefined, e);
          this.finished();
        },
      );
      return;
    }
    this.afterSetup(t, deps);
  }

  private afterSetup(t: NormalTask, deps: ArgRef[]): void {
    if (deps.length === 0) {
      this.enqueue(t);
      return;
    }
    const specDeps: Dep[] = [];
    (t.spec as { deps?: Dep[] }).deps = specDeps;
    whenArgsReady(
      deps,
      t,
      this.h,
      specDeps,
      () => this.enqueue(t),
      (e) => {
        this.tm.abort(t, e.err, e.err ? undefined : this.h.errorOf(e));
        this.finished();
      },
    );
  }

  private queueFor(t: NormalTask): SchedulingQueue {
    let q = this.queues.get(t.key);
    if (!q) {
      q = new SchedulingQueue(t.key, t.resources, t.env, t.sched, t.pkg, t.npm);
      this.queues.set(t.key, q);
    }
    return q;
  }

  private enqueue(t: NormalTask, front = false): void {
    if (t.finished) return;
    const q = this.queueFor(t);
    t.queued = true;
    t.lease = undefined;
    if (front) q.unshift(t);
    else q.tasks.push(t);
    this.schedule(q);
  }

  /** Expected execution time; unknown functions count as a whole budget (sent alone). */
  private expected(t: NormalTask): number {
    return Math.max(1, this.durations.get(t.fnKey) ?? BUDGET_US);
  }

  private schedule(q: SchedulingQueue): void {
    for (const l of q.leases) {
      if (q.length === 0) break;
      this.push(l);
    }
    const head = q.tasks[q.head];
    // SPREAD tasks take one lease each, so that each goes where the node managers spread it
    const perLease = head && !q.sched?.spread ? Math.max(1, Math.floor(BUDGET_US / this.expected(head))) : 1;
    const want = Math.min(MAX_LEASE_REQUESTS, Math.ceil(q.length / perLease)) - q.requests.size;
    for (let i = 0; i < want; i++) this.requestLease(q);
    if (q.length === 0 && q.requests.size > 0) {
      for (const id of q.requests) {
        const r = this.requests.get(id);
        if (r) this.h.endpoint.send(r.raylet, { t: MT.CancelLeaseRequest, leaseReqId: id });
        this.requests.delete(id);
      }
      q.requests.clear();
    }
  }

  private push(l: Lease): void {
    if (l.returned || (l.blocked && l.inflight.size > 0)) return;
    l.blocked = false;
    const q = l.queue;
    const batch: TaskSpec[] = [];
    const max = oneShot(l) ? 1 : MAX_IN_FLIGHT;
    while (l.inflight.size < max) {
      const head = q.tasks[q.head];
      if (!head) break;
      const exp = this.expected(head);
      if (l.inflight.size > 0 && l.expectedUs + exp > BUDGET_US) break;
      const t = q.shift() as NormalTask;
      if (t.finished) continue;
      t.expectedUs = exp;
      l.expectedUs += exp;
      t.queued = false;
      t.lease = l;
      (t.spec as { att: number }).att = t.attempt;
      if (l.gpus.length > 0) (t.spec as { gpus?: string[] }).gpus = l.gpus;
      l.inflight.set(t.taskId, t);
      batch.push(t.spec);
    }
    if (batch.length === 0) return;
    this.h.endpoint.send(l.worker.endpoint, { t: MT.PushTasks, leaseId: l.id, owner: this.h.self, jobId: this.h.jobId, tasks: batch });
  }

  private requestLease(q: SchedulingQueue): void {
    const id = `${this.h.self.workerId}l${(++this.requestCounter).toString(36)}`;
    q.requests.add(id);
    const req: LeaseRequest = { queue: q, raylet: this.h.rayletAddress, spilled: false };
    this.requests.set(id, req);
    this.sendRequest(id, req);
  }

  private sendRequest(id: string, req: LeaseRequest): void {
    const q = req.queue;
    const first = q.tasks[q.head];
    // sent when spilled too: a soft affinity moves on from a node that turns out full
    const sched = withLocality(q.sched, first, this.h.self.nodeId);
    this.h.endpoint.send(req.raylet, {
      t: MT.RequestLease,
      leaseReqId: id,
      jobId: this.h.jobId,
      resources: q.resources,
      ...(q.env ? { env: q.env } : {}),
      ...(q.pkg ? { pkg: q.pkg } : {}),
      ...(q.npm ? { npm: q.npm } : {}),
      name: first?.name ?? 'task',
      ...(sched ? { sched } : {}),
      ...(req.spilled ? { spilled: true } : {}),
      ownerNode: this.h.self.nodeId,
    });
  }

  /** A node manager passed a request on to another node's. */
  onLeaseSpillback(leaseReqId: string, raylet: string): void {
    const req = this.requests.get(leaseReqId);
    if (!req) return;
    req.raylet = raylet;
    req.spilled = true;
    this.sendRequest(leaseReqId, req);
  }

  /**
   * A request can never be granted: its queue's tasks fail with the reason
   * (RuntimeEnvSetupError when their runtime environment could not be set up).
   */
  onLeaseFailed(leaseReqId: string, message: string, kind?: 'runtimeEnv'): void {
    const req = this.requests.get(leaseReqId);
    if (!req) return;
    this.requests.delete(leaseReqId);
    const q = req.queue;
    q.requests.delete(leaseReqId);
    for (let t = q.shift(); t; t = q.shift()) {
      if (t.finished) continue;
      t.queued = false;
      this.tm.abort(t, undefined, kind === 'runtimeEnv' ? new RuntimeEnvSetupError(`${t.name} cannot run: ${message}`) : new TaskUnschedulableError(message));
      this.finished();
    }
  }

  /** The node manager at `raylet` granted a lease. */
  onLeaseGranted(leaseReqId: string, leaseId: string, worker: Address, gpus: string[], raylet: string): void {
    const req = this.requests.get(leaseReqId);
    this.requests.delete(leaseReqId);
    if (!req) {
      // cancelled meanwhile: give it back
      this.h.endpoint.send(raylet, { t: MT.ReturnLease, leaseId, kill: false });
      return;
    }
    const q = req.queue;
    q.requests.delete(leaseReqId);
    const l: Lease = { id: leaseId, raylet: req.raylet, queue: q, worker, gpus, inflight: new Map(), expectedUs: 0, idleTimer: undefined, idleSince: 0, returned: false, blocked: false };
    this.leases.set(leaseId, l);
    q.leases.add(l);
    this.push(l);
    if (l.inflight.size === 0) this.returnLease(l);
    else this.schedule(q);
  }

  /** The node manager cannot ever satisfy a request: warn once per queue. */
  onLeaseInfeasible(leaseReqId: string, message: string): void {
    const q = this.requests.get(leaseReqId)?.queue;
    if (!q || q.warned) return;
    q.warned = true;
    this.h.warn(message);
  }

  /** Whether a result belongs to this submitter; handles it if so. */
  onResult(t: NormalTask, r: TaskResult): void {
    const l = t.lease;
    if (l && l.inflight.delete(t.taskId)) l.expectedUs -= t.expectedUs;
    if (r.us !== undefined) {
      const prev = this.durations.get(t.fnKey);
      this.durations.set(t.fnKey, prev === undefined ? r.us : prev * 0.7 + r.us * 0.3);
    }
    t.lease = undefined;
    if (r.st === TaskStatus.Requeue && t.cancelled) {
      this.tm.cancelled(t);
      this.finished();
    } else if (r.st === TaskStatus.Requeue) {
      if (l) l.blocked = true;
      t.attempt++;
      this.enqueue(t, true);
    } else if (r.st === TaskStatus.UserError && this.tm.shouldRetryError(t, r)) {
      t.retriesLeft--;
      t.attempt++;
      log.debug(`retrying ${t.name} after an error (${t.retriesLeft} retries left)`);
      this.enqueue(t);
    } else {
      this.h.keepLineage?.(t, r);
      this.tm.finish(t, r);
      this.finished();
    }
    if (l) this.afterProgress(l);
  }

  private afterProgress(l: Lease): void {
    const q = l.queue;
    // a SPREAD lease runs one task: the next one is placed afresh
    if (l.inflight.size === 0 && oneShot(l)) this.returnLease(l);
    if (q.length > 0) this.schedule(q);
    if (l.inflight.size === 0 && !l.returned) {
      l.idleSince = performance.now();
      if (!l.idleTimer) this.armIdle(l, LEASE_IDLE_MS);
    }
  }

  /** See Lease.idleTimer. */
  private armIdle(l: Lease, ms: number): void {
    l.idleTimer = setTimeout(() => {
      l.idleTimer = undefined;
      // busy now: armed again when it goes idle
      if (l.returned || l.inflight.size > 0) return;
      const left = LEASE_IDLE_MS - (performance.now() - l.idleSince);
      if (left >= 1) this.armIdle(l, left);
      else this.returnLease(l);
    }, ms);
    l.idleTimer.unref();
  }

  private finished(): void {
    this.h.busy(-1);
  }

  private returnLease(l: Lease, kill = false): void {
    if (l.returned) return;
    l.returned = true;
    if (l.idleTimer) clearTimeout(l.idleTimer);
    this.leases.delete(l.id);
    l.queue.leases.delete(l);
    this.h.endpoint.send(l.raylet, { t: MT.ReturnLease, leaseId: l.id, kill });
  }

  /** The node manager needs resources back: return leases with nothing in flight. */
  onReturnIdleLeases(): void {
    for (const l of [...this.leases.values()]) if (l.inflight.size === 0) this.returnLease(l);
  }

  /** The leased worker died: retry its tasks or fail them. */
  onLeaseWorkerDied(leaseId: string, reason: string): void {
    const l = this.leases.get(leaseId);
    if (!l) return;
    l.returned = true;
    if (l.idleTimer) clearTimeout(l.idleTimer);
    this.leases.delete(leaseId);
    l.queue.leases.delete(l);
    for (const t of l.inflight.values()) {
      t.lease = undefined;
      t.crashes++;
      if (!t.cancelled && t.retriesLeft > 0) {
        t.retriesLeft--;
        t.attempt++;
        log.debug(`retrying ${t.name}: its worker died (${reason})`);
        this.enqueue(t, true);
      } else {
        this.tm.crashed(t, reason);
        this.finished();
      }
    }
    l.inflight.clear();
    this.schedule(l.queue);
  }

  /**
   * Node `nodeId` (its node manager listened at `raylet`) died: tasks on its
   * workers are retried elsewhere (or fail, out of retries), and lease
   * requests waiting there go back to this node's node manager.
   */
  onNodeDied(nodeId: string, raylet: string, reason: string): void {
    for (const l of [...this.leases.values()]) if (l.worker.nodeId === nodeId) this.onLeaseWorkerDied(l.id, `its node died: ${reason}`);
    for (const [id, req] of this.requests) {
      if (req.raylet !== raylet) continue;
      req.raylet = this.h.rayletAddress;
      req.spilled = false;
      this.sendRequest(id, req);
    }
  }

  /**
   * Cancels a task: a queued one never runs; a running one is told to stop
   * (and with `force`, its worker is killed).
   */
  cancel(t: NormalTask, force: boolean, recursive: boolean): void {
    if (t.finished) return;
    t.cancelled = true;
    if (!t.lease) {
      const q = this.queues.get(t.key);
      if (q && t.queued) q.remove(t);
      this.tm.cancelled(t);
      this.finished();
      return;
    }
    const l = t.lease;
    if (force) {
      // the node manager kills the worker; onLeaseWorkerDied then fails its tasks
      l.returned = true;
      if (l.idleTimer) clearTimeout(l.idleTimer);
      this.h.endpoint.send(l.raylet, { t: MT.ReturnLease, leaseId: l.id, kill: true });
    } else this.h.endpoint.send(l.worker.endpoint, { t: MT.CancelTask, taskId: t.taskId, force, recursive });
  }

  /** Returns every lease (shutdown). */
  returnAll(): void {
    for (const l of [...this.leases.values()]) this.returnLease(l);
  }
}
