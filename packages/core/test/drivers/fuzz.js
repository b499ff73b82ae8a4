// Sends random, truncated, wrong-version, multi-frame, huge-length and
// wrong-typed frames (from a seeded PRNG: the same frames every run) to every
// socket of a running cluster, then checks that everything still works and
// that nothing grew: open fds of every process, the node manager's and the
// head's tables.
//
//   node fuzz.js          a local cluster (init()), its ipc sockets
//   node fuzz.js tcp      the tokened cluster `tsray start --head` started
//                         (TSRAY_TMPDIR), its ipc sockets and its tcp port:
//                         as a member (CURVE, with the token), as a plain
//                         ZeroMQ peer, with another token's keys, and as raw
//                         TCP bytes
//
// Prints "SENT <n> frames to <k> sockets: <kinds>" and "FUZZERS <ids>", waits
// for SIGUSR2 (the test sends it once every receiver logged the last frame
// of its fuzzer), then prints "CHECK <json>" and "OK ...".
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const zmq = require('zeromq');
const { Packr } = require('msgpackr');
const ray = require('@tsray/core');
const { MT, PROTOCOL_VERSION: V } = require('../../dist/internal/protocol/messages.js');
const { partsFrame } = require('../../dist/internal/protocol/codec.js');
const { deriveClusterKeys, generateClusterToken } = require('../../dist/internal/cluster/token.js');
const { currentRuntime } = require('../../dist/internal/api/context.js');

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

/** mulberry32: a small seeded PRNG */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const bytes = (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  const pick = (arr) => arr[int(arr.length)];
  return { next, int, bytes, pick };
}

// every message type but ExitWorker, which needs no fields and would end a worker
const TYPES = Object.values(MT).filter((v) => typeof v === 'number' && v !== MT.ExitWorker);
const FIELDS = ['reqId', 'jobId', 'leaseId', 'leaseReqId', 'workerId', 'nodeId', 'endpoint', 'spec', 'tasks', 'results', 'ids', 'id', 'actorId', 'owner', 'driver', 'ns', 'kind', 'pid', 'total', 'available', 'lines', 'force', 'reason', 'name', 'key', 'value', 'wait', 'data', 'ok', 'worker', 'gpus', 'borrower'];

function randomValue(r, depth = 0) {
  switch (r.int(depth > 2 ? 6 : 9)) {
    case 0:
      return r.int(2) === 0 ? r.int(1e9) : -r.next() * 1e300;
    case 1:
      return r.bytes(r.int(12)).toString('latin1');
    case 2:
      return null;
    case 3:
      return r.int(2) === 0;
    case 4:
      return r.bytes(r.int(64));
    case 5:
      return [NaN, Infinity, -0, 2 ** 53 + 2, 1.5][r.int(5)];
    case 6:
      return Array.from({ length: r.int(5) }, () => randomValue(r, depth + 1));
    case 7: {
      const o = {};
      for (let i = r.int(5); i > 0; i--) o[r.pick(FIELDS)] = randomValue(r, depth + 1);
      return o;
    }
    default:
      return { workerId: randomValue(r, 3), nodeId: 'n', endpoint: randomValue(r, 3), slot: randomValue(r, 3) };
  }
}

/** A message of a real type whose fields have the wrong types (reqId, where present, is never an integer). */
function wrongTyped(r) {
  const m = { t: r.pick(TYPES), reqId: r.pick(['x', null, 1.5, [], {}, -Infinity]) };
  for (let i = r.int(6); i > 0; i--) m[r.pick(FIELDS.slice(1))] = randomValue(r);
  return m;
}

const plain = new Packr({ useRecords: false });
const records = new Packr({ useRecords: true });
// the wire format is plain msgpack maps; frames with msgpackr records are fuzzed too
const encode = (r, v) => (r.int(4) === 0 ? records.pack(v) : plain.pack(v));

