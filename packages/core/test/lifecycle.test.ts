import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Child, alive, descendants } from './helpers/procs';
import { until } from './helpers/poll';

const DRIVER = path.join(__dirname, 'drivers', 'lifecycle.js');

let tmp: string;
/** every process a test started, killed in afterEach if the test left any behind */
let started: number[] = [];
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-life-'));
  started = [];
});
afterEach(() => {
  for (const p of started) {
    try {
      if (alive(p)) process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Inodes of the shared-memory arena (a memfd) that `pids` map or hold open. */
function arenaInodes(pids: number[]): Set<number> {
  const out = new Set<number>();
  for (const p of pids) {
    try {
      for (const line of fs.readFileSync(`/proc/${p}/maps`, 'utf8').split('\n')) {
        if (!line.includes('memfd:tsray')) continue;
        const inode = Number(line.trim().split(/\s+/)[4]);
        if (inode > 0) out.add(inode);
      }
    } catch {
      /* exited */
    }
  }
  return out;
}

/** Live processes (any on the machine) that map or hold an fd to one of `inodes`. */
function arenaHolders(inodes: Set<number>): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || !alive(pid)) continue;
    let holds = arenaInodes([pid]).size > 0 && [...arenaInodes([pid])].some((i) => inodes.has(i));
    if (!holds) {
      try {
        for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
          const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
          if (target.startsWith('/memfd:tsray') && inodes.has(fs.statSync(`/proc/${pid}/fd/${fd}`).ino)) holds = true;
        }
      } catch {
        /* exited or not ours to read */
      }
    }
    if (holds) out.push(pid);
  }
  return out;
}

/** Everything a driver started is gone: processes, the session directory (sockets, spill files). */
async function expectProcessesAndSessionGone(pids: number[]): Promise<void> {
  await until(() => pids.every((p) => !alive(p)), `processes ${pids.join(', ')} to exit`, 20_000);
  await until(() => !fs.existsSync(path.join(tmp, 'tsray')) || fs.readdirSync(path.join(tmp, 'tsray')).filter((d) => d.startsWith('session_')).length === 0, 'the session directory to be removed');
}

/** ... and, once the driver has exited, its shared memory: the arena is a memfd, freed when no process maps it or holds it open. */
async function expectNothingLeft(pids: number[], arena: Set<number>): Promise<void> {
  await expectProcessesAndSessionGone(pids);
  expect(arenaHolders(arena)).toEqual([]);
}

async function startDriver(mode: string): Promise<{ child: Child; pids: number[]; arena: Set<number> }> {
  const child = Child.start(process.execPath, [DRIVER, mode], { TSRAY_TMPDIR: tmp });
  started.push(child.proc.pid as number);
  await child.waitFor(/READY (\d+)/);
  const pids = descendants(child.proc.pid as number);
  started.push(...pids);
  // head, node manager, and at least one worker and one actor
  expect(pids.length).toBeGreaterThanOrEqual(4);
  // the driver and its node's processes map the arena while they run
  const arena = arenaInodes([child.proc.pid as number, ...pids]);
  expect(arena.size).toBe(1);
  expect(arenaHolders(arena).length).toBeGreaterThanOrEqual(3);
  return { child, pids, arena };
}

test('shutdown() stops every process it started and removes the session', async () => {
  const { child, pids, arena } = await startDriver('shutdown');
  child.proc.kill('SIGUSR2');
  await child.waitFor(/SHUTDOWN/);
  // the driver is still running: shutdown() itself stopped everything
  await expectProcessesAndSessionGone(pids);
  child.proc.kill('SIGUSR2');
  expect((await child.exited).code).toBe(0);
  // the driver's own mapping of the arena goes with its process (or its garbage collection)
  expect(arenaHolders(arena)).toEqual([]);
});

test('a driver that ends without shutdown() exits and leaves nothing behind', async () => {
  const { child, pids, arena } = await startDriver('exit');
  child.proc.kill('SIGUSR2');
  const { code } = await child.exited;
  expect(code).toBe(0);
  await expectNothingLeft(pids, arena);
});

test('a driver that dies of an uncaught error leaves nothing behind', async () => {
  const { child, pids, arena } = await startDriver('crash');
  child.proc.kill('SIGUSR2');
  const { code } = await child.exited;
  expect(code).toBe(1);
  expect(child.err).toContain('boom in the driver');
  await expectNothingLeft(pids, arena);
});

test('Ctrl-C (SIGINT) on the driver leaves nothing behind', async () => {
  const { child, pids, arena } = await startDriver('hang');
  child.proc.kill('SIGINT');
  const { signal } = await child.exited;
  expect(signal).toBe('SIGINT');
  await expectNothingLeft(pids, arena);
});

test('kill -9 of the driver leaves nothing behind', async () => {
  const { child, pids, arena } = await startDriver('hang');
  child.proc.kill('SIGKILL');
  await child.exited;
  await expectNothingLeft(pids, arena);
});
