import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { until } from './helpers';

// a cluster of `tsray start --head` in its own root, as a user's machine has one
let tmp: string;
const cli = path.join(path.dirname(require.resolve('@tsray/core/package.json')), 'bin', 'tsray.js');
const env = (): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, TSRAY_TMPDIR: tmp };
  delete e.TSRAY_CLUSTER_TOKEN;
  return e;
};
const tsray = (...args: string[]): { code: number | null; out: string } => {
  const r = spawnSync(process.execPath, [cli, ...args], { env: env(), encoding: 'utf8', timeout: 120_000, cwd: tmp });
  return { code: r.status, out: r.stdout + r.stderr };
};
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
const fixture = path.join(__dirname, 'fixtures', 'apps.ts');

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-serve-cli-'));
  const started = tsray('start', '--head', '--port', String(await freePort()), '--num-cpus', '4');
  expect(started.code).toBe(0);
}, 120_000);
afterAll(() => {
  tsray('serve', 'shutdown');
  tsray('stop');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('tsray serve deploy of a YAML file serves it; status shows it; shutdown stops it', async () => {
  const port = await freePort();
  const config = path.join(tmp, 'serve.yaml');
  fs.writeFileSync(
    config,
    [
      'proxyLocation: HeadOnly',
      `http: { host: 127.0.0.1, port: ${port} }`,
      'applications:',
      '  - name: adder',
      '    routePrefix: /add',
      `    importPath: ${fixture}:Adder`,
      '    args: 7',
      '    deployments:',
      '      - name: Adder',
      '        numReplicas: 1',
    ].join('\n'),
  );
  const d = tsray('serve', 'deploy', config);
  expect(d.out).toMatch(/deployed application 'adder' at \/add/);
  expect(d.code).toBe(0);
  // the deploying process has exited: the application keeps serving
  const r = await fetch(`http://127.0.0.1:${port}/add`, { method: 'POST', body: '{"x":1}' });
  expect(await r.json()).toEqual({ got: { x: 1 }, offset: 7, path: '/add' });
  const s = tsray('serve', 'status');
  expect(s.code).toBe(0);
  const st = JSON.parse(s.out.slice(s.out.indexOf('{'))) as { applications: Record<string, { status: string; deployments: Record<string, { replicaStates: Record<string, number> }> }> };
  expect(st.applications.adder?.status).toBe('RUNNING');
  expect(st.applications.adder?.deployments.Adder?.replicaStates).toEqual({ RUNNING: 1 });
  const down = tsray('serve', 'shutdown');
  expect(down.code).toBe(0);
  await expect(fetch(`http://127.0.0.1:${port}/add`)).rejects.toThrow();
}, 120_000);

test('a config file naming a deployment the application lacks fails with the names it has', () => {
  const config = path.join(tmp, 'bad.yaml');
  fs.writeFileSync(config, ['applications:', `  - importPath: ${fixture}:Adder`, '    args: 1', '    deployments:', '      - name: Addr', '        numReplicas: 2'].join('\n'));
  const d = tsray('serve', 'deploy', config);
  expect(d.code).toBe(2);
  expect(d.out).toMatch(/the config names a deployment 'Addr' that the application does not have; its deployments are: Adder/);
});

test('tsray serve run serves in the foreground until Ctrl-C', async () => {
  const port = await freePort();
  const p = spawn(process.execPath, [cli, 'serve', 'run', `${fixture}:hello`, '--port', String(port), '--route-prefix', '/hi'], { env: env(), cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  p.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  try {
    await until(() => /serving 'default'/.test(out), 'the app to be served', 60_000);
    expect(await (await fetch(`http://127.0.0.1:${port}/hi`)).text()).toBe('hello over GET');
    p.kill('SIGINT');
    expect(await exited).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/hi`)).rejects.toThrow();
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
  }
}, 120_000);
