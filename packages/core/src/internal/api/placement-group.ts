/**
 * Placement groups: reserve bundles of resources across nodes atomically
 * (gang scheduling), then run tasks and actors inside them
 * (`.options({ placementGroup, placementGroupBundleIndex })`).
 */
import { PlacementGroupNotFoundError, PlacementGroupRemovedError, RayError } from '../../errors';
import { randomId } from '../ids';
import { MT, type PlacementGroupInfo } from '../protocol/messages';
import { STRATEGIES, type PlacementStrategy } from '../placement/strategies';
import { runtime, type Runtime } from './context';
import { describeValue } from './options';

export type { PlacementStrategy };

/** Lifecycle of a placement group: waiting for resources, reserved, or removed. */
export type PlacementGroupState = 'PENDING' | 'CREATED' | 'REMOVED';

/** Options of {@link placementGroup}. */
export interface PlacementGroupOptions {
  /**
   * How bundles are spread over nodes: `'PACK'` (as few nodes as possible,
   * best effort), `'SPREAD'` (distinct nodes, best effort), `'STRICT_PACK'`
   * (all on one node), `'STRICT_SPREAD'` (each on a node of its own).
   * A strict strategy that cannot be met leaves the group pending.
   * @default 'PACK'
   */
  strategy?: PlacementStrategy;
  /** Name to find the group with `getPlacementGroup`; unique in the job's namespace. */
  name?: string;
  /**
   * `'detached'` groups outlive the job that created them until removed;
   * others are removed when their job ends.
   * @default 'non_detached'
   */
  lifetime?: 'detached' | 'non_detached';
}

/** A placement group as {@link placementGroupTable} reports it. */
export interface PlacementGroupTableEntry {
  placementGroupId: string;
  /** its name ('' without one) */
  name: string;
  namespace: string;
  strategy: PlacementStrategy;
  state: PlacementGroupState;
  /** the bundles, as created */
  bundles: Array<Record<string, number>>;
  /** node id of each bundle ('' while not placed) */
  bundlesToNodeId: string[];
  detached: boolean;
  /** the job that created it */
  jobId: string;
  /** while PENDING: why it waits; once REMOVED: why it was removed */
  reason: string | undefined;
}

/**
 * A placement group: bundles of resources reserved together. Made by
 * {@link placementGroup} or {@link getPlacementGroup}. Pass it to
 * `.options({ placementGroup })` of tasks and actors. It is plain data
 * (its id and bundles), so it may be passed to tasks as an argument.
 */
export class PlacementGroup {
  /** The group's id (hex), unique in the cluster. */
  readonly id: string;
  /** The bundles, as created. */
  readonly bundleSpecs: ReadonlyArray<Readonly<Record<string, number>>>;
  /** How its bundles are spread over nodes. */
  readonly strategy: PlacementStrategy;
  /** Its name, if it has one. */
  readonly name: string | undefined;
  /** @internal resolves when the head registered it; rejects if it refused (a name in use) */
  readonly #registered: Promise<void>;

  /** @internal made by placementGroup() and getPlacementGroup() */
  constructor(id: string, bundleSpecs: ReadonlyArray<Readonly<Record<string, number>>>, strategy: PlacementStrategy, name: string | undefined, registered: Promise<void>) {
    this.id = id;
    this.bundleSpecs = bundleSpecs;
    this.strategy = strategy;
    this.name = name;
    this.#registered = registered;
  }

  /** Number of bundles. */
  get bundleCount(): number {
    return this.bundleSpecs.length;
  }

  /**
   * Resolves once every bundle is reserved. A group that cannot be placed
   * yet keeps it waiting (see `placementGroupTable()` for why).
   * @throws PlacementGroupRemovedError when the group is (or gets) removed.
   * @throws RayError when the group could not be created (its name is in use).
   */
  async ready(): Promise<void> {
    await this.waitFor(undefined);
  }

  /**
   * Waits up to `timeoutMs` for the group to be ready: true if it is, false
   * if the time ran out first.
   * @throws PlacementGroupRemovedError when the group is (or gets) removed.
   * @throws RangeError for a negative or non-numeric `timeoutMs`.
   */
  async wait(timeoutMs: number): Promise<boolean> {
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      throw new RangeError(`wait() takes a timeout in milliseconds (a number >= 0), got ${describeValue(timeoutMs)}`);
    }
    return this.waitFor(timeoutMs);
  }

  private async waitFor(timeoutMs: number | undefined): Promise<boolean> {
    const rt = runtime('PlacementGroup.ready()');
    await this.#registered;
    try {
      const r = await rt.core.endpoint.call(rt.headAddress, { t: MT.WaitPlacementGroup, pgId: this.id, ...(timeoutMs !== undefined && Number.isFinite(timeoutMs) ? { timeoutMs } : {}) });
      return r.data === true;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'REMOVED' || code === 'NOT_FOUND') throw new PlacementGroupRemovedError(`${(e as Error).message}. Create a new placement group to reserve the resources again.`);
      throw e;
    }
  }

  /** `PlacementGroup(<id>)`. */
  toString(): string {
    return `PlacementGroup(${this.id})`;
  }
}

