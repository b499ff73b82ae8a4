/**
 * Located code. A remote function or actor class made at a module's top
 * level is found again in a worker by the module that defines it and a
 * stable key: `ray.remote()` records the file of its caller (the first frame
 * outside tsray's own packages, so a library call at a module's top level
 * counts as that module's); the worker imports that file, whose top level
 * makes the same definitions again under the same keys. Keys are the
 * definition's name plus its rank among definitions of that name in the
 * module (anonymous functions are ranked in order), so they agree across
 * processes whatever transpiler loaded the module. An export of the calling
 * module is found by identity (`@export:NAME`). What is neither is shipped
 * by value (../shipping/).
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where a definition lives. */
export interface CodeLocation {
  module: string;
  key: string;
  /** name for logs and errors */
  name: string;
}

/** A definition that can be located, or why not. */
export type Located = { ok: true; loc: CodeLocation } | { ok: false; reason: string; name: string };

/** One definition registered in a module: its source, key and where `ray.remote()` was called. */
interface DefRecord {
  src: string;
  key: string;
  site: string;
  def: WeakRef<object>;
}

interface ModuleDefs {
  byName: Map<string, DefRecord[]>;
}

interface Registry {
  defs: Map<string, unknown>;
  modules: Map<string, ModuleDefs>;
}

const REGISTRY = Symbol.for('tsray.codeRegistry');

/** The process-wide registry, shared by every copy of tsray in the process. */
function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  let r = g[REGISTRY];
  if (!r) {
    r = { defs: new Map(), modules: new Map() };
    g[REGISTRY] = r;
  }
  return r;
}

const LOADER_FRAME = /^node:internal\/(modules|main)\/|[\\/]node_modules[\\/](jest-runtime|tsx|ts-node|pirates|@swc-node|esbuild-register|@babel[\\/]register|source-map-support|@jest)[\\/]/;

function callSites(skip: (...args: never[]) => unknown): NodeJS.CallSite[] {
  const orig = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 32;
  try {
    Error.prepareStackTrace = (_e, s) => s;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, skip);
    return Array.isArray(holder.stack) ? (holder.stack as NodeJS.CallSite[]) : [];
  } finally {
    Error.prepareStackTrace = orig;
    Error.stackTraceLimit = limit;
  }
}

const packageOfDir = new Map<string, { root: string; name: string } | null>();

/** The package a directory belongs to (its nearest package.json), cached. */
function packageOf(dir: string): { root: string; name: string } | null {
  const hit = packageOfDir.get(dir);
  if (hit !== undefined) return hit;
  let found: { root: string; name: string } | null = null;
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
    found = { root: dir, name: typeof pkg.name === 'string' ? pkg.name : '' };
  } catch {
    const up = path.dirname(dir);
    found = up === dir ? null : packageOf(up);
  }
  packageOfDir.set(dir, found);
  return found;
}

/** Whether `file` is code of one of tsray's own packages (@tsray/*: their src/ and dist/, not their tests). */
export function isTsrayFile(file: string): boolean {
  let p = file;
  if (p.startsWith('file:')) {
    try {
      p = fileURLToPath(p);
    } catch {
      return false;
    }
  }
  if (!path.isAbsolute(p)) return false;
  const pkg = packageOf(path.dirname(p));
  if (!pkg || !pkg.name.startsWith('@tsray/')) return false;
  const rel = path.relative(pkg.root, p).split(path.sep)[0];
  return rel === 'src' || rel === 'dist';
}

const nameCache = new Map<string, string[]>();

/**
 * Names of the variables anonymous remote definitions are assigned to, in
 * source order (`export const square = ray.remote((x) => ...)` gives
 * "square"). Anonymous definitions are keyed by that order (#0, #1, ...), so
 * the n-th name belongs to key #n. Used for display only.
 */
