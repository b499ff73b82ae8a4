/**
 * `ray.util`: helpers for libraries built on tsray (and their users).
 *
 * ```ts
 * import * as ray from '@tsray/core';
 *
 * // a library's task, at the top level of the library's module
 * const applyFn = ray.remote(async (fn: ray.util.Shippable<(x: number) => number>, xs: number[]) => {
 *   const f = await fn.load();
 *   return xs.map((x) => f(x));
 * });
 *
 * // the library's API takes the user's function inline
 * export function mapAll(xs: number[], fn: (x: number) => number): Promise<number[]> {
 *   return ray.get(applyFn.remote(ray.util.shippable(fn, { what: 'mapAll' }), xs));
 * }
 * ```
 * @packageDocumentation
 */
export { shippable, isShippable, type Shippable, type ShippableOptions } from './internal/api/shippable';
