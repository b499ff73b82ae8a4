// A driver on one "host" (network namespace) of a cluster that spans hosts
// (multi-host.test.ts). argv: HEAD_HOST:PORT (or auto), then a JSON map from
// each host's custom resource to its node's IP address.
// Prints one line per step, "STEP <name> <json>", then "DONE"; on failure
// "ERROR <name>: <message>" and exit code 1. After "KILL <resource>" it
// waits for that host's node to be seen dead (the test kills it).
const crypto = require('node:crypto');
const ray = require('@tsray/core');

const MIB = 1024 * 1024;

/** The node a task runs on. */
const whereAmI = ray.remote(function whereAmI() {
  return ray.getRuntimeContext().nodeId;
});

/** sha256 of bytes, and the node that read them. */
const digestOn = ray.remote(function digestOn(bytes) {
  return [crypto.createHash('sha256').update(bytes).digest('hex'), bytes.length, ray.getRuntimeContext().nodeId];
});

/** `n` bytes of a pattern that depends on `seed`, made where the task runs. */
function pattern(n, seed) {
  const a = new Uint8Array(n);
  const w = new Uint32Array(a.buffer);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    // xorshift32: every 4 bytes differ, so a misplaced chunk changes the digest
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = x >>> 0;
  }
  return a;
}
const makeBytes = ray.remote(function makeBytes(n, seed) {
  return pattern(n, seed);
});

class Counter {
  constructor() {
    this.n = 0;
  }
  inc() {
    this.n += 1;
    return [this.n, ray.getRuntimeContext().nodeId, ray.getRuntimeContext().wasCurrentActorRestarted];
  }
}
const CounterActor = ray.remote(Counter);

const step = (name, value) => console.log(`STEP ${name} ${JSON.stringify(value)}`);

async function until(cond, what, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

async function main() {
  const [address, hostsJson, mode = 'all'] = process.argv.slice(2);
  const hosts = JSON.parse(hostsJson);
  await ray.init({ address, logToDriver: false });
  const nodes = await ray.nodes();
  step('nodes', nodes.map((n) => ({ nodeId: n.nodeId, address: n.address, alive: n.alive, isHead: n.isHead })));
  step('driver', { nodeId: ray.getRuntimeContext().nodeId });
  // one task on each host, placed by its host's resource
  const placed = {};
  for (const [res, ip] of Object.entries(hosts)) {
    const nodeId = await ray.get(whereAmI.options({ resources: { [res]: 0.01 } }).remote());
    placed[res] = { nodeId, address: nodes.find((n) => n.nodeId === nodeId)?.address, expected: ip };
  }
  step('tasks', placed);
  if (mode === 'tasks') return;

  const names = Object.keys(hosts);
  const [near, far] = [names[1], names[2]];
  // 256 MiB put here, read by a task on another host
  const bytes = pattern(256 * MIB, 7);
  const here = crypto.createHash('sha256').update(bytes).digest('hex');
  const ref = ray.put(bytes);
  let t = Date.now();
  const [remote, len, readOn] = await ray.get(digestOn.options({ resources: { [far]: 0.01 } }).remote(ref));
  step('put_read_remote', { same: remote === here, len, readOn, ms: Date.now() - t });
  // 256 MiB made on another host, read here
  t = Date.now();
  const made = await ray.get(makeBytes.options({ resources: { [names[0]]: 0.01 } }).remote(256 * MIB, 11));
  const want = crypto.createHash('sha256').update(pattern(256 * MIB, 11)).digest('hex');
  step('remote_read_here', { same: crypto.createHash('sha256').update(made).digest('hex') === want, len: made.length, ms: Date.now() - t });

  // an actor on the far host, which may restart elsewhere
  const farNode = placed[far].nodeId;
  const c = CounterActor.options({ maxRestarts: 1, maxTaskRetries: 1, scheduling: { nodeId: farNode, soft: true } }).remote();
  const first = await ray.get(c.inc.remote());
  const second = await ray.get(c.inc.remote());
  step('actor', { first, second });

  console.log(`KILL ${far}`);
  await until(async () => (await ray.nodes()).some((n) => n.nodeId === farNode && !n.alive), `node ${farNode} to be seen dead`, 20_000);
  t = Date.now();
  const after = await ray.get(c.inc.remote());
  step('actor_after_kill', { after, ms: Date.now() - t });
  const still = await ray.get(whereAmI.options({ resources: { [near]: 0.01 } }).remote());
  step('task_after_kill', { nodeId: still });
  step('nodes_after_kill', (await ray.nodes()).map((n) => ({ nodeId: n.nodeId, alive: n.alive })));
}

main()
  .then(() => ray.shutdown())
  .then(() => console.log('DONE'))
  .catch((e) => {
    console.log(`ERROR ${e.name}: ${e.message}`);
    process.exitCode = 1;
    return ray.shutdown();
  });
