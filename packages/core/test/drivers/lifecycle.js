// A driver for the lifecycle tests. Modes: exit (ends without shutdown on SIGUSR2),
// crash (uncaught error), hang (waits to be signalled), shutdown (shuts down
// on SIGUSR2, then stays alive until a second SIGUSR2).
const ray = require('@tsray/core');

const work = ray.remote((x) => x + 1);
class Keeper {
  get() {
    return 1;
  }
}
const KeeperActor = ray.remote(Keeper);

async function main(mode) {
  await ray.init({ numCpus: 2, logToDriver: false, objectStoreMemory: 64 * 1024 * 1024 });
  await ray.get([work.remote(1), work.remote(2)]);
  const k = KeeperActor.remote();
  await ray.get(k.get.remote());
  const big = ray.put(new Float64Array(1 << 20));
  await ray.get(big);
  console.log(`READY ${process.pid}`);
  // a signal listener alone does not keep a process alive (an idle driver receives nothing): a timer does
  const untilSignal = mode === 'hang' ? undefined : setInterval(() => undefined, 1000);
  // end, crash or shut down when the test says so (after it has looked at our processes)
  if (mode === 'exit') {
    await new Promise((r) => process.once('SIGUSR2', r));
    clearInterval(untilSignal);
    return; // nothing else keeps the process alive: it ends without shutdown()
  }
  if (mode === 'crash') {
    await new Promise((r) => process.once('SIGUSR2', r));
    clearInterval(untilSignal);
    throw new Error('boom in the driver');
  }
  if (mode === 'hang') await new Promise(() => setInterval(() => undefined, 1000));
  if (mode === 'shutdown') {
    await new Promise((r) => process.once('SIGUSR2', r));
    clearInterval(untilSignal);
    await ray.shutdown();
    // a signal listener does not keep a process alive: a timer does, until the second signal
    const keepAlive = setInterval(() => undefined, 1000);
    const second = new Promise((r) => process.once('SIGUSR2', r));
    console.log('SHUTDOWN');
    await second;
    clearInterval(keepAlive);
  }
}

if (require.main === module) {
  main(process.argv[2]).then(
    () => undefined,
    (e) => {
      throw e;
    },
  );
}
