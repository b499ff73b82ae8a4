/**
 * Loading modules in a process (a worker) to find located definitions:
 * CommonJS through require(), ES modules through import(), TypeScript
 * through tsx's hooks (registered on first need), test files with their
 * runner's globals stubbed.
 * @internal
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const TS_EXT = /\.(ts|tsx|mts|cts)$/;
let tsCjs = false;
let tsEsm = false;

function hasLoaderFlag(): boolean {
  return process.execArgv.some((a) => /ts-node|@swc-node|esbuild-register/.test(a));
}

/** TypeScript for require(): tsx's CommonJS hook (small; no loader thread). */
function ensureTypeScriptCjs(): void {
  if (tsCjs || hasLoaderFlag()) return;
  tsCjs = true;
  // esbuild (under tsx) otherwise keeps a worker thread alive for its sync
  // API: ~10 MB in every worker, and slower than one esbuild process per
  // uncached file (tsx caches what it compiled on disk). esbuild reads the
  // setting once, when it is first loaded; the user's value wins.
  const saved = process.env.ESBUILD_WORKER_THREADS;
  process.env.ESBUILD_WORKER_THREADS ??= '0';
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('tsx/cjs/api') as { register: () => unknown }).register();
  } finally {
    if (saved === undefined) delete process.env.ESBUILD_WORKER_THREADS;
  }
}

/** TypeScript for import(): tsx's ESM hooks (they run on a loader thread). */
async function ensureTypeScriptEsm(): Promise<void> {
  if (tsEsm || hasLoaderFlag()) return;
  tsEsm = true;
  ((await import('tsx/esm/api')) as { register: () => unknown }).register();
}

const loaded = new Map<string, Promise<unknown>>();

/** Globals that test runners provide; stubbed so test files can be imported. */
function installTestGlobals(): void {
  const g = globalThis as Record<string, unknown>;
  const noop = (): void => undefined;
  const chain = (): unknown => new Proxy(noop, { get: () => chain, apply: () => chain() });
  for (const k of ['describe', 'it', 'test', 'beforeAll', 'afterAll', 'beforeEach', 'afterEach', 'fdescribe', 'fit', 'xdescribe', 'xit', 'xtest']) {
    if (g[k] === undefined) g[k] = chain();
  }
  if (g.expect === undefined) g.expect = chain();
  if (g.jest === undefined) g.jest = chain();
}

/** The TypeScript loaders, for code shipped by value that requires or imports TypeScript files. */
export const typeScriptHooks = { cjs: ensureTypeScriptCjs, esm: ensureTypeScriptEsm };

/** Imports `module` once (registering its definitions); resolves to its exports (CommonJS) or namespace (ES module). */
export function loadModule(module: string, opts: { testGlobals: boolean }): Promise<unknown> {
  let p = loaded.get(module);
  if (!p) {
    p = doLoad(module, opts);
    loaded.set(module, p);
    p.catch(() => loaded.delete(module));
  }
  return p;
}

async function doLoad(module: string, opts: { testGlobals: boolean }): Promise<unknown> {
  if (opts.testGlobals) installTestGlobals();
  const isUrl = module.startsWith('file:');
  const file = isUrl ? fileURLToPath(module) : module;
  const ts = TS_EXT.test(file);
  if (!isUrl && !/\.(mjs|mts)$/.test(file)) {
    if (ts) ensureTypeScriptCjs();
    try {
      return createRequire(file)(file) as unknown;
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_REQUIRE_ESM') throw e;
    }
  }
  if (ts) await ensureTypeScriptEsm();
  return (await import(isUrl ? module : pathToFileURL(file).href)) as unknown;
}
