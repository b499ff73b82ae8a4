/**
 * Input paths: a file, a directory (every file below it, hidden ones — a
 * name starting with '.' or '_' — left out), a glob (`*`, `?`, `**`,
 * `[abc]`, `{a,b}`), or a list of these; sorted, without duplicates.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataReadError } from '../../errors';

const GLOB = /[*?[{]/;
const hidden = (name: string): boolean => name.startsWith('.') || name.startsWith('_');

function walk(dir: string, out: string[]): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (hidden(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() || e.isSymbolicLink()) out.push(p);
  }
}

/** A regular expression for a glob over '/'-separated paths. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:[^/]*/)*';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re += `(?:${glob
          .slice(i + 1, end)
          .split(',')
          .map((s) => s.replace(/[.+^$()|\\]/g, '\\$&'))
          .join('|')})`;
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function expandGlob(pattern: string): string[] {
  const abs = path.resolve(pattern);
  const parts = abs.split('/');
  const firstGlob = parts.findIndex((p) => GLOB.test(p));
  const base = parts.slice(0, firstGlob).join('/') || '/';
  if (!fs.existsSync(base)) return [];
  const all: string[] = [];
  walk(base, all);
  const re = globToRegExp(abs);
  return all.filter((f) => re.test(f));
}

/**
 * The files `paths` name, sorted.
 * @throws DataReadError naming a path that does not exist, or a glob that matches nothing
 */
export function expandPaths(paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    if (GLOB.test(p) && !fs.existsSync(p)) {
      const files = expandGlob(p);
      if (files.length === 0) throw new DataReadError(`no file matches the pattern '${p}' (resolved from ${process.cwd()}); check the pattern and the directory`, p);
      for (const f of files) out.add(f);
      continue;
    }
    const abs = path.resolve(p);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch {
      throw new DataReadError(`the path '${p}' does not exist (resolved to ${abs}); check the path, or give an absolute one`, p);
    }
    if (st.isDirectory()) {
      const files: string[] = [];
      walk(abs, files);
      if (files.length === 0) throw new DataReadError(`the directory '${p}' holds no files to read`, p);
      for (const f of files) out.add(f);
    } else out.add(abs);
  }
  return [...out].sort();
}
