/**
 * runtimeEnv.npm with real installs from the registry (one list,
 * lodash@4.17.21 and left-pad, installed once per node of each cluster
 * this file starts).
 */
import * as ray from '@tsray/core';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCluster, stopCluster } from './helpers/cluster';

/** tsray as the modules written below load it. */
const TSRAY = require.resolve('@tsray/core');
const LIST = ['lodash@4.17.21', 'left-pad'];
const MISSING = 'tsray-test-no-such-package-7f3a9c';

interface Report {
  version: string;
  esm: string;
  staticEsm: string;
  resolved: string;
  pad: string;
  pid: number;
  node: string;
}
interface App {
  versions: ray.RemoteFunction<() => Promise<Report>>;
  nested: ray.RemoteFunction<() => Promise<Report>>;
  plain: ray.RemoteFunction<() => number>;
  Versions: ray.ActorClass<new () => { report(): Promise<Report> }>;
  /** a remote function made inside a function: shipped by value, its require() resolving from app.js */
  inline: () => ray.RemoteFunction<() => string>;
  /** the same with import() */
  inlineImport: () => ray.RemoteFunction<() => Promise<string>>;
}

const dirs: string[] = [];

/**
 * Writes a small app whose own node_modules has other versions of lodash
 * and left-pad (as a project would): app.js defines remote functions and an
 * actor that report which copy they get by require(), import() and a
 * static import in esm.mjs.
 */
function writeApp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-npm-'));
  dirs.push(dir);
  const local = (name: string, main: string): void => {
    fs.mkdirSync(path.join(dir, 'node_modules', name), { recursive: true });
    // with an exports field, which resolvers of import() read first
    fs.writeFileSync(path.join(dir, 'node_modules', name, 'package.json'), JSON.stringify({ name, version: '0.0.1-local', main: 'index.js', exports: { '.': './index.js' } }));
    fs.writeFileSync(path.join(dir, 'node_modules', name, 'index.js'), main);
  };
  local('lodash', "exports.VERSION = '0.0.1-local';\n");
  local('left-pad', "module.exports = () => 'local';\n");
  fs.writeFileSync(path.join(dir, 'esm.mjs'), "import lodash from 'lodash';\nexport default lodash.VERSION;\n");
  fs.writeFileSync(
    path.join(dir, 'app.js'),
    `const ray = require(${JSON.stringify(TSRAY)});
async function report() {
  const lodash = require('lodash');
  const fromImport = await import('lodash');
  const staticEsm = (await import('./esm.mjs')).default;
  return {
    version: lodash.VERSION,
    esm: (fromImport.default ?? fromImport).VERSION,
    staticEsm,
    resolved: require.resolve('lodash'),
    pad: require('left-pad')('x', 3),
    pid: process.pid,
    node: ray.getRuntimeContext().nodeId,
  };
}
exports.versions = ray.remote(async function versions() { return report(); });
exports.nested = ray.remote(async function nested() { return await ray.get(exports.versions.remote()); });
exports.plain = ray.remote(function plain() { return process.pid; });
class Versions { report() { return report(); } }
exports.Versions = ray.remote(Versions);
exports.inline = function inline() { return ray.remote(() => require('lodash').VERSION); };
exports.inlineImport = function inlineImport() { return ray.remote(async () => { const m = await import('lodash'); return (m.default ?? m).VERSION; }); };
`,
  );
  return dir;
}

function load(dir: string): App {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(dir, 'app.js')) as App;
}

/** The error `p` rejects with (undefined if it resolves). */
function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** The npm cache directory of a node, from a path the node's workers resolved. */
function npmRoot(resolved: string): string {
  const m = /^(.*\/session_[^/]+\/runtime_resources\/npm)\/npm_[0-9a-f]{32}\/node_modules\//.exec(resolved);
  if (!m) throw new Error(`${resolved} is not in a node's runtime_resources/npm cache`);
  return m[1] as string;
}