function checkBundles(bundles: unknown): Array<Record<string, number>> {
  if (!Array.isArray(bundles) || bundles.length === 0) {
    throw new TypeError(`placementGroup() takes a non-empty array of bundles like [{ CPU: 1 }, { CPU: 1, GPU: 1 }], got ${Array.isArray(bundles) ? 'an empty array' : describeValue(bundles)}`);
  }
  return bundles.map((b: unknown, i) => {
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new TypeError(`bundle ${i} must be an object of resource amounts like { CPU: 1 }, got ${describeValue(b)}`);
    const entries = Object.entries(b as Record<string, unknown>);
    if (entries.length === 0) throw new TypeError(`bundle ${i} is empty; every bundle needs at least one resource, like { CPU: 1 }`);
    const out: Record<string, number> = {};
    for (const [k, v] of entries) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`bundle ${i}: ${k} must be a non-negative number, got ${describeValue(v)}`);
      if (k.includes('_group_')) throw new TypeError(`bundle ${i}: '${k}' is a placement group resource name; bundles ask for plain resources like CPU, GPU or custom ones`);
      if (k === 'GPU' && v > 1 && !Number.isInteger(v)) throw new RangeError(`bundle ${i}: GPU above 1 must be a whole number, got ${v}`);
      out[k] = v;
    }
    if (Object.values(out).every((v) => v === 0)) throw new TypeError(`bundle ${i} asks for nothing (every amount is 0); give it at least one resource above 0`);
    return out;
  });
}

/**
 * Reserves `bundles` of resources on the cluster's nodes, all or none, by
 * `strategy` (Ray's `placement_group`). Returns at once; `await pg.ready()`
 * waits until every bundle is reserved. Tasks and actors then run inside it
 * with `.options({ placementGroup: pg, placementGroupBundleIndex })`.
 *
 * ```ts
 * const pg = ray.placementGroup([{ CPU: 1, GPU: 1 }, { CPU: 1 }], { strategy: 'STRICT_SPREAD' });
 * await pg.ready();
 * const ref = train.options({ placementGroup: pg, placementGroupBundleIndex: 0, numGpus: 1 }).remote();
 * await ray.removePlacementGroup(pg);
 * ```
 * A group that can never be placed with the nodes there are (a bundle no
 * node can hold, STRICT_PACK larger than any node, STRICT_SPREAD with more
 * bundles than nodes) stays PENDING with a reason and a warning, until
 * nodes join. Unless detached, it is removed when its job ends.
 *
 * @throws TypeError / RangeError for bad bundles or options, naming the problem.
 */
export function placementGroup(bundles: ReadonlyArray<Record<string, number>>, options?: PlacementGroupOptions): PlacementGroup {
  const specs = checkBundles(bundles);
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new TypeError(`placementGroup() options must be an object like { strategy: 'PACK' }, got ${describeValue(options)}`);
  }
  const o = (options ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'strategy' && k !== 'name' && k !== 'lifetime') throw new TypeError(`unknown placementGroup() option '${k}'; valid options: strategy, name, lifetime`);
  }
  const strategy = o.strategy ?? 'PACK';
  if (typeof strategy !== 'string' || !(STRATEGIES as readonly string[]).includes(strategy)) {
    throw new TypeError(`options.strategy must be one of ${STRATEGIES.map((x) => `'${x}'`).join(', ')}, got ${describeValue(strategy)}`);
  }
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0)) throw new TypeError(`options.name must be a non-empty string, got ${describeValue(o.name)}`);
  if (o.lifetime !== undefined && o.lifetime !== 'detached' && o.lifetime !== 'non_detached') {
    throw new TypeError(`options.lifetime must be 'detached' or 'non_detached', got ${describeValue(o.lifetime)}`);
  }
  const rt = runtime('placementGroup()');
  const id = randomId(14);
  const name = o.name as string | undefined;
  const registered = rt.core.endpoint
    .call(rt.headAddress, {
      t: MT.CreatePlacementGroup,
      id,
      ns: rt.namespace,
      strategy: strategy as PlacementStrategy,
      bundles: specs,
      detached: o.lifetime === 'detached',
      jobId: rt.jobId,
      creator: rt.core.self.endpoint,
      ...(name !== undefined ? { name } : {}),
    })
    .then(
      () => undefined,
      (e: Error & { code?: string }) => {
        throw e.code === 'NAME_TAKEN' ? new RayError(`placementGroup(): ${e.message}`) : e;
      },
    );
  // the error surfaces at ready()/wait(); the group is not created
  registered.catch(() => undefined);
  return new PlacementGroup(id, specs, strategy as PlacementStrategy, name, registered);
}

