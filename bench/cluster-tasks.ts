/**
 * Ray's multi_client_tasks_async on a 3-node local cluster: one client actor
 * per node (SPREAD), each submitting batches of trivial tasks and waiting
 * for them; the figure is tasks per second over all clients.
 */
import * as ray from '@tsray/core';
import { timeit, type Metric } from './harness';

/** How a section reports a metric. */
export type Log = (name: string, m: Metric) => void;

export const noop = ray.remote(function small_value(): number {
  return 0;
});

/** A client: submits `n` tasks at once and waits for them. */
export class Client {
  async batch(n: number): Promise<number> {
    await ray.get(Array.from({ length: n }, () => noop.remote()));
    return n;
  }
}
export const ClientActor = ray.remote({ numCpus: 0 }, Client);

/** multi_client_tasks_async: 3 nodes with 2 CPUs each, 3 clients. */
export async function multiClientTasksAsync(log: Log): Promise<void> {
  const cluster = await ray.Cluster.start({ head: { numCpus: 2 } });
  try {
    await cluster.addNode({ numCpus: 2 });
    await cluster.addNode({ numCpus: 2 });
    await cluster.waitForNodes();
    await ray.init({ address: cluster.address, logToDriver: true });
    const clients = Array.from({ length: 3 }, () => ClientActor.options({ scheduling: 'SPREAD' }).remote());
    await ray.get(clients.map((c) => c.batch.remote(100)));
    const n = 1000;
    const m = await timeit(() => ray.get(clients.map((c) => c.batch.remote(n))), n * clients.length);
    log('multi_client_tasks_async', { ...m, ray: '21,230/s', target: '≥ 10,000/s', note: '3 nodes × 2 CPUs on this machine, one client actor per node' });
    await ray.shutdown();
  } finally {
    await cluster.shutdown();
  }
}
