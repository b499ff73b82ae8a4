/**
 * Starting the runtime's service processes (head, node manager) and tying
 * their lifetime to their parent: a service reads its stdin, a pipe from the
 * parent, and stops when it closes, so a parent that dies in any way
 * (Ctrl-C, crash, kill -9) takes its services with it.
 * @internal
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { Socket } from 'node:net';
import { RaySystemError } from '../../errors';

/** A started service and what it reported when ready. */
export interface Service<T> {
  proc: ChildProcess;
  info: T;
}

/**
 * Runs `script` with `config` (as TSRAY_CONFIG) and waits for it to send
 * `{ ready: ... }` over the IPC channel. `detached` puts it in its own
 * process group so terminal signals reach only the parent.
 */
export function startService<T>(
  script: string,
  config: unknown,
  opts: { detached: boolean; timeoutMs: number; what: string; output?: number },
): Promise<Service<T>> {
  return new Promise((resolve, reject) => {
    const out = opts.output ?? 'inherit';
    const proc = spawn(process.execPath, [script], {
      stdio: ['pipe', out, out, 'ipc'],
      detached: opts.detached,
      env: { ...process.env, TSRAY_CONFIG: JSON.stringify(config) },
    });
    let settled = false;
    const timer = setTimeout(() => {
      fail(new RaySystemError(`${opts.what} did not start within ${opts.timeoutMs} ms`));
      proc.kill('SIGKILL');
    }, opts.timeoutMs);
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    };
    proc.on('error', (e) => fail(new RaySystemError(`${opts.what} could not be started: ${e.message}`)));
    proc.on('exit', (code, signal) => fail(new RaySystemError(`${opts.what} exited while starting (${signal ?? `code ${code}`}); see its output above`)));
    proc.on('message', (m: unknown) => {
      const msg = m as { ready?: T; error?: string };
      if (msg.error !== undefined) {
        fail(new RaySystemError(`${opts.what} failed to start: ${msg.error}`));
        return;
      }
      if (msg.ready === undefined || settled) return;
      settled = true;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      proc.disconnect();
      (proc.stdin as Socket | null)?.unref?.();
      proc.unref();
      resolve({ proc, info: msg.ready });
    });
    proc.stdin?.on('error', () => undefined);
  });
}

/** In a service: reports readiness to the parent. */
export function reportReady(info: unknown): void {
  process.send?.({ ready: info });
}

/** In a service: reports a startup failure to the parent. */
export function reportError(e: unknown): void {
  process.send?.({ error: e instanceof Error ? e.message : String(e) });
}

/** In a service: calls `onGone` when the parent's pipe (stdin) closes. */
export function watchParent(onGone: () => void): void {
  const stdin = process.stdin;
  let fired = false;
  const fire = (): void => {
    if (fired) return;
    fired = true;
    onGone();
  };
  stdin.on('end', fire);
  stdin.on('close', fire);
  stdin.on('error', fire);
  stdin.resume();
}

/** Waits for a process to exit, killing it after `timeoutMs`. */
export function waitExit(proc: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      try {
        proc.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Whether the process `pid` runs: it exists and is not a zombie (a process
 * killed while its parent — often init, for a detached head — has not
 * collected it yet still answers signal 0).
 */
export function pidAlive(pid: number): boolean {
  return pid > 0 && !processGone(pid);
}

/**
 * Whether the process `pid` is gone: it does not exist, or it is a zombie
 * (it exited and its parent has not collected it yet). A process of another
 * user is not gone. Never true for a pid <= 0.
 */
export function processGone(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as { code?: string }).code === 'ESRCH';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false; // no /proc here: it exists
  }
}
