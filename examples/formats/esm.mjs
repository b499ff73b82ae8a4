// tsray from an ES module: `node examples/formats/esm.mjs`
import { pathToFileURL } from 'node:url';
import * as ray from '@tsray/core';

export const wordCount = ray.remote((text) => text.split(/\s+/).filter(Boolean).length);

export class Tally {
  total = 0;
  add(n) {
    this.total += n;
    return this.total;
  }
}
export const TallyActor = ray.remote(Tally);

// the ES module equivalent of `require.main === module`: workers import this
// file to find the definitions above, without running the driver code below
if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await ray.init({ numCpus: 2 });
  const lines = ['the quick brown fox', 'jumps over', 'the lazy dog'];
  const counts = await ray.get(lines.map((l) => wordCount.remote(l)));
  const tally = TallyActor.remote();
  for (const c of counts) tally.add.remote(c);
  console.log(`esm: ${counts.join('+')} = ${await ray.get(tally.add.remote(0))} words`);
  await ray.shutdown();
}
