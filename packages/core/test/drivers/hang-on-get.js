// A driver that joins the cluster `tsray start --head` started and waits in
// get() on a task that never ends, until its cluster dies under it.
const ray = require('@tsray/core');

const forever = ray.remote(async function forever() {
  await new Promise((r) => setTimeout(r, 600_000));
});

async function main() {
  await ray.init({ address: 'auto', logToDriver: false });
  const ref = forever.remote();
  console.log('READY');
  try {
    await ray.get(ref);
    console.log('RESOLVED');
  } catch (e) {
    console.log(`REJECTED ${e.name} ${e.died} ${e.message}`);
  }
  console.log(`INITIALIZED ${ray.isInitialized()}`);
}

if (require.main === module) {
  main().catch((e) => {
    console.log(`ERROR ${e.stack}`);
    process.exit(1);
  });
}
