/**
 * The node manager's side of `runtimeEnv.npm`: installs a package list
 * once per node, with the `npm` client the node has, into
 * `<sessionDir>/runtime_resources/npm/<key>/node_modules`, where `key`
 * names the list's content (npm-spec.ts).
 *
 * Once per node: requests for a list being installed share that install
 * (in this process); across processes that share the session directory
 * (the nodes of a `ray.Cluster` on one machine) a lock file lets one
 * install while the others wait for its result. A list is installed into a
 * temporary directory and renamed into place, so a directory in place is
 * always complete (were a lock ever taken over wrongly, the worst case is
 * a second install, never a partial one). A failed install is not
 * remembered: the next request for the list runs npm again.
 *
 * Every run of npm is recorded in `runtime_resources/npm/installs.log`
 * (`begin`, then `done` or `failed`, with the key and the list), and npm's
 * output of a failed run in `<key>.error.log` next to it.
 * @internal
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log';
import { pidAlive } from '../cluster/processes';
import { describeNpmEnv, npmEnvKey, npmSpecProblem, type NpmEnvSpec } from './npm-spec';
import { OncePerKey } from './setups';

/** Where a node keeps its npm environments. */
export function npmEnvsRoot(sessionDir: string): string {
  return path.join(sessionDir, 'runtime_resources', 'npm');
}

/** The file in an installed environment that describes it (written last, before the rename). */
export const NPM_ENV_MARKER = 'tsray-npm-env.json';

/** How long one `npm install` may take (as Ray's runtime-env setup timeout). */
export const NPM_INSTALL_TIMEOUT_MS = 600_000;

/**
 * Installs `spec` into `dir` (an empty directory with a package.json)
 * within `timeoutMs`, stopping when `signal` aborts; rejects with an Error
 * whose message carries npm's error.
 */
export type NpmInstaller = (dir: string, spec: NpmEnvSpec, opts: { timeoutMs: number; signal: AbortSignal }) => Promise<void>;

/** The npm client of this node: a command and the arguments before npm's own. */
export function findNpm(): { cmd: string; pre: string[]; shown: string } {
  const dirs = [path.dirname(process.execPath), ...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '')];
  for (const d of dirs) {
    const p = path.join(d, 'npm');
    let real: string;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      real = fs.realpathSync(p);
    } catch {
      continue;
    }
    // npm's CLI is a script for node: run it with the node this process runs on
    if (real.endsWith('.js')) return { cmd: process.execPath, pre: [real], shown: p };
    return { cmd: p, pre: [], shown: p };
  }
  throw new Error(`npm is not installed on this node (looked next to ${process.execPath} and on PATH): install npm on the node, or leave runtimeEnv.npm out`);
}

/**
 * The environment npm runs in: the node manager's, less the variables npm
 * sets for the scripts it runs (`npm test`: they must not steer a nested
 * install elsewhere) and less tsray's own settings, the cluster token among
 * them (packages' install scripts, when allowed, run in this environment).
 */
export function installEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('TSRAY_')) continue;
    if (/^npm_(package_|lifecycle_|command$|config_(local_prefix|prefix|global|workspaces?|include_workspace_root|save|package_lock|ignore_scripts|dry_run)$)/i.test(k)) continue;
    if (k === 'INIT_CWD') continue;
    env[k] = v;
  }
  env.npm_config_update_notifier = 'false';
  return env;
}

/** The lines of npm's output that say what went wrong (its `npm error` lines), or its last lines. */
export function npmErrorLines(output: string): string {
  const lines = output.split('\n').map((l) => l.trimEnd());
  const errors = lines.filter((l) => /^npm (error|ERR!)/.test(l));
  const picked = (errors.length > 0 ? errors : lines.filter((l) => l.trim() !== '')).slice(-25);
  return picked.join('\n');
}

