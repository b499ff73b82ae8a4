/**
 * The driver's runtime: starts a local cluster (or joins one), registers a
 * job, and connects the driver's CoreWorker. Stops everything it started at
 * `shutdown()` or when the process exits.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RaySystemError, RuntimeEnvSetupError, type NodeDiedError } from '../../errors';
import { randomId } from '../ids';
import { log } from '../log';
import { ObjectStoreClient } from '../objects/object-store';
import { MT, type Address, type JobConfig, type Message, type NodeInfo } from '../protocol/messages';
import { Endpoint, type Peer } from '../transport/endpoint';
import { CoreWorker } from '../runtime/core-worker';
import { createSessionDir, ipcAddress, removeIpcFile } from '../cluster/session';
import { clusterFile, readClusterRecord, sweepStale } from '../cluster/cluster-file';
import { askHeadForNodes, chooseToken, type TokenChoice } from '../cluster/join';
import { nodeSpec } from '../cluster/node-resources';
import { localAddresses } from '../cluster/node-ip';
import { processGone, startService, waitExit, type Service } from '../cluster/processes';
import { loaderFlags } from '../raylet/worker-pool';
import type { HeadConfig, HeadReady } from '../head/main';
import { forceGc } from './gc';
import type { InitConfig } from './options';
import { runtimeLost, type Runtime } from './context';
import { Liveness } from './liveness';
import { WorkingDirPackages, storeInHead, type PackedDir, type WorkingDirRef } from '../runtime-env/working-dir';
import { prefaultSetting } from '../objects/prefault';

const HEAD_MAIN = path.join(__dirname, '..', 'head', 'main.js');

/** Turns `init({ address })` into the head's ZeroMQ address. */
function headAddressOf(address: string): string {
  if (address === 'auto') {
    const rec = readClusterRecord();
    if (rec) return `tcp://${rec.address}`;
    throw new RaySystemError(`init({ address: 'auto' }) found no running cluster on this machine (${clusterFile()}); start one with \`tsray start --head\`, or call init() without an address`);
  }
  if (address.startsWith('tcp://') || address.startsWith('ipc://')) return address;
  if (!/^[^:]+:\d+$/.test(address)) throw new TypeError(`options.address must be 'auto' or HOST:PORT, got ${JSON.stringify(address)}`);
  return `tcp://${address}`;
}

function printLogs(lines: Array<[number, string, string]>): void {
  for (const [stream, prefix, text] of lines) {
    (stream === 0 ? process.stdout : process.stderr).write(`(${prefix}) ${text}\n`);
  }
}

/** See the module comment. */
export class DriverRuntime implements Runtime {
  readonly mode = 'driver' as const;
  /** the job's npm packages reach workers through the job's settings (node managers apply them) */
  readonly npm = undefined;
  private closed = false;
  private readonly onExit = (): void => this.killSync();
  private readonly liveness: Liveness;

  private constructor(
    readonly core: CoreWorker,
    readonly jobId: string,
    readonly nodeId: string,
    readonly namespace: string,
    readonly headAddress: string,
    readonly rayletAddress: string,
    private readonly endpoint: Endpoint,
    private readonly store: ObjectStoreClient,
    private readonly cluster: Service<HeadReady> | undefined,
    readonly workingDir: WorkingDirRef | undefined,
    readonly packages: WorkingDirPackages,
    private readonly sessionDir: string,
    private readonly rayletPid: number,
  ) {
    process.on('exit', this.onExit);
    this.liveness = new Liveness(
      {
        nodeId,
        rayletPid,
        headAddress,
        headProc: cluster?.proc,
        ping: (timeoutMs) => endpoint.call(headAddress, { t: MT.Ping }, timeoutMs, { weak: true }),
      },
      (err) => this.lost(err),
    );
  }

  /** Starts watching the node manager and the head (once this runtime is the process's). */
  watch(): void {
    if (!this.closed) this.liveness.start();
  }

