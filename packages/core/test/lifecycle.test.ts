import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Child, alive, descendants } from './helpers/procs';
import { until } from './helpers/poll';

const DRIVER = path.join(__dirname, 'drivers', 'lifecycle.js');

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-life-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Everything a driver started is gone: processes, the session directory (sockets, spill files). */
async function expectNothingLeft(pids: number[]): Promise<void> {
  await until(() => pids.every((p) => !alive(p)), `processes ${pids.join(', ')} to exit`, 20_000);
  await until(() => !fs.existsSync(path.join(tmp, 'tsray')) || fs.readdirSync(path.join(tmp, 'tsray')).filter((d) => d.startsWith('session_')).length === 0, 'the session directory to be removed');
  const shm = fs.readdirSync('/dev/shm').filter((f) => f.includes('tsray'));
  expect(shm).toEqual([]);
}

async function startDriver(mode: string): Promise<{ child: Child; pids: number[] }> {
  const child = Child.start(process.execPath, [DRIVER, mode], { TSRAY_TMPDIR: tmp });
  await child.waitFor(/READY (\d+)/);
  const pids = descendants(child.proc.pid as number);
  // head, node manager, and at least one worker and one actor
  expect(pids.length).toBeGreaterThanOrEqual(4);
  return { child, pids };
}

test('shutdown() stops every process it started and removes the session', async () => {
  const { child, pids } = await startDriver('shutdown');
  child.proc.kill('SIGUSR2');
  await child.waitFor(/SHUTDOWN/);
  await expectNothingLeft(pids);
  await child.exited;
});

test('a driver that ends without shutdown() exits and leaves nothing behind', async () => {
  const { child, pids } = await startDriver('exit');
  const { code } = await child.exited;
  expect(code).toBe(0);
  await expectNothingLeft(pids);
});

test('a driver that dies of an uncaught error leaves nothing behind', async () => {
  const { child, pids } = await startDriver('crash');
  child.proc.kill('SIGUSR2');
  const { code } = await child.exited;
  expect(code).toBe(1);
  expect(child.err).toContain('boom in the driver');
  await expectNothingLeft(pids);
});

test('Ctrl-C (SIGINT) on the driver leaves nothing behind', async () => {
  const { child, pids } = await startDriver('hang');
  child.proc.kill('SIGINT');
  const { signal } = await child.exited;
  expect(signal).toBe('SIGINT');
  await expectNothingLeft(pids);
});

test('kill -9 of the driver leaves nothing behind', async () => {
  const { child, pids } = await startDriver('hang');
  child.proc.kill('SIGKILL');
  await child.exited;
  await expectNothingLeft(pids);
});
