/**
 * The node manager's worker processes: starting them with their job's
 * settings, relaying their output to the job's driver with a
 * `(name pid=N)` prefix, and noticing when they exit.
 * @internal
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Address, JobConfig } from '../protocol/messages';
import type { NpmEnvSpec } from '../runtime-env/npm-spec';
import { randomId } from '../ids';
import { log } from '../log';

/** Marks a line that names the task or actor whose output follows. */
export const LOG_MARKER = '\u001e';

/**
 * Lifecycle of a worker process: `starting` until it registers, then `idle`
 * or `leased` (task worker) or `actor` (dedicated to one actor), and `dead`
 * once it exited (or could not be spawned).
 */
export type WorkerState = 'starting' | 'idle' | 'leased' | 'actor' | 'dead';

/** One worker process. */
export interface WorkerProc {
  /** the id it registers with */
  readonly workerId: string;
  /** the job it runs tasks of */
  readonly jobId: string;
  /** its runtime environment, as a key ('' for the job's default) */
  readonly envKey: string;
  /** the process */
  readonly proc: ChildProcess;
  /** its pid, -1 if it could not be spawned */
  readonly pid: number;
  /** see {@link WorkerState} */
  state: WorkerState;
  /** where it listens, once registered */
  address: Address | undefined;
  /** its slot in the node's object store once registered, -1 before */
  slot: number;
  /** the lease it is running under, if any */
  leaseId: string | undefined;
  /** the actor it hosts, if any */
  actorId: string | undefined;
  /** why it was killed, when the node manager killed it */
  exitReason: string | undefined;
  /** the node manager asked it to stop */
  killRequested: boolean;
  /** when it last became idle (Date.now()) */
  idleSince: number;
  /** asked to exit for being idle (not handed out meanwhile); stopped that way, it is not replaced */
  stopAsked: boolean;
  /** how often it refused to stop for being idle (each refusal doubles the wait before the next ask) */
  stopRefusals: number;
  /** fires when it takes too long to register (cleared when it registers or exits) */
  registerTimer: NodeJS.Timeout | undefined;
}

/** Where worker output goes. */
export type LogSink = (w: WorkerProc, stream: 0 | 1, name: string, line: string) => void;

/** Called once when a worker ends: `was` is the state it was in just before. */
export type ExitHandler = (w: WorkerProc, reason: string, was: WorkerState) => void;

/** Settings a worker process needs. */
export interface WorkerLaunch {
  /** the job it belongs to */
  job: JobConfig;
  /** extra environment variables (its runtime environment) */
  env: Record<string, string> | undefined;
  /** key of `env` ('' for none) */
  envKey: string;
  /** the cluster's session directory */
  sessionDir: string;
  /** the node it runs on */
  nodeId: string;
  /** where its node manager listens */
  rayletEndpoint: string;
  /** where the head listens */
  headAddress: string;
  /** host to listen on with tcp (a node of a cluster that spans nodes); ipc without */
  bindHost?: string | undefined;
  /** its working directory (runtimeEnv.workingDir), unpacked on this node: it starts there */
  workingDir?: { pkg: string; dir: string } | undefined;
  /**
   * its npm environment (runtimeEnv.npm): `dir` where the packages are
   * installed on this node (they resolve first there), absent for an empty
   * list (no packages, not even the job's)
   */
  npm?: { spec: NpmEnvSpec; dir: string | undefined } | undefined;
}

/**
 * Where packages next to tsray's own installation live: modules of an
 * unpacked working directory find tsray (and what is installed with it)
 * there through NODE_PATH, wherever the directory was unpacked.
 */
function installedModulePaths(): string[] {
  return (require.resolve.paths('@tsray/core') ?? []).filter((p) => fs.existsSync(p));
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

/**
 * Starts a worker process. `onExit` runs exactly once when it ends: when it
 * exits, or when it cannot be spawned at all (an 'error' event with no
 * process behind it, which may never be followed by 'exit').
 */
export function launchWorker(l: WorkerLaunch, logSink: LogSink, onExit: ExitHandler): WorkerProc {
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
  if (l.bindHost !== undefined) env.TSRAY_BIND_HOST = l.bindHost;
  else delete env.TSRAY_BIND_HOST;
  delete env.TSRAY_NPM_ENV;
  delete env.TSRAY_NPM_ENV_DIR;
  if (l.npm) {
    env.TSRAY_NPM_ENV = JSON.stringify(l.npm.spec);
    if (l.npm.dir !== undefined) env.TSRAY_NPM_ENV_DIR = l.npm.dir;
  }
  let cwd: string;
  if (l.workingDir) {
    cwd = l.workingDir.dir;
    env.TSRAY_WORKING_DIR = l.workingDir.dir;
    env.TSRAY_WORKING_DIR_PKG = l.workingDir.pkg;
    env.NODE_PATH = [...(env.NODE_PATH ?? '').split(path.delimiter).filter((p) => p !== ''), ...installedModulePaths()].join(path.delimiter);
  } else {
    delete env.TSRAY_WORKING_DIR;
    delete env.TSRAY_WORKING_DIR_PKG;
    // the driver's directory may not exist on this node's machine
    cwd = fs.existsSync(l.job.cwd) ? l.job.cwd : l.sessionDir;
  }
  const proc = spawn(process.execPath, [...l.job.execArgv, WORKER_MAIN], {
    cwd,
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
    exitReason: undefined,
    killRequested: false,
    idleSince: Date.now(),
    stopAsked: false,
    stopRefusals: 0,
    registerTimer: undefined,
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
  const end = (reason: string): void => {
    if (w.state === 'dead') return;
    const was = w.state;
    w.state = 'dead';
    if (w.registerTimer) clearTimeout(w.registerTimer);
    w.registerTimer = undefined;
    onExit(w, reason, was);
  };
  proc.on('error', (e) => {
    if (proc.pid === undefined) {
      // never spawned: no 'exit' is coming
      log.error(`worker ${workerId} could not be started: ${e.message}`);
      end(w.exitReason ?? `could not be started (${e.message})`);
    } else {
      log.warn(`worker ${workerId} (pid ${proc.pid}): ${e.message}`);
    }
  });
  proc.on('exit', (code, signal) => end(w.exitReason ?? (signal ? `killed by ${signal}` : `exited with code ${code}`)));
  return w;
}
