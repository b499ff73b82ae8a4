/**
 * ObjectRef and ObjectRefGenerator as the public entry exports them: the
 * public types (types.ts) paired with the classes, for `instanceof`.
 */
import { ObjectRef as ObjectRefImpl, ObjectRefGenerator as ObjectRefGeneratorImpl } from './object-ref';
import type { ObjectRef as ObjectRefType, ObjectRefGenerator as ObjectRefGeneratorType } from './types';

/** A reference to an object in the cluster (see the interface's documentation). */
export type ObjectRef<T = unknown> = ObjectRefType<T>;
/** The ObjectRef class, for `instanceof` checks: true for refs made by any copy of tsray, in drivers and workers. */
export const ObjectRef: { readonly prototype: ObjectRefType<unknown>; [Symbol.hasInstance](x: unknown): x is ObjectRefType<unknown> } =
  ObjectRefImpl as unknown as typeof ObjectRef;

/** The result of a streaming task (see the interface's documentation). */
export type ObjectRefGenerator<T = unknown> = ObjectRefGeneratorType<T>;
/** The ObjectRefGenerator class, for `instanceof` checks. */
export const ObjectRefGenerator: {
  readonly prototype: ObjectRefGeneratorType<unknown>;
  [Symbol.hasInstance](x: unknown): x is ObjectRefGeneratorType<unknown>;
} = ObjectRefGeneratorImpl as unknown as typeof ObjectRefGenerator;
