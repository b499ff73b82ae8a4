/**
 * The driver of bench/cluster-curve.ts, run inside the head's host (a
 * network namespace): joins the cluster at argv[2] (HOST:PORT, token in
 * TSRAY_CLUSTER_TOKEN), times 1 GiB transfers from the other node to this
 * one, and prints "RESULT {rounds}" (GB/s per timed round).
 */
import * as ray from '@tsray/core';
import { transferRounds } from './cluster-transfer';

async function main(): Promise<void> {
  await ray.init({ address: process.argv[2] as string, logToDriver: true });
  try {
    const other = (await ray.nodes()).find((n) => n.alive && !n.isHead);
    if (!other) throw new Error('the cluster has no node besides the head');
    const rounds = await transferRounds({ scheduling: { nodeId: other.nodeId } });
    console.log(`RESULT ${JSON.stringify({ rounds })}`);
  } finally {
    await ray.shutdown();
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
