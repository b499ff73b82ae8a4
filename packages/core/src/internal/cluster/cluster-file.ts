/**
 * The cluster file: where `tsray start --head` records the cluster it
 * started, read by `tsray stop`/`tsray status`, by `init({ address: 'auto' })`,
 * and by the head itself (which removes it at exit).
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { processGone } from './processes';
import { sweepStaleSessions, tsrayTmpRoot } from './session';

/** What `tsray start` records about the cluster it started. */
export interface ClusterRecord {
  /** HOST:PORT of the head */
  address: string;
  /** pid of the head process */
  pid: number;
  /** the cluster's session directory */
  sessionDir: string;
  /** when it started (ISO 8601) */
  startedAt: string;
}

/** The cluster file of this machine (under TSRAY_TMPDIR or the system tmpdir). */
export function clusterFile(): string {
  return path.join(tsrayTmpRoot(), 'cluster.json');
}

/** Reads a cluster file; undefined when it is missing or not a valid record. */
export function readClusterRecord(file = clusterFile()): ClusterRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r.address !== 'string' || !Number.isSafeInteger(r.pid) || typeof r.sessionDir !== 'string' || typeof r.startedAt !== 'string') return undefined;
  return { address: r.address, pid: r.pid as number, sessionDir: r.sessionDir, startedAt: r.startedAt };
}

/** Writes the cluster file (readable by this user only). */
export function writeClusterRecord(rec: ClusterRecord, file = clusterFile()): void {
  fs.writeFileSync(file, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
}

/** What `tsray start --address` records about a node it started on this machine. */
export interface NodeRecordFile {
  nodeId: string;
  /** pid of the node manager */
  pid: number;
  /** HOST:PORT of the head it joined */
  head: string;
  /** the node's session directory */
  sessionDir: string;
  /** when it started (ISO 8601) */
  startedAt: string;
}

/** Directory of the node records of this machine. */
export function nodeRecordDir(): string {
  return path.join(tsrayTmpRoot(), 'nodes');
}

/** Records a node started on this machine (readable by this user only). */
export function writeNodeRecord(rec: NodeRecordFile): void {
  fs.mkdirSync(nodeRecordDir(), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(nodeRecordDir(), `${rec.nodeId}.json`), JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
}

/** The nodes started on this machine with `tsray start --address` (valid records only). */
export function readNodeRecords(): NodeRecordFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(nodeRecordDir());
  } catch {
    return [];
  }
  const out: NodeRecordFile[] = [];
  for (const name of names) {
    try {
      const r = JSON.parse(fs.readFileSync(path.join(nodeRecordDir(), name), 'utf8')) as Record<string, unknown>;
      if (typeof r.nodeId === 'string' && Number.isSafeInteger(r.pid) && typeof r.head === 'string' && typeof r.sessionDir === 'string' && typeof r.startedAt === 'string') {
        out.push({ nodeId: r.nodeId, pid: r.pid as number, head: r.head, sessionDir: r.sessionDir, startedAt: r.startedAt });
      }
    } catch {
      /* not a record */
    }
  }
  return out;
}

/** Forgets a node record. */
export function removeNodeRecord(nodeId: string): void {
  fs.rmSync(path.join(nodeRecordDir(), `${nodeId}.json`), { force: true });
}

/**
 * Removes what clusters killed on this machine left behind: their session
 * directories (see `sweepStaleSessions`), except the one of the cluster in
 * the cluster file (`tsray start --head --restore` takes a head's tables
 * back from it), and the records of nodes that are gone with their session
 * directories. Never throws; returns the directories removed.
 */
export function sweepStale(): string[] {
  let removed: string[] = [];
  try {
    const rec = readClusterRecord();
    removed = sweepStaleSessions(rec ? [rec.sessionDir] : []);
    for (const n of readNodeRecords()) if (processGone(n.pid) && !fs.existsSync(n.sessionDir)) removeNodeRecord(n.nodeId);
  } catch {
    /* best effort: the next sweep tries again */
  }
  return removed;
}
