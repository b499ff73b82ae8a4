/**
 * The node manager's worker processes: starting them with their job's
 * settings, relaying their output to the job's driver with a
 * `(name pid=N)` prefix, and noticing when they exit.
 * @internal
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { Address, JobConfig } from '../protocol/messages';
import { randomId } from '../ids';
import { log } from '../log';

/** Marks a line that names the task or actor whose output follows. */
export const LOG_MARKER = '\u001e';

/** One worker process. */
export interface WorkerProc {
  readonly workerId: string;
  readonly jobId: string;
  readonly envKey: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  state: 'starting' | 'idle' | 'leased' | 'actor' | 'dead';
  address: Address | undefined;
  slot: number;
  leaseId: string | undefined;
  actorId: string | undefined;
  /** hosts a detached actor: survives the end of its job */
  detached: boolean;
  exitReason: string | undefined;
  killRequested: boolean;
}

/** Where worker output goes. */
export type LogSink = (w: WorkerProc, stream: 0 | 1, name: string, line: string) => void;

/** Settings a worker process needs. */
export interface WorkerLaunch {
  job: JobConfig;
  env: Record<string, string> | undefined;
  envKey: string;
  sessionDir: string;
  nodeId: string;
  rayletEndpoint: string;
  headAddress: string;
}

const WORKER_MAIN = path.join(__dirname, '..', 'worker', 'main.js');

/**
 * Flags of the driver's node that workers need too (module loaders). tsx's
 * own flags are left out: workers register tsx lazily, and only its
 * CommonJS hook unless a module needs ESM, which keeps them small.
 */
export function loaderFlags(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i] as string;
    const next = execArgv[i + 1];
    if (/^(--require|-r|--import|--loader|--experimental-loader)$/.test(a) && next !== undefined) {
      if (!/[\/]tsx[\/]dist[\/]/.test(next)) out.push(a, next);
      i++;
    } else if (/^(--require|--import|--loader|--experimental-loader)=/.test(a) || /^--(enable-source-maps|conditions|experimental-specifier-resolution)/.test(a)) {
      out.push(a);
    }
  }
  return out;
}

/** Starts a worker process; `onExit` runs when it ends. */
export function launchWorker(l: WorkerLaunch, logSink: LogSink, onExit: (w: WorkerProc, reason: string) => void): WorkerProc {
  const workerId = randomId(8);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...l.job.env,
    ...(l.env ?? {}),
    TSRAY_WORKER_ID: workerId,
    TSRAY_JOB_ID: l.job.jobId,
    TSRAY_NAMESPACE: l.job.ns,
    TSRAY_NODE_ID: l.nodeId,
    TSRAY_SESSION_DIR: l.sessionDir,
    TSRAY_RAYLET: l.rayletEndpoint,
    TSRAY_HEAD: l.headAddress,
    TSRAY_TEST_GLOBALS: l.job.jestGlobals ? '1' : '0',
  };
  const proc = spawn(process.execPath, [...l.job.execArgv, WORKER_MAIN], {
    cwd: l.job.cwd,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const w: WorkerProc = {
    workerId,
    jobId: l.job.jobId,
    envKey: l.envKey,
    proc,
    pid: proc.pid ?? -1,
    state: 'starting',
    address: undefined,
    slot: -1,
    leaseId: undefined,
    actorId: undefined,
    detached: false,
    exitReason: undefined,
    killRequested: false,
  };
  const pipe = (stream: NodeJS.ReadableStream | null, n: 0 | 1): void => {
    if (!stream) return;
    let name = 'worker';
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const text = rest + chunk;
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith(LOG_MARKER)) name = line.slice(1);
        else logSink(w, n, name, line);
      }
    });
    stream.on('end', () => {
      if (rest) logSink(w, n, name, rest);
      rest = '';
    });
  };
  pipe(proc.stdout, 0);
  pipe(proc.stderr, 1);
  proc.stdin?.on('error', () => undefined);
  proc.on('error', (e) => log.error(`worker ${workerId} could not start: ${e.message}`));
  proc.on('exit', (code, signal) => {
    const reason = w.exitReason ?? (signal ? `killed by ${signal}` : `exited with code ${code}`);
    w.state = 'dead';
    onExit(w, reason);
  });
  return w;
}