/** Prefixes that announce far more data than follows. */
const HUGE = [
  [0xdd, 0xff, 0xff, 0xff, 0xff], // array32 of 4 G items
  [0x92, V, 0xdd, 0x7f, 0xff, 0xff, 0xff], // [version, array32 of 2 G items]
  [0x92, V, 0x91, 0xdf, 0xff, 0xff, 0xff, 0xff], // [version, [map32 of 4 G entries]]
  [0xc6, 0xff, 0xff, 0xff, 0xff], // bin32 of 4 GiB
  [0xdb, 0xff, 0xff, 0xff, 0xf0], // str32 of 4 GiB
  [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01], // ext32 of 4 GiB
  [0x92, V, 0xdc, 0xff, 0xff, 0x81, 0xa1, 0x74], // [version, array16 of 65535 items, one half-written]
  [0x92, V, 0x91, 0xde, 0xff, 0xff, 0xa1, 0x74, 0x0d], // [version, [map16 of 65535 entries, one written]]
];

/** The frames sent to one socket (each entry is one ZeroMQ message: a list of frames). */
function frames(seed) {
  const r = prng(seed);
  const valid = [
    [V, [{ t: MT.PushTasks, leaseId: 'x', owner: { workerId: 'w', nodeId: 'n', endpoint: 'ipc:///nowhere', slot: 1 }, jobId: 'j', tasks: [] }]],
    [V, [{ t: MT.GetClusterInfo, reqId: 1 }, { t: MT.NodeStats, reqId: 2 }]],
    [V, [{ t: MT.KillActor, actorId: 'no-such-actor', noRestart: true }]],
    [V, [{ t: MT.GetObject, reqId: 3, id: 'no-such-object', wait: false }]],
  ];
  const out = [];
  // random bytes
  for (let i = 0; i < 60; i++) out.push([r.bytes(r.int(8) === 0 ? 65536 : r.int(2048))]);
  out.push([Buffer.alloc(0)]);
  // truncated valid frames
  for (let i = 0; i < 40; i++) {
    const f = encode(r, r.pick(valid));
    out.push([f.subarray(0, r.int(f.length))]);
  }
  // wrong protocol versions
  for (let i = 0; i < 25; i++) out.push([encode(r, [r.pick([0, V - 1, V + 1, 99, -1, 1.5, null, true, 2 ** 40]), r.pick(valid)[1]])]);
  // not [version, messages]
  for (let i = 0; i < 15; i++) out.push([encode(r, r.pick(['just a string', [V], [V, 'not a list'], { t: 13 }, 42, null, [V, { 0: 1 }]]))]);
  // multi-frame messages
  for (let i = 0; i < 30; i++) out.push(Array.from({ length: 2 + r.int(3) }, () => (r.int(2) ? encode(r, r.pick(valid)) : r.bytes(r.int(100)))));
  // chunked frames (a 0xc1 marker part, then chunks): truncated, random, empty, huge
  for (let i = 0; i < 20; i++) {
    const f = encode(r, r.pick(valid));
    const cut = i % 2 === 0 ? f.subarray(0, r.int(f.length)) : r.bytes(r.int(600));
    const chunks = [];
    for (let at = 0; at < cut.length; at += 1 + r.int(200)) chunks.push(cut.subarray(at, at + 1 + r.int(200)));
    out.push([Buffer.from([0xc1]), ...chunks]);
  }
  out.push([Buffer.from([0xc1])], [Buffer.from([0xc1]), Buffer.from(HUGE[0])]);
  // huge lengths
  for (let i = 0; i < 30; i++) out.push([Buffer.concat([Buffer.from(HUGE[i % HUGE.length]), r.bytes(r.int(32))])]);
  // valid frames whose messages have the wrong field types
  for (let i = 0; i < 100; i++) out.push([encode(r, [V, Array.from({ length: 1 + r.int(4) }, () => wrongTyped(r))])]);
  // random msgpack values
  for (let i = 0; i < 20; i++) out.push([encode(r, randomValue(r))]);
  // last: a frame with its own drop reason, which tells the test this socket read them all
  out.push([records.pack([`fuzz-end-${seed}`, []])]);
  return out;
}

