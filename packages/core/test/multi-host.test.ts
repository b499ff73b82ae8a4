/**
 * A cluster across three hosts, as a real deployment runs it: each host is a
 * network namespace with an address of its own (helpers/netns.ts), the head
 * and the nodes are started with `tsray start --node-ip-address`, and every
 * connection between hosts is a non-loopback tcp connection, so encrypted
 * with CURVE. Drivers run inside the hosts.
 *
 * Needs `ip netns` (root or CAP_NET_ADMIN); where it is not permitted the
 * suite is skipped and says why (TSRAY_REQUIRE_NETNS=1 makes that a failure).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Hosts, netnsProblem, type Host } from './helpers/netns';
import { type Child, alive } from './helpers/procs';
import { until } from './helpers/poll';

const MiB = 1024 * 1024;
const cli = path.join(__dirname, '..', 'bin', 'tsray.js');
const drivers = path.join(__dirname, 'drivers');

const problem = netnsProblem();
if (problem !== undefined) {
  if (process.env.TSRAY_REQUIRE_NETNS === '1') throw new Error(`multi-host.test.ts needs network namespaces (TSRAY_REQUIRE_NETNS=1), but ${problem}`);
  process.stderr.write(`\nmulti-host.test.ts: SKIPPED, its tests do not run: ${problem}. Run the tests as root (or with CAP_NET_ADMIN) to run them.\n\n`);
}
const describeHosts = problem === undefined ? describe : describe.skip;

/** The environment of `tsray` and drivers on a host: no token unless given. */
function env(token?: string): NodeJS.ProcessEnv {
  return { TSRAY_CLUSTER_TOKEN: token };
}

/** A "STEP <name> <json>" line of drivers/multi-host.js. */
async function stepOf<T>(c: Child, name: string): Promise<T> {
  const m = await c.waitFor(new RegExp(`STEP ${name} (.*)\\n`), 90_000).catch((e: Error) => {
    throw new Error(`${e.message}\n(the driver said ${/ERROR .*/.exec(c.out)?.[0] ?? 'no error'})`);
  });
  return JSON.parse(m[1] as string) as T;
}

interface NodeSeen {
  nodeId: string;
  address: string;
  alive: boolean;
  isHead: boolean;
}

