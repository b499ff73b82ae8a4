/**
 * Where the bundles of a placement group go, by strategy (Ray's GCS bundle
 * scheduling policies). Each strategy is a {@link BundlePlacer}: given the
 * bundles and the nodes' resources (total and free), it picks a node for
 * every bundle that has none yet, or says why it cannot now — and whether
 * it never can with the nodes there are (infeasible), or must wait for
 * resources to free up.
 * @internal
 */
import type { Resources } from '../protocol/messages';
import { add, describe, fits, subtract } from '../raylet/resources';

/** How bundles are spread over nodes (see the public PlacementStrategy type). */
export type PlacementStrategy = 'PACK' | 'SPREAD' | 'STRICT_PACK' | 'STRICT_SPREAD';

/** The strategies, in the order documentation lists them. */
export const STRATEGIES: readonly PlacementStrategy[] = ['PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD'];

/** A live node, as placement sees it. */
export interface NodeCapacity {
  nodeId: string;
  total: Resources;
  available: Resources;
}

/** A node for every bundle, or why not. */
export type PlacementResult = { ok: true; nodes: string[] } | { ok: false; infeasible: boolean; reason: string };

/** A placement strategy. */
export interface BundlePlacer {
  readonly strategy: PlacementStrategy;
  /**
   * Picks nodes for the bundles whose `placed` entry is undefined; bundles
   * already placed (kept from before a node died) stay where they are.
   */
  place(bundles: readonly Resources[], nodes: readonly NodeCapacity[], placed: ReadonlyArray<string | undefined>): PlacementResult;
}

const sum = (bundles: readonly Resources[]): Resources => {
  const out: Resources = {};
  for (const b of bundles) add(out, b);
  return out;
};

/**
 * Free resources of each node, copied so a placement can count what it
 * takes: only the resources the bundles ask for (a node's resources include
 * those of every placement group bundle it holds).
 */
function freeOf(nodes: readonly NodeCapacity[], bundles: readonly Resources[]): Map<string, Resources> {
  const names = new Set<string>();
  for (const b of bundles) for (const k in b) names.add(k);
  return new Map(
    nodes.map((n) => {
      const free: Resources = {};
      for (const k of names) free[k] = n.available[k] ?? 0;
      return [n.nodeId, free];
    }),
  );
}

/** Why bundles no node can ever hold make the group infeasible, or undefined. */
function bundleNeverFits(bundles: readonly Resources[], nodes: readonly NodeCapacity[]): PlacementResult | undefined {
  for (let i = 0; i < bundles.length; i++) {
    const b = bundles[i] as Resources;
    if (!nodes.some((n) => fits(b, n.total))) {
      return {
        ok: false,
        infeasible: true,
        reason: `bundle ${i} ${describe(b)} does not fit on any node of the cluster (${nodes.length} alive); it waits until a node with those resources joins`,
      };
    }
  }
  return undefined;
}

const WAIT_REASON = 'the resources it needs are in use; it waits until they are free';

/** Best effort on as few nodes as possible: all on one node when one has room, else fill nodes in turn. */
class Pack implements BundlePlacer {
  readonly strategy: PlacementStrategy = 'PACK';
  place(bundles: readonly Resources[], nodes: readonly NodeCapacity[], placed: ReadonlyArray<string | undefined>): PlacementResult {
    const never = bundleNeverFits(bundles, nodes);
    if (never) return never;
    const todo = bundles.map((_, i) => i).filter((i) => placed[i] === undefined);
    const free = freeOf(nodes, bundles);
    const used = new Set(placed.filter((x): x is string => x !== undefined));
    // one node for all of them: a node already used by the group first
    const need = sum(todo.map((i) => bundles[i] as Resources));
    const order = [...nodes].sort((a, b) => Number(used.has(b.nodeId)) - Number(used.has(a.nodeId)));
    const one = order.find((n) => fits(need, free.get(n.nodeId) as Resources));
    if (one) return { ok: true, nodes: bundles.map((_, i) => placed[i] ?? one.nodeId) };
    const out = [...placed];
    for (const i of todo) {
      const b = bundles[i] as Resources;
      const n = order.find((x) => used.has(x.nodeId) && fits(b, free.get(x.nodeId) as Resources)) ?? order.find((x) => fits(b, free.get(x.nodeId) as Resources));
      if (!n) return { ok: false, infeasible: false, reason: WAIT_REASON };
      subtract(free.get(n.nodeId) as Resources, b);
      used.add(n.nodeId);
      out[i] = n.nodeId;
    }
    return { ok: true, nodes: out as string[] };
  }
}

