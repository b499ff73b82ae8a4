import * as ray from '@tsray/core';

/** A `ray.Cluster` with a driver connected to it (from {@link startCluster}). */
export interface TestCluster<N extends unknown[]> {
  cluster: ray.Cluster;
  /** the added nodes, in the order given */
  nodes: { [K in keyof N]: ray.ClusterNode };
}

/**
 * Starts a head node with `head`, adds a node for each entry of `nodes`,
 * waits until the head sees them all, and connects this process as a driver.
 */
export async function startCluster<N extends ray.ClusterNodeOptions[]>(head: ray.ClusterNodeOptions, nodes: [...N], init: Omit<ray.InitOptions, 'address'> = {}): Promise<TestCluster<N>> {
  const cluster = await ray.Cluster.start({ head });
  const added: ray.ClusterNode[] = [];
  for (const n of nodes) added.push(await cluster.addNode(n));
  await cluster.waitForNodes();
  await ray.init({ logToDriver: false, ...init, address: cluster.address });
  return { cluster, nodes: added as TestCluster<N>['nodes'] };
}

/** Disconnects the driver and stops the cluster (for afterAll). */
export async function stopCluster(cluster: ray.Cluster | undefined): Promise<void> {
  await ray.shutdown();
  await cluster?.shutdown();
}
