import { PLACERS, type NodeCapacity } from '../../src/internal/placement/strategies';
import { bundleResources, groupOf, inPlacementGroup } from '../../src/internal/placement/resource-names';
import { BundleTable } from '../../src/internal/raylet/bundles';

const node = (nodeId: string, cpu: number, free = cpu, extra: Record<string, number> = {}): NodeCapacity => ({
  nodeId,
  total: { CPU: cpu, ...extra },
  available: { CPU: free, ...extra },
});

describe('bundle placement strategies', () => {
  const three = [node('a', 2), node('b', 4), node('c', 1)];

  test('PACK puts every bundle on one node when one has room, and spills over when none has', () => {
    expect(PLACERS.PACK.place([{ CPU: 1 }, { CPU: 1 }], three, [undefined, undefined])).toEqual({ ok: true, nodes: ['a', 'a'] });
    const r = PLACERS.PACK.place([{ CPU: 2 }, { CPU: 2 }, { CPU: 2 }], three, [undefined, undefined, undefined]);
    expect(r.ok && r.nodes).toEqual(['a', 'b', 'b']);
  });

  test('SPREAD uses distinct nodes while it can, then shares them', () => {
    expect(PLACERS.SPREAD.place([{ CPU: 1 }, { CPU: 1 }, { CPU: 1 }], three, [undefined, undefined, undefined])).toEqual({ ok: true, nodes: ['a', 'b', 'c'] });
    const r = PLACERS.SPREAD.place([{ CPU: 1 }, { CPU: 1 }], [node('a', 4)], [undefined, undefined]);
    expect(r).toEqual({ ok: true, nodes: ['a', 'a'] });
  });

  test('STRICT_PACK needs one node for all bundles; infeasible when no node is that large', () => {
    expect(PLACERS.STRICT_PACK.place([{ CPU: 2 }, { CPU: 2 }], three, [undefined, undefined])).toEqual({ ok: true, nodes: ['b', 'b'] });
    const r = PLACERS.STRICT_PACK.place([{ CPU: 3 }, { CPU: 2 }], three, [undefined, undefined]);
    expect(r).toMatchObject({ ok: false, infeasible: true });
    const busy = PLACERS.STRICT_PACK.place([{ CPU: 2 }, { CPU: 2 }], [node('b', 4, 1)], [undefined, undefined]);
    expect(busy).toMatchObject({ ok: false, infeasible: false });
  });

  test('STRICT_SPREAD puts each bundle on its own node, searching past a greedy dead end', () => {
    // greedy order would give the big bundle's only node to a small one
    const nodes = [node('small1', 1), node('big', 4), node('small2', 1)];
    const r = PLACERS.STRICT_SPREAD.place([{ CPU: 1 }, { CPU: 1 }, { CPU: 4 }], nodes, [undefined, undefined, undefined]);
    expect(r).toEqual({ ok: true, nodes: ['small1', 'small2', 'big'] });
    expect(PLACERS.STRICT_SPREAD.place([{ CPU: 1 }, { CPU: 1 }], [node('a', 8)], [undefined, undefined])).toMatchObject({
      ok: false,
      infeasible: true,
      reason: expect.stringMatching(/needs 2 nodes \(one per bundle\), but the cluster has 1 alive/),
    });
  });

  test('bundles already placed stay; the others avoid their nodes under STRICT_SPREAD', () => {
    const r = PLACERS.STRICT_SPREAD.place([{ CPU: 1 }, { CPU: 1 }], three, ['a', undefined]);
    expect(r.ok && r.nodes[0]).toBe('a');
    expect(r.ok && r.nodes[1]).not.toBe('a');
  });

  test('a bundle no node can hold is infeasible, naming the bundle', () => {
    expect(PLACERS.PACK.place([{ CPU: 1 }, { GPU: 1 }], three, [undefined, undefined])).toMatchObject({
      ok: false,
      infeasible: true,
      reason: expect.stringMatching(/^bundle 1 \{GPU: 1\} does not fit on any node/),
    });
  });
});

describe('placement group resource names', () => {
  test("bundle resources and requests are formatted as Ray's", () => {
    expect(bundleResources({ CPU: 1, GPU: 0.5 }, 'abc', 1)).toEqual({
      CPU_group_1_abc: 1,
      CPU_group_abc: 1,
      GPU_group_1_abc: 0.5,
      GPU_group_abc: 0.5,
      bundle_group_1_abc: 1000,
      bundle_group_abc: 1000,
    });
    expect(inPlacementGroup({ CPU: 1 }, 'abc', 0)).toEqual({ CPU_group_abc: 1, CPU_group_0_abc: 1 });
    expect(inPlacementGroup({ CPU: 1 }, 'abc', -1)).toEqual({ CPU_group_abc: 1 });
    expect(inPlacementGroup({}, 'abc', 2)).toEqual({ bundle_group_abc: 0.001, bundle_group_2_abc: 0.001 });
    expect(groupOf({ CPU_group_0_abc: 1 })).toBe('abc');
    expect(groupOf({ CPU: 1, custom_thing: 2 })).toBeUndefined();
  });
});

describe("a node manager's bundle table", () => {
  test('prepare reserves all or nothing, commit adds group resources, release gives everything back', () => {
    const total: Record<string, number> = { CPU: 4 };
    const available: Record<string, number> = { CPU: 4 };
    const t = new BundleTable(total, available);
    expect(t.prepare('ab', [{ index: 0, resources: { CPU: 3 } }, { index: 1, resources: { CPU: 2 } }])).toBe(false);
    expect(available).toEqual({ CPU: 4 });
    expect(t.prepare('ab', [{ index: 0, resources: { CPU: 1 } }, { index: 1, resources: { CPU: 2 } }])).toBe(true);
    expect(available.CPU).toBe(1);
    expect(t.commit('ab')).toBe(true);
    expect(total).toMatchObject({ CPU: 4, CPU_group_ab: 3, CPU_group_0_ab: 1, CPU_group_1_ab: 2 });
    // give back bundle 1 alone: the wildcard keeps bundle 0's part
    t.release('ab', [1], false, 'test');
    expect(total).toMatchObject({ CPU_group_ab: 1, CPU_group_0_ab: 1 });
    expect(total.CPU_group_1_ab).toBeUndefined();
    expect(available.CPU).toBe(3);
    t.release('ab', undefined, true, 'removed for the test');
    expect(total).toEqual({ CPU: 4 });
    expect(available).toEqual({ CPU: 4 });
    expect(t.removedReason({ CPU_group_ab: 1 })).toBe('removed for the test');
    expect(t.prepare('ab', [{ index: 0, resources: { CPU: 1 } }])).toBe(false);
  });
});
