/**
 * Identifiers. All ids are short strings: cheap to hash as Map keys and to
 * send. Task and object ids embed the id of the worker that made them, so
 * they are unique across the cluster without coordination.
 * @internal
 */
import { randomBytes } from 'node:crypto';

/** Random hex id of `bytes` bytes. */
export function randomId(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
}

/** Makes task and put-object ids for one process. */
export class IdGenerator {
  private taskCounter = 0;
  private putCounter = 0;
  constructor(readonly workerId: string) {}

  /** A new task id. */
  nextTaskId(): string {
    return `${this.workerId}t${(++this.taskCounter).toString(36)}`;
  }

  /** A new id for an object made by `put`. */
  nextPutId(): string {
    return `${this.workerId}p${(++this.putCounter).toString(36)}`;
  }
}

/** The id of the `index`-th return value of a task. */
export function returnId(taskId: string, index: number): string {
  return `${taskId}r${index.toString(36)}`;
}

/** Job ids are assigned by the head, in order. */
export function jobIdFromNumber(n: number): string {
  return n.toString(16).padStart(8, '0');
}
