/**
 * The driver's runtime: starts a local cluster (or joins one), registers a
 * job, and connects the driver's CoreWorker. Stops everything it started at
 * `shutdown()` or when the process exits.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RaySystemError, RuntimeEnvSetupError } from '../../errors';
import { randomId } from '../ids';
import { log } from '../log';
import { ObjectStoreClient } from '../objects/object-store';
import { MT, type Address, type JobConfig, type Message, type NodeInfo } from '../protocol/messages';
import { Endpoint, type Peer } from '../transport/endpoint';
import { CoreWorker } from '../runtime/core-worker';
import { createSessionDir, ipcAddress, removeIpcFile } from '../cluster/session';
import { clusterFile, readClusterRecord } from '../cluster/cluster-file';
import { clusterToken, readTokenFile, setClusterToken, TOKEN_ENV } from '../cluster/token';
import { nodeSpec } from '../cluster/node-resources';
import { startService, waitExit, type Service } from '../cluster/processes';
import { loaderFlags } from '../raylet/worker-pool';
import type { HeadConfig, HeadReady } from '../head/main';
import { forceGc } from './gc';
import type { InitConfig } from './options';
import type { Runtime } from './context';
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

/**
 * Without TSRAY_CLUSTER_TOKEN, takes the token of the cluster `tsray start`
 * started on this machine (its session directory's token file), if any.
 */
function useLocalToken(): void {
  if (clusterToken() !== undefined) return;
  const rec = readClusterRecord();
  const token = rec ? readTokenFile(rec.sessionDir) : undefined;
  if (token !== undefined) setClusterToken(token);
}

function printLogs(lines: Array<[number, string, string]>): void {
  for (const [stream, prefix, text] of lines) {
    (stream === 0 ? process.stdout : process.stderr).write(`(${prefix}) ${text}\n`);
  }
}

/** See the module comment. */
export class DriverRuntime implements Runtime {
  readonly mode = 'driver' as const;
  private closed = false;
  private readonly onExit = (): void => this.killSync();

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
  ) {
    process.on('exit', this.onExit);
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
    let cluster: Service<HeadReady> | undefined;
    let headAddress: string;
    let rayletAddress: string;
    let nodeId: string;
    let sessionDir: string;
    let bindHost: string | undefined;
    if (cfg.address === undefined) {
      const spec = nodeSpec({ numCpus: cfg.numCpus, numGpus: cfg.numGpus, resources: cfg.resources, objectStoreMemory: cfg.objectStoreMemory });
      sessionDir = createSessionDir();
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
    } else {
      headAddress = headAddressOf(cfg.address);
      useLocalToken();
      const node = await DriverRuntime.localNode(headAddress);
      sessionDir = node.sessionDir;
      rayletAddress = node.endpoint;
      nodeId = node.nodeId;
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
        { idleExit: true },
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
      return new DriverRuntime(core, job.jobId, nodeId, job.ns, headAddress, rayletAddress, endpoint, store, cluster, workingDir, packages);
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
  private static async localNode(headAddress: string): Promise<NodeInfo> {
    const id = `probe-${randomId(4)}`;
    const probe = await Endpoint.bind(`inproc://${id}`, id, () => undefined);
    try {
      const nodes = (await probe.call(headAddress, { t: MT.GetClusterInfo }, 5000).catch((e: Error) => {
        const at = headAddress.replace('tcp://', '');
        const token = headAddress.startsWith('tcp://')
          ? clusterToken() === undefined
            ? `; a cluster started with \`tsray start --head\` answers only peers that hold its cluster token: set ${TOKEN_ENV} to the token it printed`
            : `; check that ${TOKEN_ENV} (or this machine's cluster token file) holds that cluster's token`
          : '';
        throw new RaySystemError(`no tsray head answers at ${at} (${e.message}); is the cluster running? Start it with \`tsray start --head\`${token}`);
      })).data as NodeInfo[];
      // a node runs on this machine when its session directory and its object store are here
      const here = nodes.filter((n) => n.alive && fs.existsSync(n.sessionDir) && fs.existsSync(n.arenaPath));
      const local = here.find((n) => n.isHead) ?? here[0];
      if (!local) throw new RaySystemError(`the cluster at ${headAddress.replace('tcp://', '')} has no node on this machine; start one here with \`tsray start --address ${headAddress.replace('tcp://', '')}\``);
      return local;
    } finally {
      probe.close();
    }
  }

  /** Stops the job and, for a local cluster, the cluster. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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
