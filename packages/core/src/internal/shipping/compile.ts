/**
 * The worker side of code shipped by value: compiles the shipped text once
 * per process (cached by its content hash) with `require`, `import()`,
 * `import.meta`, `__filename` and `__dirname` bound to the file it was
 * written in, so packages resolve as they do in that file.
 * @internal
 */
import * as fs from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { npmEnvParent } from '../runtime-env/npm-resolution';
import * as vm from 'node:vm';
import { IMPORT_META_NAME, IMPORT_NAME, MODULE_NAMES } from './names';

/** What the caller ships for one definition (see code.ts). */
export interface ShippedSource {
  /** the file it was written in (absolute path or file: URL); '' when it has none (eval, the REPL) */
  file: string;
  /** content hash of everything below and the file */
  hash: string;
  /** a function body that returns the definition */
  body: string;
  /** loader helpers it needs (helpers.ts) */
  needs: readonly string[];
  /** name for errors */
  name: string;
}

const TS_FILE = /\.(ts|tsx|mts|cts)$/;

/** Hooks for TypeScript files that `require` and `import()` reach (functions.ts owns them). */
export interface TypeScriptHooks {
  cjs(): void;
  esm(): Promise<void>;
}

const cache = new Map<string, { body: string; value: unknown }>();
/** Compiled definitions kept per process (the oldest goes first beyond it). */
const CACHE_MAX = 256;

/** The definition, compiled on first use in this process. */
export function compileShipped(s: ShippedSource, ts: TypeScriptHooks): unknown {
  const hit = cache.get(s.hash);
  if (hit && hit.body === s.body) return hit.value;
  const value = compile(s, ts);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
  cache.set(s.hash, { body: s.body, value });
  return value;
}

function compile(s: ShippedSource, ts: TypeScriptHooks): unknown {
  const file = s.file === '' ? path.join(process.cwd(), '[shipped]') : s.file.startsWith('file:') ? fileURLToPath(s.file) : s.file;
  const dir = path.dirname(file);
  const isTs = TS_FILE.test(file);
  const req = createRequire(file);
  const requireFrom = Object.assign(
    (id: string): unknown => {
      if (isTs && (id.startsWith('.') || TS_FILE.test(id))) ts.cjs();
      return req(id);
    },
    { resolve: req.resolve, cache: req.cache, main: req.main, extensions: req.extensions },
  );
  const mod = { exports: {} as unknown, id: file, filename: file, path: dir, loaded: true, require: requireFrom };
  const importFrom = async (spec: unknown): Promise<unknown> => {
    const target = await importTarget(String(spec), file);
    if (TS_FILE.test(target)) await ts.esm();
    return import(target);
  };
  const meta = { url: pathToFileURL(file).href, filename: file, dirname: dir, resolve: (spec: string): string => resolveForImport(spec, file) };
  const params = [...MODULE_NAMES, IMPORT_NAME, IMPORT_META_NAME, ...s.needs];
  const args: unknown[] = [requireFrom, mod, mod.exports, file, dir, importFrom, meta];
  if (s.needs.length > 0) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { helper } = require('./helpers') as typeof import('./helpers');
    for (const n of s.needs) args.push(helper(n));
  }
  let make: (...a: unknown[]) => unknown;
  try {
    make = vm.compileFunction(s.body, params, { filename: file }) as (...a: unknown[]) => unknown;
  } catch (e) {
    throw new Error(`the source of ${s.name} does not compile in the worker: ${(e as Error).message}`);
  }
  const value = make(...args);
  nameIt(value, s.name);
  return value;
}

/** Gives an anonymous compiled function the name it had where it was defined (`const f = (x) => ...`). */
function nameIt(value: unknown, name: string): void {
  if (typeof value !== 'function' || value.name === name || name === '' || name === 'anonymous') return;
  const d = Object.getOwnPropertyDescriptor(value, 'name');
  if (d && !d.configurable) return;
  if (d && d.value !== '' && d.value !== undefined) return;
  Object.defineProperty(value, 'name', { value: name, configurable: true });
}

const BUILTINS = new Set(builtinModules);

/** What `import(spec)` in `file` loads, as a URL (or a builtin's name). */
async function importTarget(spec: string, file: string): Promise<string> {
  if (spec.startsWith('node:') || BUILTINS.has(spec) || /^[a-z][a-z0-9+.-]*:/i.test(spec)) return spec;
  return pathToFileURL(resolveForImport(spec, file)).href;
}

/** Resolves `spec` from `file` as `import` would: relative paths as paths, packages by their `exports` for `import`, else by `main`. */
function resolveForImport(spec: string, file: string): string {
  if (spec.startsWith('node:') || BUILTINS.has(spec)) return spec;
  if (spec.startsWith('file:')) return fileURLToPath(spec);
  if (spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/') || spec === '.' || spec === '..') return path.resolve(path.dirname(file), spec);
  // a worker of an npm environment finds the environment's packages first (npm-resolution.ts)
  const from = npmEnvParent(spec, file) ?? file;
  const viaExports = resolveExports(spec, from);
  if (viaExports !== undefined) return viaExports;
  return createRequire(from).resolve(spec);
}

type ExportsField = string | null | ExportsField[] | { [k: string]: ExportsField };

const CONDITIONS = ['import', 'node', 'default'];

/** A package's `exports` target for `subpath` under the import conditions; undefined when the package has no `exports`. */
function resolveExports(spec: string, file: string): string | undefined {
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
  const subpath = '.' + spec.slice(name.length);
  const dirs = createRequire(file).resolve.paths(name) ?? [];
  for (const d of dirs) {
    const pkgDir = path.join(d, name);
    let pkg: { exports?: ExportsField };
    try {
      pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { exports?: ExportsField };
    } catch {
      continue;
    }
    if (pkg.exports === undefined) return undefined;
    const ex = pkg.exports;
    const map = typeof ex === 'object' && ex !== null && !Array.isArray(ex) && Object.keys(ex).some((k) => k.startsWith('.')) ? ex : { '.': ex };
    let target: ExportsField | undefined = map[subpath];
    let star = '';
    if (target === undefined) {
      for (const [k, v] of Object.entries(map)) {
        const i = k.indexOf('*');
        if (i >= 0 && subpath.startsWith(k.slice(0, i)) && subpath.endsWith(k.slice(i + 1))) {
          star = subpath.slice(i, subpath.length - (k.length - i - 1));
          target = v;
          break;
        }
      }
    }
    const t = pick(target);
    if (t === undefined) {
      throw Object.assign(new Error(`Package subpath '${subpath}' is not exported for import by ${pkgDir}/package.json`), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
    }
    return path.join(pkgDir, t.replace('*', star));
  }
  return undefined;
}

function pick(t: ExportsField | undefined): string | undefined {
  if (t === undefined || t === null) return undefined;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    for (const x of t) {
      const r = pick(x);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(t)) {
    if (!CONDITIONS.includes(k)) continue;
    const r = pick(v);
    if (r !== undefined) return r;
  }
  return undefined;
}
