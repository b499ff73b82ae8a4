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

/** Writes `files` (relative path to text) under `root`, making directories as needed. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
}
