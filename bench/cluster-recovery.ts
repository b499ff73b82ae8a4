/**
 * Recovery from a node crash: seconds from SIGKILLing a node to its actor
 * answering again on another node (detection by missed heartbeats, the
 * restart elsewhere, the call retried there). Issue 3's target: ≤ 5 s.
 *
 * `nodeKillToActorAnswer` is a section in the shape of bench/core.ts's,
 * given the `ray.Cluster` the driver is connected to (bench/cluster.ts runs
 * it).
 */
import * as ray from '@tsray/core';
import { summarize, type Metric } from './harness';

type Log = (name: string, m: Metric) => void;

/** An actor that says where it runs. */
export class Locator {
  node(): string {
    return ray.getRuntimeContext().nodeId;
  }
}
const LocatorActor = ray.remote(Locator);

const ROUNDS = 3;

/**
 * Per round: a fresh node, an actor placed there (maxRestarts 1, a call in
 * flight retried once), the node SIGKILLed, and the time until a call made
 * right after the kill returns from the restarted actor on another node.
 */
export async function nodeKillToActorAnswer(log: Log, _metrics: Record<string, Metric>, cluster: ray.Cluster): Promise<void> {
  const rounds: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const node = await cluster.addNode({ numCpus: 1 });
    await cluster.waitForNodes();
    const actor = LocatorActor.options({ numCpus: 0, maxRestarts: 1, maxTaskRetries: 1, scheduling: { nodeId: node.nodeId, soft: true } }).remote();
    const first = await ray.get(actor.node.remote());
    if (first !== node.nodeId) throw new Error(`round ${i}: the actor started on ${first}, not on the new node ${node.nodeId}`);
    const t0 = performance.now();
    await cluster.removeNode(node);
    const where = await ray.get(actor.node.remote(), { timeoutMs: 60_000 });
    rounds.push((performance.now() - t0) / 1000);
    if (where === node.nodeId) throw new Error(`round ${i}: the actor answered from the killed node`);
    ray.kill(actor);
  }
  log('node_kill_to_actor_answer', {
    ...summarize(rounds, 's'),
    target: '≤ 5 s',
    note: `median of ${ROUNDS} rounds; node timeout ${process.env.TSRAY_NODE_TIMEOUT_MS ?? 3000} ms (TSRAY_NODE_TIMEOUT_MS), heartbeat 250 ms`,
  });
}
