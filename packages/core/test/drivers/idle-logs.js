// A driver that waits on nothing of tsray's: after starting an actor on
// another node that prints on its own timer, it only watches for a file
// (argv[2]) with a timer of its own, then shuts down and ends. The actor's
// output must reach it meanwhile.
const fs = require('node:fs');
const ray = require('@tsray/core');

class Ticker {
  start(ms) {
    let n = 0;
    this.timer = setInterval(() => console.log(`tick ${++n}`), ms);
    return process.pid;
  }
}
const TickerActor = ray.remote({ numCpus: 0 }, Ticker);

async function main(stopFile) {
  const cluster = await ray.Cluster.start({ head: { numCpus: 1 } });
  const node = await cluster.addNode({ numCpus: 1 });
  await cluster.waitForNodes();
  await ray.init({ address: cluster.address });
  const ticker = TickerActor.options({ scheduling: { nodeId: node.nodeId } }).remote();
  const pid = await ray.get(ticker.start.remote(100));
  console.log(`READY ${pid}`);
  await new Promise((resolve) => {
    const watch = setInterval(() => {
      if (!fs.existsSync(stopFile)) return;
      clearInterval(watch);
      resolve();
    }, 50);
  });
  await ray.shutdown();
  await cluster.shutdown();
  console.log('DONE');
}

if (require.main === module) main(process.argv[2]);
