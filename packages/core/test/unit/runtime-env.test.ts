import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_PACKAGE_BYTES, decodeArchive, encodeArchive, isPackageId, packageId } from '../../src/internal/runtime-env/archive';
import { localModule, portableModule } from '../../src/internal/runtime-env/modules';
import { NodeWorkingDirs } from '../../src/internal/runtime-env/node-dirs';
import { WorkingDirPackages, compileExcludes, type WorkingDirSpec } from '../../src/internal/runtime-env/working-dir';
import { tempDirs, writeFiles } from '../helpers/files';

const tmp = tempDirs('tsray-renv-unit');

const spec = (dir: string, excludes: string[] = []): WorkingDirSpec => ({ dir, given: dir, excludes });

/** A packer that keeps what it uploads. */
function packer(): { p: WorkingDirPackages; store: Map<string, Uint8Array>; uploads: string[] } {
  const store = new Map<string, Uint8Array>();
  const uploads: string[] = [];
  const p = new WorkingDirPackages(async (pkg, bytes) => {
    uploads.push(pkg);
    store.set(pkg, bytes);
  });
  return { p, store, uploads };
}

describe('working-directory packages', () => {
  test('packing is deterministic: the same content gives the same id wherever it lives', async () => {
    const a = tmp('a');
    const b = tmp('b');
    writeFiles(a, { 'x.js': 'x', 'lib/y.js': 'y' });
    writeFiles(b, { 'lib/y.js': 'y', 'x.js': 'x' });
    const { p } = packer();
    const [ra, rb] = await Promise.all([p.resolve(spec(a)), p.resolve(spec(b))]);
    expect(isPackageId(ra.pkg)).toBe(true);
    expect(ra.pkg).toBe(rb.pkg);
    expect(ra.roots).toContain(a);
  });

  test('an archive round-trips paths, modes and bytes, and rejects damage and escapes', () => {
    const bytes = encodeArchive([
      { type: 'file', path: 'b/c.sh', mode: 0o755, data: Buffer.from('#!/bin/sh') },
      { type: 'dir', path: 'b', mode: 0o755 },
      { type: 'file', path: 'a.txt', mode: 0o644, data: new Uint8Array([1, 2, 3]) },
    ]);
    const out = decodeArchive(bytes);
    expect(out.map((e) => e.path)).toEqual(['a.txt', 'b', 'b/c.sh']);
    expect(out[2]).toMatchObject({ type: 'file', mode: 0o755 });
    expect(Buffer.from((out[0] as { data: Uint8Array }).data)).toEqual(Buffer.from([1, 2, 3]));
    expect(() => decodeArchive(bytes.subarray(0, bytes.length - 2))).toThrow(/truncated/);
    expect(() => decodeArchive(Buffer.from('not a package at all'))).toThrow(/bad magic/);
    const evil = encodeArchive([{ type: 'file', path: '../outside', mode: 0o644, data: Buffer.from('x') }]);
    expect(() => decodeArchive(evil)).toThrow(/leaves the directory/);
    const abs = encodeArchive([{ type: 'file', path: '/etc/passwd', mode: 0o644, data: Buffer.from('x') }]);
    expect(() => decodeArchive(abs)).toThrow(/absolute/);
  });

  test('excludes match names at any depth, anchored paths, globs and directories only', () => {
    const ex = compileExcludes(['node_modules', '*.log', 'data/raw', 'build/**', 'tmp/']);
    expect(ex('node_modules', true)).toBe(true);
    expect(ex('pkg/node_modules', true)).toBe(true);
    expect(ex('a/b/debug.log', false)).toBe(true);
    expect(ex('data/raw', true)).toBe(true);
    expect(ex('x/data/raw', true)).toBe(false);
    expect(ex('build/out/a.js', false)).toBe(true);
    expect(ex('tmp', true)).toBe(true);
    expect(ex('tmp', false)).toBe(false);
    expect(ex('src/app.js', false)).toBe(false);
  });

  test('an unchanged directory is not packed or uploaded again; a changed one is', async () => {
    const d = tmp('cache');
    writeFiles(d, { 'a.js': 'one' });
    const { p, uploads } = packer();
    const first = await p.resolve(spec(d));
    const again = await Promise.all([p.resolve(spec(d)), p.resolve(spec(d)), p.resolve(spec(d))]);
    expect(again.map((r) => r.pkg)).toEqual([first.pkg, first.pkg, first.pkg]);
    expect(p.packed).toBe(1);
    expect(uploads).toEqual([first.pkg]);
    fs.writeFileSync(path.join(d, 'a.js'), 'two, longer');
    const changed = await p.resolve(spec(d));
    expect(changed.pkg).not.toBe(first.pkg);
    expect(p.packed).toBe(2);
    expect(uploads).toEqual([first.pkg, changed.pkg]);
  });

  test('a bad directory is refused with the reason and what to do', async () => {
    const d = tmp('bad');
    writeFiles(d, { 'file.js': 'x' });
    const { p } = packer();
    await expect(p.resolve(spec(path.join(d, 'missing')))).rejects.toThrow(/does not exist\. Give the path of a directory/);
    await expect(p.resolve(spec(path.join(d, 'file.js')))).rejects.toThrow(/is not a directory \(it is a file\)/);
    // a sparse file: large by its size, no disk used, never read
    fs.writeFileSync(path.join(d, 'big.bin'), '');
    fs.truncateSync(path.join(d, 'big.bin'), MAX_PACKAGE_BYTES * 1.5);
    await expect(p.resolve(spec(d))).rejects.toThrow(/holds 150\.0 MiB of files, more than the limit of 100\.0 MiB \(largest: big\.bin \(150\.0 MiB\).*runtimeEnv\.excludes/);
    await expect(p.resolve(spec(d, ['*.bin']))).resolves.toMatchObject({ pkg: expect.stringMatching(/^pkg_/) });
  });

  test('links to files travel as the files; links to directories are not followed', async () => {
    const d = tmp('links');
    const outside = tmp('outside');
    writeFiles(outside, { 'shared.js': 'shared', 'deep/x.js': 'x' });
    writeFiles(d, { 'app.js': 'app' });
    fs.symlinkSync(path.join(outside, 'shared.js'), path.join(d, 'shared.js'));
    fs.symlinkSync(path.join(outside, 'deep'), path.join(d, 'deep'));
    fs.symlinkSync(path.join(outside, 'gone.js'), path.join(d, 'dangling.js'));
    const { p, store } = packer();
    const r = await p.resolve(spec(d));
    const entries = decodeArchive(store.get(r.pkg) as Uint8Array);
    expect(entries.map((e) => e.path)).toEqual(['app.js', 'shared.js']);
  });

  test('module paths inside the working directory travel relative to it', () => {
    const root = path.join(os.tmpdir(), 'proj');
    expect(portableModule(path.join(root, 'lib', 'a.js'), [root])).toBe('tsray-wd:lib/a.js');
    expect(portableModule(`file://${path.join(root, 'a.mjs')}`, [root])).toBe('tsray-wd-url:a.mjs');
    expect(portableModule('/elsewhere/a.js', [root])).toBe('/elsewhere/a.js');
    expect(localModule('tsray-wd:lib/a.js', '/node/wd')).toBe('/node/wd/lib/a.js');
    expect(localModule('tsray-wd-url:a.mjs', '/node/wd')).toBe('file:///node/wd/a.mjs');
    expect(localModule('/elsewhere/a.js', undefined)).toBe('/elsewhere/a.js');
    expect(() => localModule('tsray-wd:../x.js', '/node/wd')).toThrow(/not a path inside a working directory/);
    expect(() => localModule('tsray-wd:a.js', undefined)).toThrow(/started without one/);
  });
});

describe('working directories on a node', () => {
  async function packed(files: Record<string, string>): Promise<{ pkg: string; bytes: Uint8Array }> {
    const d = tmp('src');
    writeFiles(d, files);
    const { p, store } = packer();
    const r = await p.resolve(spec(d));
    return { pkg: r.pkg, bytes: store.get(r.pkg) as Uint8Array };
  }

  test('concurrent requests for a package share one fetch and one unpack', async () => {
    const { pkg, bytes } = await packed({ 'app.js': 'module.exports = 1;', 'lib/h.js': 'h' });
    const root = path.join(tmp('node'), 'runtime_resources', 'working_dir_files');
    let fetches = 0;
    const node = new NodeWorkingDirs(root, async () => {
      fetches++;
      return bytes;
    });
    const got = await Promise.all([node.ensure(pkg), node.ensure(pkg), node.ensure(pkg)]);
    expect(new Set(got)).toEqual(new Set([path.join(root, pkg)]));
    expect(fetches).toBe(1);
    expect(node.unpacked).toBe(1);
    expect(fs.readFileSync(path.join(root, pkg, 'lib', 'h.js'), 'utf8')).toBe('h');
    await node.ensure(pkg);
    expect(node.unpacked).toBe(1);
    // nothing half-done is left beside it
    expect(fs.readdirSync(root)).toEqual([pkg]);
  });

  test('a package the cluster does not have, a damaged one, or one that cannot be unpacked fails with the reason, and is tried again later', async () => {
    const { pkg, bytes } = await packed({ 'app.js': 'x' });
    const base = tmp('node');
    const root = path.join(base, 'runtime_resources', 'working_dir_files');
    let answer: Uint8Array | null = null;
    const node = new NodeWorkingDirs(root, async () => answer);
    await expect(node.ensure(pkg)).rejects.toThrow(new RegExp(`package ${pkg} is not in the cluster`));
    answer = Buffer.concat([Buffer.from(bytes), Buffer.from('x')]);
    await expect(node.ensure(pkg)).rejects.toThrow(/arrived damaged/);
    answer = bytes;
    fs.writeFileSync(path.join(base, 'runtime_resources'), 'a file where a directory should be');
    await expect(node.ensure(pkg)).rejects.toThrow(new RegExp(`package ${pkg} could not be unpacked into .*: (EEXIST|ENOTDIR)`));
    fs.rmSync(path.join(base, 'runtime_resources'));
    await expect(node.ensure(pkg)).resolves.toBe(path.join(root, pkg));
    await expect(node.ensure('../etc')).rejects.toThrow(/is not a working-directory package id/);
    expect(packageId(bytes)).toBe(pkg);
  });
});
