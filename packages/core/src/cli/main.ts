#!/usr/bin/env node
/**
 * The `tsray` command line: start a cluster that outlives any one driver,
 * stop it, and show its state.
 *
 *     tsray start --head [--port 6380] [--num-cpus N] [--num-gpus N]
 *                 [--resources '{"custom":2}'] [--object-store-memory BYTES]
 *                 [--node-ip-address IP] [--restore]
 *     tsray start --address HOST:PORT [same resource flags]
 *     tsray status
 *     tsray stop
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { clusterFile, readClusterRecord, readNodeRecords, removeNodeRecord, sweepStale, writeClusterRecord, writeNodeRecord, type ClusterRecord } from '../internal/cluster/cluster-file';
import { nodeResourcesProblem, nodeSpec } from '../internal/cluster/node-resources';
import { isLoopbackHost, nodeIpFromPerspective, nodeIpProblem } from '../internal/cluster/node-ip';
import { pidAlive as alive, startService } from '../internal/cluster/processes';
import { createSessionDir } from '../internal/cluster/session';
import type { HeadConfig, HeadReady } from '../internal/head/main';
import { stateFileIn } from '../internal/head/persistence';
import type { NodeInfo } from '../internal/protocol/messages';
import { randomId } from '../internal/ids';
import type { NodeMainConfig, NodeReady } from '../internal/raylet/main';
import { describe } from '../internal/raylet/resources';
import { clusterToken, generateClusterToken, readTokenFile, setClusterToken, tokenFile, TOKEN_ENV, writeTokenFile } from '../internal/cluster/token';
import { askHeadForNodes } from '../internal/cluster/join';

const HEAD_MAIN = path.join(__dirname, '..', 'internal', 'head', 'main.js');
const RAYLET_MAIN = path.join(__dirname, '..', 'internal', 'raylet', 'main.js');

/** A mistake in the command line: printed with the usage, exit code 2. */
class UsageError extends Error {}


function num(v: string | undefined, flag: string, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new UsageError(`${flag} must be a non-negative ${integer ? 'integer' : 'number'}, got '${v}'`);
  return n;
}

