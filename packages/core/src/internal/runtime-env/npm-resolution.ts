/**
 * How a worker of an npm environment finds its packages first. NODE_PATH
 * would not do: Node consults it only after every node_modules directory
 * above the requiring file, so a version in the project's node_modules
 * would win. Instead a bare specifier (`lodash`, `lodash/fp`,
 * `@scope/pkg`) whose package the environment has resolves as if it were
 * required from the environment's directory:
 *
 * - for `require()` and `require.resolve()` (createRequire'd ones too), by
 *   a hook on `Module._resolveFilename`;
 * - for `import` and `import()`, by a resolve hook registered with
 *   `module.register()` (npm-esm-hooks.ts; it runs on Node's loader thread).
 *
 * The environment goes first for code outside any node_modules directory:
 * the user's modules, a working directory's, functions shipped by value.
 * Code inside node_modules (installed libraries, the environment's own
 * packages) and tsray itself keep Node's resolution, so a library's nested
 * dependency versions stay its own; for them the environment is a
 * fallback, used when Node finds nothing.
 * @internal
 */
import * as fs from 'node:fs';
import Module, { isBuiltin } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What a worker's resolution needs: the environment's directory (it holds node_modules) and directories that keep Node's resolution. */
export interface NpmResolutionConfig {
  root: string;
  keep: string[];
}

/** The package a bare specifier names (`@scope/pkg` of `@scope/pkg/sub`), or undefined for relative, absolute, URL, `#` and builtin specifiers. */
export function packageNameOf(specifier: string): string | undefined {
  if (specifier === '' || /^[./#]/.test(specifier) || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(specifier) || isBuiltin(specifier)) return undefined;
  const parts = specifier.split('/');
  if (specifier.startsWith('@')) return parts.length >= 2 && parts[0] !== '@' && parts[1] !== '' ? `${parts[0]}/${parts[1]}` : undefined;
  return parts[0];
}

/** Whether code in `file` (undefined: no file, as at a REPL) resolves the environment's packages first. */
export function prefersEnv(file: string | undefined, cfg: NpmResolutionConfig): boolean {
  if (file === undefined || file === '') return true;
  const inside = (dir: string): boolean => file === dir || file.startsWith(dir + path.sep);
  if (inside(cfg.root) || cfg.keep.some(inside)) return false;
  return !file.split(path.sep).includes('node_modules');
}

/** `parentURL` of an import as a file path (undefined for an entry point or a URL that is not a file). */
export function fileOfUrl(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith('file:')) return undefined;
  try {
    return fileURLToPath(url);
  } catch {
    return undefined;
  }
}

/** A memo of which packages the environment holds. */
export function envPackages(root: string): (name: string) => boolean {
  const known = new Map<string, boolean>();
  return (name) => {
    let has = known.get(name);
    if (has === undefined) {
      has = fs.existsSync(path.join(root, 'node_modules', name, 'package.json'));
      known.set(name, has);
    }
    return has;
  };
}

type ResolveFilename = (this: unknown, request: string, parent: { filename?: string | null } | undefined, isMain: boolean, options?: { paths?: string[] }) => string;

let installed: string | undefined;
/** the installed environment's rules (set by installNpmResolution) */
let active: { cfg: NpmResolutionConfig; has: (name: string) => boolean } | undefined;

/**
 * For resolvers of our own (`import()` in code shipped by value): a file to
 * resolve `specifier` from instead of `parentFile`, when this worker's npm
 * environment has its package and goes first for `parentFile`.
 */
export function npmEnvParent(specifier: string, parentFile: string): string | undefined {
  if (!active) return undefined;
  const name = packageNameOf(specifier);
  if (name === undefined || !active.has(name) || !prefersEnv(parentFile, active.cfg)) return undefined;
  return path.join(active.cfg.root, 'tsray-npm-env.json');
}

/**
 * Makes this process (a worker) resolve the packages of the environment in
 * `root` first (see the module comment). Once per process.
 */
export function installNpmResolution(root: string): void {
  if (installed !== undefined) {
    if (installed !== root) throw new Error(`this process resolves npm packages from ${installed} already; a worker has one npm environment`);
    return;
  }
  installed = root;
  // tsray's own code keeps Node's resolution (in a checkout it lies outside node_modules); the
  // package's other files (its tests, say) are user code
  const cfg: NpmResolutionConfig = { root, keep: [path.resolve(__dirname, '..', '..')] };
  const has = envPackages(root);
  active = { cfg, has };
  const M = Module as unknown as { _resolveFilename: ResolveFilename };
  const original = M._resolveFilename;
  const envPaths = [root];
  M._resolveFilename = function resolveNpmEnvFirst(this: unknown, request, parent, isMain, options) {
    const name = options?.paths ? undefined : packageNameOf(request);
    if (name === undefined || !has(name)) return original.call(this, request, parent, isMain, options);
    const fromEnv = (): string => original.call(this, request, parent, isMain, { ...options, paths: envPaths });
    if (prefersEnv(parent?.filename ?? undefined, cfg)) {
      try {
        return fromEnv();
      } catch (e) {
        if ((e as { code?: string }).code !== 'MODULE_NOT_FOUND') throw e;
        return original.call(this, request, parent, isMain, options);
      }
    }
    try {
      return original.call(this, request, parent, isMain, options);
    } catch (e) {
      if ((e as { code?: string }).code !== 'MODULE_NOT_FOUND') throw e;
      return fromEnv();
    }
  };
  (Module as unknown as { register: (url: string, opts: { data: NpmResolutionConfig }) => void }).register(pathToFileURL(path.join(__dirname, 'npm-esm-hooks.js')).href, { data: cfg });
}
