/**
 * The optimizer: the rules, in the order they run.
 * @internal
 */
import type { LogicalOp } from '../plan';
import { fuseAggregate } from './fuse-aggregate';
import { fuseMaps } from './fuse-maps';
import { limitPushdown } from './limit-pushdown';
import { projectionPushdown } from './projection-pushdown';
import type { Rule } from './rule';

/** The rules, in order: pushdowns first, then fusion (maps into reads, then aggregations' map side into what makes their blocks). */
export const RULES: readonly Rule[] = [limitPushdown, projectionPushdown, fuseMaps, fuseAggregate];

/** The plan after every rule. */
export function optimize(plan: LogicalOp, rules: readonly Rule[] = RULES): LogicalOp {
  return rules.reduce((p, r) => r.apply(p), plan);
}