async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      head: { type: 'boolean' },
      address: { type: 'string' },
      port: { type: 'string' },
      'num-cpus': { type: 'string' },
      'num-gpus': { type: 'string' },
      resources: { type: 'string' },
      'object-store-memory': { type: 'string' },
      'node-ip-address': { type: 'string' },
      restore: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.restore && !values.head) throw new UsageError('--restore is for a head (--head): it takes back the cluster of a head that stopped on this machine');
  if (values.head && values.address !== undefined) throw new UsageError('--head and --address do not go together: start a head with --head, or join one with --address HOST:PORT');
  if (!values.head && values.address === undefined) throw new UsageError('say what to start: `tsray start --head`, or `tsray start --address HOST:PORT` to join a head');
  if (values.address !== undefined && values.port !== undefined) throw new UsageError('--port is for the head (--head); a joining node listens on free ports');
  const port = num(values.port ?? '6380', '--port', true) as number;
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  let resources: Record<string, number> = {};
  if (values.resources !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values.resources);
    } catch (e) {
      throw new UsageError(`--resources must be JSON like '{"custom": 2}': ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new UsageError(`--resources must map names to non-negative numbers, got ${values.resources}`);
    }
    const problem = nodeResourcesProblem(parsed as Record<string, unknown>, 'cli');
    if (problem) throw new UsageError(problem);
    resources = parsed as Record<string, number>;
  }
  const given = values['node-ip-address'];
  if (given !== undefined) {
    const problem = nodeIpProblem(given);
    if (problem) throw new UsageError(problem);
  }
  const spec = nodeSpec({
    numCpus: num(values['num-cpus'], '--num-cpus'),
    numGpus: num(values['num-gpus'], '--num-gpus', true),
    resources,
    objectStoreMemory: num(values['object-store-memory'], '--object-store-memory', true),
  });
  // clusters killed on this machine leave their session directories behind: remove them
  sweepStale();
  if (values.address !== undefined) return join(values.address, given, spec);
  // a head listens on loopback unless told otherwise
  const host = given ?? '127.0.0.1';
  const existing = readClusterRecord();
  if (existing && alive(existing.pid)) {
    throw new UsageError(`a tsray head is already running on this machine at ${existing.address} (pid ${existing.pid}); stop it with \`tsray stop\``);
  }
  let sessionDir: string;
  if (values.restore) {
    // the head that crashed left its session directory, with its tables, behind
    if (!existing || !fs.existsSync(stateFileIn(existing.sessionDir))) {
      throw new UsageError(`--restore found no head that stopped on this machine with its tables kept (${clusterFile()}); start a new cluster without --restore`);
    }
    sessionDir = existing.sessionDir;
  } else sessionDir = createSessionDir('cli');
  // a token given in the environment lets every machine of a cluster share one; a restored head keeps its own
  const token = tokenFromEnv() ?? (values.restore ? readTokenFile(sessionDir) : undefined) ?? generateClusterToken();
  writeTokenFile(sessionDir, token);
  const logFile = path.join(sessionDir, 'head.log');
  const out = fs.openSync(logFile, 'a');
  const cfg: HeadConfig = {
    sessionDir,
    tcp: { host, port },
    node: { ...spec, nodeAddress: host },
    ownsSession: true,
    watchParent: false,
    clusterFile: clusterFile(),
    clusterToken: token,
    persist: true,
    restore: values.restore === true,
  };
  let ready: HeadReady;
  try {
    ready = (await startService<HeadReady>(HEAD_MAIN, cfg, { detached: true, timeoutMs: 60_000, what: 'the tsray head', output: out })).info;
  } catch (e) {
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    if (!values.restore) fs.rmSync(sessionDir, { recursive: true, force: true });
    if (/EADDRINUSE|Address already in use/i.test(log + String(e))) {
      throw new UsageError(`port ${port} on ${host} is in use (another tsray head, or another program); choose another with --port`);
    }
    throw e;
  } finally {
    fs.closeSync(out);
  }
  const address = `${host}:${port}`;
  const rec: ClusterRecord = { address, pid: ready.pid, sessionDir, startedAt: new Date().toISOString() };
  writeClusterRecord(rec);
  // the session of a head killed earlier is not the recorded one any more: nothing can take it back
  sweepStale();
  console.log(`Started a tsray head at ${address} (pid ${ready.pid}; logs in ${sessionDir}).`);
  console.log(`Resources: ${Object.entries(spec.resources).filter(([k]) => k !== 'memory' && k !== 'object_store_memory').map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log('');
  console.log('Connect a driver on this machine with:');
  console.log(`  await ray.init({ address: '${address}' })   // or { address: 'auto' }`);
  console.log(`Cluster token (keep it secret; also in ${tokenFile(sessionDir)}, readable by you only):`);
  console.log(`  ${token}`);
  if (isLoopbackHost(host)) {
    console.log('Join from another terminal of this machine with:');
    console.log(`  ${TOKEN_ENV}=${token} tsray start --address ${address}`);
    console.log('(it listens on 127.0.0.1 only: for nodes on other machines, start the head with --node-ip-address <this machine\'s address>)');
  } else {
    console.log('Join from another machine with:');
    console.log(`  ${TOKEN_ENV}=${token} tsray start --address ${address} --node-ip-address <that machine's address>`);
  }
  console.log('Stop it with:');
  console.log('  tsray stop');
}

/** Asks the head at `address` (HOST:PORT) for its nodes; an error that says why when it does not answer. */
async function headNodes(address: string, timeoutMs = 5000): Promise<NodeInfo[]> {
  const token = useToken();
  const source = tokenFromEnv() !== undefined ? TOKEN_ENV : 'the token file of the cluster `tsray start --head` started on this machine';
  return askHeadForNodes(`tcp://${address}`, { token, source }, timeoutMs);
}

/**
 * The cluster token this command uses: TSRAY_CLUSTER_TOKEN, else the token
 * of the head `tsray start --head` started on this machine. Set for this
 * process's connections and for the processes it starts.
 */
function useToken(): string | undefined {
  let token = tokenFromEnv();
  if (token === undefined) {
    const rec = readClusterRecord();
    if (rec && alive(rec.pid)) token = readTokenFile(rec.sessionDir);
  }
  if (token !== undefined) {
    setClusterToken(token);
    process.env[TOKEN_ENV] = token;
  }
  return token;
}

