/**
 * `runtimeEnv.npm` as options give it and as it travels: validated once at
 * the public boundary (with npm's own parser of `npm install` arguments,
 * npm-package-arg), normalized (specs trimmed and sorted, the registry as a
 * URL), and named by a key, the hash of what is installed, so every node
 * keeps one install per list wherever the list was written.
 * @internal
 */
import { createHash } from 'node:crypto';

/** A validated package list: what a node installs (see the public `NpmRuntimeEnv`). */
export interface NpmEnvSpec {
  /** `npm install` arguments, trimmed and sorted; empty: no packages (also not the job's) */
  packages: string[];
  /** the registry to install from (a normalized http(s) URL); absent: npm's configured one */
  registry?: string;
  /** run the packages' install scripts (absent: they do not run) */
  installScripts?: boolean;
}

const NPM_FIELDS = ['packages', 'registry', 'installScripts'] as const;

const EXAMPLE = "['lodash@4.17.21', 'left-pad']";

type Npa = (spec: string) => { type: string; name: string | null; rawSpec: string };
let npaFn: Npa | undefined;
/** npm-package-arg, loaded the first time a list is checked (workers never need it). */
function npa(): Npa {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  npaFn ??= require('npm-package-arg') as Npa;
  return npaFn;
}

/** A value as error messages show it. */
function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** Checks one spec (`at` names it in messages); returns it trimmed, and the package name when the spec has one. */
function checkSpec(v: unknown, at: string): { spec: string; name: string | undefined } {
  if (typeof v !== 'string') throw new TypeError(`${at} must be a package spec (a string like 'lodash@4.17.21'), got ${shown(v)}`);
  const spec = v.trim();
  if (spec.length === 0) throw new TypeError(`${at} is empty: give a package name, optionally with a version ('left-pad', 'lodash@4.17.21')`);
  const usage = "write a name, optionally with a version, range or tag ('lodash', 'lodash@4.17.21', '@scope/pkg@^1'), an alias ('x@npm:lodash@4'), a git URL or a tarball URL";
  if (spec.startsWith('-')) throw new TypeError(`${at} ${JSON.stringify(spec)} is an npm option, not a package: ${usage}`);
  let r: ReturnType<Npa>;
  try {
    r = npa()(spec);
  } catch (e) {
    throw new TypeError(`${at} ${JSON.stringify(spec)} is not a valid npm package spec (${(e as Error).message}); ${usage}`);
  }
  if (r.type === 'file' || r.type === 'directory') {
    throw new TypeError(
      `${at} ${JSON.stringify(spec)} is a path on this machine: nodes install from a registry, not from the driver's disk. ` +
        'Publish the package (or give a git or tarball URL), or ship the code in runtimeEnv.workingDir',
    );
  }
  return { spec, name: r.name ?? undefined };
}

/** Checks `registry` (`at` names it); returns it normalized. */
function checkRegistry(v: unknown, at: string): string {
  const usage = `${at} must be the URL of an npm registry, like 'https://registry.npmjs.org/'`;
  if (typeof v !== 'string' || v.trim().length === 0) throw new TypeError(`${usage}, got ${shown(v)}`);
  let u: URL;
  try {
    u = new URL(v.trim());
  } catch {
    throw new TypeError(`${usage}, got ${JSON.stringify(v)} (not a URL)`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`${usage}, got ${JSON.stringify(v)} (npm reads registries over http or https only)`);
  return u.href;
}

/**
 * Validates `options.runtimeEnv.npm` (`where` is how messages name it):
 * a list of `npm install` specs, or `{ packages, registry?, installScripts? }`.
 * Throws a TypeError naming the option and the fix.
 */
export function compileNpmEnv(v: unknown, where = 'options.runtimeEnv.npm'): NpmEnvSpec {
  const usage = `${where} must be a list of packages like ${EXAMPLE}, or { packages: [...], registry?: 'https://...' }`;
  let list: unknown;
  let at: string;
  let registry: string | undefined;
  let installScripts: boolean | undefined;
  if (Array.isArray(v)) {
    list = v;
    at = where;
  } else if (typeof v === 'object' && v !== null) {
    const r = v as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (!(NPM_FIELDS as readonly string[]).includes(k)) throw new TypeError(`unknown ${where} field '${k}'; supported: ${NPM_FIELDS.join(', ')}`);
    }
    if (r.packages === undefined) throw new TypeError(`${where}.packages is missing: list the packages to install, like { packages: ${EXAMPLE} }`);
    list = r.packages;
    at = `${where}.packages`;
    if (!Array.isArray(list)) throw new TypeError(`${at} must be a list of packages like ${EXAMPLE}, got ${shown(list)}`);
    if (r.registry !== undefined) registry = checkRegistry(r.registry, `${where}.registry`);
    if (r.installScripts !== undefined) {
      if (typeof r.installScripts !== 'boolean') throw new TypeError(`${where}.installScripts must be a boolean, got ${shown(r.installScripts)}`);
      installScripts = r.installScripts;
    }
  } else {
    throw new TypeError(`${usage}, got ${shown(v)}`);
  }
  const specs: string[] = [];
  const byName = new Map<string, string>();
  (list as unknown[]).forEach((item, i) => {
    const { spec, name } = checkSpec(item, `${at}[${i}]`);
    if (name !== undefined) {
      const before = byName.get(name);
      if (before !== undefined) throw new TypeError(`${at} lists ${name} twice (${JSON.stringify(before)} and ${JSON.stringify(spec)}): keep one`);
      byName.set(name, spec);
    }
    specs.push(spec);
  });
  specs.sort();
  const out: NpmEnvSpec = { packages: specs };
  if (registry !== undefined) out.registry = registry;
  if (installScripts) out.installScripts = true;
  return out;
}

/**
 * Why a list that arrived in a message cannot be installed, or undefined
 * when it can: node managers check again what they pass to npm (a spec
 * that starts with `-` would be read as an option).
 */
export function npmSpecProblem(spec: NpmEnvSpec): string | undefined {
  for (const p of spec.packages) if (typeof p !== 'string' || p.trim() === '' || p.trim().startsWith('-')) return `${JSON.stringify(p)} is not a package spec`;
  if (spec.registry !== undefined && !/^https?:\/\/[^\s]+$/.test(spec.registry)) return `${JSON.stringify(spec.registry)} is not an http(s) URL`;
  return undefined;
}

const keys = new WeakMap<NpmEnvSpec, string>();

/** The key of a list: `npm_` and 32 hex digits of the SHA-256 of what it installs (order of the list aside). */
export function npmEnvKey(spec: NpmEnvSpec): string {
  let key = keys.get(spec);
  if (key === undefined) {
    const canonical = JSON.stringify({ p: [...spec.packages].sort(), r: spec.registry ?? null, s: spec.installScripts === true });
    key = `npm_${createHash('sha256').update(canonical).digest('hex').slice(0, 32)}`;
    keys.set(spec, key);
  }
  return key;
}

/** The list as messages show it: `runtimeEnv.npm ["a","b"]`, with its registry when it names one. */
export function describeNpmEnv(spec: NpmEnvSpec): string {
  return `runtimeEnv.npm ${JSON.stringify(spec.packages)}${spec.registry ? ` (registry ${spec.registry})` : ''}`;
}
