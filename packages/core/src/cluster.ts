/**
 * `ray.Cluster`: a cluster of several nodes on one machine, for tests and
 * experiments (Ray's `cluster_utils.Cluster`). Each node is a separate set of
 * processes with its own node manager, object store, resources and ports,
 * joined to one head over tcp on loopback, exactly as nodes on separate
 * hosts join with `tsray start --address`.
 *
 * ```ts
 * const cluster = await ray.Cluster.start({ head: { numCpus: 1 } });
 * const node = await cluster.addNode({ numCpus: 2, resources: { special: 1 } });
 * await ray.init({ address: cluster.address });
 * // ... node.nodeId is what getRuntimeContext().nodeId reports there
 * await cluster.removeNode(node); // kills its processes, as a crash would
 * await ray.shutdown();
 * await cluster.shutdown();
 * ```
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RaySystemError } from './errors';
import { createSessionDir } from './internal/cluster/session';
import { sweepStale } from './internal/cluster/cluster-file';
import { nodeSpec } from './internal/cluster/node-resources';
import { pidAlive as alive, startService, waitExit, type Service } from './internal/cluster/processes';
import type { HeadConfig, HeadReady } from './internal/head/main';
import type { NodeMainConfig, NodeReady } from './internal/raylet/main';
import { randomId } from './internal/ids';
import { MT, type NodeInfo as WireNode } from './internal/protocol/messages';
import { Endpoint } from './internal/transport/endpoint';
import { generateClusterToken, registerLocalCluster, tokenFromEnv, unregisterLocalCluster, writeTokenFile } from './internal/cluster/token';
import type { ArenaStats } from './internal/native';
import type { TransferStats } from './internal/raylet/object-manager';

const HEAD_MAIN = path.join(__dirname, 'internal', 'head', 'main.js');
const RAYLET_MAIN = path.join(__dirname, 'internal', 'raylet', 'main.js');

/** Resources of a node of a {@link Cluster}. */
export interface ClusterNodeOptions {
  /** CPUs it offers. @default 1 */
  numCpus?: number;
  /** GPUs it declares (ids 0..n-1); none are detected for these nodes. @default 0 */
  numGpus?: number;
  /** Custom resources, e.g. `{ 'accelerator_type:H100': 1, special: 2 }`. */
  resources?: Record<string, number>;
  /** Bytes of its shared-memory object store. @default 256 MiB */
  objectStoreMemory?: number;
}

/** Options of {@link Cluster.start}. */
export interface ClusterStartOptions {
  /** The head node's resources. */
  head?: ClusterNodeOptions;
  /** The address every node listens on. @default '127.0.0.1' */
  host?: string;
}

/** A node of a {@link Cluster}. */
export interface ClusterNode {
  /** its id: what `getRuntimeContext().nodeId` reports in its workers, and `ray.nodes()` lists */
  readonly nodeId: string;
  /** pid of its node manager (the head's pid for the head node) */
  readonly pid: number;
  /** whether this is the head node */
  readonly isHead: boolean;
}

/** What {@link Cluster.objectStats} reports about a node's object store and its transfers. */
export interface ClusterNodeObjectStats {
  /** bytes of the node's shared-memory store */
  capacityBytes: number;
  /** bytes held by objects in it, copies of other nodes' objects included */
  usedBytes: number;
  /** objects in it */
  objects: number;
  /** transfers this node started to copy objects from other nodes (one per object, however many tasks asked) */
  pulls: number;
  /** bytes those transfers brought */
  pulledBytes: number;
  /** reads of other nodes' objects answered by a copy already here or a transfer under way */
  dedupedPulls: number;
  /** bytes this node sent to other nodes */
  servedBytes: number;
  /** copies of other nodes' objects held now */
  copies: number;
  /** primary copies held for owners on other nodes (large task returns made here) */
  primaries: number;
  /** copies evicted to make room */
  evictions: number;
  /** bytes at the start of the store faulted in ahead of use (`TSRAY_PREFAULT`; by the node manager, and by drivers for their own mappings) */
  prefaultedBytes: number;
}

