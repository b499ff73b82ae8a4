/**
 * Object transfer between nodes: a 1 GiB object pulled from one node to
 * another, and a 256 MiB object broadcast to three nodes, over tcp loopback
 * on one machine (a `ray.Cluster`), with the machine's memcpy measured in
 * the same run. Each section starts the cluster it needs; they run as part
 * of `npm run bench -- cluster` (bench/cluster.ts).
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as ray from '@tsray/core';
import { memcpyGbps } from './core';
import { summarize, type Metric } from './harness';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const GB = 1e9;

// ---------------------------------------------------------------------------
// remote definitions (workers import this module to find them)

/** A Float64Array of `bytes` bytes filled with `v`, made where the task runs. */
export const makeBytes = ray.remote(function make_bytes(bytes: number, v: number): Float64Array {
  return new Float64Array(bytes / 8).fill(v);
});

let gcFn: (() => void) | undefined;
/** Collects garbage in this process (what earlier rounds read is let go). */
function collect(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** Reads a broadcast object (nested, so that the read is timed here); returns its last element and the read time. */
export const readBroadcast = ray.remote(async function read_broadcast(box: { ref: ray.ObjectRef<Float64Array> }): Promise<[number, number]> {
  collect();
  const t = performance.now();
  const a = await ray.get(box.ref);
  return [a[a.length - 1] as number, performance.now() - t];
});

/** Starts a worker on the node (warm-up). */
export const ping = ray.remote(function ping(): string {
  return ray.getRuntimeContext().nodeId;
});

// ---------------------------------------------------------------------------

type Log = (name: string, m: Metric) => void;

const on = (n: ray.ClusterNode): { scheduling: { nodeId: string } } => ({ scheduling: { nodeId: n.nodeId } });

/** Collects garbage here until the last round's refs and values are gone (their objects freed everywhere). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Rounds of a 1 GiB array made on another node (where `source` places a
 * task) and read by this driver: its node manager pulls it in 8 MiB chunks
 * over tcp. One warm-up round (it faults the receiving store's pages), then
 * `rounds` timed ones; GB/s per timed round. Needs a connected driver.
 */
export async function transferRounds(source: ray.TaskOptions, rounds = 4): Promise<number[]> {
  const rates: number[] = [];
  // one round per call: its value must be unreachable before the next round needs the room
  const round = async (i: number): Promise<number> => {
    const ref = makeBytes.options(source).remote(GiB, i + 1);
    await ray.wait([ref], { timeoutMs: 120_000 });
    const t = performance.now();
    const v = await ray.get(ref);
    const s = (performance.now() - t) / 1000;
    if (v[v.length - 1] !== i + 1) throw new Error('the transferred array has the wrong contents');
    return GiB / GB / s;
  };
  for (let i = 0; i <= rounds; i++) {
    const rate = await round(i);
    if (i > 0) rates.push(rate);
    await settle();
  }
  return rates;
}

/**
 * {@link transferRounds} between two nodes of a `ray.Cluster` (tcp
 * loopback: unencrypted, or CURVE with TSRAY_ENCRYPT_LOOPBACK=1 set before),
 * with the head node's pull count.
 */
export async function loopbackTransfer(): Promise<{ rounds: number[]; pulls: number }> {
  const cluster = await ray.Cluster.start({ head: { numCpus: 1, objectStoreMemory: 1.25 * GiB } });
  try {
    const a = await cluster.addNode({ numCpus: 1, objectStoreMemory: 1.25 * GiB });
    await cluster.waitForNodes();
    await ray.init({ address: cluster.address, logToDriver: true });
    const rounds = await transferRounds(on(a));
    return { rounds, pulls: (await cluster.objectStats(cluster.head)).pulls };
  } finally {
    await ray.shutdown();
    await cluster.shutdown();
  }
}

/** A 1 GiB array from node A to the head node over tcp loopback (see {@link transferRounds}), with memcpy in the same run. */
async function crossNode(log: Log): Promise<void> {
  const { rounds, pulls } = await loopbackTransfer();
  log('cross_node_transfer_1gib', {
    ...summarize(rounds, 'GB/s'),
    target: '≥ 1 GB/s',
    note: `1 GiB from node A to the head node over tcp loopback, driver's ray.get; ${pulls} pulls, 8 MiB chunks`,
  });
  const src = new Float64Array(GiB / 8).fill(1.5);
  log('memcpy_gigabytes (same run)', { ...(await memcpyGbps(src)), note: 'Float64Array.set of 1 GiB into a warm buffer' });
}

/**
 * A 256 MiB array put by the driver, read at once by a task on each of three
 * other nodes: each node pulls it from the head node. Time from submitting
 * the three reads until all three returned; one warm-up round, 4 timed.
 */
async function broadcast(log: Log): Promise<void> {
  const size = 256 * MiB;
  const cluster = await ray.Cluster.start({ head: { numCpus: 1, objectStoreMemory: 1 * GiB } });
  try {
    const nodes: ray.ClusterNode[] = [];
    for (let i = 0; i < 3; i++) nodes.push(await cluster.addNode({ numCpus: 1, objectStoreMemory: 1 * GiB }));
    await cluster.waitForNodes();
    await ray.init({ address: cluster.address, logToDriver: true });
    await ray.get(nodes.map((n) => ping.options(on(n)).remote()));
    const times: number[] = [];
    const rates: number[] = [];
    const round = async (i: number): Promise<number> => {
      const ref = ray.put(new Float64Array(size / 8).fill(i + 1));
      const t = performance.now();
      const out = await ray.get(nodes.map((n) => readBroadcast.options(on(n)).remote({ ref })));
      const s = (performance.now() - t) / 1000;
      if (out.some(([last]) => last !== i + 1)) throw new Error('a node read the wrong contents');
      return s;
    };
    for (let i = 0; i < 5; i++) {
      const s = await round(i);
      if (i > 0) {
        times.push(s * 1000);
        rates.push((3 * size) / GB / s);
      }
      await settle();
    }
    log('broadcast_256mib_to_3_nodes', { ...summarize(times, 'ms'), note: 'wall time from submitting three reads (one task per node) until all returned' });
    log('broadcast_256mib_to_3_nodes_gigabytes', { ...summarize(rates, 'GB/s'), note: '3 × 256 MiB delivered per wall second, all from the head node' });
  } finally {
    await ray.shutdown();
    await cluster.shutdown();
  }
}

/** Sections in the shape of bench/core.ts: [name, run]. Each starts and stops its own cluster; bench/cluster.ts runs them. */
export const SECTIONS: Array<[string, (log: Log, metrics: Record<string, Metric>) => Promise<void>]> = [
  ['cross_node_transfer_1gib', crossNode],
  ['broadcast_256mib_to_3_nodes', broadcast],
];
