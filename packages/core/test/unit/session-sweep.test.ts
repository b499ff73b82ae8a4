import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PIDS_FILE, createSessionDir, recordSessionPid, sessionPids, sweepStaleSessions, tsrayTmpRoot } from '../../src/internal/cluster/session';
import { readNodeRecords, sweepStale, writeClusterRecord, writeNodeRecord } from '../../src/internal/cluster/cluster-file';
import { ownTsrayTmpdir } from '../helpers/files';

const tmpdir = ownTsrayTmpdir('tsray-sweep', 'test');

/** The pid of a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid as number;
}

/** A session directory with a socket-like file, whose pid file holds `pids` as given. */
function session(name: string, pidsText: string | undefined): string {
  const dir = path.join(tsrayTmpRoot(), `session_${name}`);
  fs.mkdirSync(path.join(dir, 's'), { recursive: true });
  fs.writeFileSync(path.join(dir, 's', 'n-1234'), '');
  if (pidsText !== undefined) fs.writeFileSync(path.join(dir, PIDS_FILE), pidsText);
  return dir;
}

test('a new session directory lists the process that created it, and the processes that join it', () => {
  const dir = createSessionDir('driver');
  expect(sessionPids(dir)).toEqual([process.pid]);
  recordSessionPid(dir, 'head', 4242);
  expect(sessionPids(dir)).toEqual([process.pid, 4242]);
  expect(fs.readFileSync(path.join(dir, PIDS_FILE), 'utf8')).toMatch(new RegExp(`^${process.pid} driver \\S+\\n4242 head \\S+\\n$`));
});

test('the sweep removes only sessions whose every process is gone, with their sockets', () => {
  const dead = deadPid();
  const ns = fs.readlinkSync('/proc/self/ns/pid');
  const stale = session('stale', `${dead} head ${ns}\n${dead} node ${ns}\n`);
  const live = session('live', `${dead} cli ${ns}\n${process.pid} head ${ns}\n`);
  const mine = createSessionDir('driver');
  const unknown = session('unknown', undefined);
  const empty = session('empty', '');
  const partial = session('partial', `${dead} head ${ns}\n${dead}`);
  const elsewhere = session('elsewhere', `${dead} head pid:[1]\n`);
  const garbage = session('garbage', 'not a pid file\n');
  const notASession = path.join(tsrayTmpRoot(), 'nodes');
  fs.mkdirSync(notASession);

  expect(sweepStaleSessions()).toEqual([stale]);
  expect(fs.existsSync(stale)).toBe(false);
  // a live process, the creator still running, no pid file (an older tsray, or one being created), a line
  // still being written, another pid namespace, or a file that is not a pid file: not ours to judge
  for (const kept of [live, mine, unknown, empty, partial, elsewhere, garbage, notASession]) expect(fs.existsSync(kept)).toBe(true);
  expect(sweepStaleSessions()).toEqual([]);
});

test('sweepStale keeps the session of the cluster file (a head to restore) and forgets nodes gone with their sessions', () => {
  const dead = deadPid();
  const restorable = session('restorable', `${dead} head -\n`);
  const other = session('other', `${dead} node -\n`);
  writeClusterRecord({ address: '127.0.0.1:6380', pid: dead, sessionDir: restorable, startedAt: new Date().toISOString() });
  writeNodeRecord({ nodeId: 'n1', pid: dead, head: '127.0.0.1:6380', sessionDir: other, startedAt: new Date().toISOString() });
  writeNodeRecord({ nodeId: 'n2', pid: process.pid, head: '127.0.0.1:6380', sessionDir: path.join(tmpdir(), 'gone'), startedAt: new Date().toISOString() });

  expect(sweepStale()).toEqual([other]);
  expect(fs.existsSync(restorable)).toBe(true);
  // n1 is gone with its session; n2 runs
  expect(readNodeRecords().map((n) => n.nodeId)).toEqual(['n2']);
});