interface NodeRecord extends ClusterNode {
  readonly service: Service<unknown>;
  readonly sessionDir: string;
  /** where the node manager listens for its own processes (for stats) */
  readonly localEndpoint: string;
  /** other processes of the node to kill with it (the head node's node manager) */
  readonly extraPids?: number[];
}

const DEFAULT_STORE = 256 * 1024 * 1024;

function specOf(o: ClusterNodeOptions | undefined): ReturnType<typeof nodeSpec> {
  if (o !== undefined && (typeof o !== 'object' || o === null || Array.isArray(o))) throw new TypeError(`Cluster node options must be an object, got ${String(o)}`);
  for (const k of Object.keys(o ?? {})) {
    if (!['numCpus', 'numGpus', 'resources', 'objectStoreMemory'].includes(k)) {
      throw new TypeError(`unknown Cluster node option '${k}'; valid options: numCpus, numGpus, resources, objectStoreMemory`);
    }
  }
  return nodeSpec({
    numCpus: o?.numCpus ?? 1,
    // never probe nvidia-smi for a simulated node: it has what it declares
    numGpus: o?.numGpus ?? 0,
    resources: o?.resources,
    objectStoreMemory: o?.objectStoreMemory ?? DEFAULT_STORE,
  });
}


/** See the module comment. */
export class Cluster {
  private readonly members: NodeRecord[] = [];
  private readonly removed = new Set<string>();
  private readonly probe: Endpoint;
  private closed = false;

  private constructor(
    /** HOST:PORT of the head: pass it to `ray.init({ address })` */
    readonly address: string,
    /**
     * The cluster token every connection presents. `ray.init({ address })`
     * to this cluster in this process uses it (while the cluster runs);
     * give it to drivers in other processes as TSRAY_CLUSTER_TOKEN or
     * `init({ token })`. It never becomes the process's token: a later
     * `init()` to another cluster presents that cluster's.
     */
    readonly token: string,
    private readonly headTcp: string,
    private readonly host: string,
    head: NodeRecord,
    probe: Endpoint,
    private readonly headCfg: HeadConfig,
  ) {
    this.members.push(head);
    this.probe = probe;
  }

  /** Starts a head node (head and node manager) listening on `host`. */
  static async start(options: ClusterStartOptions = {}): Promise<Cluster> {
    const host = options.host ?? '127.0.0.1';
    const spec = specOf(options.head);
    // every connection of the cluster presents its token (TSRAY_CLUSTER_TOKEN's, when set)
    const token = tokenFromEnv() ?? generateClusterToken();
    sweepStale();
    const sessionDir = createSessionDir('cluster');
    writeTokenFile(sessionDir, token);
    const cfg: HeadConfig = { sessionDir, tcp: { host, port: 0 }, node: { ...spec, nodeAddress: host }, ownsSession: true, clusterToken: token, persist: true };
    let head: NodeRecord & { tcp: string };
    try {
      head = await Cluster.startHead(cfg);
    } catch (e) {
      fs.rmSync(sessionDir, { recursive: true, force: true });
      throw e;
    }
    const probeId = `cluster-${randomId(4)}`;
    const probe = await Endpoint.bind(`inproc://${probeId}`, probeId, () => undefined, { token });
    const tcp = head.tcp;
    const address = tcp.slice('tcp://'.length);
    // a driver of this process that joins this cluster presents its token
    registerLocalCluster(address, token);
    return new Cluster(address, token, tcp, host, head, probe, cfg);
  }

