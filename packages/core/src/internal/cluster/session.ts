/**
 * Session directories: where a cluster keeps its sockets, logs and spilled
 * objects. Removed when the cluster stops.
 *
 * A session directory lists the pids of the processes that use it (its
 * `pids` file: the process that created it first, then its head and node
 * manager). A cluster killed with SIGKILL cannot remove its directory; the
 * next `tsray start`, `init()` or `ray.Cluster.start()` on the machine does
 * ({@link sweepStaleSessions}): it removes the session directories none of
 * whose processes runs any more. A directory without a pid file (one being
 * created, or one of an older tsray), one whose processes live in another
 * pid namespace (a container sharing the directory) and the one
 * `tsray start --head --restore` would take back are never removed.
 * @internal
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processGone } from './processes';

/** Root of all session directories (TSRAY_TMPDIR overrides the system tmpdir). */
export function tsrayTmpRoot(): string {
  return path.join(process.env.TSRAY_TMPDIR ?? os.tmpdir(), 'tsray');
}

/** Name of the file that lists a session's pids, one `PID ROLE PIDNS` a line. */
export const PIDS_FILE = 'pids';

let ownPidNs: string | undefined;

/** This process's pid namespace ('' where it cannot be read): pids mean something only within one. */
function pidNamespace(): string {
  if (ownPidNs === undefined) {
    try {
      ownPidNs = fs.readlinkSync('/proc/self/ns/pid');
    } catch {
      ownPidNs = '';
    }
  }
  return ownPidNs;
}

/** Creates a fresh session directory, recording this process (as `role`) in its pid file before anything else. */
export function createSessionDir(role = 'owner'): string {
  const root = tsrayTmpRoot();
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  const dir = fs.mkdtempSync(path.join(root, `session_${stamp}_`));
  recordSessionPid(dir, role);
  fs.mkdirSync(path.join(dir, 's'), { mode: 0o700 });
  return dir;
}

/** Adds this process to the session's pid file: the session is not swept while it runs. */
export function recordSessionPid(sessionDir: string, role: string, pid = process.pid): void {
  fs.appendFileSync(path.join(sessionDir, PIDS_FILE), `${pid} ${role} ${pidNamespace() || '-'}\n`, { mode: 0o600 });
}

/**
 * The pids a session's pid file lists; undefined when it has none (missing,
 * being written, or not a pid file) or when one of them was recorded in
 * another pid namespace.
 */
export function sessionPids(sessionDir: string): number[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(sessionDir, PIDS_FILE), 'utf8');
  } catch {
    return undefined;
  }
  // a line still being written: judge later
  if (!text.endsWith('\n')) return undefined;
  const pids: number[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [p, , ns] = line.split(' ');
    const pid = Number(p);
    if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
    if (ns !== undefined && ns !== '-' && ns !== pidNamespace()) return undefined;
    pids.push(pid);
  }
  return pids.length > 0 ? pids : undefined;
}

/**
 * Removes the session directories under the tsray root (sockets, logs and
 * spilled objects with them) whose every listed process is gone, except
 * those in `keep`. Never throws; returns the directories it removed.
 */
export function sweepStaleSessions(keep: readonly string[] = []): string[] {
  const root = tsrayTmpRoot();
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  const kept = new Set(keep.map((k) => path.resolve(k)));
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith('session_')) continue;
    const dir = path.join(root, name);
    if (kept.has(dir)) continue;
    const pids = sessionPids(dir);
    if (!pids || !pids.every(processGone)) continue;
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      /* another sweep got there first, or it is not ours to remove */
    }
  }
  return removed;
}

/** The ipc address of a socket named `name` in a session. */
export function ipcAddress(sessionDir: string, name: string): string {
  return `ipc://${path.join(sessionDir, 's', name)}`;
}

/** Removes an ipc socket file, if the address is one. */
export function removeIpcFile(address: string): void {
  if (address.startsWith('ipc://')) fs.rmSync(address.slice('ipc://'.length), { force: true });
}
