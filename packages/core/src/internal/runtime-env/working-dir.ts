/**
 * The driver's side of `runtimeEnv.workingDir`: walks the directory (minus
 * `excludes`), packs it into a package (archive.ts) named by its content,
 * and uploads it once to the head's KV store, where node managers fetch it.
 *
 * Repeated `.remote()` calls do not repack: each resolution walks the
 * directory with `stat` only and reuses the package while no file changed
 * (same paths, sizes, modes and modification times); calls made while a
 * walk is running share that walk. A package is uploaded once per process.
 * @internal
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MAX_PACKAGE_BYTES, PACKAGE_KV_NS, encodeArchive, packageId, type ArchiveEntry } from './archive';
import { MT } from '../protocol/messages';
import type { Endpoint } from '../transport/endpoint';

/** A working directory as options name it (validated; `dir` absolute). */
export interface WorkingDirSpec {
  /** absolute path of the directory */
  readonly dir: string;
  /** the path as the user gave it (for messages) */
  readonly given: string;
  /** glob patterns of paths to leave out */
  readonly excludes: readonly string[];
}

/** A working directory packed and stored in the cluster. */
export interface WorkingDirRef {
  /** package id */
  readonly pkg: string;
  /** the directory in this process, as its module paths may spell it (resolved and real path) */
  readonly roots: readonly string[];
}

/** Uploads a package's bytes to the cluster. */
export type Uploader = (pkg: string, bytes: Uint8Array) => Promise<void>;

/** Stores a package in the head's KV store, where node managers fetch it (kept if there already). */
export async function storeInHead(endpoint: Endpoint, headAddress: string, pkg: string, bytes: Uint8Array): Promise<void> {
  await endpoint.call(headAddress, { t: MT.KvPut, ns: PACKAGE_KV_NS, key: pkg, value: bytes, overwrite: false }, 120_000);
}

