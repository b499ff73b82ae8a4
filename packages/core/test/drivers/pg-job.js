// A job that creates two named placement groups in namespace 'pgjob' — one
// detached, one not — prints READY, and ends (its job finishes).
const ray = require('@tsray/core');

(async () => {
  await ray.init({ address: process.argv[2], namespace: 'pgjob', logToDriver: false });
  const kept = ray.placementGroup([{ CPU: 0.25 }], { name: 'kept', lifetime: 'detached' });
  const gone = ray.placementGroup([{ CPU: 0.25 }], { name: 'gone' });
  await Promise.all([kept.ready(), gone.ready()]);
  console.log(`READY ${kept.id} ${gone.id}`);
  await ray.shutdown();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
