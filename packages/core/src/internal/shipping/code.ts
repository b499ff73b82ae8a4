/**
 * How a definition reaches workers, decided where it is made. Located
 * first: a definition made at a module's top level (the worker imports the
 * module, which makes it again), or one the calling module exports (found
 * by identity among its exports). Anything else is shipped by value: its
 * source text as the running loader produced it, plus its file, checked
 * here for free identifiers so that a captured variable fails at the call
 * site, not in a worker.
 * @internal
 */
import { createHash } from 'node:crypto';
import { findSourceMap } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RemoteDefinitionError } from '../../errors';
import type { CodeRef } from '../protocol/messages';
import { EXPORT_KEY, definitionSite, exportedAs, importedExport, register, sourceOf, type DefinitionSite } from '../runtime/functions';
import type { Analysis } from './scope';

// The by-value machinery (and acorn) loads on first use: a process whose
// definitions are all located (most workers) never needs it.
type Names = typeof import('./names');
let namesModule: Names | undefined;
function names(): Names {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  namesModule ??= require('./names') as Names;
  return namesModule;
}

/** Keys of definitions shipped by value: `@value:` and a content hash. */
export const VALUE_KEY = '@value:';

/** How a definition travels, or why it cannot (reported when it is used). */
export type Shipment = { ok: true; code: CodeRef } | { ok: false; reason: string; name: string };

/** Who asks, for the wording of errors. */
export interface ShipRequest {
  /** `ray.remote({ name })` */
  explicitName?: string | undefined;
  /** a library's name for what takes the definition (`'ds.map'`) */
  what?: string | undefined;
  /** the API function called (its frame and those below it are skipped) */
  caller: (...args: never[]) => unknown;
  /** 'function' or 'class', for messages */
  kind: 'function' | 'class';
}

/**
 * How `def` travels. Throws RemoteDefinitionError at once when it must be
 * shipped by value and cannot be: it captures variables, or its source is
 * not available.
 */
export function shipmentOf(def: object, req: ShipRequest): Shipment {
  const site = definitionSite(req.caller);
  const file = site.file;
  if (file !== undefined && site.topLevel === 'yes') return fromLocated(register(def, req.explicitName, { ...site, file }));
  if (file !== undefined) {
    const found = exportedAs(def, file);
    if (found !== undefined) {
      // matched by name only (ES modules, jest): a local of the same name would be taken for the export, so by value goes first
      const v = found.byIdentity ? undefined : byValue(def, site, req, false);
      if (v) return v;
      const name = req.explicitName ?? (found.name || (def as { name?: string }).name || path.basename(file));
      return { ok: true, code: { module: file, key: EXPORT_KEY + found.name, name } };
    }
    const imported = importedExport(def, file);
    if (imported !== undefined) {
      const v = imported.byIdentity ? undefined : byValue(def, site, req, false);
      if (v) return v;
      return { ok: true, code: { module: imported.file, key: EXPORT_KEY + imported.name, name: req.explicitName ?? imported.name } };
    }
  }
  if (file !== undefined && site.topLevel === 'maybe') {
    // an ES module's top level after a top-level await (often driver code
    // under the main-module guard): by value when that is safe, located otherwise
    const v = byValue(def, site, req, false);
    return v ?? fromLocated(register(def, req.explicitName, { ...site, file }));
  }
  return byValue(def, site, req, true) as Shipment;
}

function fromLocated(l: ReturnType<typeof register>): Shipment {
  return l.ok ? { ok: true, code: l.loc } : l;
}

const analyses = new Map<string, Analysis>();

function analyzed(text: string): Analysis {
  let a = analyses.get(text);
  if (!a) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    a = (require('./scope') as typeof import('./scope')).analyze(text);
    if (analyses.size >= 256) analyses.delete(analyses.keys().next().value as string);
    analyses.set(text, a);
  }
  return a;
}

const declared = new Map<string, Set<string>>();

/**
 * Names the source of `file` declares anywhere (imports, variables,
 * functions, classes), read with patterns rather than parsed: the file may
 * be TypeScript. A free name of shipped code that is also a global counts
 * as captured when its file declares it (`import * as crypto from
 * 'node:crypto'`): in a worker it would be the global instead.
 */
