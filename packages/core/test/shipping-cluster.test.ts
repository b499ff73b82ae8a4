/**
 * Code shipped by value runs on another node of a cluster: the node has
 * only the source text, never imports the test file.
 */
import * as ray from '@tsray/core';
import { callShipped } from './fixtures/tsray-lib/src/index';
import { startCluster, stopCluster } from './helpers/cluster';

let cluster: ray.Cluster;
let other: ray.ClusterNode;

beforeAll(async () => {
  ({ cluster, nodes: [other] } = await startCluster({ numCpus: 1 }, [{ numCpus: 1, resources: { other: 1 } }]));
}, 60_000);
afterAll(() => stopCluster(cluster));

test('an inline function, an inline actor class and a shippable run on another node', async () => {
  const where = ray.remote({ resources: { other: 0.1 } }, (x: number) => {
    const core = require('@tsray/core') as typeof ray;
    return { node: core.getRuntimeContext().nodeId, doubled: x * 2 };
  });
  expect(await ray.get(where.remote(21))).toEqual({ node: other.nodeId, doubled: 42 });

  const Tally = ray.remote(
    { resources: { other: 0.1 } },
    class Tally {
      n = 0;
      add(k: number): number {
        return (this.n += k);
      }
    },
  );
  const t = Tally.remote();
  await ray.get(t.add.remote(2));
  expect(await ray.get(t.add.remote(3))).toBe(5);

  const upper = ray.util.shippable((s: string) => `${s.toUpperCase()} on ${(require('@tsray/core') as typeof ray).getRuntimeContext().nodeId}`, { what: 'test' });
  expect(await ray.get(callShipped.options({ resources: { other: 0.1 } }).remote(upper, 'ok'))).toBe(`OK on ${other.nodeId}`);
});
