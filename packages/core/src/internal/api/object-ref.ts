/**
 * The classes behind the public ObjectRef and ObjectRefGenerator types (see
 * types.ts): their runtime members (`_entry`, `owner`, `taskId`) are not part
 * of the public types.
 * @internal
 */
import { inspect } from 'node:util';
import { REF_BRAND, isRef } from '../serialization/brands';
import type { Address } from '../protocol/messages';
import type { RefEntry } from '../runtime/refs';
import type { StreamState } from '../runtime/task-manager';
import { currentRuntime } from './context';
import type { ObjectRef as PublicRef, ObjectRefGenerator as PublicGenerator } from './types';

/**
 * A reference to an object in the cluster: the future result of a task or
 * actor call, or a value stored with `put`. Pass it to `get` for the value,
 * or to other tasks (it is resolved to its value when it is a top-level
 * argument, and stays a reference when nested inside a value).
 *
 * ObjectRef is deliberately not thenable: `await ref` does not wait for the
 * value; use `await ray.get(ref)`.
 *
 * @typeParam T - the type of the value.
 */
export class ObjectRef<T = unknown> implements PublicRef<T> {
  /** @internal */
  readonly _entry: RefEntry;
  declare private readonly __value?: T;

  /** Made by the runtime only (`put`, `.remote()`); do not construct. */
  constructor(entry: RefEntry) {
    this._entry = entry;
  }

  /** The object's id, unique in the cluster. */
  get id(): string {
    return this._entry.id;
  }

  /** @internal the process that owns the object */
  get owner(): Address {
    return this._entry.owner;
  }

  /** `ObjectRef(<id>)`. */
  toString(): string {
    return `ObjectRef(${this._entry.id})`;
  }

  /** @internal */
  [inspect.custom](): string {
    return this.toString();
  }

  /** True for ObjectRefs made by any copy of tsray in this process. */
  static [Symbol.hasInstance](x: unknown): boolean {
    return isRef(x);
  }
}
Object.defineProperty(ObjectRef.prototype, REF_BRAND, { value: true });

/**
 * The result of a streaming task (`numReturns: 'streaming'`): an async
 * iterable of ObjectRefs, one per value the generator yields, available as
 * soon as each value is produced.
 *
 * ```ts
 * for await (const ref of gen.options({ numReturns: 'streaming' }).remote(10)) {
 *   console.log(await ray.get(ref));
 * }
 * ```
 * If the task fails, the next ref yielded holds the error (its `get` rejects).
 * Leaving the loop early (`break`, `return`, a throw) cancels the task;
 * refs already received stay valid.
 */
export class ObjectRefGenerator<T = unknown> implements PublicGenerator<T> {
  /** Made by the runtime only (a streaming `.remote()`); do not construct. */
  constructor(
    private readonly state: StreamState,
    private readonly toRef: (e: RefEntry) => ObjectRef<T>,
    /** @internal id of the task producing the stream */
    readonly taskId: string,
  ) {}

  #closed = false;

  /** The next ref, or `done` when the generator finished. */
  async next(): Promise<IteratorResult<ObjectRef<T>, undefined>> {
    const s = this.state;
    for (;;) {
      if (this.#closed) return { done: true, value: undefined };
      const e = s.items.shift();
      if (e) {
        s.next++;
        return { done: false, value: this.toRef(e) };
      }
      if (s.error) {
        const err = s.error;
        s.error = undefined;
        return { done: false, value: this.toRef(err) };
      }
      if (s.done) return { done: true, value: undefined };
      await s.wait();
    }
  }

  /**
   * Stops reading the stream: cancels the task when it is still running
   * (as `cancel()` does) and ends iteration. `for await` calls it on `break`.
   */
  async return(): Promise<IteratorResult<ObjectRef<T>, undefined>> {
    const s = this.state;
    this.#closed = true;
    if (!s.done) {
      currentRuntime()?.core.cancelTask(this.taskId, false, true);
    }
    s.items.length = 0;
    s.wake();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  static [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && Object.prototype.isPrototypeOf.call(ObjectRefGenerator.prototype, x);
  }
}
