/**
 * Forcing a garbage collection, to release objects whose ObjectRefs are
 * unreachable when the object store is full.
 * @internal
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

let gcFn: (() => void) | undefined;

/** Runs a full garbage collection now. */
export function forceGc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}
