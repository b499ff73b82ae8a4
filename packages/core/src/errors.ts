/**
 * tsray's error hierarchy. Every error the runtime raises for a distributed
 * failure extends {@link RayError}. Errors cross process boundaries: an error
 * raised in a worker is rebuilt in the caller as an instance of the same
 * class, so `instanceof` works in drivers and workers alike, even when two
 * copies of `@tsray/core` are loaded in one process.
 *
 * Bad arguments to public functions are reported with the standard
 * `TypeError` and `RangeError`, whose messages name the argument or option.
 */

const KINDS = Symbol.for('tsray.errorKinds');

type Branded = { [KINDS]?: readonly string[] };

/**
 * Thrown for any failure of the distributed runtime; the base class of every
 * tsray error. Check with `err instanceof RayError`.
 */
export class RayError extends Error {
  /** Stable identifier of the error class, used to rebuild it across processes. */
  static readonly kind: string = 'RayError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = (new.target as typeof RayError).kind;
    const chain: string[] = [];
    for (let c = new.target as typeof RayError | undefined; c && c !== (Error as unknown); c = Object.getPrototypeOf(c)) {
      if (Object.prototype.hasOwnProperty.call(c, 'kind')) chain.unshift(c.kind);
    }
    Object.defineProperty(this, KINDS, { value: chain, enumerable: false, configurable: true });
  }

  /** `instanceof` that also recognises errors built by another copy of tsray. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    if (typeof x !== 'object' || x === null) return false;
    const kinds = (x as Branded)[KINDS];
    if (Array.isArray(kinds)) return kinds.includes(this.kind);
    return Function.prototype[Symbol.hasInstance].call(this, x);
  }
}

/**
 * Thrown by `get` when the task (or actor method) that makes the object threw.
 * `cause` is the user's error rebuilt with its name, message and the stack
 * from the worker.
 */
export class TaskError extends RayError {
  static override readonly kind: string = 'TaskError';
  /** The remote function or `Class.method` that failed. */
  readonly functionName: string;
  /** Process id of the worker that ran it. */
  readonly pid: number;
  /** Node the worker ran on. */
  readonly nodeId: string;
  /** Id of the failed task. */
  readonly taskId: string;
  /** The user's error, rebuilt in this process. */
  declare readonly cause: Error;

  constructor(args: { functionName: string; pid: number; nodeId: string; taskId: string; cause: Error }) {
    const c = args.cause;
    super(
      `${args.functionName} failed in a worker (pid=${args.pid}, node=${args.nodeId.slice(0, 8)}): ` +
        `${c.name}: ${c.message}`,
      { cause: c },
    );
    this.functionName = args.functionName;
    this.pid = args.pid;
    this.nodeId = args.nodeId;
    this.taskId = args.taskId;
    if (c.stack) this.stack = `${this.name}: ${this.message}\n\nRemote stack:\n${c.stack}`;
  }
}

/**
 * Thrown when an actor is dead: its constructor threw (`cause` carries that
 * error), it was killed, its process died and it has no restarts left, or its
 * owner exited.
 */
export class ActorDiedError extends RayError {
  static override readonly kind: string = 'ActorDiedError';
  /** Id of the actor. */
  readonly actorId: string;
  /** Name of the actor's class. */
  readonly className: string;
  /** Why it died, in words. */
  readonly reason: string;

  constructor(args: { actorId: string; className: string; reason: string; cause?: Error }) {
    super(
      `The actor ${args.className} (${args.actorId}) is dead: ${args.reason}` +
        (args.cause ? ` — ${args.cause.name}: ${args.cause.message}` : ''),
      args.cause ? { cause: args.cause } : undefined,
    );
    this.actorId = args.actorId;
    this.className = args.className;
    this.reason = args.reason;
    if (args.cause?.stack) this.stack = `${this.name}: ${this.message}\n\nCause:\n${args.cause.stack}`;
  }
}

/**
 * Thrown when the worker process running a task died (crash, kill, out of
 * memory) and the task has no retries left (`maxRetries`, default 3).
 */
export class WorkerCrashedError extends RayError {
  static override readonly kind: string = 'WorkerCrashedError';
  /** The task that was running. */
  readonly functionName: string;
  /** Exit code or signal of the worker, in words. */
  readonly exitReason: string;

