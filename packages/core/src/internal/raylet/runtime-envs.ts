/**
 * The runtime environments of a node's workers: what a worker of a lease
 * request needs on this node before it can start (its working directory
 * unpacked, its npm packages installed), set up once per node, and the
 * key that keeps workers of different environments in different
 * processes.
 * @internal
 */
import type { JobConfig } from '../protocol/messages';
import { log } from '../log';
import { NodeWorkingDirs, workingDirsRoot, type PackageFetcher } from '../runtime-env/node-dirs';
import { NodeNpmEnvs, npmEnvsRoot } from '../runtime-env/npm-envs';
import { npmEnvKey, type NpmEnvSpec } from '../runtime-env/npm-spec';
import type { WorkerLaunch } from './worker-pool';

/** The environment a worker runs in: a working-directory package and npm packages, each absent for none (or, in a request, the job's). */
export interface EnvNeeds {
  pkg?: string | undefined;
  npm?: NpmEnvSpec | undefined;
}

/** Which environments a set-up concerns: tells whether `env` (a worker's, the job's applied) is one of them. */
export type EnvMatch = (env: EnvNeeds) => boolean;

/** What the node manager does when a set-up ends. */
export interface EnvSetupHooks {
  /** set up: start the workers that waited for environments `match` accepts */
  ready(match: EnvMatch): void;
  /** failed: fail the requests for environments `match` accepts with `reason` (it names the node's problem) */
  failed(match: EnvMatch, reason: string): void;
}

/** Whether `npm` asks for packages to install (an empty list asks for none). */
function hasPackages(npm: NpmEnvSpec | undefined): npm is NpmEnvSpec {
  return npm !== undefined && npm.packages.length > 0;
}

/** See the module comment. */
export class NodeRuntimeEnvs {
  private readonly workingDirs: NodeWorkingDirs;
  private readonly npmEnvs: NodeNpmEnvs;
  private stopped = false;

  /**
   * @param sessionDir the node's session directory (environments live under it)
   * @param fetch gets a working-directory package from the head
   */
  constructor(
    sessionDir: string,
    fetch: PackageFetcher,
    private readonly hooks: EnvSetupHooks,
  ) {
    this.workingDirs = new NodeWorkingDirs(workingDirsRoot(sessionDir), fetch);
    this.npmEnvs = new NodeNpmEnvs(npmEnvsRoot(sessionDir));
  }

  /** The environment a request's worker runs in: its own parts, else the job's. */
  static of(req: EnvNeeds, job: JobConfig): EnvNeeds {
    return { pkg: req.pkg ?? job.pkg, npm: req.npm ?? job.npm };
  }

  /**
   * The key of workers of `env` for job `job`, from `envKey` (the key of
   * their variables): '' for the job's default environment.
   */
  static workerKey(envKey: string, env: EnvNeeds, job: JobConfig): string {
    const npmKey = env.npm ? npmEnvKey(env.npm) : '';
    const jobNpmKey = job.npm ? npmEnvKey(job.npm) : '';
    return (env.pkg === job.pkg ? envKey : `${envKey}\0${env.pkg}`) + (npmKey === jobNpmKey ? '' : `\0${npmKey}`);
  }

  /**
   * Whether a worker of `env` can start here now; if not, sets up what it
   * lacks (once; the hooks say when it is done).
   */
  ready(env: EnvNeeds): boolean {
    let ready = true;
    if (env.pkg !== undefined && !this.workingDirs.dirOf(env.pkg)) {
      this.setUpWorkingDir(env.pkg);
      ready = false;
    }
    if (hasPackages(env.npm) && !this.npmEnvs.dirOf(npmEnvKey(env.npm))) {
      this.setUpNpm(env.npm);
      ready = false;
    }
    return ready;
  }

  /** What a worker of `env` is launched with, or undefined while its environment is not set up here. */
  launch(env: EnvNeeds): Pick<WorkerLaunch, 'workingDir' | 'npm'> | undefined {
    const dir = env.pkg !== undefined ? this.workingDirs.dirOf(env.pkg) : undefined;
    if (env.pkg !== undefined && dir === undefined) return undefined;
    const npmDir = hasPackages(env.npm) ? this.npmEnvs.dirOf(npmEnvKey(env.npm)) : undefined;
    if (hasPackages(env.npm) && npmDir === undefined) return undefined;
    return {
      workingDir: env.pkg !== undefined && dir !== undefined ? { pkg: env.pkg, dir } : undefined,
      npm: env.npm ? { spec: env.npm, dir: npmDir } : undefined,
    };
  }

  /** Statistics: packages unpacked and npm lists installed by this node manager. */
  stats(): { workingDirsUnpacked: number; npmEnvsInstalled: number } {
    return { workingDirsUnpacked: this.workingDirs.unpacked, npmEnvsInstalled: this.npmEnvs.installed };
  }

  /** Stops what is being set up (npm installs are killed); the hooks are not called again. */
  stop(): void {
    this.stopped = true;
    this.npmEnvs.stop();
  }

  private setUpWorkingDir(pkg: string): void {
    if (this.workingDirs.isSettingUp(pkg)) return;
    const match: EnvMatch = (env) => env.pkg === pkg;
    this.workingDirs.ensure(pkg).then(
      () => {
        if (!this.stopped) this.hooks.ready(match);
      },
      (e: Error) => {
        if (this.stopped) return;
        log.warn(`working-directory package ${pkg}: ${e.message}`);
        this.hooks.failed(match, e.message);
      },
    );
  }

  private setUpNpm(spec: NpmEnvSpec): void {
    const key = npmEnvKey(spec);
    if (this.npmEnvs.isSettingUp(key)) return;
    const match: EnvMatch = (env) => env.npm !== undefined && npmEnvKey(env.npm) === key;
    this.npmEnvs.ensure(spec).then(
      () => {
        if (!this.stopped) this.hooks.ready(match);
      },
      (e: Error) => {
        if (this.stopped) return;
        log.warn(e.message);
        this.hooks.failed(match, e.message);
      },
    );
  }
}
