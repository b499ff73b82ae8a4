// tsray from TypeScript: `npx tsx examples/formats/typescript.ts`, or with
// ts-node: `node -r ts-node/register examples/formats/typescript.ts`
import * as ray from '@tsray/core';

export const wordCount = ray.remote((text: string): number => text.split(/\s+/).filter(Boolean).length);

export class Tally {
  private total = 0;
  add(n: number): number {
    this.total += n;
    return this.total;
  }
}
export const TallyActor = ray.remote(Tally);

async function main(): Promise<void> {
  await ray.init({ numCpus: 2 });
  const lines = ['the quick brown fox', 'jumps over', 'the lazy dog'];
  const counts: number[] = await ray.get(lines.map((l) => wordCount.remote(l)));
  const tally: ray.ActorHandle<Tally> = TallyActor.remote();
  for (const c of counts) tally.add.remote(c);
  const total: number = await ray.get(tally.add.remote(0));
  console.log(`typescript: ${counts.join('+')} = ${total} words`);
  await ray.shutdown();
}

if (require.main === module) void main();
