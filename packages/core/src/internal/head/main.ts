/**
 * Entry point of the head process. It also starts the node manager of the
 * head node as its child, and reports readiness to its parent.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomId } from '../ids';
import { log, setLogRole } from '../log';
import type { Resources } from '../protocol/messages';
import { ipcAddress, recordSessionPid } from '../cluster/session';
import { readClusterRecord } from '../cluster/cluster-file';
import { reportError, reportReady, startService, waitExit, watchParent, type Service } from '../cluster/processes';
import { Head } from './head';
import { setClusterToken, TOKEN_ENV } from '../cluster/token';
import { stateFileIn } from './persistence';

/** What the head is started with (TSRAY_CONFIG). */
export interface HeadConfig {
  sessionDir: string;
  /** also listen on tcp (for other nodes and remote drivers) */
  tcp?: { host: string; port: number };
  node: { resources: Resources; gpuIds: string[]; objectStoreMemory: number; nodeAddress: string };
  /** remove the session directory at exit */
  ownsSession: boolean;
  /** stop when the parent's pipe closes (false for `tsray start`, whose CLI exits) */
  watchParent?: boolean;
  /** file to record the cluster's address in, removed at exit (`tsray start`) */
  clusterFile?: string;
  /**
   * the cluster token (`tsray start`): tcp connections use CURVE keys derived
   * from it; the node manager and workers inherit it through TSRAY_CLUSTER_TOKEN
   */
  clusterToken?: string;
  /**
   * Keep the head's tables in a file (`head-state.msgpack` in the session
   * directory), so that a head started again takes the cluster back.
   * @default false (a driver's own local cluster ends with it)
   */
  persist?: boolean;
  /** take back the tables in that file (a head started again after a crash) */
  restore?: boolean;
}

/** What the head reports when ready. */
export interface HeadReady {
  headAddress: string;
  /** every address the head listens at (ipc first, then tcp when asked for) */
  addresses: string[];
  nodeId: string;
  rayletAddress: string;
  pid: number;
  /** pid of the head node's node manager */
  rayletPid: number;
}

const RAYLET_MAIN = path.join(__dirname, '..', 'raylet', 'main.js');

async function main(): Promise<void> {
  setLogRole('head');
  const cfg = JSON.parse(process.env.TSRAY_CONFIG ?? '{}') as HeadConfig;
  delete process.env.TSRAY_CONFIG;
  if (cfg.clusterToken !== undefined) {
    setClusterToken(cfg.clusterToken);
    process.env[TOKEN_ENV] = cfg.clusterToken;
  }
  // the session is not swept while this process runs
  recordSessionPid(cfg.sessionDir, 'head');
  const head = new Head(cfg.persist || cfg.restore ? { stateFile: stateFileIn(cfg.sessionDir), restore: cfg.restore === true } : {});
  let raylet: Service<{ endpoint: string }> | undefined;
  let stopping = false;
  const stop = async (code: number, why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${why}`);
    try {
      if (raylet) {
        raylet.proc.kill('SIGTERM');
        await waitExit(raylet.proc, 5000);
      }
      head.stop();
    } catch (e) {
      log.error(`stopping the head: ${(e as Error).message}`);
    }
    try {
      if (cfg.ownsSession) fs.rmSync(cfg.sessionDir, { recursive: true, force: true });
      if (cfg.clusterFile && readClusterRecord(cfg.clusterFile)?.pid === process.pid) fs.rmSync(cfg.clusterFile, { force: true });
    } catch (e) {
      log.warn(`could not clean up the session: ${(e as Error).message}`);
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0, 'SIGTERM'));
  process.on('SIGINT', () => void stop(0, 'SIGINT'));
  if (cfg.watchParent !== false) watchParent(() => void stop(0, 'its parent process is gone'));
  try {
    const addresses = [ipcAddress(cfg.sessionDir, 'head')];
    if (cfg.tcp) addresses.push(`tcp://${cfg.tcp.host}:${cfg.tcp.port}`);
    const headAddress = await head.start(addresses);
    const nodeId = randomId(8);
    raylet = await startService<{ endpoint: string }>(
      RAYLET_MAIN,
      {
        nodeId,
        sessionDir: cfg.sessionDir,
        headAddress,
        resources: cfg.node.resources,
        gpuIds: cfg.node.gpuIds,
        objectStoreMemory: cfg.node.objectStoreMemory,
        spillDir: path.join(cfg.sessionDir, 'spill', nodeId),
        isHead: true,
        nodeAddress: cfg.node.nodeAddress,
        ...(cfg.tcp ? { bindHost: cfg.tcp.host } : {}),
      },
      { detached: false, timeoutMs: 30_000, what: 'the node manager' },
    );
    raylet.proc.on('exit', (code, signal) => {
      if (!stopping) {
        log.error(`the node manager exited unexpectedly (${signal ?? `code ${code}`}); stopping the cluster`);
        void stop(1, 'its node manager exited');
      }
    });
    await head.waitForNodes(1);
    const ready: HeadReady = { headAddress, addresses: head.addresses, nodeId, rayletAddress: raylet.info.endpoint, pid: process.pid, rayletPid: raylet.proc.pid ?? -1 };
    reportReady(ready);
  } catch (e) {
    reportError(e);
    await stop(1, 'it failed to start');
  }
}

void main();