  constructor(args: { functionName: string; exitReason: string; attempts: number }) {
    super(
      `The worker running ${args.functionName} died (${args.exitReason}) ${args.attempts} time(s); ` +
        'no retries left. Raise maxRetries in the task options, or look at the worker output above for the cause.',
    );
    this.functionName = args.functionName;
    this.exitReason = args.exitReason;
  }
}

/**
 * Thrown when an object's value can no longer be obtained: its owner died, or
 * it was lost with the node that held it.
 */
export class ObjectLostError extends RayError {
  static override readonly kind: string = 'ObjectLostError';
  /** Id of the object. */
  readonly objectId: string;

  constructor(objectId: string, reason: string) {
    super(`Object ${objectId} is lost: ${reason}`);
    this.objectId = objectId;
  }
}

/** Thrown by `get` on an object that was freed with `free()`. */
export class ObjectFreedError extends ObjectLostError {
  static override readonly kind: string = 'ObjectFreedError';
  constructor(objectId: string) {
    super(objectId, 'it was freed (ray.free()); keep the ObjectRef and do not free it while you still need the value');
  }
}

/** Thrown by `get` on an object whose owner process exited. */
export class OwnerDiedError extends ObjectLostError {
  static override readonly kind: string = 'OwnerDiedError';
  /** `how`: what happened to the owner, e.g. "died with node 1a2b3c4d" */
  constructor(objectId: string, ownerWorkerId: string, how = 'exited') {
    super(
      objectId,
      `its owner (worker ${ownerWorkerId.slice(0, 8)}, the process that created it) ${how}. ` +
        'Objects live as long as their owner: create long-lived objects in the driver or a long-lived actor',
    );
  }
}

/**
 * Thrown by `get` when `timeoutMs` passes before the values are ready (the
 * tasks keep running; `get` again to wait longer). `wait` does not throw on
 * a timeout: it returns the refs that are ready by then.
 */
export class GetTimeoutError extends RayError {
  static override readonly kind: string = 'GetTimeoutError';
  /** The timeout that passed. */
  readonly timeoutMs: number;
  constructor(timeoutMs: number, pending: number) {
    super(`get timed out after ${timeoutMs} ms with ${pending} object(s) not ready`);
    this.timeoutMs = timeoutMs;
  }
}

/** Thrown by `get` for a task stopped with `cancel()`. */
export class TaskCancelledError extends RayError {
  static override readonly kind: string = 'TaskCancelledError';
  /** Id of the cancelled task. */
  readonly taskId: string;
  constructor(taskId: string, functionName = 'the task') {
    super(`${functionName} (task ${taskId}) was cancelled`);
    this.taskId = taskId;
  }
}

/**
 * Thrown when an object does not fit in the node's object store and cannot be
 * spilled to disk either.
 */
export class ObjectStoreFullError extends RayError {
  static override readonly kind: string = 'ObjectStoreFullError';
  /** Bytes that were needed. */
  readonly needed: number;
  constructor(needed: number, detail: string) {
    super(
      `The object store cannot hold an object of ${needed} bytes: ${detail}. ` +
        'Free references you no longer need, raise objectStoreMemory in init(), or make room on the spill disk.',
    );
    this.needed = needed;
  }
}

/**
 * Thrown when a definition cannot reach workers: at `ray.remote(fn)` or
 * `ray.util.shippable(fn)` when `fn` is shipped by value (it is not defined
 * at the top level of a module) and captures variables from outside it, or
 * its source is not available; at `.remote()` when two top-level
 * definitions clash; by `Shippable.load()` when the definition cannot be
 * found or compiled in that process.
 */
export class RemoteDefinitionError extends RayError {
  static override readonly kind: string = 'RemoteDefinitionError';
}

/** Thrown by `getActor` when no live actor has that name in the namespace. */
export class ActorNotFoundError extends RayError {
  static override readonly kind: string = 'ActorNotFoundError';
}

/** Thrown when a named actor is created with a name already taken in its namespace. */
export class ActorNameTakenError extends RayError {
  static override readonly kind: string = 'ActorNameTakenError';
}

/**
 * Thrown by `get()` of a task that can never be scheduled, e.g. one with a
 * hard node affinity (`scheduling: { nodeId, soft: false }`) to a node that
 * is dead or was never in the cluster.
 */
export class TaskUnschedulableError extends RayError {
  static override readonly kind: string = 'TaskUnschedulableError';
}

/** Thrown when the runtime environment of a task or actor cannot be set up. */
export class RuntimeEnvSetupError extends RayError {
  static override readonly kind: string = 'RuntimeEnvSetupError';
}

