// The bare ZeroMQ peer of the sync benchmarks: a ROUTER that sends every
// message straight back, run as a child process in plain node (no tsx, no
// tsray). bench/zmq-round-trip.ts drives it from a DEALER over ipc.
// Usage: node zmq-echo.js ipc://path   (prints "ready" once bound)
const zmq = require('zeromq');

async function main() {
  const router = new zmq.Router({ linger: 0 });
  await router.bind(process.argv[2]);
  process.send?.('ready');
  process.on('disconnect', () => {
    router.close();
    process.exit(0);
  });
  for (;;) {
    let parts;
    try {
      parts = await router.receive();
    } catch {
      return;
    }
    await router.send(parts);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