/** The lines of a node's installs.log with `event` ('begin', 'done', 'failed'), for the list whose spec contains `what`. */
function installs(root: string, event: string, what: string): string[] {
  const file = path.join(root, 'installs.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1] === event && l.includes(what));
}

afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('tasks and actors with npm packages', () => {
  beforeAll(async () => {
    await ray.init({ numCpus: 2, logToDriver: false });
  });
  afterAll(async () => {
    await ray.shutdown();
  });

  test("concurrent tasks and an actor with one list install it once, and get the listed versions before the project's own", async () => {
    const app = load(writeApp());
    const env = { runtimeEnv: { npm: LIST } };
    const actor = app.Versions.options(env).remote();
    const [a, b, fromActor] = await Promise.all([ray.get(app.versions.options(env).remote()), ray.get(app.versions.options(env).remote()), ray.get(actor.report.remote())]);
    for (const r of [a, b, fromActor]) {
      expect(r).toMatchObject({ version: '4.17.21', esm: '4.17.21', staticEsm: '4.17.21', pad: '  x' });
    }
    const root = npmRoot(a.resolved);
    expect(fromActor.resolved).toBe(a.resolved);
    expect(installs(root, 'begin', '"lodash@4.17.21"')).toHaveLength(1);
    expect(installs(root, 'done', '"lodash@4.17.21"')).toHaveLength(1);
    // the list's key names its content: the same packages in another order are the same install
    const again = await ray.get(app.versions.options({ runtimeEnv: { npm: { packages: [...LIST].reverse() } } }).remote());
    expect(again.resolved).toBe(a.resolved);
    expect(installs(root, 'begin', '"lodash@4.17.21"')).toHaveLength(1);
    ray.kill(actor);
  });

  test("a function shipped by value resolves require() and import() from its file's directory, the list's packages first", async () => {
    const app = load(writeApp());
    const version = app.inline();
    expect(await ray.get(version.remote())).toBe('0.0.1-local');
    expect(await ray.get(version.options({ runtimeEnv: { npm: LIST } }).remote())).toBe('4.17.21');
    const imported = app.inlineImport();
    expect(await ray.get(imported.remote())).toBe('0.0.1-local');
    expect(await ray.get(imported.options({ runtimeEnv: { npm: LIST } }).remote())).toBe('4.17.21');
  });

  test('a task without the list runs in another process and gets the project’s own copies', async () => {
    const app = load(writeApp());
    const withList = await ray.get(app.versions.options({ runtimeEnv: { npm: LIST } }).remote());
    const without = await ray.get(app.versions.remote());
    expect(without).toMatchObject({ version: '0.0.1-local', esm: '0.0.1-local', staticEsm: '0.0.1-local', pad: 'local' });
    expect(without.pid).not.toBe(withList.pid);
  });

  test("a list that cannot be installed fails its task and its actor's calls with RuntimeEnvSetupError carrying npm's error; other work goes on, and a later request tries again", async () => {
    const app = load(writeApp());
    const bad = { runtimeEnv: { npm: ['left-pad', MISSING] } };
    const actor = app.Versions.options(bad).remote();
    const task = app.versions.options(bad).remote();
    const other = app.plain.remote();
    const [taskErr, actorErr] = await Promise.all([failure(ray.get(task)), failure(ray.get(actor.report.remote()))]);
    expect(typeof (await ray.get(other))).toBe('number');
    const listed = `runtimeEnv.npm ${JSON.stringify(['left-pad', MISSING])} could not be installed with npm`;
    expect(taskErr).toBeInstanceOf(ray.RuntimeEnvSetupError);
    expect((taskErr as Error).message).toMatch(/^versions cannot run: its runtime environment could not be set up on node \w+: /);
    expect(actorErr).toBeInstanceOf(ray.RuntimeEnvSetupError);
    expect((actorErr as Error).message).toMatch(/^The actor Versions \(\w+\) cannot run: /);
    for (const e of [taskErr, actorErr] as Error[]) {
      expect(e.message).toContain(listed);
      expect(e.message).toContain('npm error code E404');
      expect(e.message).toContain(`npm error 404 Not Found - GET`);
      expect(e.message).toContain(MISSING);
    }
    // the node's cache, where a list that installs goes
    const root = npmRoot((await ray.get(app.versions.options({ runtimeEnv: { npm: LIST } }).remote())).resolved);
    expect(installs(root, 'failed', MISSING)).toHaveLength(1);
    // the failure is not remembered: the next request runs npm again
    const later = await failure(ray.get(app.versions.options(bad).remote()));
    expect(later).toBeInstanceOf(ray.RuntimeEnvSetupError);
    expect(installs(root, 'failed', MISSING)).toHaveLength(2);
    // nothing half-installed is left behind
    expect(fs.readdirSync(root).filter((n) => n.includes('.tmp-') || n.endsWith('.lock'))).toEqual([]);
  });
});

describe("a job's npm packages across nodes", () => {
  let cluster: ray.Cluster;
  let other: ray.ClusterNode;
  beforeAll(async () => {
    // the object form, naming the registry this machine's npm is configured with
    const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
    ({ cluster, nodes: [other] } = await startCluster({ numCpus: 1 }, [{ numCpus: 1 }], { runtimeEnv: { npm: { packages: LIST, registry } } }));
  }, 60_000);
  afterAll(() => stopCluster(cluster));

  test("init's list reaches every task, nested ones included, and each node installs it in its own session directory", async () => {
    const app = load(writeApp());
    const [here, far, nested] = await Promise.all([
      ray.get(app.versions.options({ scheduling: { nodeId: cluster.head.nodeId } }).remote()),
      ray.get(app.versions.options({ scheduling: { nodeId: other.nodeId } }).remote()),
      ray.get(app.nested.remote()),
    ]);
    for (const r of [here, far, nested]) expect(r).toMatchObject({ version: '4.17.21', esm: '4.17.21', staticEsm: '4.17.21', pad: '  x' });
    expect([here.node, far.node]).toEqual([cluster.head.nodeId, other.nodeId]);
    expect(npmRoot(far.resolved)).not.toBe(npmRoot(here.resolved));
    for (const r of [here, far]) expect(installs(npmRoot(r.resolved), 'done', '"registry":"http')).toHaveLength(1);
    // a task's own (empty) list replaces the job's
    const none = await ray.get(app.versions.options({ runtimeEnv: { npm: [] } }).remote());
    expect(none.version).toBe('0.0.1-local');
  });
});
