import { Child } from './procs';
import { until } from './poll';

/** What drivers/fuzz.js reports after fuzzing. */
export interface FuzzCheck {
  pids: number[];
  dead: number[];
  fdsBefore: Record<string, number>;
  fdsAfter: Record<string, number>;
  fdMargin: number;
  node: { before: unknown; after: unknown };
  head: { before: Record<string, number>; after: Record<string, number> };
}

/**
 * Runs drivers/fuzz.js until it has sent its frames, waits until every
 * receiver logged the last frame of its fuzzer (`logs()` returns the output
 * to search besides the driver's), lets it check the cluster, and returns
 * what it found.
 */
export async function runFuzz(c: Child, logs: () => string = () => ''): Promise<{ sent: number; kinds: string; check: FuzzCheck }> {
  const [, sent, , kinds] = await c.waitFor(/SENT (\d+) frames to (\d+) sockets: (\w+)/);
  const [, ids] = await c.waitFor(/FUZZERS ([\d,]+)/);
  const fuzzers = (ids as string).split(',');
  const missing = (): string[] => {
    const all = c.err + c.out + logs();
    return fuzzers.filter((i) => !all.includes(`from fuzzer-${i}: protocol version fuzz-end-${i} (expected`));
  };
  await until(() => missing().length === 0, 'every socket to read its frames', 60_000).catch((e: Error) => {
    throw new Error(`${e.message}; no last frame read from fuzzers ${missing().join(', ')} (${c.out.trim()})`);
  });
  c.proc.kill('SIGUSR2');
  const [, json] = await c.waitFor(/CHECK (.*)\n/);
  await c.waitFor(/OK \[42,3,"still here"\] 5/);
  expect((await c.exited).code).toBe(0);
  return { sent: Number(sent), kinds: kinds as string, check: JSON.parse(json as string) as FuzzCheck };
}

/** The checks every fuzz run must pass: nobody died, no fds leaked, no table grew. */
export function expectNothingBroke(check: FuzzCheck): void {
  expect(check.dead).toEqual([]);
  for (const pid of check.pids) expect({ pid, fds: check.fdsAfter[pid] }).toEqual({ pid, fds: expect.any(Number) });
  for (const pid of check.pids) expect((check.fdsAfter[pid] as number) - (check.fdsBefore[pid] as number)).toBeLessThanOrEqual(check.fdMargin);
  expect(check.node.after).toEqual(check.node.before);
  expect(check.head.after).toEqual(check.head.before);
}
