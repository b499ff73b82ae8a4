// Functions and classes defined inside an ES module's driver code reach
// the workers by value (node shipping.mjs).
import * as ray from '@tsray/core';

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
const k = 2;
let captured = '';
// (inside a function: at an ES module's top level after a top-level await,
// a definition that uses module names is taken as a top-level one)
function defineCapturing() {
  return ray.remote((x) => x * k);
}
try {
  defineCapturing();
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
};
console.log(`RESULT ${JSON.stringify(result)}`);
await ray.shutdown();
