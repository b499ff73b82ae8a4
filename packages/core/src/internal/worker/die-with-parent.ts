/**
 * A worker dies with its node manager. Its stdin is a pipe from the node
 * manager whose end stops the worker (`watchParent`), but only once its
 * event loop runs: a task busy in a long synchronous loop would outlive a
 * node manager killed with SIGKILL. So the worker also asks the kernel to
 * kill it when its parent exits (Linux's PR_SET_PDEATHSIG, native/process.cc).
 * @internal
 */
import * as path from 'node:path';
import { log } from '../log';

/** Asks the kernel to SIGKILL this process when its parent exits; exits now if the parent is already gone. */
export function dieWithParent(): void {
  const file = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'tsray_process.node');
  let addon: { dieWithParent(signal: number): number };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(file) as typeof addon;
  } catch (e) {
    log.debug(`no process addon (${(e as Error).message}): a worker busy in a synchronous task outlives a killed node manager until the task yields`);
    return;
  }
  const before = process.ppid;
  const after = addon.dieWithParent(9);
  // the parent died between the two reads: no signal is coming
  if (after !== -1 && after !== before) process.exit(0);
}
