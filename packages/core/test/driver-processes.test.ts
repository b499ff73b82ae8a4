import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import { Child, alive, descendants } from './helpers/procs';
import { until } from './helpers/poll';
import { freePort } from './helpers/net';

const drivers = path.join(__dirname, 'drivers');
const cli = path.join(__dirname, '..', 'bin', 'tsray.js');

/** drivers this file started, with their processes: killed in afterEach if still there */
let children: Child[] = [];
let pids: number[] = [];
function start(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const c = Child.start(process.execPath, args, env);
  children.push(c);
  return c;
}
afterEach(() => {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) {
      pids.push(...descendants(c.proc.pid as number));
      c.proc.kill('SIGKILL');
    }
  }
  for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
  children = [];
  pids = [];
});

describe('worker output', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-logs-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('worker output reaches the driver prefixed with the task or actor name and pid', async () => {
    const c = start([path.join(drivers, 'logs.js')], { TSRAY_TMPDIR: tmp });
    const [, pid, apid] = await c.waitFor(/PIDS (\d+) (\d+)/);
    await until(
      () => c.out.includes(`(Printer pid=${apid}) actor says hi`) && c.err.includes(`(shout pid=${pid}) err: hello from a task`),
      'the worker output at the driver',
    );
    c.proc.kill('SIGUSR2');
    expect((await c.exited).code).toBe(0);
    expect(c.out).toContain(`(shout pid=${pid}) hello from a task`);
  });

  test('a driver that waits on nothing still gets the output of workers on other nodes at once, and ends by itself', async () => {
    const stop = path.join(tmp, 'stop');
    const c = start([path.join(drivers, 'idle-logs.js'), stop], { TSRAY_TMPDIR: tmp });
    const [, pid] = await c.waitFor(/READY (\d+)/);
    // the driver awaits only a timer of its own: the lines come while it does
    await until(() => c.out.includes(`(Ticker pid=${pid}) tick 3`), 'three ticks at the driver');
    fs.writeFileSync(stop, '');
    expect((await c.exited).code).toBe(0);
    expect(c.out).toContain('DONE');
  });

  test('with logToDriver: false worker output stays out of the driver (it goes to the session log)', async () => {
    const c = start([path.join(drivers, 'logs.js'), 'quiet'], { TSRAY_TMPDIR: tmp });
    const [, pid] = await c.waitFor(/LOGGED (\d+)/);
    expect((await c.exited).code).toBe(0);
    expect(Number(pid)).toBeGreaterThan(0);
    expect(c.out).not.toContain('hello from a quiet task');
    expect(c.err).not.toContain('hello from a quiet task');
  });
});

describe('a cluster started with `tsray start`', () => {
  let tmp: string;
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, TSRAY_TMPDIR: tmp });
  const tsray = (...args: string[]): { code: number | null; out: string } => {
    const r = spawnSync(process.execPath, [cli, ...args], { env: env(), encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout + r.stderr };
  };

  let port = 0;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-cli-'));
    port = await freePort();
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
    const first = start([path.join(drivers, 'detached.js'), 'create'], { TSRAY_TMPDIR: tmp });
    await first.waitFor(/CREATED/);
    expect((await first.exited).code).toBe(0);
    const second = start([path.join(drivers, 'detached.js'), 'use'], { TSRAY_TMPDIR: tmp });
    await second.waitFor(/AFTER KILL/);
    expect((await second.exited).code).toBe(0);
    expect(second.out).toContain('COUNT 2');
    expect(second.out).toContain('ITEMS ["from the first driver","from the second driver"]');
    expect(second.out).toContain('TEMP ActorNotFoundError');
    expect(second.out).toContain('AFTER KILL ActorNotFoundError');
  });

  test('a node joins with --address: status shows both nodes and pending demand; stop stops both', async () => {
    const r = tsray('start', '--address', `127.0.0.1:${port}`, '--num-cpus', '1', '--resources', '{"joined": 1}');
    expect(r.out).toMatch(/Started node (\w+) .* joined the tsray head at 127\.0\.0\.1:\d+/);
    expect(r.code).toBe(0);
    const nodeId = /Started node (\w+)/.exec(r.out)?.[1] as string;
    const s = tsray('status');
    expect(s.out).toMatch(/2 node\(s\) alive/);
    expect(s.out).toContain(nodeId);
    expect(s.out).toMatch(/joined: 0\/1 used/);
    // a task no node can hold shows up as pending demand
    const d = start([path.join(drivers, 'demand.js')], { TSRAY_TMPDIR: tmp });
    try {
      await d.waitFor(/SUBMITTED/);
      await until(() => /joined: 5\}: 1 pending/.test(tsray('status').out), 'the demand to show in tsray status');
    } finally {
      d.proc.kill('SIGKILL');
      await d.exited;
    }
    expect(tsray('start', '--address', '127.0.0.1:1').out).toMatch(/no tsray head answers at 127\.0\.0\.1:1/);
    const bad = tsray('start', '--address', 'nonsense');
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/--address must be HOST:PORT/);
    expect(tsray('start', '--head', '--address', `127.0.0.1:${port}`).out).toMatch(/do not go together/);
  });

  test('each driver gets its own anonymous namespace: two drivers can use the same actor name', async () => {
    const gate = path.join(tmp, 'anon-gate');
    const a = start([path.join(drivers, 'detached.js'), 'anon', gate], { TSRAY_TMPDIR: tmp });
    const [, nsA] = await a.waitFor(/NS (\S+)/);
    await a.waitFor(/NAMES /);
    // while the first driver and its named actor are alive
    const b = start([path.join(drivers, 'detached.js'), 'anon', gate], { TSRAY_TMPDIR: tmp });
    const [, nsB] = await b.waitFor(/NS (\S+)/);
    // NAMES is printed after NS, once listNamedActors() answers
    await b.waitFor(/NAMES /);
    expect(nsA).not.toBe(nsB);
    expect(a.out).toContain('NAMES ["same-name"]');
    expect(b.out).toContain('NAMES ["same-name"]');
    fs.writeFileSync(gate, '');
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
  });
});

test('init({ address }) of a head that is not running fails clearly', async () => {
  const c = Child.start(process.execPath, ['-e', "require('@tsray/core').init({ address: '127.0.0.1:1' }).catch((e) => { console.log(e.name + ': ' + e.message); })"], {}, path.join(__dirname, '..'));
  children.push(c);
  await c.exited;
  expect(c.out).toMatch(/no tsray head answers at 127\.0\.0\.1:1/);
});
