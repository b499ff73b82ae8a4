/**
 * `npm run bench -- <suite>`: runs a benchmark suite, prints its table and
 * writes bench/results/<suite>.json.
 */
import { run as core } from './core';
import { run as clusterTransfer } from './cluster-transfer';

const suites: Record<string, () => Promise<void>> = { core, 'cluster-transfer': clusterTransfer };

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  if (names.length === 0 || names.some((n) => !(n in suites))) {
    console.error(`usage: npm run bench -- <${Object.keys(suites).join('|')}>`);
    process.exit(2);
  }
  for (const n of names) await (suites[n] as () => Promise<void>)();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
