/**
 * Entry point of a node manager process.
 * @internal
 */
import { setLogRole } from '../log';
import { ipcAddress, removeIpcFile } from '../cluster/session';
import { reportError, reportReady, watchParent } from '../cluster/processes';
import { Raylet, type RayletConfig } from './raylet';

async function main(): Promise<void> {
  setLogRole('node');
  const cfg = JSON.parse(process.env.TSRAY_CONFIG ?? '{}') as RayletConfig;
  delete process.env.TSRAY_CONFIG;
  let raylet: Raylet | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const addr = raylet?.address;
    await raylet?.stop();
    if (addr) removeIpcFile(addr);
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));
  watchParent(() => void stop(0));
  try {
    raylet = new Raylet(cfg);
    const endpoint = await raylet.start(ipcAddress(cfg.sessionDir, `n-${cfg.nodeId.slice(0, 8)}`));
    reportReady({ endpoint });
  } catch (e) {
    reportError(e);
    await stop(1);
  }
}

void main();
