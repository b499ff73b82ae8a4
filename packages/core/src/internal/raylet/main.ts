/**
 * Entry point of a node manager process.
 * @internal
 */
import * as fs from 'node:fs';
import { log, setLogRole } from '../log';
import { ipcAddress, recordSessionPid, removeIpcFile } from '../cluster/session';
import { reportError, reportReady, watchParent } from '../cluster/processes';
import { Raylet, type RayletConfig } from './raylet';
import { setClusterToken, TOKEN_ENV } from '../cluster/token';

/** What a node manager process is started with (TSRAY_CONFIG). */
export interface NodeMainConfig extends RayletConfig {
  /** remove the session directory at exit (a node of its own, not the head's) */
  ownsSession?: boolean;
  /** stop when the parent's pipe closes (false for `tsray start --address`, whose CLI exits) */
  watchParent?: boolean;
  /** the cluster token (its workers inherit it through TSRAY_CLUSTER_TOKEN) */
  clusterToken?: string;
}

/** What a node manager reports when ready. */
export interface NodeReady {
  /** where this node's processes reach it */
  endpoint: string;
  /** where other nodes reach it */
  publicEndpoint: string;
  nodeId: string;
  pid: number;
}

async function main(): Promise<void> {
  setLogRole('node');
  const cfg = JSON.parse(process.env.TSRAY_CONFIG ?? '{}') as NodeMainConfig;
  delete process.env.TSRAY_CONFIG;
  if (cfg.clusterToken !== undefined) {
    setClusterToken(cfg.clusterToken);
    process.env[TOKEN_ENV] = cfg.clusterToken;
  }
  // the session is not swept while this process runs
  recordSessionPid(cfg.sessionDir, 'node');
  let raylet: Raylet | undefined;
  let stopping = false;
  // Stopping never throws and always ends the process: a failure on the way
  // is logged, and a stop that hangs is cut short.
  const stop = async (code: number, why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${why}`);
    const watchdog = setTimeout(() => {
      log.error('stopping took more than 10 s; exiting anyway');
      process.exit(code || 1);
    }, 10_000);
    watchdog.unref();
    let addr: string | undefined;
    try {
      addr = raylet?.address;
    } catch {
      /* it never started listening */
    }
    try {
      await raylet?.stop();
    } catch (e) {
      log.error(`stopping the node manager failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    try {
      if (addr) removeIpcFile(addr);
      if (cfg.ownsSession) fs.rmSync(cfg.sessionDir, { recursive: true, force: true });
    } catch (e) {
      log.warn(`could not clean up ${cfg.ownsSession ? cfg.sessionDir : addr}: ${(e as Error).message}`);
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0, 'SIGTERM'));
  process.on('SIGINT', () => void stop(0, 'SIGINT'));
  if (cfg.watchParent !== false) watchParent(() => void stop(0, 'its parent process is gone'));
  try {
    raylet = new Raylet(cfg);
    raylet.onExitRequested = (reason) => void stop(1, reason);
    const endpoint = await raylet.start(ipcAddress(cfg.sessionDir, `n-${cfg.nodeId.slice(0, 8)}`));
    const ready: NodeReady = { endpoint, publicEndpoint: raylet.publicAddress, nodeId: cfg.nodeId, pid: process.pid };
    reportReady(ready);
  } catch (e) {
    reportError(e);
    await stop(1, 'it failed to start');
  }
}

void main();
