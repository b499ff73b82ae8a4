// Functions and classes defined inside an ES module's driver code reach
// the workers by value (node shipping.mjs); an export of this module is
// located (workers import it, so it may use the module's names).
import { pathToFileURL } from 'node:url';
import * as ray from '@tsray/core';

const SUFFIX = '!';

/** Exported, and uses a module-level constant: found among this module's exports. */
export function shout(s) {
  return s.toUpperCase() + SUFFIX;
}

function defineCapturing(k) {
  return ray.remote((x) => x * k);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await ray.init({ numCpus: 2, logToDriver: false });
  const square = ray.remote((x) => x * x);
  const nested = ray.remote((n) => {
    function inc(y) {
      return y + 1;
    }
    const twice = (z) => z * 2;
    return twice(inc(n));
  });
  // import() and import.meta inside the function resolve from this file
  const packed = ray.remote(async () => (await import('msgpackr')).pack([1, 2, 3]).length + (import.meta.url.endsWith('/shipping.mjs') ? 0 : 100));
  const counted = ray.remote({ numReturns: 'streaming' }, async function* (n) {
    for (let i = 0; i < n; i++) yield i;
  });
  const Acc = ray.remote(
    class Acc {
      total = 0;
      add(n) {
        return (this.total += n);
      }
    },
  );
  let captured = '';
  try {
    defineCapturing(2);
  } catch (e) {
    captured = e.message;
  }
  const acc = Acc.remote();
  await ray.get([acc.add.remote(2), acc.add.remote(3)]);
  const streamed = [];
  for await (const r of counted.remote(3)) streamed.push(await ray.get(r));
  const result = {
    squares: await ray.get([1, 2, 3].map((x) => square.remote(x))),
    nested: await ray.get(nested.remote(4)),
    packed: await ray.get(packed.remote()),
    streamed,
    total: await ray.get(acc.add.remote(0)),
    captured: /captures `k`, defined outside it/.test(captured) ? 'named k' : captured,
    exported: await ray.get(ray.remote(shout).remote('hey')),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
  await ray.shutdown();
}
