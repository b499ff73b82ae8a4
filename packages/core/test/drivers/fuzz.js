// Sends random, truncated and malformed frames to every socket of a running
// cluster, then checks that everything still works.
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const zmq = require('zeromq');
const { Packr } = require('msgpackr');
const ray = require('@tsray/core');

const inc = ray.remote((x) => x + 1);
class Acc {
  constructor() {
    this.n = 0;
  }
  add(k) {
    this.n += k;
    return this.n;
  }
}
const AccActor = ray.remote(Acc);

function frames(seed) {
  const rnd = (n) => crypto.randomBytes(n);
  const p = new Packr({ useRecords: true });
  const valid = p.pack([1, [{ t: 70, leaseId: 'x', owner: { workerId: 'w', nodeId: 'n', endpoint: 'ipc:///nowhere', slot: 1 }, jobId: 'j', tasks: [] }]]);
  const out = [
    [Buffer.alloc(0)],
    [rnd(1)],
    [rnd(17)],
    [rnd(4096)],
    [rnd(65536)],
    [p.pack('just a string')],
    [p.pack([99, []])],
    [p.pack([1, 'not a list'])],
    [p.pack([1, [{ t: 9999 }]])],
    [p.pack([1, [{ t: 70, tasks: 'nope' }]])],
    [p.pack([1, [{ t: 71, results: [{ id: 5 }] }]])],
    [p.pack([1, [{ t: 40, reqId: 1, kind: 'driver' }]])],
    [p.pack([1, [{ t: 15, reqId: 1, spec: {}, getIfExists: 'x' }]])],
    [p.pack([1, [{ t: 76, reqId: 'x', id: 1, wait: true }]])],
    [valid.subarray(0, Math.floor(valid.length / 2))],
    [valid, rnd(10)],
  ];
  for (let i = 0; i < 30; i++) out.push([rnd(1 + ((seed * 7919 + i * 104729) % 2000))]);
  // last: a 3-frame message, whose drop log line tells the test this socket's frames were all read
  out.push([rnd(8), rnd(8), rnd(8)]);
  return out;
}

async function main() {
  await ray.init({ numCpus: 2 });
  const a = AccActor.remote();
  await ray.get([inc.remote(1), a.add.remote(1)]);
  const root = path.join(process.env.TSRAY_TMPDIR, 'tsray');
  const session = fs.readdirSync(root).find((d) => d.startsWith('session_'));
  const sockDir = path.join(root, session, 's');
  const sockets = fs.readdirSync(sockDir);
  let sent = 0;
  for (const [i, name] of sockets.entries()) {
    // linger: deliver what was queued even though we close right away
    const d = new zmq.Dealer({ linger: 2000, routingId: `fuzzer-${i}` });
    d.connect(`ipc://${path.join(sockDir, name)}`);
    for (const f of frames(i)) {
      await d.send(f);
      sent++;
    }
    d.close();
  }
  // the test signals once every receiver has logged dropping the last frame it was sent
  const go = new Promise((r) => process.once('SIGUSR2', r));
  console.log(`SENT ${sent} frames to ${sockets.length} sockets: ${sockets.map((s) => s[0]).sort().join('')}`);
  await go;
  const results = await ray.get([inc.remote(41), a.add.remote(2), ray.put('still here')]);
  const b = AccActor.remote();
  const fresh = await ray.get(b.add.remote(5));
  console.log(`OK ${JSON.stringify(results)} ${fresh}`);
  await ray.shutdown();
}

if (require.main === module) main();
