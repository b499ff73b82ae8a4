import * as ray from '@tsray/core';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCluster, stopCluster } from './helpers/cluster';

/** tsray as the modules written below load it (the package this test uses). */
const TSRAY = require.resolve('@tsray/core');

interface Where {
  file: string;
  cwd: string;
  tag: string;
  env: string | null;
  tsray: string;
  node: string;
}
interface App {
  where: ray.RemoteFunction<(envName: string) => Where>;
  outer: ray.RemoteFunction<() => Promise<Where>>;
  exists: ray.RemoteFunction<(name: string) => boolean>;
  Place: ray.ActorClass<new () => { where(envName: string): Where; touch(name: string): boolean }>;
}

const dirs: string[] = [];

/**
 * Writes a small app into a fresh directory: app.js defines remote
 * functions and an actor, and requires its sibling helper.js (whose tag
 * tells copies apart). Only the driver's machine has these files.
 */
function writeApp(tag: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-renv-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'helper.js'), `exports.tag = ${JSON.stringify(tag)};\n`);
  fs.writeFileSync(
    path.join(dir, 'app.js'),
    `const ray = require(${JSON.stringify(TSRAY)});
const helper = require('./helper');
const report = (envName) => ({ file: __filename, cwd: process.cwd(), tag: helper.tag, env: process.env[envName] ?? null, tsray: require.resolve('@tsray/core'), node: ray.getRuntimeContext().nodeId });
exports.where = ray.remote(function where(envName) { return report(envName); });
exports.outer = ray.remote(async function outer() { return await ray.get(exports.where.remote('NONE')); });
exports.exists = ray.remote(function exists(name) { return require('node:fs').existsSync(name); });
class Place {
  where(envName) { return report(envName); }
  touch(name) { require('node:fs').writeFileSync(name, 'here'); return true; }
}
exports.Place = ray.remote(Place);
`,
  );
  return dir;
}

/** Loads the app in this process (the driver), as a user's script imports its modules. */
function load(dir: string): App {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(dir, 'app.js')) as App;
}

