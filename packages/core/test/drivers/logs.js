// Worker output reaches the driver with a (name pid=N) prefix.
const ray = require('@tsray/core');

const shout = ray.remote((text) => {
  console.log(text);
  console.error(`err: ${text}`);
  return process.pid;
});
class Printer {
  say(text) {
    console.log(`actor says ${text}`);
    return process.pid;
  }
}
const PrinterActor = ray.remote(Printer);

async function main() {
  await ray.init({ numCpus: 1 });
  const pid = await ray.get(shout.remote('hello from a task'));
  const p = PrinterActor.remote();
  const apid = await ray.get(p.say.remote('hi'));
  console.log(`PIDS ${pid} ${apid}`);
  // output travels through the node manager: give it a moment before stopping
  await new Promise((r) => setTimeout(r, 300));
  await ray.shutdown();
}

if (require.main === module) main();