function declaredIn(file: string): Set<string> {
  let d = declared.get(file);
  if (d) return d;
  d = new Set();
  const src = sourceOf(file) ?? '';
  const add = (list: string): void => {
    for (const part of list.split(',')) {
      const m = /(?:^|\s)(?:type\s+)?(?:[\w$]+\s+as\s+)?([A-Za-z_$][\w$]*)\s*(?:[:=].*)?$/.exec(part.trim());
      if (m) d?.add(m[1] as string);
    }
  };
  for (const m of src.matchAll(/\bimport\s+(?:type\s+)?([A-Za-z_$][\w$]*)\s*(?:,|from\b)/g)) d.add(m[1] as string);
  for (const m of src.matchAll(/\bimport\s+(?:[\w$]+\s*,\s*)?\*\s*as\s+([A-Za-z_$][\w$]*)/g)) d.add(m[1] as string);
  for (const m of src.matchAll(/\bimport\s+(?:type\s+)?(?:[\w$]+\s*,\s*)?\{([^}]*)\}/g)) add(m[1] as string);
  for (const m of src.matchAll(/\bimport\s+([A-Za-z_$][\w$]*)\s*=\s*require\b/g)) d.add(m[1] as string);
  for (const m of src.matchAll(/\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)/g)) d.add(m[1] as string);
  for (const m of src.matchAll(/\b(?:const|let|var)\s*\{([^}]*)\}\s*=/g)) add((m[1] as string).replace(/[\w$]+\s*:\s*/g, ''));
  for (const m of src.matchAll(/\b(?:function\s*\*?|class)\s+([A-Za-z_$][\w$]*)/g)) d.add(m[1] as string);
  if (declared.size >= 256) declared.delete(declared.keys().next().value as string);
  declared.set(file, d);
  return d;
}

/** Where a site is, for messages: `main (driver.ts:12)`, with the line as written when the loader left a source map. */
function whereText(site: DefinitionSite): string {
  if (site.file === undefined) return 'in code without a module file (eval, the REPL or node -e)';
  const { line } = originalPosition(site);
  const base = path.basename(site.file.startsWith('file:') ? fileURLToPath(site.file) : site.file);
  return `${site.inside ? `inside ${site.inside} ` : ''}at ${base}:${line}`;
}

function originalPosition(site: DefinitionSite): { line: number; column: number } {
  try {
    const map = site.file ? findSourceMap(site.file.startsWith('file:') ? fileURLToPath(site.file) : site.file) : undefined;
    const e = map?.findEntry(site.line - 1, site.column - 1) as { originalLine?: number; originalColumn?: number } | undefined;
    if (e && typeof e.originalLine === 'number') return { line: e.originalLine + 1, column: (e.originalColumn ?? 0) + 1 };
  } catch {
    /* no map */
  }
  return { line: site.line, column: site.column };
}

const lines = new Map<string, string[]>();

function linesOf(file: string): string[] {
  let l = lines.get(file);
  if (!l) {
    l = (sourceOf(file) ?? '').split('\n');
    lines.set(file, l);
  }
  return l;
}

