/**
 * A preprocessing pipeline with @tsray/data: read a CSV and a Parquet file
 * (both generated here), clean and featurize them with map / mapBatches,
 * aggregate per group, write the features as Parquet, and stream batches
 * as a training loop would. Run it with `npx tsx examples/data-preprocessing.ts`.
 *
 * The functions passed to map, filter and mapBatches are written inline:
 * they are shipped to the workers by value, and what they need comes in
 * through their arguments (`fnArgs`) or `require` inside them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';

const CITIES = ['Lisbon', 'Osaka', 'Quito', 'Tunis'];

/** Writes the raw inputs: trips as CSV (with a few broken rows to clean out), city facts as Parquet. */
async function generateInputs(dir: string): Promise<{ csv: string; parquet: string }> {
  const lines = ['trip_id,city,distance_km,minutes,paid'];
  for (let i = 0; i < 5000; i++) {
    const city = CITIES[i % CITIES.length] as string;
    const distance = i % 97 === 0 ? '' : ((i * 37) % 250) / 10 + 0.5; // a missing distance now and then
    lines.push(`${i},${city},${distance},${5 + ((i * 13) % 55)},${i % 3 === 0}`);
  }
  const csv = path.join(dir, 'trips.csv');
  fs.writeFileSync(csv, `${lines.join('\n')}\n`);
  const facts = data.fromItems(CITIES.map((city, i) => ({ city, population_m: [0.5, 2.7, 2.0, 0.6][i] as number, fare_per_km: [0.9, 1.4, 0.5, 0.7][i] as number })));
  const [parquet] = await facts.repartition(1).writeParquet(path.join(dir, 'cities'));
  return { csv, parquet: parquet as string };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  await ray.init({ numCpus: 2, logToDriver: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-data-example-'));
  try {
    const { csv, parquet } = await generateInputs(dir);

    // the city facts are small: read them once and pass them to the workers as an argument
    const fares: Record<string, number> = {};
    for (const r of await data.readParquet(parquet, { columns: ['city', 'fare_per_km'] }).takeAll()) fares[r.city as string] = r.fare_per_km as number;

    // clean: drop rows without a distance; featurize: fare and speed, one batch at a time
    const trips = data
      .readCsv(csv)
      .filter((r) => r.distance_km !== null)
      .map((r, fareOf: Record<string, number>) => ({ ...r, fare: Math.round((r.distance_km as number) * (fareOf[r.city as string] ?? 1) * 100) / 100 }), { fnArgs: [fares] })
      .mapBatches(
        (b: { distance_km: Float64Array; minutes: Float64Array; [k: string]: unknown }) => ({ ...b, kmh: b.distance_km.map((d, i) => (d / (b.minutes[i] as number)) * 60) }),
        { batchSize: 512 },
      );
    const features = await trips.repartition(4).materialize();
    console.log(`cleaned ${await features.count()} of 5000 trips; columns: ${(await features.columns()).join(', ')}`);

    // aggregate per city
    const perCity = await features.groupBy('city').mean('kmh').takeAll();
    for (const r of perCity) console.log(`  ${r.city}: mean speed ${(r['mean(kmh)'] as number).toFixed(1)} km/h`);
    console.log(`total fares ${(await features.sum('fare'))?.toFixed(2)}`);

    // write the features, and read them back
    const out = await features.writeParquet(path.join(dir, 'features'), { compression: 'zstd' });
    console.log(`wrote ${out.length} Parquet files, ${await data.readParquet(path.join(dir, 'features')).count()} rows`);

    // a training loop: two epochs of shuffled batches of 256 rows
    for (let epoch = 0; epoch < 2; epoch++) {
      let batches = 0;
      let rows = 0;
      for await (const b of features.iterBatches({ batchSize: 256, localShuffleBufferSize: 1024, localShuffleSeed: epoch })) {
        batches++;
        rows += (b as { kmh: Float64Array }).kmh.length;
      }
      console.log(`epoch ${epoch}: ${batches} batches, ${rows} rows`);
    }
    console.log(`done in ${Date.now() - t0} ms`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await ray.shutdown();
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
