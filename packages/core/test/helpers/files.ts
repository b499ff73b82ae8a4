import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Fresh temporary directories, each named `<prefix>-<name>-…`, removed
 * after each test of the file that calls this (at its top level).
 */
export function tempDirs(prefix: string): (name: string) => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  return (name) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-${name}-`));
    dirs.push(d);
    return d;
  };
}

/**
 * Points TSRAY_TMPDIR (where clusters keep their session directories) at a
 * fresh directory of this suite's, for all its tests or for each test, and
 * puts it back and removes the directory after. Returns the directory.
 */
export function ownTsrayTmpdir(prefix: string, per: 'suite' | 'test'): () => string {
  let dir: string | undefined;
  const saved = process.env.TSRAY_TMPDIR;
  const [before, after] = per === 'suite' ? [beforeAll, afterAll] : [beforeEach, afterEach];
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
    process.env.TSRAY_TMPDIR = dir;
  });
  after(() => {
    if (saved === undefined) delete process.env.TSRAY_TMPDIR;
    else process.env.TSRAY_TMPDIR = saved;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error('ownTsrayTmpdir(): the directory exists only inside tests');
    return dir;
  };
}

/** Writes `files` (relative path to text) under `root`, making directories as needed. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
}