/** Raw TCP byte streams: garbage, ZMTP greetings followed by garbage, truncated greetings. */
function tcpStreams(seed) {
  const r = prng(seed);
  const greeting = (mech) => {
    const g = Buffer.alloc(64);
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 0;
    g.write(mech, 12, 'latin1');
    return g;
  };
  const out = [];
  for (let i = 0; i < 20; i++) out.push(r.bytes(1 + r.int(4096)));
  for (let i = 0; i < 10; i++) out.push(Buffer.concat([greeting('NULL'), r.bytes(r.int(512))]));
  for (let i = 0; i < 10; i++) out.push(Buffer.concat([greeting('CURVE'), r.bytes(r.int(512))]));
  for (let i = 0; i < 10; i++) out.push(greeting(r.pick(['NULL', 'CURVE', 'PLAIN'])).subarray(0, r.int(64)));
  // a CURVE HELLO command frame claiming a huge size
  out.push(Buffer.concat([greeting('CURVE'), Buffer.from([0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x05]), Buffer.from('HELLO')]));
  return out;
}

function sendRaw(port, data) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.on('connect', () => s.end(data));
    // a server may keep the connection open waiting for more: we are done once ours is written
    s.on('finish', () => s.destroy());
  });
}

/** pid -> ppid of every process */
function parents() {
  const m = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      m.set(Number(e), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  return m;
}
function descendants(root) {
  const pp = parents();
  const out = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    for (const [pid, ppid] of pp) if (ppid === p) (out.push(pid), stack.push(pid));
  }
  return out;
}
const fdCount = (pid) => {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
};
const alive = (pid) => {
  try {
    return !/^\S+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Asks a request at an ipc address over a raw socket; resolves with the reply's data. */
async function ask(address, t) {
  const d = new zmq.Dealer({ linger: 0, receiveTimeout: 10_000 });
  d.connect(address);
  try {
    await d.send(plain.pack([V, [{ t, reqId: 1 }]]));
    const { frame } = partsFrame(await d.receive());
    return plain.unpack(frame)[1][0].data;
  } finally {
    d.close();
  }
}

async function until(cond, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

async function main() {
  const mode = process.argv[2] ?? 'local';
  const root = path.join(process.env.TSRAY_TMPDIR, 'tsray');
  let sessionDir;
  let headPid;
  let tcp;
  if (mode === 'tcp') {
    const rec = JSON.parse(fs.readFileSync(path.join(root, 'cluster.json'), 'utf8'));
    sessionDir = rec.sessionDir;
    headPid = rec.pid;
    tcp = rec.address;
    await ray.init({ address: 'auto' });
  } else {
    await ray.init({ numCpus: 2 });
    sessionDir = path.join(root, fs.readdirSync(root).find((d) => d.startsWith('session_')));
  }
  const a = AccActor.remote();
  await ray.get([inc.remote(1), a.add.remote(1)]);
  const sockDir = path.join(sessionDir, 's');
  const sockets = fs.readdirSync(sockDir);
  const headIpc = `ipc://${path.join(sockDir, 'head')}`;
  const rayletIpc = `ipc://${path.join(sockDir, sockets.find((s) => s.startsWith('n-')))}`;
  const pids = [process.pid, ...(mode === 'tcp' ? [headPid, ...descendants(headPid)] : descendants(process.pid))].filter(alive);
  const fdsBefore = Object.fromEntries(pids.map((p) => [p, fdCount(p)]));
  const nodeBefore = await ask(rayletIpc, MT.NodeStats);
  const headBefore = await ask(headIpc, MT.HeadStats);

  let sent = 0;
  const fuzzers = [];
  const fuzz = async (address, seed, opts = {}) => {
    // linger: deliver what was queued even though we close right away
    // a stranger's handshake fails and it may never get a pipe to send on: sends give up after a while
    const d = new zmq.Dealer({ linger: 2000, sendTimeout: 2000, routingId: `fuzzer-${seed}`, ...opts });
    d.connect(address);
    try {
      for (const f of frames(seed)) {
        await d.send(f);
        sent++;
      }
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    } finally {
      d.close();
    }
  };
  for (const [i, name] of sockets.entries()) {
    await fuzz(`ipc://${path.join(sockDir, name)}`, i);
    fuzzers.push(i);
  }
  if (tcp) {
    const token = process.env.TSRAY_CLUSTER_TOKEN ?? fs.readFileSync(path.join(sessionDir, 'cluster_token'), 'utf8').trim();
    const k = deriveClusterKeys(token);
    const other = deriveClusterKeys(generateClusterToken());
    // a member of the cluster (holds the token) sending garbage: dropped, logged
    await fuzz(`tcp://${tcp}`, 100, { curveServerKey: k.server.publicKey, curvePublicKey: k.client.publicKey, curveSecretKey: k.client.secretKey });
    fuzzers.push(100);
    // peers without the token: their frames never arrive (the handshake fails); linger 0, nothing will be delivered
    await fuzz(`tcp://${tcp}`, 101, { linger: 0 });
    await fuzz(`tcp://${tcp}`, 102, { linger: 0, curveServerKey: other.server.publicKey, curvePublicKey: other.client.publicKey, curveSecretKey: other.client.secretKey });
    // in a cluster that spans nodes, the driver (like the workers) listens on tcp: fuzz it as a member
    const driverTcp = currentRuntime().core.endpoint.address;
    await fuzz(driverTcp, 103, { curveServerKey: k.server.publicKey, curvePublicKey: k.client.publicKey, curveSecretKey: k.client.secretKey });
    fuzzers.push(103);
    // and so does the actor's worker
    const workerTcp = currentRuntime().core.actors.clients.get(a.actorId)?.info?.address?.endpoint;
    if (!workerTcp || !workerTcp.startsWith('tcp://')) throw new Error(`the actor's worker has no tcp address (${workerTcp})`);
    await fuzz(workerTcp, 104, { curveServerKey: k.server.publicKey, curvePublicKey: k.client.publicKey, curveSecretKey: k.client.secretKey });
    fuzzers.push(104);
    const port = Number(tcp.split(':')[1]);
    for (const s of tcpStreams(7)) {
      await sendRaw(port, s);
      sent++;
    }
  }
  // the test signals once every receiver has logged dropping the last frame it was sent
  let signalled = false;
  process.once('SIGUSR2', () => (signalled = true));
  console.log(`SENT ${sent} frames to ${sockets.length + (tcp ? 3 : 0)} sockets: ${sockets.map((s) => s[0]).sort().join('')}${tcp ? 'DWt' : ''}`);
  console.log(`FUZZERS ${fuzzers.join(',')}`);
  console.log(`SOCKETS ${sockets.map((s, i) => `${i}=${s}`).join(' ')}`);
  // a task now and then: an idle driver stops reading its socket, and the workers' log lines reach the test through it
  while (!signalled) {
    await ray.get(inc.remote(0));
    await new Promise((r) => setTimeout(r, 100));
  }

  // fds: connections of the fuzzers are closed by their servers once they see them go
  const margin = 4;
  await until(() => pids.every((p) => fdCount(p) <= fdsBefore[p] + margin), 15_000);
  const fdsAfter = Object.fromEntries(pids.map((p) => [p, fdCount(p)]));
  const nodeAfter = await ask(rayletIpc, MT.NodeStats);
  const headAfter = await ask(headIpc, MT.HeadStats);
  // and the cluster still works
  const results = await ray.get([inc.remote(41), a.add.remote(2), ray.put('still here')]);
  const b = AccActor.remote();
  const fresh = await ray.get(b.add.remote(5));
  const check = {
    pids,
    dead: pids.filter((p) => !alive(p)),
    fdsBefore,
    fdsAfter,
    fdMargin: margin,
    node: { before: pick(nodeBefore), after: pick(nodeAfter) },
    head: { before: headBefore, after: headAfter },
  };
  console.log(`CHECK ${JSON.stringify(check)}`);
  console.log(`OK ${JSON.stringify(results)} ${fresh}`);
  await ray.shutdown();
}

/** What of the node manager's stats must not change: its workers and clients, and nothing queued. */
function pick(s) {
  return { workerPids: [...s.workerPids].sort(), pending: s.pending, clients: s.clients };
}

if (require.main === module) main();
