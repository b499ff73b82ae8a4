/**
 * A node manager's placement group bundles (Ray's raylet placement group
 * resource manager). Prepare takes a bundle's resources from the node's free
 * resources; commit turns them into the group's resources
 * (`R_group_<i>_<pgid>`, `R_group_<pgid>`, see resource-names.ts), which
 * leases then ask for like any other resource; release gives the original
 * resources back and drops the group's. Groups removed for good are
 * remembered, so requests for them fail instead of waiting forever.
 * @internal
 */
import type { Bundle, Resources } from '../protocol/messages';
import { bundleResources, groupOf } from '../placement/resource-names';
import { add, fits, subtract } from './resources';

interface HeldBundle {
  resources: Resources;
  committed: boolean;
}

/** Removed groups remembered (oldest forgotten first). */
const REMOVED_KEPT = 10_000;

/** See the module comment. `total` and `available` are the node's, changed in place. */
export class BundleTable {
  private readonly groups = new Map<string, Map<number, HeldBundle>>();
  private readonly removed = new Map<string, string>();

  constructor(
    private readonly total: Resources,
    private readonly available: Resources,
  ) {}

  /** Reserves the bundles (all or none); false when the node does not have them free, or the group was removed. */
  prepare(pgId: string, bundles: readonly Bundle[]): boolean {
    if (this.removed.has(pgId)) return false;
    const need: Resources = {};
    for (const b of bundles) add(need, b.resources);
    if (!fits(need, this.available)) return false;
    let held = this.groups.get(pgId);
    if (!held) this.groups.set(pgId, (held = new Map()));
    for (const b of bundles) {
      if (held.has(b.index)) continue; // a repeated prepare
      subtract(this.available, b.resources);
      held.set(b.index, { resources: b.resources, committed: false });
    }
    return true;
  }

  /** Commits the group's prepared bundles; false when none are prepared here. */
  commit(pgId: string): boolean {
    const held = this.groups.get(pgId);
    if (!held) return false;
    for (const [index, b] of held) {
      if (b.committed) continue;
      b.committed = true;
      const extra = bundleResources(b.resources, pgId, index);
      add(this.total, extra);
      add(this.available, extra);
    }
    return true;
  }

  /**
   * Gives back the group's bundles here (only `indexes`, if given): their
   * resources return to the node, the group's resources go. With `removed`,
   * the group is gone for good. Returns whether the node held any.
   */
  release(pgId: string, indexes: readonly number[] | undefined, removed: boolean, reason: string): boolean {
    if (removed) {
      this.removed.set(pgId, reason);
      if (this.removed.size > REMOVED_KEPT) this.removed.delete(this.removed.keys().next().value as string);
    }
    const held = this.groups.get(pgId);
    if (!held) return false;
    for (const [index, b] of [...held]) {
      if (indexes && !indexes.includes(index)) continue;
      held.delete(index);
      if (b.committed) {
        // the wildcard names are shared with the group's other committed bundles here: those keep their part
        const shared = [...held.values()].some((x) => x.committed);
        for (const [k, v] of Object.entries(bundleResources(b.resources, pgId, index))) {
          if (shared && !k.includes(`_group_${index}_`) && (this.total[k] ?? 0) - v > 1e-9) {
            subtract(this.total, { [k]: v });
            subtract(this.available, { [k]: v });
          } else {
            delete this.total[k];
            delete this.available[k];
          }
        }
      }
      add(this.available, b.resources);
    }
    if (held.size === 0) this.groups.delete(pgId);
    return true;
  }

  /** Why requests for a group fail (it was removed), or undefined. */
  removedReason(resources: Resources): string | undefined {
    const g = groupOf(resources);
    return g === undefined ? undefined : this.removed.get(g);
  }
}
