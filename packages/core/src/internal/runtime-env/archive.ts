/**
 * The package format of a runtime environment's working directory: a
 * deterministic archive (entries sorted by path, no timestamps or owners),
 * named by the SHA-256 of its bytes, so equal directories give equal ids.
 *
 *     "TSRAYWD1"                       8 bytes, magic and version
 *     u32 count                        number of entries
 *     count x entry:
 *       u8  type                       0 directory, 1 file
 *       u16 mode                       permission bits (0o777 at most)
 *       u32 pathBytes, path            UTF-8, relative, '/'-separated
 *       u32 size, bytes                files only
 *
 * All integers are little-endian. Extraction checks every length and path
 * (no absolute paths, no `..`), so a damaged or hostile package fails with a
 * reason instead of writing outside its directory.
 * @internal
 */
import { createHash } from 'node:crypto';

/** Largest working directory, in bytes of file content (Ray's limit too). */
export const MAX_PACKAGE_BYTES = 100 * 1024 * 1024;

/** The head's KV namespace that holds packages (by package id). */
export const PACKAGE_KV_NS = 'tsray:runtime_env:packages';

const MAGIC = Buffer.from('TSRAYWD1', 'latin1');

/** One entry of a package. */
export type ArchiveEntry = { type: 'dir'; path: string; mode: number } | { type: 'file'; path: string; mode: number; data: Uint8Array };

/** The id of a package: `pkg_` and the first 32 hex digits of its SHA-256. */
export function packageId(bytes: Uint8Array): string {
  return `pkg_${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;
}

/** Whether `id` has the form of a package id. */
export function isPackageId(id: string): boolean {
  return /^pkg_[0-9a-f]{32}$/.test(id);
}

/** Builds a package from entries (sorted here by path, so the result is deterministic). */
export function encodeArchive(entries: readonly ArchiveEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [MAGIC];
  const count = Buffer.alloc(4);
  count.writeUInt32LE(sorted.length);
  parts.push(count);
  for (const e of sorted) {
    const p = Buffer.from(e.path, 'utf8');
    const head = Buffer.alloc(1 + 2 + 4);
    head.writeUInt8(e.type === 'dir' ? 0 : 1, 0);
    head.writeUInt16LE(e.mode & 0o777, 1);
    head.writeUInt32LE(p.length, 3);
    parts.push(head, p);
    if (e.type === 'file') {
      const size = Buffer.alloc(4);
      size.writeUInt32LE(e.data.byteLength);
      parts.push(size, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    }
  }
  return Buffer.concat(parts);
}

/** Why a path taken from a package is unsafe to write, or undefined when it is fine. */
function unsafePath(p: string): string | undefined {
  if (p.length === 0) return 'an empty path';
  if (p.includes('\0')) return 'a path with a NUL byte';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.includes('\\')) return `an absolute or non-portable path (${JSON.stringify(p)})`;
  if (p.split('/').some((s) => s === '' || s === '.' || s === '..')) return `a path that is not normalized or leaves the directory (${JSON.stringify(p)})`;
  return undefined;
}

/** Reads a package's entries; throws an Error naming what is wrong with it. */
export function decodeArchive(bytes: Uint8Array): ArchiveEntry[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number, what: string): void => {
    if (at + n > b.length) throw new Error(`the package is truncated (${what} at byte ${at} runs past its end, ${b.length} bytes)`);
  };
  need(MAGIC.length + 4, 'the header');
  if (!b.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('the package is not a tsray working-directory package (bad magic)');
  at = MAGIC.length;
  const count = b.readUInt32LE(at);
  at += 4;
  const out: ArchiveEntry[] = [];
  for (let i = 0; i < count; i++) {
    need(7, `entry ${i}`);
    const type = b.readUInt8(at);
    const mode = b.readUInt16LE(at + 1) & 0o777;
    const plen = b.readUInt32LE(at + 3);
    at += 7;
    need(plen, `the path of entry ${i}`);
    const p = b.toString('utf8', at, at + plen);
    at += plen;
    const bad = unsafePath(p);
    if (bad) throw new Error(`the package has ${bad} in entry ${i}`);
    if (type === 0) out.push({ type: 'dir', path: p, mode });
    else if (type === 1) {
      need(4, `the size of entry ${i}`);
      const size = b.readUInt32LE(at);
      at += 4;
      need(size, `the content of ${p}`);
      out.push({ type: 'file', path: p, mode, data: b.subarray(at, at + size) });
      at += size;
    } else throw new Error(`the package has an entry of unknown type ${type} (${JSON.stringify(p)})`);
  }
  if (at !== b.length) throw new Error(`the package has ${b.length - at} bytes after its last entry`);
  return out;
}