/** npm's arguments to install `spec` into `dir`. */
export function npmInstallArgs(dir: string, spec: NpmEnvSpec): string[] {
  return [
    'install',
    '--no-save',
    '--no-package-lock',
    '--no-audit',
    '--no-fund',
    '--loglevel=warn',
    '--prefix',
    dir,
    ...(spec.installScripts ? [] : ['--ignore-scripts']),
    ...(spec.registry ? ['--registry', spec.registry] : []),
    '--',
    ...spec.packages,
  ];
}

/** Runs `npm install` for `spec` in `dir` with the node's npm client. */
export const runNpmInstall: NpmInstaller = (dir, spec, { timeoutMs, signal }) => {
  const npm = findNpm();
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('npm install was not started: the node manager is stopping'));
    // its own process group: stopping it stops what it runs (install scripts, git) too
    const proc = spawn(npm.cmd, [...npm.pre, ...npmInstallArgs(dir, spec)], { cwd: dir, env: installEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stop = (): void => {
      try {
        if (proc.pid !== undefined) process.kill(-proc.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    signal.addEventListener('abort', stop, { once: true });
    let out = '';
    const keep = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      if (out.length > 256 * 1024) out = out.slice(-128 * 1024);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutMs);
    timer.unref();
    proc.on('error', (e) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      reject(new Error(`${npm.shown} could not be started: ${e.message}`));
    });
    proc.on('close', (code, killedBy) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      if (code === 0) return resolve();
      const why = timedOut
        ? `did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`
        : signal.aborted
          ? 'was stopped: the node manager is stopping'
          : killedBy
            ? `was killed by ${killedBy}`
            : `exited with code ${code}`;
      reject(Object.assign(new Error(`npm install ${why}${out.trim() ? `:\n${npmErrorLines(out)}` : ''}`), { output: out }));
    });
  });
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Settings of {@link NodeNpmEnvs}. */
export interface NodeNpmEnvsOptions {
  /** runs npm (tests give their own) @default runNpmInstall */
  install?: NpmInstaller;
  /** @default NPM_INSTALL_TIMEOUT_MS */
  timeoutMs?: number;
  /** how often a process waiting for another's install looks again @default 200 */
  lockPollMs?: number;
}

/** See the module comment. */
export class NodeNpmEnvs {
  private readonly setups = new OncePerKey<string>();
  private readonly install: NpmInstaller;
  private readonly timeoutMs: number;
  private readonly lockPollMs: number;
  private readonly stopping = new AbortController();
  /** lists this process installed (a statistic) */
  installed = 0;

  /** @param root where environments live (see {@link npmEnvsRoot}) */
  constructor(
    private readonly root: string,
    opts: NodeNpmEnvsOptions = {},
  ) {
    this.install = opts.install ?? runNpmInstall;
    this.timeoutMs = opts.timeoutMs ?? NPM_INSTALL_TIMEOUT_MS;
    this.lockPollMs = opts.lockPollMs ?? 200;
  }

  /** The installed environment of `key` (its directory holds node_modules), once ready on this node. */
  dirOf(key: string): string | undefined {
    return this.setups.get(key);
  }

  /** Whether the list of `key` is being installed now. */
  isSettingUp(key: string): boolean {
    return this.setups.isRunning(key);
  }

  /**
   * Installs `spec` (once; concurrent calls share one install) and resolves
   * to its directory. Rejects with an Error whose message names the list
   * and carries npm's error.
   */
  ensure(spec: NpmEnvSpec): Promise<string> {
    const key = npmEnvKey(spec);
    return this.setups.run(key, () => this.setUp(key, spec));
  }

