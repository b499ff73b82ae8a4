/**
 * `npm run bench -- <suite> [section ...] [<suite> [section ...]]`: runs
 * benchmark suites (all their sections, or the ones named after the suite),
 * prints each table and writes bench/results/<suite>.json — or, for some
 * sections only, bench/results/<suite>-<section>+….json (not committed), so
 * that a partial run never mixes its figures into the full run's file.
 * `TESTS_TO_RUN=a,b` (Ray's variable) picks sections too.
 */
import * as core from './core';
import * as cluster from './cluster';
import * as data from './data';
import * as serve from './serve';
import * as train from './train';

interface Suite {
  SECTION_NAMES: readonly string[];
  run(only?: string[]): Promise<void>;
}

const suites: Record<string, Suite> = { core, cluster, data, serve, train };

function usage(problem: string): never {
  console.error(`${problem}\nusage: npm run bench -- <suite> [section ...]\n${Object.entries(suites)
    .map(([n, s]) => `  ${n}: ${s.SECTION_NAMES.join(', ')}`)
    .join('\n')}`);
  process.exit(2);
}

async function main(): Promise<void> {
  const plan: Array<{ name: string; only: string[] }> = [];
  for (const arg of process.argv.slice(2)) {
    if (arg in suites) plan.push({ name: arg, only: [] });
    else if (plan.length === 0) usage(`unknown suite '${arg}'`);
    else {
      const last = plan[plan.length - 1] as { name: string; only: string[] };
      if (!(suites[last.name] as Suite).SECTION_NAMES.includes(arg)) usage(`the ${last.name} suite has no section '${arg}'`);
      last.only.push(arg);
    }
  }
  if (plan.length === 0) usage('no suite named');
  const env = process.env.TESTS_TO_RUN?.split(',').map((x) => x.trim()).filter(Boolean);
  for (const { name, only } of plan) await (suites[name] as Suite).run(only.length > 0 ? only : env);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
