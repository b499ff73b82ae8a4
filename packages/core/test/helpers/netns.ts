/**
 * Hosts made of Linux network namespaces, for tests and benchmarks of a
 * cluster that spans machines: each host is a namespace with its own
 * address, loopback and tcp ports, so that `tsray start --node-ip-address`
 * binds a non-loopback address and the cluster's connections take the path
 * of a real deployment (CURVE encryption included). The hosts share this
 * machine's disk and processes, nothing else.
 *
 * The first host also holds a bridge (`br0`, the "switch"); every other host
 * is joined to it by a veth pair, so every host reaches every other. The
 * addresses (10.213.X.0/24) exist only inside the namespaces: nothing
 * reaches or leaves the machine, and concurrent runs (each with its own
 * namespaces, named after its pid) do not clash.
 *
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's `ip`;
 * {@link netnsProblem} says why not where they are missing.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Child, alive } from './procs';

/** The prefix of every namespace these helpers create: `tsray-net-<pid>-<host>`. */
const PREFIX = 'tsray-net-';

/** Runs `ip` with `args`; throws with its output when it fails. */
function ip(...args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new Error(`ip ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Namespaces that exist on this machine. */
function namespaces(): string[] {
  let out: string;
  try {
    out = ip('netns', 'list');
  } catch {
    return [];
  }
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** The pids of the processes inside namespace `ns`. */
function pidsIn(ns: string): number[] {
  try {
    return ip('netns', 'pids', ns)
      .split('\n')
      .map(Number)
      .filter((p) => Number.isInteger(p) && p > 0);
  } catch {
    return [];
  }
}

/** SIGKILLs every process inside `ns` (by pid) and deletes it. */
function removeNamespace(ns: string): void {
  for (const pid of pidsIn(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  try {
    ip('netns', 'delete', ns);
  } catch {
    /* already gone */
  }
}

/** Whether `pid` is an earlier run's that is gone. */
const staleRun = (pid: number): boolean => pid !== process.pid && !alive(pid);

/**
 * Removes the namespaces and directories of earlier runs whose process is
 * gone (a run killed before its clean-up), with whatever still runs inside
 * them.
 */
function sweepStale(): void {
  for (const ns of namespaces()) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(ns);
    if (m && staleRun(Number(m[1]))) removeNamespace(ns);
  }
  for (const f of fs.readdirSync(os.tmpdir())) {
    const m = /^tsray-hosts-(\d+)-/.exec(f);
    if (m && staleRun(Number(m[1]))) fs.rmSync(path.join(os.tmpdir(), f), { recursive: true, force: true });
  }
}

/**
 * Why network namespaces cannot be used on this machine (not root, no
 * CAP_NET_ADMIN, no `ip` command, ...), or undefined when they can: it
 * creates a namespace, brings its loopback up and deletes it.
 */
export function netnsProblem(): string | undefined {
  const probe = `${PREFIX}${process.pid}-probe`;
  const which = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (which.error) return `the \`ip\` command (iproute2) is not available: ${which.error.message}`;
  try {
    ip('netns', 'add', probe);
  } catch (e) {
    const uid = process.getuid?.();
    return `\`ip netns add\` is not permitted here: ${(e as Error).message.replace(/^ip netns add \S+ (failed \(exit \d+\): )?/, '')} (uid ${uid ?? '?'}; it needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)`;
  }
  try {
    ip('-n', probe, 'link', 'set', 'lo', 'up');
    ip('-n', probe, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1');
    ip('-n', probe, 'link', 'add', 'probebr', 'type', 'bridge');
    ip('netns', 'exec', probe, process.execPath, '-e', '');
    return undefined;
  } catch (e) {
    return `network namespaces exist but cannot be set up: ${(e as Error).message}`;
  } finally {
    removeNamespace(probe);
  }
}

/** One host: a network namespace with an address, and a directory of its own for tsray's files. */
export interface Host {
  /** the host's name, as given to {@link Hosts.create} */
  readonly name: string;
  /** the network namespace */
  readonly ns: string;
  /** its address on the hosts' network */
  readonly ip: string;
  /** its TSRAY_TMPDIR: the cluster file, node records and session directories of tsray on this host */
  readonly tmp: string;
}

/** See the module comment. */
export class Hosts {
  private destroyed = false;
  private readonly children: Child[] = [];

  private constructor(
    readonly hosts: Host[],
    /** holds every host's directory */
    readonly root: string,
  ) {}

  /**
   * Creates one host per name (the first holds the bridge), each with its
   * loopback up and an address on a /24 of its own. Removes what it made if
   * any step fails.
   */
  static create(names: string[]): Hosts {
    sweepStale();
    const subnet = `10.213.${process.pid % 250}`;
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `tsray-hosts-${process.pid}-`));
    const hosts = names.map((name, i): Host => ({ name, ns: `${PREFIX}${process.pid}-${name}`, ip: `${subnet}.${i + 1}`, tmp: path.join(root, name) }));
    const h = new Hosts(hosts, root);
    try {
      const [sw] = hosts;
      if (!sw) throw new Error('Hosts.create needs at least one host name');
      for (const host of hosts) {
        fs.mkdirSync(host.tmp, { mode: 0o700 });
        ip('netns', 'add', host.ns);
        ip('-n', host.ns, 'link', 'set', 'lo', 'up');
      }
      ip('-n', sw.ns, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', sw.ns, 'addr', 'add', `${sw.ip}/24`, 'dev', 'br0');
      ip('-n', sw.ns, 'link', 'set', 'br0', 'up');
      for (const [i, host] of hosts.entries()) {
        if (i === 0) continue;
        // one end on the bridge in the first host, the other as eth0 of this host
        ip('-n', sw.ns, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns);
        ip('-n', sw.ns, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
        ip('-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0');
        ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
      }
    } catch (e) {
      h.destroy();
      throw e;
    }
    return h;
  }

  /** The host named `name`. */
  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host named ${name} (hosts: ${this.hosts.map((x) => x.name).join(', ')})`);
    return h;
  }

  /** Starts `cmd args` inside `host`, with TSRAY_TMPDIR set to the host's directory; killed at {@link destroy}. */
  spawn(host: Host, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
    const c = new Child(spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], { env: { ...process.env, TSRAY_TMPDIR: host.tmp, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
    this.children.push(c);
    return c;
  }

  /** Runs `cmd args` inside `host` to its end (TSRAY_TMPDIR as in {@link spawn}). */
  run(host: Host, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): { code: number | null; out: string } {
    const r = spawnSync('ip', ['netns', 'exec', host.ns, cmd, ...args], { env: { ...process.env, TSRAY_TMPDIR: host.tmp, ...env }, encoding: 'utf8', timeout: timeoutMs });
    return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
  }

  /** The processes running inside `host` (every process started there, and their children). */
  pids(host: Host): number[] {
    return pidsIn(host.ns).filter(alive);
  }

  /** The tcp addresses ("ip:port") listened on inside `host`. */
  listening(host: Host): string[] {
    const r = this.run(host, 'cat', ['/proc/net/tcp', '/proc/net/tcp6']);
    const out: string[] = [];
    for (const line of r.out.split('\n')) {
      const [, local, , st] = line.trim().split(/\s+/);
      if (st !== '0A' || !local) continue;
      const [hex = '', port = '0'] = local.split(':');
      const addr = hex.length === 8 ? [...Buffer.from(hex, 'hex').reverse()].join('.') : hex;
      out.push(`${addr}:${parseInt(port, 16)}`);
    }
    return out;
  }

  /**
   * Removes everything: SIGKILLs every process inside the hosts (by pid),
   * deletes the namespaces (their veths and bridge go with them), removes
   * every host's directory and the shared memory named in `shmPrefixes`.
   * Safe to call more than once and after a failed {@link create}.
   */
  destroy(shmPrefixes: string[] = []): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    for (const host of this.hosts) removeNamespace(host.ns);
    fs.rmSync(this.root, { recursive: true, force: true });
    if (shmPrefixes.length > 0) {
      for (const f of fs.readdirSync('/dev/shm')) if (shmPrefixes.some((p) => f.startsWith(p))) fs.rmSync(path.join('/dev/shm', f), { force: true });
    }
  }
}