function mib(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * A matcher for `excludes` patterns, like .gitignore lines: `*` matches
 * within one path segment, `**` any number of segments, `?` one character;
 * a pattern without a `/` matches a file or directory of that name at any
 * depth (`node_modules`, `*.log`), one with a `/` is anchored at the working
 * directory (`data/raw`, `build/**`); a trailing `/` matches directories
 * only. A matched directory is left out with everything inside it.
 */
export function compileExcludes(patterns: readonly string[]): (rel: string, isDir: boolean) => boolean {
  const rules = patterns.map((raw) => {
    let p = raw.trim();
    const dirOnly = p.endsWith('/');
    if (dirOnly) p = p.replace(/\/+$/, '');
    const anchored = p.includes('/');
    p = p.replace(/^\/+/, '');
    let re = '';
    for (let i = 0; i < p.length; i++) {
      const c = p[i] as string;
      if (c === '*' && p[i + 1] === '*') {
        // '**/' or a trailing '**': any number of segments
        if (p[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else if (c === '*') re += '[^/]*';
      else if (c === '?') re += '[^/]';
      else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return { re: new RegExp(anchored ? `^${re}$` : `(?:^|/)${re}$`), dirOnly };
  });
  return (rel, isDir) => rules.some((r) => (!r.dirOnly || isDir) && r.re.test(rel));
}

interface Scanned {
  type: 'dir' | 'file';
  rel: string;
  abs: string;
  mode: number;
  size: number;
  mtimeMs: number;
}

interface Scan {
  entries: Scanned[];
  /** what changes when any file changes */
  signature: string;
  roots: string[];
}

/**
 * Walks `spec.dir`: files and directories not excluded; a symbolic link to
 * a file counts as that file, a link to a directory is not followed (as
 * Ray), other kinds of files (sockets, pipes) are left out. Rejects with an
 * Error whose message says what is wrong and what to do.
 */
async function scan(spec: WorkingDirSpec): Promise<Scan> {
  const shown = JSON.stringify(spec.given);
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(spec.dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new Error(
        `runtimeEnv.workingDir ${shown} does not exist` +
          (spec.given !== spec.dir ? ` (resolved to ${spec.dir} from the driver's current directory)` : '') +
          '. Give the path of a directory on the driver\'s machine that holds the code tasks need.',
      );
    }
    throw new Error(`runtimeEnv.workingDir ${shown} cannot be read: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) {
    throw new Error(`runtimeEnv.workingDir ${shown} is not a directory (it is a file). Give the directory that holds your code, e.g. ${JSON.stringify(path.dirname(spec.dir))}.`);
  }
  const excluded = compileExcludes(spec.excludes);
  const entries: Scanned[] = [];
  const bySegment = new Map<string, number>();
  let total = 0;
  const walk = async (absDir: string, relDir: string): Promise<void> => {
    let list: fs.Dirent[];
    try {
      list = await fs.promises.readdir(absDir, { withFileTypes: true });
    } catch (e) {
      throw new Error(`the directory ${JSON.stringify(relDir || '.')} in runtimeEnv.workingDir ${shown} cannot be read (${(e as Error).message}); leave it out with runtimeEnv.excludes`);
    }
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of list) {
      const rel = relDir ? `${relDir}/${d.name}` : d.name;
      const abs = path.join(absDir, d.name);
      let s: fs.Stats;
      try {
        s = d.isSymbolicLink() ? await fs.promises.stat(abs) : await fs.promises.lstat(abs);
      } catch {
        continue; // a dangling link, or removed meanwhile
      }
      if (d.isSymbolicLink() && s.isDirectory()) continue;
      if (s.isDirectory()) {
        if (excluded(rel, true)) continue;
        entries.push({ type: 'dir', rel, abs, mode: s.mode & 0o777, size: 0, mtimeMs: 0 });
        await walk(abs, rel);
      } else if (s.isFile()) {
        if (excluded(rel, false)) continue;
        entries.push({ type: 'file', rel, abs, mode: s.mode & 0o777, size: s.size, mtimeMs: s.mtimeMs });
        total += s.size;
        const top = rel.split('/')[0] as string;
        bySegment.set(top, (bySegment.get(top) ?? 0) + s.size);
      }
    }
  };
  await walk(spec.dir, '');
  if (total > MAX_PACKAGE_BYTES) {
    const largest = [...bySegment.entries()]
      .filter(([, n]) => n >= 1024 * 1024)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([name, n]) => `${name} (${mib(n)})`)
      .join(', ');
    throw new Error(
      `runtimeEnv.workingDir ${shown} holds ${mib(total)} of files, more than the limit of ${mib(MAX_PACKAGE_BYTES)}` +
        (largest ? ` (largest: ${largest})` : '') +
        ". Leave out what tasks do not need with runtimeEnv.excludes (e.g. ['node_modules', 'data/']), " +
        'or keep large data in shared storage and read it from there.',
    );
  }
  const h = createHash('sha1');
  for (const e of entries) h.update(`${e.type}\0${e.rel}\0${e.mode}\0${e.size}\0${e.mtimeMs}\n`);
  const roots = [spec.dir];
  try {
    const real = await fs.promises.realpath(spec.dir);
    if (real !== spec.dir) roots.push(real);
  } catch {
    /* gone meanwhile: reading it fails below */
  }
  return { entries, signature: `${spec.excludes.join('\0')}|${h.digest('hex')}`, roots };
}

async function pack(spec: WorkingDirSpec, s: Scan): Promise<Buffer> {
  const out: ArchiveEntry[] = [];
  let total = 0;
  for (const e of s.entries) {
    if (e.type === 'dir') {
      out.push({ type: 'dir', path: e.rel, mode: e.mode });
      continue;
    }
    let data: Buffer;
    try {
      data = await fs.promises.readFile(e.abs);
    } catch (err) {
      throw new Error(`${JSON.stringify(e.rel)} in runtimeEnv.workingDir ${JSON.stringify(spec.given)} cannot be read (${(err as Error).message}); leave it out with runtimeEnv.excludes`);
    }
    total += data.byteLength;
    if (total > MAX_PACKAGE_BYTES) throw new Error(`runtimeEnv.workingDir ${JSON.stringify(spec.given)} grew past the limit of ${mib(MAX_PACKAGE_BYTES)} while it was being packed`);
    out.push({ type: 'file', path: e.rel, mode: e.mode, data });
  }
  return encodeArchive(out);
}

/** A working directory packed (`bytes` absent when the same package was stored already). */
export interface PackedDir {
  readonly spec: WorkingDirSpec;
  readonly pkg: string;
  readonly roots: readonly string[];
  readonly bytes: Buffer | undefined;
}

/** See the module comment. One per process (held by its runtime). */
export class WorkingDirPackages {
  private readonly known = new Map<string, { signature: string; pkg: string }>();
  private readonly walks = new Map<string, Promise<PackedDir>>();
  private readonly uploads = new Map<string, Promise<void>>();
  /** packages built (a statistic; a directory found unchanged does not count) */
  packed = 0;

  constructor(private readonly upload: Uploader) {}

  /**
   * The package of a working directory, packed and stored in the cluster if
   * needed. Rejects with an Error whose message is the reason (callers wrap
   * it in a RuntimeEnvSetupError naming the task, actor or job).
   */
  resolve(spec: WorkingDirSpec): Promise<WorkingDirRef> {
    return this.pack(spec).then((p) => this.store(p));
  }

  /** Packs a working directory, or finds it unchanged since it was last packed. */
  pack(spec: WorkingDirSpec): Promise<PackedDir> {
    const key = `${spec.dir}\0${spec.excludes.join('\0')}`;
    let p = this.walks.get(key);
    if (!p) {
      p = this.build(key, spec);
      this.walks.set(key, p);
      const done = (): void => {
        if (this.walks.get(key) === p) this.walks.delete(key);
      };
      p.then(done, done);
    }
    return p;
  }

  /** Stores a package in the cluster (once per process). */
  async store(p: PackedDir): Promise<WorkingDirRef> {
    let up = this.uploads.get(p.pkg);
    if (!up) {
      // stored before, but that failed since: pack again
      if (!p.bytes) return this.resolve(p.spec);
      const bytes = p.bytes;
      up = this.upload(p.pkg, bytes).catch((e: Error) => {
        this.uploads.delete(p.pkg);
        throw new Error(`the package of runtimeEnv.workingDir ${JSON.stringify(p.spec.given)} (${mib(bytes.byteLength)}) could not be stored in the cluster: ${e.message}`);
      });
      this.uploads.set(p.pkg, up);
    }
    await up;
    return { pkg: p.pkg, roots: p.roots };
  }

  private async build(key: string, spec: WorkingDirSpec): Promise<PackedDir> {
    const s = await scan(spec);
    const cached = this.known.get(key);
    if (cached && cached.signature === s.signature && this.uploads.has(cached.pkg)) return { spec, pkg: cached.pkg, roots: s.roots, bytes: undefined };
    const bytes = await pack(spec, s);
    this.packed++;
    const pkg = packageId(bytes);
    this.known.set(key, { signature: s.signature, pkg });
    return { spec, pkg, roots: s.roots, bytes };
  }
}