function anonymousNames(file: string): string[] {
  let names = nameCache.get(file);
  if (names) return names;
  names = [];
  try {
    const src = fs.readFileSync(file.startsWith('file:') ? new URL(file) : file, 'utf8');
    const re = /(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=;]+)?=\s*[\w$.]*remote\s*\(\s*(?:\{[^()]*?\}\s*,\s*)?(?:async\s+)?(?:function\s*\(|\(|[A-Za-z_$][\w$]*\s*=>)/g;
    for (let m = re.exec(src); m; m = re.exec(src)) names.push(m[1] as string);
  } catch {
    /* no source: keep "anonymous" */
  }
  nameCache.set(file, names);
  return names;
}

/** Where a definition was made: the frame that decides (see {@link definitionSite}). */
export interface DefinitionSite {
  /** its module file (path or file: URL); undefined for code without one (eval, the REPL, node -e) */
  file: string | undefined;
  /**
   * 'yes': the module's top level (a worker importing the module makes it again);
   * 'no': inside a function;
   * 'maybe': the module's body, but no frame shows who ran it — an ES
   * module's top level after a top-level await, which may be driver code
   * under the main-module guard that a worker's import does not run
   */
  topLevel: 'yes' | 'no' | 'maybe';
  /** the function it was made in, when known */
  inside: string | undefined;
  line: number;
  column: number;
}

/**
 * Finds where a definition is being made. Frames up to `caller` (the API
 * function) are skipped, and so are frames of tsray's own packages inside
 * their functions (a library's `registerEnv`, `ds.map`): the first frame
 * outside them, or a tsray module's own top level, decides.
 */
export function definitionSite(caller: (...args: never[]) => unknown): DefinitionSite {
  const sites = callSites(caller);
  let d = 0;
  for (; d < sites.length; d++) {
    const f = (sites[d] as NodeJS.CallSite).getFileName() ?? '';
    if (!isTsrayFile(f) || moduleBody(sites, d).topLevel === 'yes') break;
  }
  const site = sites[d];
  const file = site?.getFileName() ?? undefined;
  const line = site?.getLineNumber() ?? 0;
  const column = site?.getColumnNumber() ?? 0;
  if (!site || !file || file.startsWith('node:') || file.startsWith('evalmachine') || file === '[eval]' || file.includes('<anonymous>') || site.isEval()) {
    return { file: undefined, topLevel: 'no', inside: undefined, line, column };
  }
  return { file, line, column, ...moduleBody(sites, d) };
}

/** Whether frame `d` runs its module's body: anonymous frames of its file, called by a module loader. */
function moduleBody(sites: NodeJS.CallSite[], d: number): { topLevel: DefinitionSite['topLevel']; inside: string | undefined } {
  const file = sites[d]?.getFileName();
  // Module bodies are anonymous frames of the module's file (transpilers may
  // add anonymous wrappers), which begin on its first line; the first frame
  // outside the file must be a module loader. A named frame in between, or
  // an anonymous one that begins further down (an arrow function, an async
  // IIFE), means "inside a function".
  let i = d;
  for (; i < sites.length; i++) {
    const s = sites[i] as NodeJS.CallSite & { getEnclosingLineNumber?: () => number | null };
    if (s.getFileName() !== file) break;
    const fn = s.getFunctionName();
    if (fn !== null && fn !== '' && fn !== 'Object.<anonymous>') return { topLevel: 'no', inside: fn };
    const begins = s.getEnclosingLineNumber?.();
    if (typeof begins === 'number' && begins > 1) return { topLevel: 'no', inside: 'an anonymous function' };
  }
  const outer = sites[i];
  if (!outer) return { topLevel: 'maybe', inside: undefined };
  if (LOADER_FRAME.test(outer.getFileName() ?? '')) return { topLevel: 'yes', inside: undefined };
  return { topLevel: 'no', inside: outer.getFunctionName() ?? undefined };
}

/**
 * Registers a definition made at the top level of `file` and gives it its
 * key (or says why two definitions clash).
 */
export function register(def: object, explicitName: string | undefined, site: DefinitionSite & { file: string }): Located {
  const fnName = (def as { name?: string }).name ?? '';
  let display = explicitName ?? (fnName || 'anonymous');
  const where = `${site.line}:${site.column}`;
  const keyed = keyFor(site.file, explicitName, fnName, def, where);
  if (typeof keyed !== 'string') return { ok: false, name: display, reason: keyed.clash };
  const key = keyed;
  if (!explicitName && !fnName) display = anonymousNames(site.file)[Number(key.slice(1))] ?? display;
  registry().defs.set(`${site.file}\0${key}`, def);
  return { ok: true, loc: { module: site.file, key, name: display } };
}

const sources = new Map<string, string | undefined>();

/** A module file's text (cached; undefined when it cannot be read). */
export function sourceOf(file: string): string | undefined {
  if (sources.has(file)) return sources.get(file);
  let src: string | undefined;
  try {
    src = fs.readFileSync(file.startsWith('file:') ? new URL(file) : file, 'utf8');
  } catch {
    src = undefined;
  }
  sources.set(file, src);
  return src;
}

/** Keys of definitions found among a module's exports: `@export:NAME` ('' for the module itself). */
export const EXPORT_KEY = '@export:';

/**
 * The name `def` is exported under by the (already loaded) module `file`,
 * found by identity: `module.exports.NAME === def`. ES modules cannot be
 * read synchronously (nor modules jest loaded): there, an export
 * declaration of the function's own name in the file's source counts, and
 * `byIdentity` is false.
 */
export function exportedAs(def: object, file: string): { name: string; byIdentity: boolean } | undefined {
  const cache = require.cache as Record<string, { exports?: unknown } | undefined>;
  const m = file.startsWith('file:') ? undefined : cache[file];
  if (m) {
    const ex = m.exports;
    if (ex === def) return { name: '', byIdentity: true };
    if (typeof ex !== 'object' && typeof ex !== 'function') return undefined;
    if (ex === null) return undefined;
    for (const k of Object.keys(ex)) {
      try {
        if ((ex as Record<string, unknown>)[k] === def) return { name: k, byIdentity: true };
      } catch {
        /* a throwing getter: not this one */
      }
    }
    return undefined;
  }
  const name = (def as { name?: string }).name;
  if (!name || !/^[A-Za-z_$][\w$]*$/.test(name)) return undefined;
  const src = sourceOf(file);
  if (src === undefined) return undefined;
  const declared = new RegExp(`(?:^|[\\n;])\\s*export\\s+(default\\s+)?(?:(?:async\\s+)?function\\s*\\*?\\s*|class\\s+|(?:const|let|var)\\s+)${name.replace(/\$/g, '\\$')}\\b`).exec(src);
  if (declared) return { name: declared[1] ? 'default' : name, byIdentity: false };
  const list = /(?:^|[\n;])\s*export\s*\{([^}]*)\}(?!\s*from)/g;
  for (let m2 = list.exec(src); m2; m2 = list.exec(src)) {
    for (const part of (m2[1] as string).split(',')) {
      const [local, exported] = part.trim().split(/\s+as\s+/);
      if (local === name) return { name: exported ?? local, byIdentity: false };
    }
  }
  return undefined;
}

const importsOf = new Map<string, string[]>();

/** The files `file` imports (relative specifiers and packages), resolved; cached. */
function importedFiles(file: string): string[] {
  const hit = importsOf.get(file);
  if (hit) return hit;
  const out: string[] = [];
  const src = file.startsWith('file:') ? undefined : sourceOf(file);
  if (src !== undefined) {
    const specs = new Set<string>();
    for (const m of src.matchAll(/\b(?:from|import|require)\s*\(?\s*['"]([^'"\n]+)['"]/g)) specs.add(m[1] as string);
    const dir = path.dirname(file);
    for (const spec of specs) {
      if (spec.startsWith('node:')) continue;
      const r = resolveFrom(spec, dir);
      if (r && !out.includes(r)) out.push(r);
    }
  }
  importsOf.set(file, out);
  return out;
}

const EXTS = ['', '.ts', '.tsx', '.mts', '.cts', '.js', '.mjs', '.cjs', '/index.ts', '/index.js'];

/** `spec` resolved from `dir`: through the running loader, else by trying the TypeScript and JavaScript extensions. */
function resolveFrom(spec: string, dir: string): string | undefined {
  try {
    return require.resolve(spec, { paths: [dir] });
  } catch {
    if (!spec.startsWith('.')) return undefined;
  }
  const base = path.resolve(dir, spec);
  for (const e of EXTS) {
    const f = base + e;
    try {
      if (fs.statSync(f).isFile()) return f;
    } catch {
      // not this one
    }
  }
  // `./x.js` written for a `./x.ts` source (TypeScript's ESM convention)
  const ts = base.replace(/\.(c|m)?js$/, '.$1ts');
  return ts !== base && fs.existsSync(ts) ? ts : undefined;
}

/**
 * The module that `file` imports `def` from, and the name it exports it
 * under: a top-level function or class of another module, imported by the
 * module that hands it to tsray (`import { trainLoop } from './loops'`).
 */
export function importedExport(def: object, file: string): { file: string; name: string; byIdentity: boolean } | undefined {
  for (const f of importedFiles(file)) {
    const found = exportedAs(def, f);
    if (found && found.name !== '') return { file: f, ...found };
  }
  return undefined;
}

/**
 * The key of a definition. Evaluating a module again (test runners do)
 * registers its definitions again from the same call sites and gets the same
 * keys. Two different definitions with one key — closures from one factory
 * have the same source, or one explicit name used twice — could not be told
 * apart in a worker: that is an error.
 */
function keyFor(module: string, explicitName: string | undefined, fnName: string, def: object, site: string): string | { clash: string } {
  const r = registry();
  let m = r.modules.get(module);
  if (!m) {
    m = { byName: new Map() };
    r.modules.set(module, m);
  }
  const group = explicitName === undefined ? fnName : `\0${explicitName}`;
  let list = m.byName.get(group);
  if (!list) {
    list = [];
    m.byName.set(group, list);
  }
  const src = Function.prototype.toString.call(def);
  const same = explicitName === undefined ? list.find((x) => x.src === src) : list[0];
  if (same) {
    if (same.def.deref() === def || same.site === site) {
      same.def = new WeakRef(def);
      same.site = site;
      return same.key;
    }
    const shown = explicitName ?? (fnName || 'an anonymous function');
    const base = path.basename(module.replace(/^file:\/\//, ''));
    return {
      clash:
        explicitName !== undefined
          ? `the name '${explicitName}' is given to two different remote definitions in ${base} (lines ${same.site.split(':')[0]} and ${site.split(':')[0]}): workers could not tell them apart. Give each its own name.`
          : `${shown} in ${base} (line ${site.split(':')[0]}) has the same source as the remote definition at line ${same.site.split(':')[0]} ` +
            '(closures made by one factory look alike to a worker, which finds definitions by module and name): ' +
            "give each its own name with ray.remote({ name: 'unique' }, fn).",
    };
  }
  const key = explicitName ?? `${fnName}#${list.length}`;
  list.push({ src, key, site, def: new WeakRef(def) });
  return key;
}

/** The registered definition, if its module was loaded in this process. */
export function lookup(module: string, key: string): unknown {
  return registry().defs.get(`${module}\0${key}`);
}
