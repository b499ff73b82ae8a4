/**
 * Resource arithmetic with fractional amounts (kept to 4 decimals, as Ray's
 * fixed point) and GPU id assignment.
 * @internal
 */
import type { Resources } from '../protocol/messages';

const round = (x: number): number => Math.round(x * 10000) / 10000;

/** Whether `need` fits in `have`. */
export function fits(need: Resources, have: Resources): boolean {
  for (const k in need) {
    const n = need[k] as number;
    if (n > 0 && round((have[k] ?? 0) - n) < 0) return false;
  }
  return true;
}

/** have -= need (may go negative: oversubscription after an unblock). */
export function subtract(have: Resources, need: Resources): void {
  for (const k in need) have[k] = round((have[k] ?? 0) - (need[k] as number));
}

/** have += give. */
export function add(have: Resources, give: Resources): void {
  for (const k in give) have[k] = round((have[k] ?? 0) + (give[k] as number));
}

/** The resources of `need` that `total` can never provide, in words. */
export function missing(need: Resources, total: Resources): string[] {
  const out: string[] = [];
  for (const k in need) {
    const n = need[k] as number;
    if (n > 0 && round((total[k] ?? 0) - n) < 0) out.push(`${k}: ${n} (node has ${total[k] ?? 0})`);
  }
  return out;
}

/** `{CPU: 1, GPU: 0.5}` as text. */
export function describe(r: Resources): string {
  const parts = Object.entries(r)
    .filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k}: ${v}`);
  return `{${parts.join(', ')}}`;
}

/**
 * Why a request for `amount` GPUs can never be granted, or undefined. As in
 * Ray, a task may take a fraction of one GPU, or whole GPUs: 1.5 is refused.
 */
export function gpuRequestProblem(amount: number): string | undefined {
  if (!Number.isFinite(amount) || amount < 0) return `a GPU request must be a non-negative number, got ${amount}`;
  if (amount > 1 && !Number.isInteger(amount)) return `a GPU request above 1 must be a whole number of GPUs, got ${amount}`;
  return undefined;
}

/** Hands out GPU ids; fractional requests share an id. */
export class GpuPool {
  private readonly free = new Map<string, number>();

  /** A pool of the given ids, all free. */
  constructor(ids: string[]) {
    for (const id of ids) this.free.set(id, 1);
  }

  /**
   * Picks ids for `amount` GPUs, or undefined if they are not free.
   * @throws RangeError for a fraction above 1 (see {@link gpuRequestProblem})
   */
  acquire(amount: number): Array<[string, number]> | undefined {
    const problem = gpuRequestProblem(amount);
    if (problem) throw new RangeError(problem);
    if (amount <= 0) return [];
    if (amount >= 1) {
      const whole = Math.ceil(amount - 1e-9);
      const ids = [...this.free.entries()].filter(([, v]) => v >= 1 - 1e-9).map(([k]) => k);
      if (ids.length < whole) return undefined;
      const got = ids.slice(0, whole).map((id): [string, number] => [id, 1]);
      for (const [id] of got) this.free.set(id, 0);
      return got;
    }
    // pack fractions: the most used id that still fits
    let best: string | undefined;
    let bestLeft = Infinity;
    for (const [id, left] of this.free) {
      if (round(left - amount) >= 0 && left < bestLeft) {
        best = id;
        bestLeft = left;
      }
    }
    if (best === undefined) return undefined;
    this.free.set(best, round(bestLeft - amount));
    return [[best, amount]];
  }

  /** Gives back what {@link acquire} returned. */
  release(got: Array<[string, number]>): void {
    for (const [id, amt] of got) this.free.set(id, Math.min(1, round((this.free.get(id) ?? 0) + amt)));
  }
}
