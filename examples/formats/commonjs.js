// tsray from plain CommonJS JavaScript: `node examples/formats/commonjs.js`
const ray = require('@tsray/core');

const wordCount = ray.remote((text) => text.split(/\s+/).filter(Boolean).length);

class Tally {
  constructor() {
    this.total = 0;
  }
  add(n) {
    this.total += n;
    return this.total;
  }
}
const TallyActor = ray.remote(Tally);

async function main() {
  await ray.init({ numCpus: 2 });
  const lines = ['the quick brown fox', 'jumps over', 'the lazy dog'];
  const counts = await ray.get(lines.map((l) => wordCount.remote(l)));
  const tally = TallyActor.remote();
  for (const c of counts) tally.add.remote(c);
  console.log(`commonjs: ${counts.join('+')} = ${await ray.get(tally.add.remote(0))} words`);
  await ray.shutdown();
}

if (require.main === module) main();
