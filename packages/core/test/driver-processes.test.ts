import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import { Child } from './helpers/procs';

const drivers = path.join(__dirname, 'drivers');
const cli = path.join(__dirname, '..', 'bin', 'tsray.js');

test("worker output reaches the driver prefixed with the task or actor name and pid", async () => {
  const c = Child.start(process.execPath, [path.join(drivers, 'logs.js')]);
  const [, pid, apid] = await c.waitFor(/PIDS (\d+) (\d+)/);
  await c.exited;
  expect(c.out).toContain(`(shout pid=${pid}) hello from a task`);
  expect(c.err).toContain(`(shout pid=${pid}) err: hello from a task`);
  expect(c.out).toContain(`(Printer pid=${apid}) actor says hi`);
});

describe('a cluster started with `tsray start`', () => {
  let tmp: string;
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, TSRAY_TMPDIR: tmp });
  const tsray = (...args: string[]): { code: number | null; out: string } => {
    const r = spawnSync(process.execPath, [cli, ...args], { env: env(), encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout + r.stderr };
  };

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-cli-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const r = tsray('start', '--head', '--port', String(port), '--num-cpus', '2');
    expect(r.out).toContain(`Started a tsray head at 127.0.0.1:${port}`);
    expect(r.code).toBe(0);
  });

  afterAll(() => {
    const r = tsray('stop');
    expect(r.out).toMatch(/Stopped the tsray cluster/);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('status shows the node and its resources', () => {
    const r = tsray('status');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/1 node\(s\)/);
    expect(r.out).toMatch(/CPU: 0\/2 used/);
  });

  test('a second start fails clearly', () => {
    const r = tsray('start', '--head');
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/already running on this machine/);
  });

  test('bad arguments fail clearly', () => {
    expect(tsray('start', '--head', '--resources', '{bad').out).toMatch(/--resources must be JSON/);
    expect(tsray('start', '--head', '--num-cpus', 'many').out).toMatch(/--num-cpus must be a non-negative number/);
    expect(tsray('launch').out).toMatch(/unknown command 'launch'/);
  });

  test('a detached actor outlives the driver that made it; a non-detached one does not', async () => {
    const first = Child.start(process.execPath, [path.join(drivers, 'detached.js'), 'create'], { TSRAY_TMPDIR: tmp });
    await first.waitFor(/CREATED/);
    expect((await first.exited).code).toBe(0);
    const second = Child.start(process.execPath, [path.join(drivers, 'detached.js'), 'use'], { TSRAY_TMPDIR: tmp });
    await second.waitFor(/AFTER KILL/);
    expect((await second.exited).code).toBe(0);
    expect(second.out).toContain('COUNT 2');
    expect(second.out).toContain('ITEMS ["from the first driver","from the second driver"]');
    expect(second.out).toContain('TEMP ActorNotFoundError');
    expect(second.out).toContain('AFTER KILL ActorNotFoundError');
  });
});

test('init({ address }) of a head that is not running fails clearly', async () => {
  const c = Child.start(process.execPath, ['-e', "require('@tsray/core').init({ address: '127.0.0.1:1' }).catch((e) => { console.log(e.name + ': ' + e.message); })"], {}, path.join(__dirname, '..'));
  await c.exited;
  expect(c.out).toMatch(/no tsray head answers at 127\.0\.0\.1:1/);
});