  /** Starts a head process (and its node's node manager) with `cfg`. */
  private static async startHead(cfg: HeadConfig): Promise<NodeRecord & { tcp: string }> {
    const head = await startService<HeadReady>(HEAD_MAIN, cfg, { detached: true, timeoutMs: 60_000, what: 'the tsray head' });
    const tcp = head.info.addresses.find((a) => a.startsWith('tcp://'));
    if (!tcp) {
      head.proc.kill('SIGKILL');
      throw new RaySystemError('the head did not listen on tcp');
    }
    return {
      nodeId: head.info.nodeId,
      pid: head.info.pid,
      isHead: true,
      service: head,
      sessionDir: cfg.sessionDir,
      localEndpoint: head.info.rayletAddress,
      extraPids: [head.info.rayletPid],
      tcp,
    };
  }

  /**
   * Kills the head process with SIGKILL, as a crash would (its node's node
   * manager and workers go with it: actors there are lost, as in Ray), and
   * starts a new head on the same port from the tables the old one kept in
   * its session directory. Other nodes register again with it and keep
   * their actors; named and detached actors, jobs and the KV store survive.
   * A driver joined to the head node lost its node manager: its calls fail
   * with NodeDiedError and it joins again with `init()` (drivers elsewhere
   * resume, if the head is back within their head timeout, 5 s by default:
   * TSRAY_HEAD_TIMEOUT_MS). Resolves once the new head runs
   * and every node of {@link nodes} is registered with it again.
   * @returns the new head node (the old one counts as removed)
   */
  async restartHead(timeoutMs = 30_000): Promise<ClusterNode> {
    this.assertOpen('restartHead()');
    const old = this.members[0] as NodeRecord;
    this.removed.add(old.nodeId);
    await this.kill(old, false);
    const port = Number(this.headTcp.slice(this.headTcp.lastIndexOf(':') + 1));
    const cfg: HeadConfig = { ...this.headCfg, tcp: { host: this.host, port }, restore: true };
    const head = await Cluster.startHead(cfg);
    this.members[0] = head;
    this.members.push(old);
    await this.waitForNodes(timeoutMs);
    return head;
  }

  /** The head node. */
  get head(): ClusterNode {
    return this.members[0] as NodeRecord;
  }

  /** The nodes started and not removed, head first. */
  get nodes(): ClusterNode[] {
    return this.members.filter((n) => !this.removed.has(n.nodeId));
  }

  /** Starts a node and joins it to the head; resolves once it is registered. */
  async addNode(options: ClusterNodeOptions = {}): Promise<ClusterNode> {
    this.assertOpen('addNode()');
    const spec = specOf(options);
    const nodeId = randomId(8);
    const sessionDir = createSessionDir('cluster');
    const cfg: NodeMainConfig = {
      nodeId,
      sessionDir,
      headAddress: this.headTcp,
      resources: spec.resources,
      gpuIds: spec.gpuIds,
      objectStoreMemory: spec.objectStoreMemory,
      spillDir: path.join(sessionDir, 'spill', nodeId),
      isHead: false,
      nodeAddress: this.host,
      bindHost: this.host,
      ownsSession: true,
      clusterToken: this.token,
    };
    let svc: Service<NodeReady>;
    try {
      svc = await startService<NodeReady>(RAYLET_MAIN, cfg, { detached: true, timeoutMs: 60_000, what: `node ${nodeId}` });
    } catch (e) {
      fs.rmSync(sessionDir, { recursive: true, force: true });
      throw e;
    }
    const rec: NodeRecord = { nodeId, pid: svc.info.pid, isHead: false, service: svc, sessionDir, localEndpoint: svc.info.endpoint };
    this.members.push(rec);
    return rec;
  }

  /**
   * Kills a node's node manager and workers with SIGKILL, as a crash would:
   * nothing is told. The head notices the silence (missed heartbeats) and
   * marks it dead; {@link waitForNodes} waits for that.
   */
  async removeNode(node: ClusterNode): Promise<void> {
    this.assertOpen('removeNode()');
    const rec = this.members.find((n) => n.nodeId === node?.nodeId);
    if (!rec) throw new TypeError(`removeNode() takes a node of this cluster (from addNode()), got ${JSON.stringify(node)}`);
    if (rec.isHead) throw new TypeError('removeNode() cannot remove the head node; call cluster.shutdown()');
    if (this.removed.has(rec.nodeId)) return;
    this.removed.add(rec.nodeId);
    await this.kill(rec, true);
  }

