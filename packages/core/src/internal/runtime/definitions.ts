/**
 * Finds a definition again in this process from its CodeRef: compiles code
 * shipped by value, takes an export of a module, or imports the module that
 * registers it (functions.ts).
 * @internal
 */
import { existsSync } from 'node:fs';
import type { CodeRef } from '../protocol/messages';
import { isPortableModule, localModule } from '../runtime-env/modules';
import { EXPORT_KEY, lookup } from './functions';
import { loadModule, typeScriptHooks } from './module-loader';

/** Where this process finds code. */
export interface DefinitionEnv {
  /** this worker's unpacked working directory (runtimeEnv.workingDir), if any */
  readonly workingDir: string | undefined;
  /** stub test runner globals when importing modules (a driver under jest) */
  readonly testGlobals: boolean;
  /** this node, for messages */
  readonly nodeId: string;
}

/** Why a definition could not be found or compiled here. */
export class DefinitionError extends Error {}

/** The definition `code` names: at once when it is here, else once its module is imported. Throws (or rejects with) DefinitionError. */
export function findDefinition(code: CodeRef, env: DefinitionEnv): unknown {
  let module: string;
  try {
    module = code.module === '' ? '' : localModule(code.module, env.workingDir);
  } catch (e) {
    throw new DefinitionError(`the worker cannot load ${code.name}: ${(e as Error).message}`);
  }
  if (code.src !== undefined) {
    try {
      // loaded on first use: a worker that runs only located code never needs it
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { compileShipped } = require('../shipping/compile') as typeof import('../shipping/compile');
      return compileShipped({ file: module, hash: code.key, body: code.src, needs: code.needs ?? [], name: code.name }, typeScriptHooks);
    } catch (e) {
      throw new DefinitionError(`${code.name}, shipped by value, could not be made in the worker: ${(e as Error).message}`);
    }
  }
  const exported = code.key.startsWith(EXPORT_KEY) ? code.key.slice(EXPORT_KEY.length) : undefined;
  if (exported === undefined) {
    const d = lookup(module, code.key);
    if (d !== undefined) return d;
  }
  return loadModule(module, { testGlobals: env.testGlobals }).then(
    (exports) => {
      if (exported !== undefined) {
        const v = exported === '' ? exports : (exports as Record<string, unknown> | null | undefined)?.[exported];
        if (typeof v !== 'function') {
          throw new DefinitionError(
            `${code.name} is not ${exported === '' ? `the export of ${module}` : `exported as ${exported} by ${module}`} when the worker imports it ` +
              `(got ${v === null ? 'null' : typeof v}). Export the function itself from the module's top level.`,
          );
        }
        return v;
      }
      const found = lookup(module, code.key);
      if (found === undefined) {
        throw new DefinitionError(
          `${code.name} was not found in ${module} after importing it in the worker. ` +
            'Define it with a ray.remote() call that runs when the module is imported (at the top level, not under a condition), ' +
            'or make it where it is used (inside a function): it is then shipped by value.',
        );
      }
      return found;
    },
    (e: unknown) => {
      const msg = e instanceof Error ? e.message : String(e);
      const missing = (e as { code?: string }).code === 'MODULE_NOT_FOUND' && !isPortableModule(code.module) && !existsSync(module.startsWith('file:') ? new URL(module) : module);
      const hint = missing
        ? ` (the module is not on node ${env.nodeId}: code that exists only on the driver's machine reaches other nodes in runtimeEnv.workingDir)`
        : '';
      throw new DefinitionError(`the worker could not import ${module} to find ${code.name}: ${msg}${hint}`);
    },
  );
}
