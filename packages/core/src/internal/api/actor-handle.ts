/**
 * Actor handles. A handle has one property per method of the actor's class;
 * `handle.method.remote(...args)` calls it.
 */
import { inspect } from 'node:util';
import { ACTOR_BRAND, isActorHandle, type ActorWire } from '../serialization/brands';
import type { Address } from '../protocol/messages';
import type { RefEntry } from '../runtime/refs';
import { compileMethodOptions } from './options';
import type { ActorHandleBase, ActorHandleOf, ActorMethodOptions } from './types';

/** @internal where handles send their calls */
export interface ActorCallSink {
  callActor(entry: RefEntry, method: string, args: unknown[], opts: ActorMethodOptions): unknown;
}

const RESERVED = new Set(['actorId', 'className', 'toString', '_entry', '_sink', '__wire', '__owner', 'constructor']);

/** Members of every handle: an actor class may not have methods of these names (`remote()` rejects it). */
export const reservedHandleMembers: ReadonlySet<string> = RESERVED;

class ActorMethodImpl {
  constructor(
    private readonly entry: RefEntry,
    private readonly sink: ActorCallSink,
    private readonly method: string,
    private readonly opts: ActorMethodOptions,
  ) {}
  remote(...args: unknown[]): unknown {
    return this.sink.callActor(this.entry, this.method, args, this.opts);
  }
  options(o: ActorMethodOptions): ActorMethodImpl {
    return new ActorMethodImpl(this.entry, this.sink, this.method, compileMethodOptions(o, this.opts));
  }
}

class ActorHandleImpl implements ActorHandleBase {
  /** @internal */
  readonly _entry: RefEntry;

  /** @internal handles are made by the runtime only */
  constructor(entry: RefEntry, sink: ActorCallSink) {
    this._entry = entry;
    const wire = entry.actorWire as ActorWire;
    for (const m of wire.methods) {
      if (RESERVED.has(m)) continue;
      Object.defineProperty(this, m, { value: new ActorMethodImpl(entry, sink, m, {}), enumerable: true });
    }
  }

  get actorId(): string {
    return this._entry.id;
  }

  get className(): string {
    return (this._entry.actorWire as ActorWire).className;
  }

  /** @internal */
  __wire(): ActorWire {
    return this._entry.actorWire as ActorWire;
  }

  /** @internal */
  __owner(): Address {
    return this._entry.owner;
  }

  toString(): string {
    return `ActorHandle(${this.className}, ${this.actorId})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  static [Symbol.hasInstance](x: unknown): boolean {
    return isActorHandle(x);
  }
}
Object.defineProperty(ActorHandleImpl.prototype, ACTOR_BRAND, { value: true });

/** @internal makes a handle */
export function makeActorHandle(entry: RefEntry, sink: ActorCallSink): object {
  return new ActorHandleImpl(entry, sink);
}

/**
 * A handle to an actor of type `T`: `handle.method.remote(...args)` calls a
 * method and returns an ObjectRef to its result. Handles can be passed to
 * tasks and other actors.
 */
export type ActorHandle<T = unknown> = ActorHandleOf<T>;

/** The ActorHandle class, for `instanceof` checks (works in workers too). */
export const ActorHandle: { readonly prototype: ActorHandleBase; [Symbol.hasInstance](x: unknown): x is ActorHandleBase } = ActorHandleImpl as unknown as typeof ActorHandle;