describeHosts(`a cluster across three hosts (network namespaces), started with tsray start${problem === undefined ? '' : ` [skipped: ${problem}]`}`, () => {
  let hosts: Hosts;
  let head: Host;
  let a: Host;
  let b: Host;
  let token: string;
  /** node manager pid and node id of each host, from `tsray start` */
  const started = new Map<string, { pid: number; nodeId?: string; sessionDir: string; out: string }>();
  let driver: Child;
  const resources = (): Record<string, string> => ({ host_head: head.ip, host_a: a.ip, host_b: b.ip });

  const tsray = (host: Host, args: string[], tok?: string): { code: number | null; out: string } => hosts.run(host, process.execPath, [cli, ...args], env(tok));

  beforeAll(() => {
    hosts = Hosts.create(['head', 'a', 'b']);
    [head, a, b] = hosts.hosts as [Host, Host, Host];
    const store = String(768 * MiB);
    const h = tsray(head, ['start', '--head', '--node-ip-address', head.ip, '--num-cpus', '1', '--resources', '{"host_head": 1}', '--object-store-memory', store]);
    if (h.code !== 0) throw new Error(`tsray start --head failed:\n${h.out}`);
    token = (/Cluster token[^\n]*\n\s+([0-9a-f]{64})\n/.exec(h.out) ?? [])[1] as string;
    const m = /Started a tsray head at \S+ \(pid (\d+); logs in (\S+)\)/.exec(h.out);
    started.set('head', { pid: Number(m?.[1]), sessionDir: m?.[2] as string, out: h.out });
    for (const host of [a, b]) {
      // host b finds its address itself: the one it reaches the head from
      const ipFlag = host === a ? ['--node-ip-address', host.ip] : [];
      const r = tsray(host, ['start', '--address', `${head.ip}:6380`, ...ipFlag, '--num-cpus', '1', '--resources', `{"host_${host.name}": 1}`, '--object-store-memory', store], token);
      if (r.code !== 0) throw new Error(`tsray start --address on host ${host.name} failed:\n${r.out}`);
      const n = /Started node (\w+) \(pid (\d+); logs in (\S+)\)/.exec(r.out);
      started.set(host.name, { nodeId: n?.[1], pid: Number(n?.[2]), sessionDir: n?.[3] as string, out: r.out });
    }
  }, 90_000);

  afterAll(() => {
    const ids = [...started.values()].flatMap((s) => (s.nodeId ? [`tsray-${s.nodeId.slice(0, 8)}`] : []));
    hosts?.destroy(ids);
  });

  test('the head and two nodes join up, each listening only on its own host address (given, or found from the head)', () => {
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(started.get('head')?.out).toContain(`TSRAY_CLUSTER_TOKEN=${token} tsray start --address ${head.ip}:6380 --node-ip-address <that machine's address>`);
    expect(started.get('b')?.out).toContain(`Listening on ${b.ip}, the address this machine reaches the head from`);
    for (const [name, s] of started) expect({ name, dir: fs.existsSync(s.sessionDir), pid: hosts.pids(hosts.host(name)).includes(s.pid) }).toEqual({ name, dir: true, pid: true });
    const status = tsray(a, ['status'], token);
    expect(status.out).toMatch(/3 node\(s\) alive/);
    for (const host of [head, a, b]) expect(status.out).toContain(` alive at ${host.ip}`);
    expect(hosts.listening(head)).toContain(`${head.ip}:6380`);
    for (const host of [head, a, b]) {
      const ports = hosts.listening(host);
      expect(ports.length).toBeGreaterThan(0);
      expect(ports.filter((p) => !p.startsWith(`${host.ip}:`))).toEqual([]);
    }
  });

  test('connections between hosts are encrypted: the head answers a CURVE peer with the token and refuses it over PLAIN', async () => {
    const r = hosts.run(a, process.execPath, [path.join(drivers, 'curve-probe.js'), `${head.ip}:6380`], env(token));
    expect(r.out).toContain('CURVE answered 3 nodes');
    expect(r.out).toContain('PLAIN refused');
    // a peer over PLAIN fails the handshake (the head speaks CURVE only there): the head says so
    const log = path.join(started.get('head')?.sessionDir as string, 'head.log');
    const refusal = new RegExp(`refused a connection to tcp://${head.ip.replace(/\./g, '\\.')}:6380 from (${a.ip.replace(/\./g, '\\.')}:\\d+|an unknown address): (it does not use CURVE encryption|it broke off the CURVE handshake)`);
    await until(() => refusal.test(fs.readFileSync(log, 'utf8')), 'the head to log the refused PLAIN peer');
  });

  test('a driver on one host runs a task on each host, placed there by the host resource', async () => {
    driver = hosts.spawn(a, process.execPath, [path.join(drivers, 'multi-host.js'), `${head.ip}:6380`, JSON.stringify(resources())], env(token));
    const nodes = await stepOf<NodeSeen[]>(driver, 'nodes');
    expect(nodes.map((n) => n.address).sort()).toEqual([head.ip, a.ip, b.ip].sort());
    expect(await stepOf<{ nodeId: string }>(driver, 'driver')).toEqual({ nodeId: started.get('a')?.nodeId });
    const placed = await stepOf<Record<string, { address: string; expected: string }>>(driver, 'tasks');
    for (const [res, p] of Object.entries(placed)) expect({ res, at: p.address }).toEqual({ res, at: p.expected });
  });

  test('a 256 MiB object put on one host is read on another, and one made on a third host is read by the driver, byte for byte', async () => {
    expect(await stepOf(driver, 'put_read_remote')).toMatchObject({ same: true, len: 256 * MiB, readOn: started.get('b')?.nodeId });
    expect(await stepOf(driver, 'remote_read_here')).toMatchObject({ same: true, len: 256 * MiB });
  });

  test('SIGKILL of a host node manager: the cluster marks it dead, its workers exit, its actor restarts on another host and tasks go on', async () => {
    const bNode = started.get('b')?.nodeId as string;
    const { first, second } = await stepOf<{ first: [number, string, boolean]; second: [number, string, boolean] }>(driver, 'actor');
    expect([first, second]).toEqual([
      [1, bNode, false],
      [2, bNode, false],
    ]);
    await driver.waitFor(/KILL host_b\n/);
    const pid = started.get('b')?.pid as number;
    expect(hosts.pids(b)).toContain(pid);
    process.kill(pid, 'SIGKILL');
    const { after } = await stepOf<{ after: [number, string, boolean] }>(driver, 'actor_after_kill');
    expect(after[0]).toBe(1);
    expect(after[1]).not.toBe(bNode);
    expect(after[2]).toBe(true);
    expect(await stepOf(driver, 'task_after_kill')).toEqual({ nodeId: started.get('a')?.nodeId });
    const nodes = await stepOf<Array<{ nodeId: string; alive: boolean }>>(driver, 'nodes_after_kill');
    expect(nodes.filter((n) => !n.alive).map((n) => n.nodeId)).toEqual([bNode]);
    await driver.waitFor(/DONE\n/);
    expect((await driver.exited).code).toBe(0);
    await until(() => hosts.pids(b).length === 0, "host b's workers to exit with their node manager", 15_000);
  });

  test("a driver on the head's host joins with address 'auto' and the head's token file, and runs tasks on the live hosts", async () => {
    const d = hosts.spawn(head, process.execPath, [path.join(drivers, 'multi-host.js'), 'auto', JSON.stringify({ host_head: head.ip, host_a: a.ip }), 'tasks'], env());
    const nodes = await stepOf<NodeSeen[]>(d, 'nodes');
    expect(await stepOf<{ nodeId: string }>(d, 'driver')).toEqual({ nodeId: nodes.find((n) => n.isHead)?.nodeId });
    const placed = await stepOf<Record<string, { address: string; expected: string }>>(d, 'tasks');
    for (const [res, p] of Object.entries(placed)) expect({ res, at: p.address }).toEqual({ res, at: p.expected });
    await d.waitFor(/DONE\n/);
    expect((await d.exited).code).toBe(0);
  });

  test('tsray stop on each host stops what it started there and removes its session directory', async () => {
    expect(tsray(a, ['stop'], token).out).toMatch(/Stopped node/);
    // host b's node manager was killed: stop only removes what it left
    expect(tsray(b, ['stop'], token).code).toBe(0);
    expect(tsray(head, ['stop']).out).toMatch(/Stopped the tsray cluster/);
    await until(() => [head, a, b].every((h) => hosts.pids(h).length === 0), 'every process on the hosts to exit', 20_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${[head, a, b].map((h) => `${h.name}: ${hosts.pids(h).join(' ')}`).join('; ')}`);
    });
    for (const [name, s] of started) expect({ name, left: fs.existsSync(s.sessionDir) }).toEqual({ name, left: false });
    for (const s of started.values()) expect(alive(s.pid)).toBe(false);
  });
});