  /** Starts or joins a cluster and connects this driver to it. */
  static async start(cfg: InitConfig): Promise<DriverRuntime> {
    // a bad TSRAY_PREFAULT fails init before any process starts (node managers read it too)
    const prefault = prefaultSetting();
    // packages go to the head once this driver is connected to it
    let connected: { endpoint: Endpoint; headAddress: string } | undefined;
    const packages = new WorkingDirPackages((pkg, bytes) =>
      connected ? storeInHead(connected.endpoint, connected.headAddress, pkg, bytes) : Promise.reject(new Error('this driver is not connected to a cluster')),
    );
    // a bad working directory fails init before any process starts
    let jobDir: PackedDir | undefined;
    if (cfg.workingDir) {
      try {
        jobDir = await packages.pack(cfg.workingDir);
      } catch (e) {
        throw new RuntimeEnvSetupError(`init() cannot set up the job's runtime environment: ${(e as Error).message}`);
      }
    }
    // clusters killed on this machine leave their session directories behind: remove them
    sweepStale();
    let cluster: Service<HeadReady> | undefined;
    let headAddress: string;
    let rayletAddress: string;
    let nodeId: string;
    let sessionDir: string;
    let bindHost: string | undefined;
    let rayletPid: number;
    // the token of this driver's connections: its cluster's, never the process's
    let token: TokenChoice = { token: undefined, source: 'none' };
    if (cfg.address === undefined) {
      const spec = nodeSpec({ numCpus: cfg.numCpus, numGpus: cfg.numGpus, resources: cfg.resources, objectStoreMemory: cfg.objectStoreMemory });
      sessionDir = createSessionDir('driver');
      const headCfg: HeadConfig = { sessionDir, node: { ...spec, nodeAddress: '127.0.0.1' }, ownsSession: true };
      try {
        cluster = await startService<HeadReady>(HEAD_MAIN, headCfg, { detached: true, timeoutMs: 60_000, what: 'the tsray head' });
      } catch (e) {
        fs.rmSync(sessionDir, { recursive: true, force: true });
        throw e;
      }
      headAddress = cluster.info.headAddress;
      rayletAddress = cluster.info.rayletAddress;
      nodeId = cluster.info.nodeId;
      rayletPid = cluster.info.rayletPid;
    } else {
      headAddress = headAddressOf(cfg.address);
      token = chooseToken(headAddress, cfg.token, cfg.address === 'auto');
      const node = await DriverRuntime.localNode(headAddress, token);
      sessionDir = node.sessionDir;
      rayletAddress = node.endpoint;
      nodeId = node.nodeId;
      rayletPid = node.pid;
      if (node.endpoint.startsWith('tcp://')) bindHost = node.address;
    }
    const workerId = randomId(8);
    let core: CoreWorker | undefined;
    let endpoint: Endpoint | undefined;
    // messages that arrive before the runtime exists are kept until it does
    let early: Array<[Message, Peer]> | undefined = [];
    try {
      endpoint = await Endpoint.bind(
        // in a cluster that spans nodes, processes on other nodes reach the driver over tcp
        bindHost !== undefined ? `tcp://${bindHost}:0` : ipcAddress(sessionDir, `d-${workerId}`),
        workerId,
        (m, from) => {
          if (core) core.onMessage(m, from);
          else early?.push([m, from]);
        },
        { idleExit: true, token: token.token ?? null },
      );
      endpoint.keepAlive(1);
      const job = (await endpoint.call(headAddress, { t: MT.RegisterJob, driver: { workerId, nodeId, endpoint: endpoint.address, slot: -1 }, ns: cfg.namespace, pid: process.pid }, 30_000)).data as {
        jobId: string;
        ns: string;
      };
      connected = { endpoint, headAddress };
      let workingDir: WorkingDirRef | undefined;
      if (jobDir) {
        try {
          workingDir = await packages.store(jobDir);
        } catch (e) {
          throw new RuntimeEnvSetupError(`init() cannot set up the job's runtime environment: ${(e as Error).message}`);
        }
      }
      const jobCfg: JobConfig = {
        jobId: job.jobId,
        ns: job.ns,
        env: cfg.env,
        cwd: process.cwd(),
        execArgv: loaderFlags(process.execArgv),
        logToDriver: cfg.logToDriver,
        driver: { workerId, nodeId, endpoint: endpoint.address, slot: -1 },
        jestGlobals: process.env.JEST_WORKER_ID !== undefined,
        ...(workingDir ? { pkg: workingDir.pkg } : {}),
        ...(cfg.npm ? { npm: cfg.npm } : {}),
      };
      // node managers of other nodes start this job's workers with these settings
      await endpoint.call(headAddress, { t: MT.PutJobConfig, job: jobCfg }, 30_000);
      const reg = (await endpoint.call(rayletAddress, { t: MT.RegisterClient, kind: 'driver', workerId, pid: process.pid, endpoint: endpoint.address, job: jobCfg }, 30_000)).data as {
        slot: number;
        arenaPath: string;
        spillDir: string;
      };
      const self: Address = { workerId, nodeId, endpoint: endpoint.address, slot: reg.slot };
      const spillDir = cfg.spillDir ? path.join(cfg.spillDir, workerId) : reg.spillDir;
      const store = ObjectStoreClient.open(reg.arenaPath, nodeId, reg.slot, spillDir, () => {
        forceGc();
        return (core?.refs.sweepCollected() ?? 0) > 0;
      }, cfg.spillDir !== undefined);
      // this driver's own mapping of the node's store: it is where its puts write
      store.prefault(prefault);
      core = new CoreWorker({
        mode: 'driver',
        self,
        jobId: job.jobId,
        namespace: job.ns,
        endpoint,
        headAddress,
        rayletAddress,
        store,
        testGlobals: false,
        jobEnv: cfg.env,
        warn: (msg) => process.stderr.write(`[tsray] warning: ${msg}\n`),
        onLogs: cfg.logToDriver ? printLogs : undefined,
      });
      for (const [m, from] of early ?? []) core.onMessage(m, from);
      early = undefined;
      endpoint.keepAlive(-1);
      return new DriverRuntime(core, job.jobId, nodeId, job.ns, headAddress, rayletAddress, endpoint, store, cluster, workingDir, packages, sessionDir, rayletPid);
    } catch (e) {
      endpoint?.close();
      if (cluster) {
        cluster.proc.kill('SIGTERM');
        await waitExit(cluster.proc, 5000);
      }
      throw e;
    }
  }

