import * as ray from '@tsray/core';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as path from 'node:path';
import { NPM_ENV_MARKER, NodeNpmEnvs, installEnv, npmErrorLines, npmInstallArgs, type NpmInstaller } from '../../src/internal/runtime-env/npm-envs';
import { compileNpmEnv, npmEnvKey, type NpmEnvSpec } from '../../src/internal/runtime-env/npm-spec';
import { until } from '../helpers/poll';
import { tempDirs, writeFiles } from '../helpers/files';

const tmp = tempDirs('tsray-npm-unit');

const square = ray.remote(function square(x: number) {
  return x * x;
});
class Counter {
  n = 0;
}
const CounterActor = ray.remote(Counter);

describe('runtimeEnv.npm options', () => {
  const task = (npm: unknown): (() => unknown) => () => square.options({ runtimeEnv: { npm } } as unknown as ray.TaskOptions);
  const usage = "write a name, optionally with a version, range or tag ('lodash', 'lodash@4.17.21', '@scope/pkg@^1'), an alias ('x@npm:lodash@4'), a git URL or a tarball URL";

  test('a list or { packages, registry, installScripts } is accepted on tasks, actors and init', async () => {
    expect(() => square.options({ runtimeEnv: { npm: ['lodash@4.17.21', 'left-pad', '@types/node@^20', 'x@npm:lodash@4', 'git+https://github.com/a/b.git', 'https://example.com/p.tgz'] } })).not.toThrow();
    expect(() => CounterActor.options({ runtimeEnv: { npm: { packages: ['left-pad'], registry: 'https://registry.npmjs.org', installScripts: true } } })).not.toThrow();
    expect(() => square.options({ runtimeEnv: { npm: [] } })).not.toThrow();
    await expect(ray.init({ runtimeEnv: { npm: 'lodash' } } as unknown as ray.InitOptions)).rejects.toThrow(
      "options.runtimeEnv.npm must be a list of packages like ['lodash@4.17.21', 'left-pad'], or { packages: [...], registry?: 'https://...' }, got \"lodash\"",
    );
    expect(ray.isInitialized()).toBe(false);
  });

  test('a list that is not a list of strings is refused with the option named', () => {
    expect(task('lodash')).toThrow(TypeError);
    expect(task(null)).toThrow("options.runtimeEnv.npm must be a list of packages like ['lodash@4.17.21', 'left-pad'], or { packages: [...], registry?: 'https://...' }, got null");
    expect(task([1])).toThrow("options.runtimeEnv.npm[0] must be a package spec (a string like 'lodash@4.17.21'), got 1");
    expect(task({ packages: 'lodash' })).toThrow("options.runtimeEnv.npm.packages must be a list of packages like ['lodash@4.17.21', 'left-pad'], got \"lodash\"");
    expect(task({ registry: 'https://r.example/' })).toThrow("options.runtimeEnv.npm.packages is missing: list the packages to install, like { packages: ['lodash@4.17.21', 'left-pad'] }");
    expect(task({ pkgs: ['x'] })).toThrow("unknown options.runtimeEnv.npm field 'pkgs'; supported: packages, registry, installScripts");
    expect(task({ packages: ['x'], installScripts: 'yes' })).toThrow('options.runtimeEnv.npm.installScripts must be a boolean, got "yes"');
    expect(() => square.options({ runtimeEnv: { npms: ['x'] } } as unknown as ray.TaskOptions)).toThrow("unknown runtimeEnv field 'npms' (did you mean 'npm'?)");
  });

  test('empty names, bad spec syntax, options, local paths and a package listed twice are refused with the fix', () => {
    expect(task(['left-pad', ''])).toThrow("options.runtimeEnv.npm[1] is empty: give a package name, optionally with a version ('left-pad', 'lodash@4.17.21')");
    expect(task({ packages: ['  '] })).toThrow('options.runtimeEnv.npm.packages[0] is empty');
    expect(task(['Foo Bar'])).toThrow(`options.runtimeEnv.npm[0] "Foo Bar" is not a valid npm package spec (Invalid tag name "Foo Bar"`);
    expect(task(['lodash@@4'])).toThrow(`options.runtimeEnv.npm[0] "lodash@@4" is not a valid npm package spec (Invalid tag name "@4" of package "lodash@@4"`);
    expect(task(['lodash@not a tag!'])).toThrow(usage);
    expect(task(['--global'])).toThrow(`options.runtimeEnv.npm[0] "--global" is an npm option, not a package: ${usage}`);
    expect(task(['./lib'])).toThrow(
      `options.runtimeEnv.npm[0] "./lib" is a path on this machine: nodes install from a registry, not from the driver's disk. Publish the package (or give a git or tarball URL), or ship the code in runtimeEnv.workingDir`,
    );
    expect(task(['file:../x'])).toThrow('is a path on this machine');
    expect(task(['lodash@4', 'left-pad', 'lodash@3'])).toThrow('options.runtimeEnv.npm lists lodash twice ("lodash@4" and "lodash@3"): keep one');
  });

  test('a registry that is not an http(s) URL is refused', () => {
    const reg = (registry: unknown): (() => unknown) => task({ packages: ['left-pad'], registry });
    const usage = "options.runtimeEnv.npm.registry must be the URL of an npm registry, like 'https://registry.npmjs.org/'";
    expect(reg('registry.npmjs.org')).toThrow(`${usage}, got "registry.npmjs.org" (not a URL)`);
    expect(reg('ftp://mirror.example/')).toThrow(`${usage}, got "ftp://mirror.example/" (npm reads registries over http or https only)`);
    expect(reg(5)).toThrow(`${usage}, got 5`);
    expect(reg('')).toThrow(`${usage}, got ""`);
  });

  test('a list is normalized and keyed by what it installs: order aside, registry and install scripts included', () => {
    const a = compileNpmEnv([' lodash@4.17.21 ', 'left-pad']);
    const b = compileNpmEnv({ packages: ['left-pad', 'lodash@4.17.21'] });
    expect(a).toEqual({ packages: ['left-pad', 'lodash@4.17.21'] });
    expect(npmEnvKey(a)).toMatch(/^npm_[0-9a-f]{32}$/);
    expect(npmEnvKey(a)).toBe(npmEnvKey(b));
    const reg = compileNpmEnv({ packages: ['left-pad', 'lodash@4.17.21'], registry: 'https://registry.npmjs.org' });
    expect(reg.registry).toBe('https://registry.npmjs.org/');
    expect(npmEnvKey(reg)).not.toBe(npmEnvKey(a));
    expect(npmEnvKey(compileNpmEnv({ packages: ['left-pad', 'lodash@4.17.21'], installScripts: true }))).not.toBe(npmEnvKey(a));
    expect(npmEnvKey(compileNpmEnv(['left-pad']))).not.toBe(npmEnvKey(a));
  });
});

