/**
 * Names of placement group resources, as Ray formats them. A committed bundle
 * `i` of group `<pgid>` adds, on its node, each of its resources `R` twice:
 * `R_group_<i>_<pgid>` (that bundle) and `R_group_<pgid>` (any bundle of the
 * group), plus `bundle_group_<i>_<pgid>` / `bundle_group_<pgid>` (1000 each)
 * so that a task asking for nothing can still be placed in a bundle. A task
 * in bundle `i` asks for both names of each resource; a task in any bundle
 * asks for the wildcard names only.
 * @internal
 */
import type { Resources } from '../protocol/messages';

/** Amount of the `bundle` marker resource each committed bundle provides. */
export const BUNDLE_MARKER_TOTAL = 1000;
/** Amount of the `bundle` marker a task or actor with no other resources asks for. */
export const BUNDLE_MARKER_REQUEST = 0.001;
const MARKER = 'bundle';

/** `R_group_<pgid>` (index -1) or `R_group_<index>_<pgid>`. */
export function formatGroupResource(name: string, pgId: string, index: number): string {
  return index >= 0 ? `${name}_group_${index}_${pgId}` : `${name}_group_${pgId}`;
}

/** The resource only bundle `index` of group `pgId` has: its node's resources include it once the bundle is committed there. */
export function bundleMarker(pgId: string, index: number): string {
  return formatGroupResource(MARKER, pgId, index);
}

/** The resources a committed bundle adds to its node. */
export function bundleResources(bundle: Resources, pgId: string, index: number): Resources {
  const out: Resources = {};
  for (const [k, v] of Object.entries(bundle)) {
    if (v <= 0) continue;
    out[formatGroupResource(k, pgId, index)] = v;
    out[formatGroupResource(k, pgId, -1)] = v;
  }
  out[formatGroupResource(MARKER, pgId, index)] = BUNDLE_MARKER_TOTAL;
  out[formatGroupResource(MARKER, pgId, -1)] = BUNDLE_MARKER_TOTAL;
  return out;
}

/**
 * What a task or actor asking for `request` asks for inside bundle `index`
 * of group `pgId` (-1: any bundle), as Ray's AddPlacementGroupConstraint.
 */
export function inPlacementGroup(request: Resources, pgId: string, index: number): Resources {
  const asked = Object.entries(request).filter(([, v]) => v > 0);
  const base: Resources = asked.length > 0 ? Object.fromEntries(asked) : { [MARKER]: BUNDLE_MARKER_REQUEST };
  const out: Resources = {};
  for (const [k, v] of Object.entries(base)) {
    out[formatGroupResource(k, pgId, -1)] = v;
    if (index >= 0) out[formatGroupResource(k, pgId, index)] = v;
  }
  return out;
}

const GROUP_RE = /_group_(?:\d+_)?([0-9a-f]+)$/;

/** The placement group a resource name belongs to, or undefined. */
export function groupOfResource(name: string): string | undefined {
  return GROUP_RE.exec(name)?.[1];
}

/** The placement group a request's resources ask for, or undefined. */
export function groupOf(resources: Resources): string | undefined {
  for (const k in resources) {
    const g = groupOfResource(k);
    if (g !== undefined) return g;
  }
  return undefined;
}

/** GPUs a request holds: `GPU`, or the GPUs of its placement group bundle (the wildcard name). */
export function gpuAmount(resources: Resources): number {
  if (resources.GPU !== undefined) return resources.GPU;
  for (const k in resources) if (k.startsWith('GPU_group_') && !/^GPU_group_\d+_/.test(k)) return resources[k] as number;
  return 0;
}

/** The CPU part of a request: `CPU` and its placement group names (a task blocked in get() lends them). */
export function cpuPart(resources: Resources): Resources {
  const out: Resources = {};
  for (const k in resources) if (k === 'CPU' || k.startsWith('CPU_group_')) out[k] = resources[k] as number;
  return out;
}
