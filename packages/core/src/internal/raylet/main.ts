/**
 * Entry point of a node manager process.
 * @internal
 */
import { log, setLogRole } from '../log';
import { ipcAddress, removeIpcFile } from '../cluster/session';
import { reportError, reportReady, watchParent } from '../cluster/processes';
import { Raylet, type RayletConfig } from './raylet';

async function main(): Promise<void> {
  setLogRole('node');
  const cfg = JSON.parse(process.env.TSRAY_CONFIG ?? '{}') as RayletConfig;
  delete process.env.TSRAY_CONFIG;
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
    } catch (e) {
      log.warn(`could not remove ${addr}: ${(e as Error).message}`);
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0, 'SIGTERM'));
  process.on('SIGINT', () => void stop(0, 'SIGINT'));
  watchParent(() => void stop(0, 'its parent process is gone'));
  try {
    raylet = new Raylet(cfg);
    const endpoint = await raylet.start(ipcAddress(cfg.sessionDir, `n-${cfg.nodeId.slice(0, 8)}`));
    reportReady({ endpoint });
  } catch (e) {
    reportError(e);
    await stop(1, 'it failed to start');
  }
}

void main();
