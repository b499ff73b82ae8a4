/**
 * Object transfer with CURVE encryption, the path between real machines:
 * a 1 GiB object pulled from one node to another across two network
 * namespaces (hosts with addresses of their own, joined by a veth pair and a
 * bridge; the head and the node started with `tsray start
 * --node-ip-address`), read by a driver on the head's host. Where `ip netns`
 * is not permitted (not root) it says why and measures CURVE on tcp loopback
 * instead (TSRAY_ENCRYPT_LOOPBACK=1). Peers in the same run: the plain
 * (unencrypted) loopback transfer and memcpy. Part of `npm run bench --
 * cluster` (bench/cluster.ts).
 */
import * as path from 'node:path';
import { Hosts, netnsProblem, type Host } from '../packages/core/test/helpers/netns';
import { memcpyGbps } from './core';
import { loopbackTransfer } from './cluster-transfer';
import { summarize, type Metric } from './harness';

type Log = (name: string, m: Metric) => void;

const GiB = 1024 * 1024 * 1024;
const CLI = path.join(__dirname, '..', 'packages', 'core', 'bin', 'tsray.js');
const DRIVER = path.join(__dirname, 'cluster-curve-driver.ts');

/** Runs `tsray` on `host`; throws with its output when it fails. */
function tsray(hosts: Hosts, host: Host, args: string[], token?: string): string {
  const r = hosts.run(host, process.execPath, [CLI, ...args], { TSRAY_CLUSTER_TOKEN: token });
  if (r.code !== 0) throw new Error(`tsray ${args.join(' ')} on host ${host.name} failed:\n${r.out}`);
  return r.out;
}

/**
 * A head on one host, a node on another (1.25 GiB stores), and a driver on
 * the head's host (bench/cluster-curve-driver.ts) that times the rounds.
 */
async function acrossHosts(): Promise<{ rounds: number[]; pulls?: number }> {
  const hosts = Hosts.create(['head', 'a']);
  const ids: string[] = [];
  try {
    const [head, a] = hosts.hosts as [Host, Host];
    const store = String(1.25 * GiB);
    const out = tsray(hosts, head, ['start', '--head', '--node-ip-address', head.ip, '--num-cpus', '1', '--object-store-memory', store]);
    const token = /Cluster token[^\n]*\n\s+([0-9a-f]{64})\n/.exec(out)?.[1];
    if (!token) throw new Error(`tsray start --head printed no token:\n${out}`);
    const joined = tsray(hosts, a, ['start', '--address', `${head.ip}:6380`, '--node-ip-address', a.ip, '--num-cpus', '1', '--object-store-memory', store], token);
    ids.push(...[/Started node (\w+)/.exec(joined)?.[1] ?? ''].filter((x) => x !== ''));
    const d = hosts.spawn(head, process.execPath, ['--import', 'tsx', DRIVER, `${head.ip}:6380`], { TSRAY_CLUSTER_TOKEN: token });
    d.proc.stderr?.on('data', (b: Buffer) => process.stderr.write(b));
    const code = (await d.exited).code;
    const m = /RESULT (.*)\n/.exec(d.out);
    if (code !== 0 || !m) throw new Error(`the driver on host ${head.name} failed (exit ${code}):\n${d.out}`);
    tsray(hosts, a, ['stop'], token);
    tsray(hosts, head, ['stop']);
    return JSON.parse(m[1] as string) as { rounds: number[] };
  } finally {
    hosts.destroy(ids.map((id) => `tsray-${id.slice(0, 8)}`));
  }
}

/** CURVE between two nodes of a `ray.Cluster` on tcp loopback. */
async function curveOnLoopback(): Promise<{ rounds: number[]; pulls: number }> {
  const before = process.env.TSRAY_ENCRYPT_LOOPBACK;
  process.env.TSRAY_ENCRYPT_LOOPBACK = '1';
  try {
    return await loopbackTransfer();
  } finally {
    if (before === undefined) delete process.env.TSRAY_ENCRYPT_LOOPBACK;
    else process.env.TSRAY_ENCRYPT_LOOPBACK = before;
  }
}

/** See the module comment. */
export async function crossNodeCurve(log: Log): Promise<void> {
  const problem = netnsProblem();
  if (problem !== undefined) console.error(`cross_node_transfer_1gib_curve: ${problem}; measuring CURVE on tcp loopback (TSRAY_ENCRYPT_LOOPBACK=1) instead`);
  const curve = problem === undefined ? await acrossHosts() : await curveOnLoopback();
  const where = problem === undefined ? 'across two network namespaces (veth + bridge), `tsray start --node-ip-address`' : 'over tcp loopback with TSRAY_ENCRYPT_LOOPBACK=1 (ip netns not permitted)';
  log('cross_node_transfer_1gib_curve', {
    ...summarize(curve.rounds, 'GB/s'),
    note: `1 GiB from a node to the driver's node, CURVE-encrypted, ${where}; driver's ray.get; 8 MiB chunks${curve.pulls === undefined ? '' : `, ${curve.pulls} pulls`}`,
  });
  const plain = await loopbackTransfer();
  log('cross_node_transfer_1gib_plain (curve run)', { ...summarize(plain.rounds, 'GB/s'), note: 'the same transfer over tcp loopback, unencrypted (PLAIN authentication), same run' });
  const copy = await memcpyGbps(new Float64Array(GiB / 8).fill(1.5));
  log('memcpy_gigabytes (curve run)', { ...copy, note: 'Float64Array.set of 1 GiB into a warm buffer, same run' });
  const med = (m: Metric): number => m.median ?? m.value;
  const c = summarize(curve.rounds, 'GB/s');
  log('curve_vs_plain_transfer', { value: med(c) / med(summarize(plain.rounds, 'GB/s')), unit: 'ratio', note: 'median CURVE transfer / median plain transfer, same run' });
}