/** An installer that writes fake packages, counting its runs; `gate` holds it until resolved. */
function fakeInstaller(opts: { fail?: number; gate?: Promise<void> } = {}): { install: NpmInstaller; runs: string[] } {
  const runs: string[] = [];
  let failuresLeft = opts.fail ?? 0;
  const install: NpmInstaller = async (dir, spec) => {
    runs.push(dir);
    await opts.gate;
    if (failuresLeft-- > 0) {
      throw Object.assign(new Error('npm install exited with code 1:\nnpm error code E404\nnpm error 404 Not Found - GET https://registry.example/nope'), {
        output: 'npm http fetch GET 404\nnpm error code E404\nnpm error 404 Not Found - GET https://registry.example/nope\n',
      });
    }
    for (const p of spec.packages) writeFiles(dir, { [`node_modules/${p}/package.json`]: JSON.stringify({ name: p, version: '1.0.0' }) });
  };
  return { install, runs };
}

const LIST: NpmEnvSpec = { packages: ['a-pkg', 'b-pkg'] };
const logLines = (root: string, event: string): string[] =>
  fs.existsSync(path.join(root, 'installs.log'))
    ? fs
        .readFileSync(path.join(root, 'installs.log'), 'utf8')
        .split('\n')
        .filter((l) => l.split(' ')[1] === event)
    : [];

