// tsray from an ES module written in TypeScript: `npx tsx examples/formats/esm-typescript.mts`
import { pathToFileURL } from 'node:url';
import * as ray from '@tsray/core';

export const wordCount = ray.remote((text: string): number => text.split(/\s+/).filter(Boolean).length);

if (import.meta.url === pathToFileURL(process.argv[1] as string).href) {
  await ray.init({ numCpus: 2 });
  const counts = await ray.get(['a b', 'c d e'].map((l) => wordCount.remote(l)));
  console.log(`esm-typescript: ${counts.join('+')} words`);
  await ray.shutdown();
}