/**
 * Thrown by `pg.ready()` / `pg.wait()` of a placement group that was removed
 * (by `removePlacementGroup()`, or because its job ended).
 */
export class PlacementGroupRemovedError extends RayError {
  static override readonly kind: string = 'PlacementGroupRemovedError';
}

/** Thrown by `getPlacementGroup` when no placement group has that name in the namespace. */
export class PlacementGroupNotFoundError extends RayError {
  static override readonly kind: string = 'PlacementGroupNotFoundError';
}

/** Thrown when the runtime is used before `init()` or after `shutdown()`. */
export class NotInitializedError extends RayError {
  static override readonly kind: string = 'NotInitializedError';
  constructor(what: string) {
    super(`${what} needs a running tsray: call \`await ray.init()\` first.`);
  }
}

/** Thrown when the cluster (head or node manager) cannot be reached or dies. */
export class RaySystemError extends RayError {
  static override readonly kind: string = 'RaySystemError';
}

/**
 * Thrown in a driver whose node manager or head died (killed, crashed, or
 * silent past the head timeout): every pending `get`, `wait`, actor call and
 * request rejects with it, the driver is disconnected (`isInitialized()` is
 * false) and `init()` may start or join a cluster again. Calls made after
 * that, until `init()` or `shutdown()`, throw it too.
 */
export class NodeDiedError extends RaySystemError {
  static override readonly kind: string = 'NodeDiedError';
  /** What died: this driver's node manager, or the cluster's head. */
  readonly died: 'nodeManager' | 'head';
  /** The node of this driver. */
  readonly nodeId: string;
  /** Process id of what died, where it is known (-1 otherwise). */
  readonly pid: number;
  /** How it was noticed, in words ("its process exited (SIGKILL)"). */
  readonly reason: string;

  constructor(args: { died: 'nodeManager' | 'head'; nodeId: string; pid: number; reason: string; where?: string }) {
    const what =
      args.died === 'nodeManager'
        ? `The node manager of this driver's node ${args.nodeId.slice(0, 8)}${args.pid > 0 ? ` (pid ${args.pid})` : ''} died`
        : `The head of ${args.where ? `the cluster at ${args.where}` : "this driver's cluster"}${args.pid > 0 ? ` (pid ${args.pid})` : ''} died`;
    super(
      `${what}: ${args.reason}. This driver is disconnected: its pending calls failed and the objects it owned are gone. ` +
        'Call ray.init() again to start a new cluster or to join another (or the same one once it runs again).',
    );
    this.died = args.died;
    this.nodeId = args.nodeId;
    this.pid = args.pid;
    this.reason = args.reason;
  }
}

/** @internal every error class by kind, to rebuild errors from the wire. */
export const ERROR_CLASSES: Record<string, typeof RayError> = {
  RayError,
  TaskError: TaskError as unknown as typeof RayError,
  ActorDiedError: ActorDiedError as unknown as typeof RayError,
  WorkerCrashedError: WorkerCrashedError as unknown as typeof RayError,
  ObjectLostError: ObjectLostError as unknown as typeof RayError,
  ObjectFreedError: ObjectFreedError as unknown as typeof RayError,
  OwnerDiedError: OwnerDiedError as unknown as typeof RayError,
  GetTimeoutError: GetTimeoutError as unknown as typeof RayError,
  TaskCancelledError: TaskCancelledError as unknown as typeof RayError,
  ObjectStoreFullError: ObjectStoreFullError as unknown as typeof RayError,
  RemoteDefinitionError,
  ActorNotFoundError,
  ActorNameTakenError,
  RuntimeEnvSetupError,
  TaskUnschedulableError,
  PlacementGroupRemovedError,
  PlacementGroupNotFoundError,
  NotInitializedError: NotInitializedError as unknown as typeof RayError,
  RaySystemError,
  NodeDiedError: NodeDiedError as unknown as typeof RayError,
};

/** @internal the kinds (class chain) of a tsray error, or undefined. */
export function errorKinds(e: unknown): readonly string[] | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const k = (e as Branded)[KINDS];
  return Array.isArray(k) ? k : undefined;
}

/** @internal rebrands an error object rebuilt from the wire. */
export function brandError(e: Error, kinds: readonly string[]): void {
  Object.defineProperty(e, KINDS, { value: [...kinds], enumerable: false, configurable: true });
}