/** `const name = ...remote(` on the line that makes an anonymous definition: its name for logs. */
function nameFromSource(site: DefinitionSite): string | undefined {
  if (site.file === undefined) return undefined;
  try {
    const { line } = originalPosition(site);
    const text = linesOf(site.file)[line - 1] ?? '';
    return /(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=\s*[\w$.]*(?:remote|shippable)\s*\(/.exec(text)?.[1];
  } catch {
    return undefined;
  }
}

/** How a captured name reads in an error: what loaders turn imports into is said so. */
function describeName(n: string): string {
  if (n === 'this') return '`this` (the `this` of the code around the arrow function; a worker has none)';
  if (n.startsWith('global:')) return `\`${n.slice(7)}\` (declared in its module, where it hides the global of that name that a worker would see)`;
  if (n === 'module.exports' || n === 'exports[…]') return `\`${n}\` (the module's own exports; a worker's are its own)`;
  if (n === '_this' || n === '_a') return `\`${n}\` (TypeScript's name for the enclosing \`this\` or a temporary, when compiling to an old target)`;
  if (n.startsWith('exports.')) return `\`${n}\` (the module's own export ${n.slice(8)})`;
  const esb = /^import_(.+)$/.exec(n);
  if (esb) return `\`${n}\` (a module-level import, as tsx compiled it)`;
  const ts = /^(.+)_\d+$/.exec(n);
  if (ts) return `\`${n}\` (a module-level import of ${ts[1]}, as TypeScript compiled it)`;
  if (n.startsWith('__')) return `\`${n}\` (a helper the loader defines at the top of the module, which tsray does not supply)`;
  return `\`${n}\``;
}

/**
 * The by-value shipment of `def`. When `strictly`, a definition that cannot
 * go by value throws; otherwise that gives undefined.
 */
function byValue(def: object, site: DefinitionSite, req: ShipRequest, strictly: boolean): Shipment | undefined {
  const fnName = (def as { name?: string }).name ?? '';
  const name = req.explicitName ?? (fnName || nameFromSource(site) || 'anonymous');
  const shown = fnName ? `${req.kind} ${fnName}` : req.kind;
  const subject = req.what !== undefined ? `${req.what}'s ${shown}` : `the ${shown} given to ray.remote()`;
  const text = Function.prototype.toString.call(def);
  const where = (): string => whereText(site);
  const fail = (msg: string): undefined => {
    if (strictly) throw new RemoteDefinitionError(msg);
    return undefined;
  };
  if (/\{\s*\[native code\]\s*\}\s*$/.test(text)) {
    return fail(
      `${subject} (made ${where()}) is a native or bound function: its source text is not available, so it cannot be shipped to workers by value. ` +
        'Wrap it in a function of your own (`(x) => fn(x)` with fn required inside), or define it at the top level of a module.',
    );
  }
  if (req.kind === 'class' && !/^class\b/.test(text)) {
    return fail(
      `${subject} (made ${where()}) was compiled to an ES5 constructor function: its methods are not part of its source text, so it cannot be shipped to workers by value. ` +
        'Compile to ES2015 or later (tsconfig "target"), or define the class at the top level of a module.',
    );
  }
  let a: Analysis;
  try {
    a = analyzed(text);
  } catch (e) {
    return fail(
      `${subject} (made ${where()}) is not at the top level of a module, so it is shipped to workers by value, but its source text could not be parsed ` +
        `(${(e as Error).message}). Define it at the top level of a module instead.`,
    );
  }
  const { globalNames, isHelper, MODULE_NAMES } = names();
  const globals = globalNames();
  const needs: string[] = [];
  const captured: string[] = [];
  for (const n of a.free) {
    if ((MODULE_NAMES as readonly string[]).includes(n) || globals.has(n)) continue;
    if (isHelper(n)) needs.push(n);
    else captured.push(n);
  }
  // a name the defining file declares (an import, a local) is that, not the worker's global of that name
  const shadowed = a.free.filter((n) => globals.has(n) && site.file !== undefined && declaredIn(site.file).has(n));
  captured.push(...shadowed.map((n) => `global:${n}`));
  captured.push(...a.exportReads);
  if (a.outerThis) captured.push('this');
  if (captured.length > 0) {
    const list = captured.slice(0, 5).map(describeName);
    const more = captured.length > 5 ? ` and ${captured.length - 5} more` : '';
    const names = list.length === 1 ? list[0] : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;
    const first = captured[0] as string;
    const globalHint = shadowed.length > 0 ? ` (To use the worker's global \`${shadowed[0] as string}\` instead, write \`globalThis.${shadowed[0] as string}\`.)` : '';
    return fail(
      `${subject} captures ${names}${more}, defined outside it. It is made ${where()}, not at the top level of a module, so it is shipped to workers ` +
        'by value (its source text), and a worker has only globals and what the function defines itself. ' +
        `Pass ${first.startsWith('exports') || first.startsWith('module.') || first === 'this' ? 'the value' : `\`${first.replace(/^global:/, '')}\``} as an argument, \`require\` it inside the function, or define the function at the top level of a module (or export it from the calling module).${globalHint}`,
    );
  }
  const body = bodyOf(text, a);
  const module = site.file ?? '';
  const hash = createHash('sha256').update(module).update('\0').update(body).update('\0').update(needs.join(',')).digest('hex').slice(0, 32);
  const code: CodeRef = { module, key: VALUE_KEY + hash, name, src: body };
  if (needs.length > 0) code.needs = needs;
  return { ok: true, code };
}

/** The function body a worker compiles: it returns the definition, with `import()` and `import.meta` bound to the defining file. */
function bodyOf(text: string, a: Analysis): string {
  const { IMPORT_META_NAME, IMPORT_NAME } = names();
  const edits: Array<[number, number, string]> = [
    ...a.dynamicImports.map((p): [number, number, string] => [p, p + 'import'.length, IMPORT_NAME]),
    ...a.importMetas.map(([s, e]): [number, number, string] => [s, e, IMPORT_META_NAME]),
  ].sort((x, y) => y[0] - x[0]);
  let t = text;
  for (const [s, e, r] of edits) t = t.slice(0, s) + r + t.slice(e);
  const strict = a.strict ? '"use strict";\n' : '';
  if (a.form === 'expression') return `${strict}return (${t}\n);`;
  return `${strict}const o = {${t}\n};\nconst d = Object.getOwnPropertyDescriptor(o, Reflect.ownKeys(o)[0]);\nreturn d.value ?? d.get ?? d.set;`;
}