/** The error `get()` of `ref` rejects with (undefined if it resolves). */
function failure(ref: ray.ObjectRef<unknown>): Promise<unknown> {
  return ray.get(ref).then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** Adds a file whose path fits under `dir` on the driver but is too long under a node's session directory. */
function addTooDeepFile(dir: string): void {
  let deep = dir;
  while (deep.length < 4000) deep = path.join(deep, 'd'.repeat(200));
  fs.mkdirSync(deep, { recursive: true });
  fs.writeFileSync(path.join(deep, 'x'), 'x');
}

/** Where the node unpacked the copy that `file` (a module of the copy) belongs to; fails if it is not such a copy. */
function unpackRoot(file: string): string {
  const sessions = path.join(process.env.TSRAY_TMPDIR ?? os.tmpdir(), 'tsray');
  const m = new RegExp(`^(${sessions.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/session_[^/]+/runtime_resources/working_dir_files)/pkg_[0-9a-f]{32}/`).exec(file);
  if (!m) throw new Error(`${file} is not in a node's runtime_resources/working_dir_files directory`);
  return m[1] as string;
}

afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('a job with a working directory', () => {
  afterEach(async () => {
    await ray.shutdown();
  });

  test('init() with a working directory that does not exist rejects with RuntimeEnvSetupError before starting anything', async () => {
    const missing = path.join(os.tmpdir(), 'tsray-renv-does-not-exist');
    const p = ray.init({ runtimeEnv: { workingDir: missing }, logToDriver: false });
    await expect(p).rejects.toBeInstanceOf(ray.RuntimeEnvSetupError);
    await expect(p).rejects.toThrow(`init() cannot set up the job's runtime environment: runtimeEnv.workingDir ${JSON.stringify(missing)} does not exist`);
    expect(ray.isInitialized()).toBe(false);
  });

  test("the job's working directory holds every task's worker, nested tasks included, and a task's own directory overrides it", async () => {
    const dir = writeApp('job');
    const other = writeApp('other');
    await ray.init({ numCpus: 2, logToDriver: false, runtimeEnv: { workingDir: dir, env: { JOB_LEVEL: 'job' } } });
    const app = load(dir);
    const r = await ray.get(app.where.remote('JOB_LEVEL'));
    const root = unpackRoot(r.file);
    expect(path.basename(r.file)).toBe('app.js');
    expect(r.cwd).toBe(path.dirname(r.file));
    expect(r.tag).toBe('job');
    expect(r.env).toBe('job');
    // tsray resolves from the copy (by name) to the installation the node runs
    expect(fs.realpathSync(r.tsray)).toBe(fs.realpathSync(TSRAY));
    const nested = await ray.get(app.outer.remote());
    expect(nested.file).toBe(r.file);
    const own = await ray.get(app.where.options({ runtimeEnv: { workingDir: other } }).remote('JOB_LEVEL'));
    expect(own.cwd.startsWith(root + path.sep)).toBe(true);
    expect(own.cwd).not.toBe(r.cwd);
    expect(fs.readFileSync(path.join(own.cwd, 'helper.js'), 'utf8')).toContain('"other"');
  });
});

describe('tasks and actors with their own working directory', () => {
  beforeAll(async () => {
    await ray.init({ numCpus: 3, logToDriver: false, runtimeEnv: { env: { JOB_LEVEL: 'job', OVERRIDE_ME: 'job' } } });
  });
  afterAll(async () => {
    await ray.shutdown();
  });

  test("a function defined in the working directory runs from the node's unpacked copy, with its sibling modules", async () => {
    const dir = writeApp('one');
    const app = load(dir);
    const r = await ray.get(app.where.options({ runtimeEnv: { workingDir: dir } }).remote('JOB_LEVEL'));
    unpackRoot(r.file);
    expect(r.file).not.toBe(path.join(dir, 'app.js'));
    expect(fs.readFileSync(r.file, 'utf8')).toBe(fs.readFileSync(path.join(dir, 'app.js'), 'utf8'));
    expect(r.cwd).toBe(path.dirname(r.file));
    expect(r.tag).toBe('one');
    // the job's variables reach it
    expect(r.env).toBe('job');
  });

  test("a task's variables override the job's, key by key, beside its working directory", async () => {
    const dir = writeApp('env');
    const app = load(dir);
    const f = app.where.options({ runtimeEnv: { workingDir: dir, env: { OVERRIDE_ME: 'task' } } });
    const [over, job] = await ray.get([f.remote('OVERRIDE_ME'), f.remote('JOB_LEVEL')] as const);
    expect(over.env).toBe('task');
    expect(job.env).toBe('job');
    expect((await ray.get(app.where.options({ runtimeEnv: { workingDir: dir } }).remote('OVERRIDE_ME'))).env).toBe('job');
  });

  test('tasks and an actor with the same package share one unpacked copy on the node', async () => {
    const dir = writeApp('shared');
    const app = load(dir);
    const env = { runtimeEnv: { workingDir: dir } };
    const place = app.Place.options(env).remote();
    const tasks = await ray.get([1, 2, 3, 4].map(() => app.where.options(env).remote('NONE')));
    const fromActor = await ray.get(place.where.remote('NONE'));
    const cwds = new Set([...tasks.map((t) => t.cwd), fromActor.cwd]);
    expect(cwds.size).toBe(1);
    const root = unpackRoot(fromActor.file);
    // the actor (its own process) writes into the copy; a task sees it there
    await ray.get(place.touch.remote('marker.txt'));
    expect(await ray.get(app.exists.options(env).remote('marker.txt'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'marker.txt'))).toBe(false);
    // one directory per package, nothing half-unpacked beside it
    expect(fs.readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
    ray.kill(place);
  });

  test('a changed working directory is packed again; an unchanged one runs in the same copy', async () => {
    const dir = writeApp('before');
    const app = load(dir);
    const env = { runtimeEnv: { workingDir: dir } };
    const a = await ray.get(app.where.options(env).remote('NONE'));
    const b = await ray.get(app.where.options(env).remote('NONE'));
    expect(b.cwd).toBe(a.cwd);
    fs.writeFileSync(path.join(dir, 'helper.js'), 'exports.tag = "after, edited";\n');
    const c = await ray.get(app.where.options(env).remote('NONE'));
    expect(c.cwd).not.toBe(a.cwd);
    expect(c.tag).toBe('after, edited');
  });

  test('excludes leave files out of the copy', async () => {
    const dir = writeApp('ex');
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'big.csv'), 'a,b\n');
    fs.writeFileSync(path.join(dir, 'notes.log'), 'log');
    const app = load(dir);
    const env = { runtimeEnv: { workingDir: dir, excludes: ['data/', '*.log'] } };
    const r = await ray.get(app.where.options(env).remote('NONE'));
    expect(fs.readdirSync(r.cwd).sort()).toEqual(['app.js', 'helper.js']);
  });

  test('a working directory that does not exist, is a file, or is too large fails its task with RuntimeEnvSetupError and the reason; other tasks run', async () => {
    const dir = writeApp('good');
    const app = load(dir);
    const missing = path.join(dir, 'no-such-dir');
    const big = writeApp('big');
    fs.writeFileSync(path.join(big, 'weights.bin'), '');
    fs.truncateSync(path.join(big, 'weights.bin'), 150 * 1024 * 1024); // sparse: no disk used
    const bad = [
      [missing, `where cannot run: runtimeEnv.workingDir ${JSON.stringify(missing)} does not exist`],
      [path.join(dir, 'app.js'), 'is not a directory (it is a file)'],
      [big, 'holds 150.0 MiB of files, more than the limit of 100.0 MiB (largest: weights.bin (150.0 MiB)). Leave out what tasks do not need with runtimeEnv.excludes'],
    ] as const;
    const refs = bad.map(([wd]) => app.where.options({ runtimeEnv: { workingDir: wd } }).remote('NONE'));
    const good = app.where.options({ runtimeEnv: { workingDir: dir } }).remote('NONE');
    for (let i = 0; i < bad.length; i++) {
      const err = await failure(refs[i] as ray.ObjectRef<Where>);
      expect(err).toBeInstanceOf(ray.RuntimeEnvSetupError);
      expect((err as Error).message).toContain((bad[i] as readonly [string, string])[1]);
    }
    expect((await ray.get(good)).tag).toBe('good');
    // the large one runs once the large file is left out
    expect((await ray.get(load(big).where.options({ runtimeEnv: { workingDir: big, excludes: ['*.bin'] } }).remote('NONE'))).tag).toBe('big');
  });

  test('a working directory that cannot be unpacked on the node fails its task with RuntimeEnvSetupError; other work goes on', async () => {
    // paths that fit on the driver's side but are too long under the node's directory
    const dir = writeApp('long');
    const app = load(dir);
    addTooDeepFile(dir);
    const good = writeApp('fine');
    const refs = [app.where.options({ runtimeEnv: { workingDir: dir } }).remote('NONE'), load(good).where.options({ runtimeEnv: { workingDir: good } }).remote('NONE')];
    const err = await failure(refs[0] as ray.ObjectRef<Where>);
    expect(err).toBeInstanceOf(ray.RuntimeEnvSetupError);
    expect((err as Error).message).toMatch(/^where cannot run: its runtime environment could not be set up on node \w+: its working-directory package pkg_\w+ could not be unpacked into .*ENAMETOOLONG/);
    expect((await ray.get(refs[1] as ray.ObjectRef<Where>)).tag).toBe('fine');
  });

  test('an actor whose working directory cannot be set up fails its calls with RuntimeEnvSetupError', async () => {
    const dir = writeApp('actor');
    const app = load(dir);
    const missing = path.join(dir, 'nope');
    const a = app.Place.options({ runtimeEnv: { workingDir: missing } }).remote();
    const e1 = await failure(a.where.remote('NONE'));
    expect(e1).toBeInstanceOf(ray.RuntimeEnvSetupError);
    expect((e1 as Error).message).toMatch(/^The actor Place \(\w+\) cannot run: runtimeEnv\.workingDir .* does not exist/);
    // one that fails on the node
    addTooDeepFile(dir);
    const b = app.Place.options({ runtimeEnv: { workingDir: dir } }).remote();
    const e2 = await failure(b.where.remote('NONE'));
    expect(e2).toBeInstanceOf(ray.RuntimeEnvSetupError);
    expect((e2 as Error).message).toMatch(/^The actor Place \(\w+\) cannot run: its runtime environment could not be set up on node \w+: .*ENAMETOOLONG/);
  });
});

