/**
 * Brands recognise tsray's own objects across module copies (a worker may
 * load the runtime and the user's module may load another copy of
 * `@tsray/core`), so checks never rely on class identity.
 * @internal
 */
import type { Address, CodeRef } from '../protocol/messages';

/** Marks ObjectRef instances. */
export const REF_BRAND = Symbol.for('tsray.ObjectRef');
/** Marks ActorHandle instances. */
export const ACTOR_BRAND = Symbol.for('tsray.ActorHandle');

/** What the serializer needs from an ObjectRef. */
export interface RefLike {
  readonly [REF_BRAND]: true;
  readonly id: string;
  readonly owner: Address;
}

/** Marks Shippable instances (`ray.util.shippable`). */
export const SHIPPABLE_BRAND = Symbol.for('tsray.Shippable');

/** The wire description of a Shippable: its code and what it is for. */
export interface ShippableWire {
  code: CodeRef;
  kind: 'function' | 'class';
  what: string | undefined;
}

/** What the serializer needs from a Shippable. */
export interface ShippableLike {
  readonly [SHIPPABLE_BRAND]: true;
  /** @internal */
  __wire(): ShippableWire;
}

/** The wire description of an actor handle. */
export interface ActorWire {
  id: string;
  className: string;
  methods: string[];
  module: string;
  key: string;
  maxTaskRetries: number;
}

/** What the serializer needs from an ActorHandle. */
export interface ActorLike {
  readonly [ACTOR_BRAND]: true;
  /** @internal */
  __wire(): ActorWire;
  /** @internal the process that owns (created) the actor */
  __owner(): Address;
}

export function isRef(v: unknown): v is RefLike {
  return typeof v === 'object' && v !== null && (v as Partial<RefLike>)[REF_BRAND] === true;
}

export function isActorHandle(v: unknown): v is ActorLike {
  return typeof v === 'object' && v !== null && (v as Partial<ActorLike>)[ACTOR_BRAND] === true;
}

/** Whether `v` is a Shippable (from any copy of tsray). */
export function isShippable(v: unknown): v is ShippableLike {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && (v as Partial<ShippableLike>)[SHIPPABLE_BRAND] === true;
}