  /**
   * Resolves once the head sees every node of {@link nodes} alive and every
   * removed node dead.
   * @throws RaySystemError after `timeoutMs` (default 30 s), naming the nodes it waited for
   */
  async waitForNodes(timeoutMs = 30_000): Promise<void> {
    this.assertOpen('waitForNodes()');
    const deadline = Date.now() + timeoutMs;
    let waiting: string[] = [];
    while (Date.now() < deadline) {
      let list: WireNode[] = [];
      try {
        list = (await this.probe.call(this.headTcp, { t: MT.GetClusterInfo }, 5000)).data as WireNode[];
      } catch {
        /* the head is busy: ask again */
      }
      const state = new Map(list.map((n) => [n.nodeId, n.alive]));
      waiting = this.members.filter((n) => state.get(n.nodeId) !== !this.removed.has(n.nodeId)).map((n) => `${n.nodeId} (${this.removed.has(n.nodeId) ? 'to be dead' : 'to be alive'})`);
      if (waiting.length === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new RaySystemError(`waitForNodes(): after ${timeoutMs} ms the head still does not see ${waiting.join(', ')}`);
  }

  /**
   * A node's object store and object transfers, as its node manager reports
   * them (for tests and benchmarks).
   * @throws RaySystemError when the node does not answer within 5 s
   */
  async objectStats(node: ClusterNode): Promise<ClusterNodeObjectStats> {
    this.assertOpen('objectStats()');
    const rec = this.members.find((n) => n.nodeId === node?.nodeId);
    if (!rec) throw new TypeError(`objectStats() takes a node of this cluster (from addNode()), got ${JSON.stringify(node)}`);
    const d = (await this.probe.call(rec.localEndpoint, { t: MT.NodeStats }, 5000)).data as { store: ArenaStats; transfers: TransferStats };
    const { store: s, transfers: t } = d;
    return {
      capacityBytes: s.capacity,
      usedBytes: s.used,
      objects: s.objects,
      pulls: t.pulls,
      pulledBytes: t.pulledBytes,
      dedupedPulls: t.dedupedPulls,
      servedBytes: t.servedBytes,
      copies: t.copies,
      primaries: t.primaries,
      evictions: t.evictions,
      prefaultedBytes: s.prefaulted,
    };
  }

  /** Stops every node and the head, and removes their session directories. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    unregisterLocalCluster(this.address);
    this.probe.close();
    const [head, ...rest] = this.members;
    await Promise.all(rest.filter((n) => !this.removed.has(n.nodeId)).map((n) => this.stop(n)));
    if (head) await this.stop(head);
  }

  private async stop(n: NodeRecord): Promise<void> {
    n.service.proc.kill('SIGTERM');
    await waitExit(n.service.proc, 10_000);
    fs.rmSync(n.sessionDir, { recursive: true, force: true });
  }

  /** SIGKILLs a node manager and its workers, then removes what they left (`clean`: its session directory). */
  private async kill(n: NodeRecord, clean: boolean): Promise<void> {
    let workers: number[] = [];
    try {
      workers = ((await this.probe.call(n.localEndpoint, { t: MT.NodeStats }, 2000)).data as { workerPids: number[] }).workerPids;
    } catch {
      /* it may be stuck or gone already: its workers exit when its pipe closes */
    }
    for (const pid of [n.pid, ...(n.extraPids ?? []), ...workers]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await waitExit(n.service.proc, 10_000);
    this.probe.disconnect(n.localEndpoint, 'the node was removed');
    const deadline = Date.now() + 10_000;
    const others = [...(n.extraPids ?? []), ...workers];
    while (others.some((p) => p > 0 && alive(p)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (clean) fs.rmSync(n.sessionDir, { recursive: true, force: true });
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new RaySystemError(`Cluster.${what} after shutdown()`);
  }
}
