/**
 * Entry point of a worker process: registers with its node manager, maps
 * the node's object store and waits for tasks or an actor.
 * @internal
 */
import { setLogRole, log } from '../log';
import { ObjectStoreClient } from '../objects/object-store';
import { MT, type Address, type Message } from '../protocol/messages';
import { Endpoint, type Peer } from '../transport/endpoint';
import { CoreWorker } from '../runtime/core-worker';
import { currentTask } from '../runtime/executor';
import { ipcAddress } from '../cluster/session';
import { watchParent } from '../cluster/processes';
import { dieWithParent, giveMemoryBackWhenIdle } from './process-addon';
import { setRuntime, type Runtime } from '../api/context';
import { forceGc } from '../api/gc';
// Shippables that arrive in task arguments are made by it
import '../api/shippable';
import { LOG_MARKER } from '../raylet/worker-pool';
import * as fs from 'node:fs';
import { WorkingDirPackages, storeInHead, type WorkingDirRef } from '../runtime-env/working-dir';
import { installNpmResolution } from '../runtime-env/npm-resolution';
import type { NpmEnvSpec } from '../runtime-env/npm-spec';

function env(name: string): string {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set: a worker is started by a tsray node manager`);
  return v;
}

/** Marks the start of each task's output so the node manager can prefix it. */
function installLogMarkers(nameOf: () => string): void {
  for (const stream of [process.stdout, process.stderr]) {
    const orig = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    let last = '';
    let atLineStart = true;
    stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
      const name = nameOf();
      if (name !== last) {
        last = name;
        orig(`${atLineStart ? '' : '\n'}${LOG_MARKER}${name}\n`);
      }
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
      if (text.length > 0) atLineStart = text.endsWith('\n');
      return orig(chunk, ...rest);
    }) as typeof stream.write;
  }
}

/**
 * The npm environment this worker was started in (TSRAY_NPM_ENV, set by
 * its node manager), with its packages made to resolve first when it has
 * any (TSRAY_NPM_ENV_DIR: where they are installed).
 */
function npmEnvOfWorker(): NpmEnvSpec | undefined {
  const json = process.env.TSRAY_NPM_ENV;
  const dir = process.env.TSRAY_NPM_ENV_DIR;
  delete process.env.TSRAY_NPM_ENV;
  delete process.env.TSRAY_NPM_ENV_DIR;
  if (dir !== undefined) installNpmResolution(dir);
  return json === undefined ? undefined : (JSON.parse(json) as NpmEnvSpec);
}

async function main(): Promise<void> {
  const workerId = env('TSRAY_WORKER_ID');
  setLogRole(`worker ${workerId.slice(0, 6)}`);
  const nodeId = env('TSRAY_NODE_ID');
  const sessionDir = env('TSRAY_SESSION_DIR');
  const rayletAddress = env('TSRAY_RAYLET');
  const headAddress = env('TSRAY_HEAD');
  const jobId = env('TSRAY_JOB_ID');
  const namespace = env('TSRAY_NAMESPACE');
  // started in an unpacked runtimeEnv.workingDir: what it submits runs there too, unless it names its own
  const wdDir = process.env.TSRAY_WORKING_DIR;
  const wdPkg = process.env.TSRAY_WORKING_DIR_PKG;
  let workingDir: WorkingDirRef | undefined;
  if (wdDir !== undefined && wdPkg !== undefined) {
    const real = fs.realpathSync(wdDir);
    workingDir = { pkg: wdPkg, roots: real === wdDir ? [wdDir] : [wdDir, real] };
  }
  // started in an npm environment: its packages resolve first, and what it submits runs there too
  const npm = npmEnvOfWorker();
  let core: CoreWorker | undefined;
  // The node manager may hand this worker out (and the head may send it an
  // actor) before its runtime exists: keep what arrives until then.
  let early: Array<[Message, Peer]> | undefined = [];
  watchParent(() => process.exit(0));
  dieWithParent();
  const bindHost = process.env.TSRAY_BIND_HOST;
  delete process.env.TSRAY_BIND_HOST;
  // in a cluster that spans nodes, processes on other nodes reach this one over tcp
  const listen = bindHost !== undefined ? `tcp://${bindHost}:0` : ipcAddress(sessionDir, `w-${workerId}`);
  // work pushed here: an idle worker is one that gets none (see giveMemoryBackWhenIdle)
  let pushed = 0;
  const endpoint: Endpoint = await Endpoint.bind(listen, workerId, (m, from) => {
    if (m.t === MT.PushTasks || m.t === MT.PushActorTasks || m.t === MT.CreateActor) pushed++;
    if (m.t === MT.ExitWorker) {
      // asked to stop for being idle: not while it owns what others still use (Ray's workers refuse too)
      const busy = m.ifIdle === true && core?.ownsWhatOthersUse();
      if (busy && m.reqId !== undefined) endpoint.respond(from, m.reqId, false, undefined, busy);
      if (!busy) process.exit(0);
      return;
    }
    if (core) core.onMessage(m, from);
    else early?.push([m, from]);
  });
  const reg = (await endpoint.call(rayletAddress, { t: MT.RegisterClient, kind: 'worker', workerId, pid: process.pid, endpoint: endpoint.address }, 60_000)).data as {
    slot: number;
    arenaPath: string;
    spillDir: string;
  };
  const self: Address = { workerId, nodeId, endpoint: endpoint.address, slot: reg.slot };
  const store = ObjectStoreClient.open(reg.arenaPath, nodeId, reg.slot, reg.spillDir, () => {
    forceGc();
    return (core?.refs.sweepCollected() ?? 0) > 0;
  });
  core = new CoreWorker({
    mode: 'worker',
    self,
    jobId,
    namespace,
    endpoint,
    headAddress,
    rayletAddress,
    store,
    testGlobals: process.env.TSRAY_TEST_GLOBALS === '1',
    jobEnv: {},
    workingDir: workingDir ? wdDir : undefined,
    warn: (msg) => process.stderr.write(`[tsray] warning: ${msg}\n`),
  });
  const c = core;
  for (const [m, from] of early ?? []) c.onMessage(m, from);
  early = undefined;
  const rt: Runtime = {
    mode: 'worker',
    core: c,
    jobId,
    nodeId,
    namespace,
    headAddress,
    rayletAddress,
    workingDir,
    npm,
    packages: new WorkingDirPackages((pkg, bytes) => storeInHead(endpoint, headAddress, pkg, bytes)),
    shutdown: () => Promise.resolve(),
  };
  setRuntime(rt);
  installLogMarkers(() => {
    const ctx = currentTask();
    if (ctx?.actorId) return c.executor?.logName ?? 'actor';
    return ctx?.name ?? c.executor?.logName ?? 'worker';
  });
  giveMemoryBackWhenIdle(() => c.executor?.quiet ?? true, () => pushed);
  process.on('unhandledRejection', (e) => {
    log.error(`unhandled promise rejection in a task: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  });
}

main().catch((e: unknown) => {
  log.error(`worker failed to start: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