  private async setUp(key: string, spec: NpmEnvSpec): Promise<string> {
    const what = describeNpmEnv(spec);
    const bad = npmSpecProblem(spec);
    if (bad) throw new Error(`${what} cannot be installed: ${bad}`);
    const final = path.join(this.root, key);
    if (fs.existsSync(path.join(final, NPM_ENV_MARKER))) return final;
    try {
      await fs.promises.mkdir(this.root, { recursive: true });
    } catch (e) {
      throw new Error(`${what} cannot be installed: ${this.root} cannot be created (${(e as Error).message})`);
    }
    const release = await this.lock(key, what);
    if (!release) return final; // another process installed it meanwhile
    let tmp: string | undefined;
    try {
      if (fs.existsSync(path.join(final, NPM_ENV_MARKER))) return final;
      tmp = await fs.promises.mkdtemp(path.join(this.root, `.${key}.tmp-`));
      await fs.promises.writeFile(path.join(tmp, 'package.json'), `${JSON.stringify({ name: 'tsray-npm-env', private: true, description: what })}\n`);
      this.record('begin', key, spec);
      const started = Date.now();
      log.info(`installing ${what} into ${final}`);
      try {
        await this.install(tmp, spec, { timeoutMs: this.timeoutMs, signal: this.stopping.signal });
      } catch (e) {
        this.record('failed', key, spec);
        const output = (e as { output?: unknown }).output;
        const logFile = path.join(this.root, `${key}.error.log`);
        await fs.promises.writeFile(logFile, typeof output === 'string' ? output : (e as Error).message).catch(() => undefined);
        throw new Error(`${what} could not be installed with npm (its output is in ${logFile}): ${(e as Error).message}`);
      }
      const ms = Date.now() - started;
      await fs.promises.writeFile(path.join(tmp, NPM_ENV_MARKER), `${JSON.stringify({ ...spec, key, installedMs: ms, pid: process.pid })}\n`);
      try {
        await fs.promises.rename(tmp, final);
        tmp = undefined;
      } catch (e) {
        // in place already (a lock taken over wrongly): use that one
        if (!fs.existsSync(path.join(final, NPM_ENV_MARKER))) throw new Error(`${what} was installed but cannot be moved into ${final}: ${(e as Error).message}`);
      }
      this.record('done', key, spec);
      this.installed++;
      log.info(`installed ${what} in ${ms} ms`);
      return final;
    } finally {
      if (tmp !== undefined) await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      release();
    }
  }

  /** Stops the installs under way (their npm processes are killed; they reject). */
  stop(): void {
    this.stopping.abort();
  }

  /** Appends a line to installs.log (best effort). */
  private record(event: 'begin' | 'done' | 'failed', key: string, spec: NpmEnvSpec): void {
    try {
      fs.appendFileSync(path.join(this.root, 'installs.log'), `${new Date().toISOString()} ${event} ${key} pid=${process.pid} ${JSON.stringify(spec)}\n`);
    } catch {
      /* a statistic */
    }
  }

  /**
   * Takes the node's lock on `key`: resolves to its release, or to null
   * when another process finished the install while this one waited. A
   * lock whose process is gone is taken over.
   */
  private async lock(key: string, what: string): Promise<(() => void) | null> {
    const file = path.join(this.root, `.${key}.lock`);
    const deadline = Date.now() + this.timeoutMs + 60_000;
    for (;;) {
      try {
        fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
        return () => fs.rmSync(file, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`${what} cannot be installed: the lock ${file} cannot be created (${(e as Error).message})`);
      }
      if (fs.existsSync(path.join(this.root, key, NPM_ENV_MARKER))) return null;
      let holder = NaN;
      let age = 0;
      try {
        holder = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
        age = Date.now() - fs.statSync(file).mtimeMs;
      } catch {
        continue; // released meanwhile: try again
      }
      // a lock of a process that is gone (or one never written in full) is stale
      if ((Number.isInteger(holder) && !pidAlive(holder)) || (!Number.isInteger(holder) && age > 10_000)) {
        log.warn(`taking over the stale npm install lock ${file} (process ${Number.isInteger(holder) ? holder : '?'} is gone)`);
        fs.rmSync(file, { force: true });
        continue;
      }
      if (this.stopping.signal.aborted) throw new Error(`${what} was not installed: the node manager is stopping`);
      if (Date.now() > deadline) throw new Error(`${what} cannot be installed: process ${holder} has held the install lock ${file} for too long`);
      await sleep(this.lockPollMs);
    }
  }
}
