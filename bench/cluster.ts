/**
 * Cluster benchmarks (issue 3): placement groups, and (added by the
 * sections that follow it) tasks across nodes, cross-node transfers and
 * recovery times. Run with `npm run bench -- cluster`; writes
 * bench/results/cluster.json in the core bench's format. Each section is one
 * entry of SECTIONS; `npm run bench -- cluster name ...` runs some of them.
 */
import * as os from 'node:os';
import * as ray from '@tsray/core';
import { collect, report, runMeta, timeit, type Log, type Metric } from './harness';
import { multiClientTasksAsync } from './cluster-tasks';
import { nodeKillToActorAnswer } from './cluster-recovery';
import { SECTIONS as TRANSFER } from './cluster-transfer';
import { crossNodeCurve } from './cluster-curve';

/** What a section gets: where to log its metrics, and the metrics so far. */
interface SectionContext {
  log: Log;
  metrics: Record<string, Metric>;
}

/** A benchmark section: sets up what it needs (a local cluster, a ray.Cluster) and tears it down. */
interface Section {
  name: string;
  run(ctx: SectionContext): Promise<void>;
}

/**
 * Ray's placement_group_create/removal (release/microbenchmark): 100 groups
 * of one `{custom: 0.001}` bundle created, all awaited ready, all removed.
 */
const placementGroupCreateRemoval: Section = {
  name: 'placement_group_create_removal',
  async run({ log }) {
    await ray.init({ numCpus: 4, resources: { custom: 100 }, logToDriver: true });
    try {
      const n = 100;
      const m = await timeit(async () => {
        const pgs = Array.from({ length: n }, () => ray.placementGroup([{ custom: 0.001 }]));
        await Promise.all(pgs.map((pg) => pg.ready()));
        await Promise.all(pgs.map((pg) => ray.removePlacementGroup(pg)));
      }, n);
      log('placement_group_create_removal', { ...m, ray: '765/s', target: '≥ 1,000/s', note: '100 groups of one {custom: 0.001} bundle: created, ready, removed' });
    } finally {
      await ray.shutdown();
    }
  },
};

/** Ray's multi_client_tasks_async on a 3-node local cluster (bench/cluster-tasks.ts). */
const multiClientTasks: Section = {
  name: 'multi_client_tasks_async',
  run: ({ log }) => multiClientTasksAsync(log),
};

/** Seconds from SIGKILLing a node to its actor answering from another node (bench/cluster-recovery.ts). */
const nodeKill: Section = {
  name: 'node_kill_to_actor_answer',
  async run({ log, metrics }) {
    const cluster = await ray.Cluster.start({ head: { numCpus: 1 } });
    try {
      await ray.init({ address: cluster.address, logToDriver: false });
      await nodeKillToActorAnswer(log, metrics, cluster);
    } finally {
      await ray.shutdown();
      await cluster.shutdown();
    }
  },
};

/** The sections, in order. Add a section by appending it here. */
const SECTIONS: Section[] = [
  placementGroupCreateRemoval,
  multiClientTasks,
  // cross-node transfers (bench/cluster-transfer.ts)
  ...TRANSFER.map(([name, section]): Section => ({ name, run: ({ log, metrics }) => section(log, metrics) })),
  // CURVE-encrypted transfer between hosts (bench/cluster-curve.ts)
  { name: 'cross_node_transfer_1gib_curve', run: ({ log }) => crossNodeCurve(log) },
  nodeKill,
];

/** The names of the sections, in order (`npm run bench -- cluster <name> ...` runs some). */
export const SECTION_NAMES: readonly string[] = SECTIONS.map((s) => s.name);

/** Runs the sections in `only` (default: all) and writes the results file. */
export async function run(only?: string[]): Promise<void> {
  const cpus = os.availableParallelism();
  const { metrics, log } = collect();
  console.error(`tsray cluster benchmark on ${cpus} CPUs, Node ${process.version}`);
  for (const s of SECTIONS) if (!only || only.includes(s.name)) await s.run({ log, metrics });
  report(only ? `cluster-${only.join('+')}` : 'cluster', metrics, runMeta());
}
