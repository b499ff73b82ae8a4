/**
 * Module paths of code that travels in a working directory. A remote
 * definition is found by the module that defines it (functions.ts); when
 * that module lies inside the task's working directory, the submitter
 * writes its path relative to the directory (`tsray-wd:lib/tasks.js`), and
 * the worker reads it inside its own unpacked copy. Modules it loads from
 * there import their siblings relative to themselves, so those come from
 * the copy too.
 * @internal
 */
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PATH_PREFIX = 'tsray-wd:';
const URL_PREFIX = 'tsray-wd-url:';

/** `module` relative to the working directory when it lies inside one of `roots`; else `module` unchanged. */
export function portableModule(module: string, roots: readonly string[]): string {
  const isUrl = module.startsWith('file:');
  let file: string;
  try {
    file = isUrl ? fileURLToPath(module) : module;
  } catch {
    return module;
  }
  for (const root of roots) {
    if (!file.startsWith(root + path.sep)) continue;
    const rel = path.relative(root, file).split(path.sep).join('/');
    return (isUrl ? URL_PREFIX : PATH_PREFIX) + rel;
  }
  return module;
}

/** Whether `module` names a file of a working directory (see {@link portableModule}). */
export function isPortableModule(module: string): boolean {
  return module.startsWith(PATH_PREFIX) || module.startsWith(URL_PREFIX);
}

/**
 * The module to load in this process: a working-directory module inside
 * `workingDir` (this worker's unpacked copy), anything else unchanged.
 * Throws an Error naming the problem when it cannot be placed.
 */
export function localModule(module: string, workingDir: string | undefined): string {
  const isUrl = module.startsWith(URL_PREFIX);
  if (!isUrl && !module.startsWith(PATH_PREFIX)) return module;
  const rel = module.slice((isUrl ? URL_PREFIX : PATH_PREFIX).length);
  if (rel === '' || rel.startsWith('/') || rel.split('/').some((s) => s === '..' || s === '')) {
    throw new Error(`the module path ${JSON.stringify(module)} is not a path inside a working directory`);
  }
  if (workingDir === undefined) {
    throw new Error(`${rel} belongs to a runtimeEnv.workingDir, but this worker was started without one`);
  }
  const abs = path.join(workingDir, ...rel.split('/'));
  return isUrl ? pathToFileURL(abs).href : abs;
}