/** Best effort on distinct nodes: each bundle on the node with fewest bundles of the group that has room. */
class Spread implements BundlePlacer {
  readonly strategy: PlacementStrategy = 'SPREAD';
  place(bundles: readonly Resources[], nodes: readonly NodeCapacity[], placed: ReadonlyArray<string | undefined>): PlacementResult {
    const never = bundleNeverFits(bundles, nodes);
    if (never) return never;
    const free = freeOf(nodes, bundles);
    const count = new Map<string, number>(nodes.map((n) => [n.nodeId, 0]));
    for (const p of placed) if (p !== undefined) count.set(p, (count.get(p) ?? 0) + 1);
    const out = [...placed];
    for (let i = 0; i < bundles.length; i++) {
      if (out[i] !== undefined) continue;
      const b = bundles[i] as Resources;
      let best: NodeCapacity | undefined;
      for (const n of nodes) {
        if (!fits(b, free.get(n.nodeId) as Resources)) continue;
        if (!best || (count.get(n.nodeId) as number) < (count.get(best.nodeId) as number)) best = n;
      }
      if (!best) return { ok: false, infeasible: false, reason: WAIT_REASON };
      subtract(free.get(best.nodeId) as Resources, b);
      count.set(best.nodeId, (count.get(best.nodeId) as number) + 1);
      out[i] = best.nodeId;
    }
    return { ok: true, nodes: out as string[] };
  }
}

/** Every bundle on one node. */
class StrictPack implements BundlePlacer {
  readonly strategy: PlacementStrategy = 'STRICT_PACK';
  place(bundles: readonly Resources[], nodes: readonly NodeCapacity[], placed: ReadonlyArray<string | undefined>): PlacementResult {
    const all = sum(bundles);
    const pinned = placed.find((p) => p !== undefined);
    const candidates = pinned !== undefined ? nodes.filter((n) => n.nodeId === pinned) : nodes;
    if (!candidates.some((n) => fits(all, n.total))) {
      return {
        ok: false,
        infeasible: true,
        reason: `STRICT_PACK needs all its bundles on one node, ${describe(all)} together, and no node of the cluster has that much; it waits until such a node joins`,
      };
    }
    const todo = sum(bundles.filter((_, i) => placed[i] === undefined));
    const n = candidates.find((x) => fits(todo, x.available));
    if (!n) return { ok: false, infeasible: false, reason: WAIT_REASON };
    return { ok: true, nodes: bundles.map(() => n.nodeId) };
  }
}

/** Every bundle on a node of its own. */
class StrictSpread implements BundlePlacer {
  readonly strategy: PlacementStrategy = 'STRICT_SPREAD';
  place(bundles: readonly Resources[], nodes: readonly NodeCapacity[], placed: ReadonlyArray<string | undefined>): PlacementResult {
    const never = bundleNeverFits(bundles, nodes);
    if (never) return never;
    if (bundles.length > nodes.length) {
      return {
        ok: false,
        infeasible: true,
        reason: `STRICT_SPREAD needs ${bundles.length} nodes (one per bundle), but the cluster has ${nodes.length} alive; it waits until more nodes join`,
      };
    }
    const taken = new Set(placed.filter((x): x is string => x !== undefined));
    const todo = bundles.map((_, i) => i).filter((i) => placed[i] === undefined);
    // the largest bundles choose first; a small search finds a matching when greedy would not
    todo.sort((a, b) => Object.values(bundles[b] as Resources).reduce((s, v) => s + v, 0) - Object.values(bundles[a] as Resources).reduce((s, v) => s + v, 0));
    const out = [...placed];
    const everFits = (i: number): NodeCapacity[] => nodes.filter((n) => fits(bundles[i] as Resources, n.total));
    let budget = 10_000;
    const assign = (k: number): boolean => {
      if (k === todo.length) return true;
      if (--budget < 0) return false;
      const i = todo[k] as number;
      for (const n of nodes) {
        if (taken.has(n.nodeId) || !fits(bundles[i] as Resources, n.available)) continue;
        taken.add(n.nodeId);
        out[i] = n.nodeId;
        if (assign(k + 1)) return true;
        taken.delete(n.nodeId);
        out[i] = undefined;
      }
      return false;
    };
    if (assign(0)) return { ok: true, nodes: out as string[] };
    // could it ever work with every node free?
    const distinct = new Set<string>();
    for (const i of todo) for (const n of everFits(i)) distinct.add(n.nodeId);
    if (distinct.size < todo.length) {
      return {
        ok: false,
        infeasible: true,
        reason: `STRICT_SPREAD needs ${todo.length} distinct nodes that can hold its bundles, but only ${distinct.size} can; it waits until more nodes join`,
      };
    }
    return { ok: false, infeasible: false, reason: WAIT_REASON };
  }
}

/** The placer of each strategy. */
export const PLACERS: Readonly<Record<PlacementStrategy, BundlePlacer>> = {
  PACK: new Pack(),
  SPREAD: new Spread(),
  STRICT_PACK: new StrictPack(),
  STRICT_SPREAD: new StrictSpread(),
};