/**
 * `tsray start --address`: starts a node manager here and joins it to the
 * head. Without `--node-ip-address` the node listens on the address this
 * machine reaches the head from.
 */
async function join(address: string, given: string | undefined, spec: ReturnType<typeof nodeSpec>): Promise<void> {
  if (!/^[^\s:\/]+:\d{1,5}$/.test(address)) throw new UsageError(`--address must be HOST:PORT of a tsray head (for example 127.0.0.1:6380), got '${address}'`);
  await headNodes(address);
  const [headHost = '', headPort = '0'] = address.split(':');
  const host = given ?? (await nodeIpFromPerspective(headHost, Number(headPort)));
  if (given === undefined && !isLoopbackHost(host)) console.log(`Listening on ${host}, the address this machine reaches the head from (choose another with --node-ip-address).`);
  const nodeId = randomId(8);
  const sessionDir = createSessionDir('cli');
  const logFile = path.join(sessionDir, 'node.log');
  const out = fs.openSync(logFile, 'a');
  const cfg: NodeMainConfig = {
    nodeId,
    sessionDir,
    headAddress: `tcp://${address}`,
    resources: spec.resources,
    gpuIds: spec.gpuIds,
    objectStoreMemory: spec.objectStoreMemory,
    spillDir: path.join(sessionDir, 'spill', nodeId),
    isHead: false,
    nodeAddress: host,
    bindHost: host,
    ownsSession: true,
    watchParent: false,
  };
  let ready: NodeReady;
  try {
    ready = (await startService<NodeReady>(RAYLET_MAIN, cfg, { detached: true, timeoutMs: 60_000, what: 'the tsray node manager', output: out })).info;
  } catch (e) {
    fs.rmSync(sessionDir, { recursive: true, force: true });
    throw e;
  } finally {
    fs.closeSync(out);
  }
  writeNodeRecord({ nodeId, pid: ready.pid, head: address, sessionDir, startedAt: new Date().toISOString() });
  console.log(`Started node ${nodeId} (pid ${ready.pid}; logs in ${sessionDir}) and joined the tsray head at ${address}.`);
  console.log(`Resources: ${Object.entries(spec.resources).filter(([k]) => k !== 'memory' && k !== 'object_store_memory').map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log('Stop it with:');
  console.log('  tsray stop');
}

/** Stops the nodes `tsray start --address` started on this machine. */
async function stopNodes(): Promise<number> {
  let n = 0;
  for (const rec of readNodeRecords()) {
    if (alive(rec.pid)) {
      process.kill(rec.pid, 'SIGTERM');
      const deadline = Date.now() + 15_000;
      while (alive(rec.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (alive(rec.pid)) process.kill(rec.pid, 'SIGKILL');
      n++;
      console.log(`Stopped node ${rec.nodeId} (joined to ${rec.head}).`);
    }
    fs.rmSync(rec.sessionDir, { recursive: true, force: true });
    removeNodeRecord(rec.nodeId);
  }
  return n;
}

/** The token in TSRAY_CLUSTER_TOKEN, if any. */
function tokenFromEnv(): string | undefined {
  try {
    return clusterToken();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function stop(): Promise<void> {
  const nodes = await stopNodes();
  const rec = readClusterRecord();
  if (!rec || !alive(rec.pid)) {
    if (rec) {
      // a head that died (kill -9) left its session behind; stopping forgets it
      fs.rmSync(clusterFile(), { force: true });
      sweepStale();
    }
    if (nodes === 0) console.log('No tsray cluster or node started with `tsray start` is running on this machine.');
    return;
  }
  process.kill(rec.pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (alive(rec.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(rec.pid)) {
    // the head did not clean up: do what it would have
    process.kill(rec.pid, 'SIGKILL');
    const killDeadline = Date.now() + 5_000;
    while (alive(rec.pid) && Date.now() < killDeadline) await new Promise((r) => setTimeout(r, 50));
    fs.rmSync(rec.sessionDir, { recursive: true, force: true });
    console.log(`The head did not stop within 15 s; killed it (pid ${rec.pid}) and removed ${rec.sessionDir}.`);
  }
  fs.rmSync(clusterFile(), { force: true });
  console.log(`Stopped the tsray cluster at ${rec.address}.`);
}

async function status(): Promise<void> {
  const rec = readClusterRecord();
  const head = rec && alive(rec.pid) ? rec.address : readNodeRecords().find((n) => alive(n.pid))?.head;
  if (head === undefined) {
    console.log('No tsray cluster is running on this machine. Start one with `tsray start --head`.');
    process.exitCode = 1;
    return;
  }
  const nodes = await headNodes(head).catch((e: Error) => {
    throw new Error(`${e.message.replace(/; check.*/, '')}; the head is gone or unreachable`);
  });
  console.log(rec && alive(rec.pid) ? `tsray cluster at ${head} (head pid ${rec.pid}, up since ${rec.startedAt})` : `tsray cluster at ${head}`);
  const live = nodes.filter((n) => n.alive);
  console.log(`${live.length} node(s) alive${nodes.length > live.length ? `, ${nodes.length - live.length} dead` : ''}`);
  const used = new Map<string, [number, number]>();
  for (const n of nodes) {
    console.log(`  ${n.nodeId}${n.isHead ? ' (head)' : ''} ${n.alive ? 'alive' : 'dead'} at ${n.address}`);
    if (!n.alive) continue;
    for (const [k, total] of Object.entries(n.total)) {
      if (k === 'memory' || k === 'object_store_memory') continue;
      const u = Math.round((total - (n.available[k] ?? 0)) * 10000) / 10000;
      console.log(`    ${k}: ${u}/${total} used`);
      const sum = used.get(k) ?? [0, 0];
      used.set(k, [sum[0] + u, sum[1] + total]);
    }
  }
  console.log('Resources (used/total):');
  for (const [k, [u, total]] of used) console.log(`  ${k}: ${Math.round(u * 10000) / 10000}/${Math.round(total * 10000) / 10000}`);
  const demand = new Map<string, number>();
  for (const n of live) for (const d of n.demand ?? []) demand.set(describe(d.resources), (demand.get(describe(d.resources)) ?? 0) + d.n);
  console.log('Pending demand:');
  if (demand.size === 0) console.log('  (no resource demands)');
  for (const [shape, count] of demand) console.log(`  ${shape}: ${count} pending`);
}

/**
 * `tsray <name> …` of a library (`tsray serve …`): its `cli` entry's
 * `main(argv)`, from the project in the working directory (or next to core).
 */
async function library(pkg: string, name: string, argv: string[]): Promise<void> {
  let entry: string;
  try {
    entry = require.resolve(`${pkg}/cli`, { paths: [process.cwd(), __dirname] });
  } catch {
    throw new Error(`tsray ${name} needs ${pkg}: install it in your project (npm install ${pkg})`);
  }
  const mod = require(entry) as { main: (argv: string[]) => Promise<void>; ServeUsageError?: new () => Error };
  try {
    await mod.main(argv);
  } catch (e) {
    if (mod.ServeUsageError && e instanceof mod.ServeUsageError) throw new UsageError(e.message);
    throw e;
  }
}

const HELP = `usage:
  tsray start --head [--port 6380] [--num-cpus N] [--num-gpus N] [--resources JSON]
                     [--object-store-memory BYTES] [--node-ip-address IP] [--restore]
  tsray start --address HOST:PORT [--num-cpus N] [--num-gpus N] [--resources JSON]
                     [--object-store-memory BYTES] [--node-ip-address IP]
  tsray status
  tsray stop
  tsray serve run|deploy|status|shutdown …   (with @tsray/serve installed; tsray serve --help)
  tsray --version`;

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'start':
      return start(rest);
    case 'stop':
      return stop();
    case 'status':
      return status();
    case 'serve':
      return library('@tsray/serve', 'serve', rest);
    case '--version':
    case '-v':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      console.log((require('../../package.json') as { version: string }).version);
      return;
    case undefined:
    case '--help':
    case '-h':
      console.log(HELP);
      return;
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

main().catch((e: unknown) => {
  if (e instanceof UsageError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    console.error(`tsray: ${(e as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  console.error(`tsray: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