describe('working directories across nodes', () => {
  let cluster: ray.Cluster;
  let other: ray.ClusterNode;
  beforeAll(async () => {
    ({ cluster, nodes: [other] } = await startCluster({ numCpus: 1 }, [{ numCpus: 2 }]));
  }, 60_000);
  afterAll(() => stopCluster(cluster));

  test('a node the driver does not run on fetches the package from the head and runs tasks and actors from its own copy', async () => {
    const dir = writeApp('far');
    const app = load(dir);
    const there = { runtimeEnv: { workingDir: dir }, scheduling: { nodeId: other.nodeId } };
    const here = { runtimeEnv: { workingDir: dir }, scheduling: { nodeId: cluster.head.nodeId } };
    const [far, near] = await ray.get([app.where.options(there).remote('NONE'), app.where.options(here).remote('NONE')] as const);
    expect(far.node).toBe(other.nodeId);
    expect(near.node).toBe(cluster.head.nodeId);
    expect(far.tag).toBe('far');
    // each node has its own copy, in its own session directory
    expect(unpackRoot(far.file)).not.toBe(unpackRoot(near.file));
    expect(path.basename(far.cwd)).toBe(path.basename(near.cwd));
    const actor = app.Place.options(there).remote();
    const fromActor = await ray.get(actor.where.remote('NONE'));
    expect(fromActor.node).toBe(other.nodeId);
    expect(fromActor.cwd).toBe(far.cwd);
    ray.kill(actor);
  });
});
