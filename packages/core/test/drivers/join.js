// Joins the cluster at argv[2] with init({ address }) and runs a task.
// Prints "RESULT <n>", or "ERROR <name>: <message>" and exits with 1.
const ray = require('@tsray/core');

const inc = ray.remote((x) => x + 1);

async function main() {
  try {
    await ray.init({ address: process.argv[2] });
    console.log(`RESULT ${await ray.get(inc.remote(41))}`);
    await ray.shutdown();
  } catch (e) {
    console.log(`ERROR ${e.name}: ${e.message}`);
    process.exitCode = 1;
  }
}

if (require.main === module) main();