/**
 * Removes a placement group (idempotent): its actors die (ActorDiedError
 * naming the group), its running tasks fail, its resources come back to the
 * nodes, and later tasks for it fail. Resolves once the head removed it.
 * @throws TypeError for something that is not a PlacementGroup.
 */
export async function removePlacementGroup(pg: PlacementGroup): Promise<void> {
  const rt = runtime('removePlacementGroup()');
  if (!(pg instanceof PlacementGroup) && !(typeof pg === 'object' && pg !== null && typeof (pg as { id?: unknown }).id === 'string')) {
    throw new TypeError(`removePlacementGroup() takes a PlacementGroup, got ${describeValue(pg)}`);
  }
  await rt.core.endpoint.call(rt.headAddress, { t: MT.RemovePlacementGroup, pgId: pg.id });
}

function fromInfo(info: PlacementGroupInfo): PlacementGroup {
  return new PlacementGroup(info.id, info.bundles, info.strategy, info.name, Promise.resolve());
}

/**
 * The placement group named `name` in `namespace` (default: this job's).
 * @throws PlacementGroupNotFoundError when no group (not removed) has that name.
 */
export async function getPlacementGroup(name: string, namespace?: string): Promise<PlacementGroup> {
  const rt = runtime('getPlacementGroup()');
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`getPlacementGroup() takes a non-empty name, got ${describeValue(name)}`);
  if (namespace !== undefined && (typeof namespace !== 'string' || namespace.length === 0)) throw new TypeError(`getPlacementGroup() namespace must be a non-empty string, got ${describeValue(namespace)}`);
  const ns = namespace ?? rt.namespace;
  try {
    const r = await rt.core.endpoint.call(rt.headAddress, { t: MT.GetPlacementGroup, name, ns });
    return fromInfo(r.data as PlacementGroupInfo);
  } catch (e) {
    if ((e as { code?: string }).code === 'NOT_FOUND') {
      throw new PlacementGroupNotFoundError(
        `no placement group is named '${name}' in namespace '${ns}'. ray.placementGroupTable() lists the groups; a group of another namespace needs getPlacementGroup(name, namespace).`,
      );
    }
    throw e;
  }
}

function entryOf(info: PlacementGroupInfo): PlacementGroupTableEntry {
  return {
    placementGroupId: info.id,
    name: info.name ?? '',
    namespace: info.ns,
    strategy: info.strategy,
    state: info.state,
    bundles: info.bundles.map((b) => ({ ...b })),
    bundlesToNodeId: [...info.nodes],
    detached: info.detached,
    jobId: info.jobId,
    reason: info.reason,
  };
}

/**
 * Every placement group the head knows (removed ones included, the latest
 * 1000), by id; or, given a group, that group's entry.
 * @throws PlacementGroupNotFoundError for a group the head does not know.
 */
export async function placementGroupTable(): Promise<Record<string, PlacementGroupTableEntry>>;
export async function placementGroupTable(pg: PlacementGroup): Promise<PlacementGroupTableEntry>;
export async function placementGroupTable(pg?: PlacementGroup): Promise<Record<string, PlacementGroupTableEntry> | PlacementGroupTableEntry> {
  const rt: Runtime = runtime('placementGroupTable()');
  if (pg !== undefined) {
    try {
      const r = await rt.core.endpoint.call(rt.headAddress, { t: MT.GetPlacementGroup, pgId: pg.id, ns: rt.namespace });
      return entryOf(r.data as PlacementGroupInfo);
    } catch (e) {
      if ((e as { code?: string }).code === 'NOT_FOUND') throw new PlacementGroupNotFoundError((e as Error).message);
      throw e;
    }
  }
  const r = await rt.core.endpoint.call(rt.headAddress, { t: MT.ListPlacementGroups });
  const out: Record<string, PlacementGroupTableEntry> = {};
  for (const info of r.data as PlacementGroupInfo[]) out[info.id] = entryOf(info);
  return out;
}