describe('npm environments on a node', () => {
  test('concurrent requests for a list install it once, into a directory named by its key, renamed into place complete', async () => {
    const root = path.join(tmp('once'), 'npm');
    let open!: () => void;
    const { install, runs } = fakeInstaller({ gate: new Promise<void>((r) => (open = r)) });
    const envs = new NodeNpmEnvs(root, { install });
    const both = Promise.all([envs.ensure(LIST), envs.ensure({ packages: ['b-pkg', 'a-pkg'] })]);
    expect(envs.isSettingUp(npmEnvKey(LIST))).toBe(true);
    await until(() => runs.length === 1, 'the install to start');
    // nothing is in place while it installs
    expect(fs.readdirSync(root).filter((n) => !n.startsWith('.') && n !== 'installs.log')).toEqual([]);
    open();
    const [d1, d2] = await both;
    expect(d1).toBe(path.join(root, npmEnvKey(LIST)));
    expect(d2).toBe(d1);
    expect(runs).toHaveLength(1);
    expect(envs.installed).toBe(1);
    expect(envs.dirOf(npmEnvKey(LIST))).toBe(d1);
    expect(JSON.parse(fs.readFileSync(path.join(d1, NPM_ENV_MARKER), 'utf8'))).toMatchObject({ packages: LIST.packages, key: npmEnvKey(LIST) });
    expect(fs.existsSync(path.join(d1, 'node_modules', 'a-pkg', 'package.json'))).toBe(true);
    expect(logLines(root, 'begin')).toHaveLength(1);
    expect(logLines(root, 'done')).toHaveLength(1);
    expect(fs.readdirSync(root).sort()).toEqual(['installs.log', npmEnvKey(LIST)]);
  });

  test("another process's install of the same list is waited for, not repeated; an installed list is found by a new node manager", async () => {
    const root = path.join(tmp('shared'), 'npm');
    let open!: () => void;
    const first = fakeInstaller({ gate: new Promise<void>((r) => (open = r)) });
    const second = fakeInstaller();
    // two node managers sharing the session directory (as the nodes of a ray.Cluster on one machine)
    const a = new NodeNpmEnvs(root, { install: first.install, lockPollMs: 10 });
    const b = new NodeNpmEnvs(root, { install: second.install, lockPollMs: 10 });
    const pa = a.ensure(LIST);
    await until(() => first.runs.length === 1, 'the first install to hold the lock');
    const pb = b.ensure(LIST);
    open();
    expect(await pb).toBe(await pa);
    expect([first.runs.length, second.runs.length]).toEqual([1, 0]);
    const c = new NodeNpmEnvs(root, { install: second.install });
    expect(await c.ensure(LIST)).toBe(await pa);
    expect(second.runs).toHaveLength(0);
  });

  test('a lock left by a process that is gone is taken over', async () => {
    const root = path.join(tmp('stale'), 'npm');
    fs.mkdirSync(root, { recursive: true });
    const gone = spawnSync(process.execPath, ['-e', '0']).pid as number;
    fs.writeFileSync(path.join(root, `.${npmEnvKey(LIST)}.lock`), `${gone}\n`);
    const { install, runs } = fakeInstaller();
    const dir = await new NodeNpmEnvs(root, { install, lockPollMs: 10 }).ensure(LIST);
    expect(runs).toHaveLength(1);
    expect(fs.existsSync(path.join(dir, NPM_ENV_MARKER))).toBe(true);
    expect(fs.existsSync(path.join(root, `.${npmEnvKey(LIST)}.lock`))).toBe(false);
  });

  test("a failed install rejects with the list and npm's error lines, keeps npm's output, leaves nothing behind, and is tried again on the next request", async () => {
    const root = path.join(tmp('fail'), 'npm');
    const { install, runs } = fakeInstaller({ fail: 1 });
    const envs = new NodeNpmEnvs(root, { install });
    const err = (await envs.ensure(LIST).catch((e: unknown) => e)) as Error;
    const logFile = path.join(root, `${npmEnvKey(LIST)}.error.log`);
    expect(err.message).toBe(
      `runtimeEnv.npm ["a-pkg","b-pkg"] could not be installed with npm (its output is in ${logFile}): npm install exited with code 1:\nnpm error code E404\nnpm error 404 Not Found - GET https://registry.example/nope`,
    );
    expect(fs.readFileSync(logFile, 'utf8')).toContain('npm http fetch GET 404');
    expect(fs.readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(envs.dirOf(npmEnvKey(LIST))).toBeUndefined();
    expect(await envs.ensure(LIST)).toBe(path.join(root, npmEnvKey(LIST)));
    expect(runs).toHaveLength(2);
    expect(logLines(root, 'failed')).toHaveLength(1);
    expect(logLines(root, 'done')).toHaveLength(1);
  });

  test('a list from a message that npm would read as options is refused without running npm', async () => {
    const { install, runs } = fakeInstaller();
    const envs = new NodeNpmEnvs(path.join(tmp('flag'), 'npm'), { install });
    await expect(envs.ensure({ packages: ['--global', 'x'] })).rejects.toThrow('runtimeEnv.npm ["--global","x"] cannot be installed: "--global" is not a package spec');
    await expect(envs.ensure({ packages: ['x'], registry: 'file:///etc' })).rejects.toThrow('"file:///etc" is not an http(s) URL');
    expect(runs).toHaveLength(0);
  });

  test('npm installs without saving, lock file, audit or install scripts unless asked, from the registry given', () => {
    expect(npmInstallArgs('/d', { packages: ['a', 'b@1'] })).toEqual([
      'install',
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      '--loglevel=warn',
      '--prefix',
      '/d',
      '--ignore-scripts',
      '--',
      'a',
      'b@1',
    ]);
    const args = npmInstallArgs('/d', { packages: ['a'], registry: 'https://r.example/', installScripts: true });
    expect(args).not.toContain('--ignore-scripts');
    expect(args.slice(-4)).toEqual(['--registry', 'https://r.example/', '--', 'a']);
  });

  test('a real npm that hangs on its registry is stopped at the timeout, and when the node manager stops, with its process gone', async () => {
    // a registry that accepts connections and never answers
    const sockets = new Set<Socket>();
    const server = http.createServer(() => undefined);
    server.on('connection', (c) => {
      sockets.add(c);
      c.on('close', () => sockets.delete(c));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const root = path.join(tmp('hang'), 'npm');
      const timed = new NodeNpmEnvs(root, { timeoutMs: 1500 });
      await expect(timed.ensure({ packages: ['left-pad'], registry })).rejects.toThrow(/could not be installed with npm .*: npm install did not finish within 2 s and was stopped/);
      await until(() => sockets.size === 0, "the stopped npm's connections to close");
      const stopping = new NodeNpmEnvs(root);
      const p = stopping.ensure({ packages: ['left-pad'], registry });
      await until(() => sockets.size > 0, 'npm to ask the registry');
      stopping.stop();
      await expect(p).rejects.toThrow('npm install was stopped: the node manager is stopping');
      await until(() => sockets.size === 0, "the stopped npm's connections to close");
      expect(fs.readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test("npm runs without the cluster token or tsray's other settings (install scripts would see them), and without npm's script variables", () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { TSRAY_CLUSTER_TOKEN: 'a'.repeat(64), TSRAY_SESSION_DIR: '/tmp/x', npm_config_local_prefix: '/repo', INIT_CWD: '/repo', KEEP_ME: '1' });
      const env = installEnv();
      expect(Object.keys(env).filter((k) => k.startsWith('TSRAY_') || k === 'npm_config_local_prefix' || k === 'INIT_CWD')).toEqual([]);
      expect(env.KEEP_ME).toBe('1');
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  test("npm's error lines are picked out of its output", () => {
    expect(npmErrorLines('npm warn deprecated x\nnpm error code E404\nnpm error 404 nope\n')).toBe('npm error code E404\nnpm error 404 nope');
    expect(npmErrorLines('sh: 1: node-gyp: not found\n\n')).toBe('sh: 1: node-gyp: not found');
  });
});

/** Runs `code` in a fresh node process with the environment in `root` resolving first; returns what it printed as JSON. */
function inWorker(root: string, code: string): Promise<Record<string, string>> {
  const resolution = path.resolve(__dirname, '../../dist/internal/runtime-env/npm-resolution.js');
  const script = `require(${JSON.stringify(resolution)}).installNpmResolution(${JSON.stringify(root)});\n(async () => { ${code} })().then((r) => process.stdout.write(JSON.stringify(r)), (e) => { console.error(e); process.exit(1); });`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('close', (rc) => (rc === 0 ? resolve(JSON.parse(out) as Record<string, string>) : reject(new Error(`exit ${rc}: ${err}`))));
  });
}

describe("a worker's resolution of its npm environment", () => {
  test('user code gets the environment’s packages first by require, require.resolve, createRequire, import() and static import; libraries keep their own versions and fall back to the environment', async () => {
    const base = tmp('resolve');
    const env = path.join(base, 'env');
    const proj = path.join(base, 'project');
    const pkg = (dir: string, name: string, version: string, extra: Record<string, string> = {}): Record<string, string> => ({
      [`${dir}/node_modules/${name}/package.json`]: JSON.stringify({ name, version, main: 'index.js' }),
      [`${dir}/node_modules/${name}/index.js`]: `exports.v = ${JSON.stringify(version)};`,
      ...extra,
    });
    writeFiles(base, {
      ...pkg('env', 'foo', 'env', { 'env/node_modules/foo/sub.js': "exports.v = 'env/sub';" }),
      ...pkg('env', '@s/bar', 'env'),
      ...pkg('env', 'only-env', 'env'),
      // tsray's own code keeps its own dependencies
      ...pkg('env', 'msgpackr', 'env'),
      // a package of the environment with its own nested version of foo
      ...pkg('env', 'wrapper', 'env', { 'env/node_modules/wrapper/index.js': "exports.v = require('foo').v;" }),
      ...pkg('env/node_modules/wrapper', 'foo', 'wrapper-nested'),
      ...pkg('project', 'foo', 'project', { 'project/node_modules/foo/sub.js': "exports.v = 'project/sub';" }),
      ...pkg('project', '@s/bar', 'project'),
      ...pkg('project', 'not-in-env', 'project'),
      // an installed library of the project: keeps its foo, finds only-env in the environment
      ...pkg('project', 'lib', 'lib', { 'project/node_modules/lib/index.js': "exports.foo = require('foo').v; exports.onlyEnv = require('only-env').v;" }),
      'project/node_modules/lib/node_modules/foo/package.json': JSON.stringify({ name: 'foo', version: 'lib-nested' }),
      'project/node_modules/lib/node_modules/foo/index.js': "exports.v = 'lib-nested';",
      'project/rel.js': "exports.v = 'rel';",
      'project/esm.mjs': "import foo from 'foo'; export default foo.v;",
      'project/app.js': `
        exports.run = async () => ({
          foo: require('foo').v,
          sub: require('foo/sub').v,
          scoped: require('@s/bar').v,
          notInEnv: require('not-in-env').v,
          rel: require('./rel').v,
          builtin: typeof require('node:path').join,
          resolved: require.resolve('foo'),
          created: require('node:module').createRequire(__dirname + '/shipped.js')('foo').v,
          imported: (await import('foo')).default.v,
          importedSub: (await import('foo/sub.js')).default.v,
          staticImport: (await import('./esm.mjs')).default,
          lib: require('lib').foo,
          libFallback: require('lib').onlyEnv,
          wrapper: require('wrapper').v,
          tsrayOwn: require('node:module').createRequire(${JSON.stringify(path.resolve(__dirname, '../../dist/index.js'))}).resolve('msgpackr'),
        });`,
    });
    const r = await inWorker(env, `return require(${JSON.stringify(path.join(proj, 'app.js'))}).run();`);
    expect(r).toEqual({
      foo: 'env',
      sub: 'env/sub',
      scoped: 'env',
      notInEnv: 'project',
      rel: 'rel',
      builtin: 'function',
      resolved: path.join(env, 'node_modules', 'foo', 'index.js'),
      created: 'env',
      imported: 'env',
      importedSub: 'env/sub',
      staticImport: 'env',
      lib: 'lib-nested',
      libFallback: 'env',
      wrapper: 'wrapper-nested',
      tsrayOwn: require.resolve('msgpackr', { paths: [path.resolve(__dirname, '../../dist')] }),
    });
    expect(r.tsrayOwn?.startsWith(env)).toBe(false);
  });
});
