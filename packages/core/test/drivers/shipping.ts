// Functions and classes defined inside main() reach the workers by value,
// from a TypeScript driver (run with tsx, or node -r ts-node/register).
// Compiled to ES5 (ts-node without a tsconfig target), async functions and
// generators use TypeScript's helpers (__awaiter, __generator, ...), which
// the worker supplies; classes become constructor functions whose methods
// are outside their source text, and are refused.
import * as ray from '@tsray/core';

async function main(): Promise<void> {
  await ray.init({ numCpus: 2, logToDriver: false });
  const square = ray.remote((x: number) => x * x);
  // named inner functions: tsx adds its __name helper inside the shipped text
  const nested = ray.remote((n: number) => {
    function inc(y: number): number {
      return y + 1;
    }
    const twice = (z: number): number => z * 2;
    return twice(inc(n));
  });
  const packed = ray.remote(() => (require('msgpackr') as typeof import('msgpackr')).pack([1, 2, 3]).length);
  const counted = ray.remote({ numReturns: 'streaming' }, async function* (n: number) {
    for (let i = 0; i < n; i++) yield i;
  });
  const es5 = !String(class {}).startsWith('class');
  let Acc: ray.ActorClass<new () => { add(n: number): number }> | undefined;
  let refused = '';
  try {
    Acc = ray.remote(
      class Acc {
        total = 0;
        static readonly unit = 1;
        add(n: number): number {
          return (this.total += n * Acc.unit);
        }
      },
    );
  } catch (e) {
    refused = /compiled to an ES5 constructor function/.test((e as Error).message) ? 'refused an ES5 class' : (e as Error).message;
  }
  const k = 2;
  let captured = '';
  try {
    ray.remote((x: number) => x * k);
  } catch (e) {
    captured = (e as Error).message;
  }
  const acc = Acc?.remote();
  if (acc) await ray.get([acc.add.remote(2), acc.add.remote(3)]);
  const streamed: number[] = [];
  for await (const r of counted.remote(3)) streamed.push(await ray.get(r));
  const result = {
    squares: await ray.get([1, 2, 3].map((x) => square.remote(x))),
    nested: await ray.get(nested.remote(4)),
    packed: await ray.get(packed.remote()),
    streamed,
    total: acc ? await ray.get(acc.add.remote(0)) : refused,
    es5,
    captured: /captures `k`, defined outside it/.test(captured) ? 'named k' : captured,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
  await ray.shutdown();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