  /** Finds the node of a running cluster that lives on this machine. */
  private static async localNode(headAddress: string, token: TokenChoice): Promise<NodeInfo> {
    const nodes = await askHeadForNodes(headAddress, token, 5000);
    // a node runs on this machine when its session directory and its object store are here,
    // and it listens on one of this machine's addresses (hosts that share a disk, such as
    // network namespaces of one machine, each see the others' files)
    const files = nodes.filter((n) => n.alive && fs.existsSync(n.sessionDir) && fs.existsSync(n.arenaPath));
    const ips = localAddresses();
    const here = files.some((n) => ips.has(n.address)) ? files.filter((n) => ips.has(n.address)) : files;
    const local = here.find((n) => n.isHead) ?? here[0];
    if (!local) throw new RaySystemError(`the cluster at ${headAddress.replace('tcp://', '')} has no node on this machine; start one here with \`tsray start --address ${headAddress.replace('tcp://', '')}\``);
    return local;
  }

  /** Stops the job and, for a local cluster, the cluster. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.liveness.stop();
    process.removeListener('exit', this.onExit);
    this.core.close();
    try {
      await this.endpoint.call(this.headAddress, { t: MT.JobFinished, jobId: this.jobId }, 3000);
    } catch (e) {
      log.debug(`job finish not acknowledged: ${(e as Error).message}`);
    }
    const address = this.endpoint.address;
    this.endpoint.close();
    this.store.close();
    if (this.cluster) {
      this.cluster.proc.kill('SIGTERM');
      await waitExit(this.cluster.proc, 10_000);
    } else removeIpcFile(address);
  }

  /**
   * The node manager or the head died: everything pending fails with `err`,
   * later calls throw it, and the process may `init()` again. What is left
   * of the driver's own cluster stops, and its session directory goes.
   */
  private lost(err: NodeDiedError): void {
    if (this.closed) return;
    this.closed = true;
    process.removeListener('exit', this.onExit);
    runtimeLost(this, err);
    process.stderr.write(`[tsray] error: ${err.message}\n`);
    this.core.fail(err);
    const address = this.endpoint.address;
    this.endpoint.close(err);
    this.store.close();
    if (!this.cluster) {
      removeIpcFile(address);
      return;
    }
    const head = this.cluster.proc;
    if (head.exitCode === null && head.signalCode === null) head.kill('SIGTERM');
    // a head killed with SIGKILL did not clean up: its node manager stops (its parent is gone), then the session goes
    const rayletPid = this.rayletPid;
    const sessionDir = this.sessionDir;
    const deadline = Date.now() + 10_000;
    const sweep = setInterval(() => {
      if (!processGone(rayletPid) && Date.now() < deadline) return;
      clearInterval(sweep);
      if (head.pid !== undefined && !processGone(head.pid)) return; // it cleans up itself
      fs.rmSync(sessionDir, { recursive: true, force: true });
    }, 100);
    sweep.unref();
  }

  /** At process exit: stop the local cluster (synchronously). */
  private killSync(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.cluster?.proc.pid) {
      try {
        process.kill(this.cluster.proc.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    } else removeIpcFile(this.endpoint.address);
  }
}
