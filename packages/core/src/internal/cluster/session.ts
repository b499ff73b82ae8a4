/**
 * Session directories: where a cluster keeps its sockets, logs and spilled
 * objects. Removed when the cluster stops.
 * @internal
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Root of all session directories (TSRAY_TMPDIR overrides the system tmpdir). */
export function tsrayTmpRoot(): string {
  return path.join(process.env.TSRAY_TMPDIR ?? os.tmpdir(), 'tsray');
}

/** Creates a fresh session directory. */
export function createSessionDir(): string {
  const root = tsrayTmpRoot();
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  const dir = fs.mkdtempSync(path.join(root, `session_${stamp}_`));
  fs.mkdirSync(path.join(dir, 's'), { mode: 0o700 });
  return dir;
}

/** The ipc address of a socket named `name` in a session. */
export function ipcAddress(sessionDir: string, name: string): string {
  return `ipc://${path.join(sessionDir, 's', name)}`;
}

/** Removes an ipc socket file, if the address is one. */
export function removeIpcFile(address: string): void {
  if (address.startsWith('ipc://')) fs.rmSync(address.slice('ipc://'.length), { force: true });
}
