import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as ray from '@tsray/core';
import { plusOne } from './fixtures/cluster-death';
import { freePort } from './helpers/net';

// the cluster `tsray start --head` starts here is found through this root, by the CLI and by init({ address: 'auto' })
let tmp: string;
const saved = { tmpdir: process.env.TSRAY_TMPDIR, token: process.env.TSRAY_CLUSTER_TOKEN };
const cli = path.join(__dirname, '..', 'bin', 'tsray.js');
const tsray = (...args: string[]): { code: number | null; out: string } => {
  const env: NodeJS.ProcessEnv = { ...process.env, TSRAY_TMPDIR: tmp };
  delete env.TSRAY_CLUSTER_TOKEN;
  const r = spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout + r.stderr };
};

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-token-'));
  process.env.TSRAY_TMPDIR = tmp;
  delete process.env.TSRAY_CLUSTER_TOKEN;
});
afterAll(async () => {
  await ray.shutdown();
  tsray('stop');
  for (const [k, v] of [['TSRAY_TMPDIR', saved.tmpdir], ['TSRAY_CLUSTER_TOKEN', saved.token]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("a process that used a ray.Cluster joins a cluster of `tsray start --head` with that cluster's token, and a wrong token is named as such", async () => {
  const cluster = await ray.Cluster.start({ head: { numCpus: 1 } });
  try {
    await ray.init({ address: cluster.address, logToDriver: false });
    expect(await ray.get(plusOne.remote(1))).toBe(2);
    await ray.shutdown();
  } finally {
    await cluster.shutdown();
  }

  const port = await freePort();
  const started = tsray('start', '--head', '--port', String(port), '--num-cpus', '1');
  expect(started.code).toBe(0);
  const token = (/Cluster token[^\n]*\n\s+([0-9a-f]{64})\n/.exec(started.out) ?? [])[1] as string;
  expect(token).not.toBe(cluster.token);

  // the ray.Cluster's token did not stick: 'auto' finds this cluster and its token file
  await ray.init({ address: 'auto', logToDriver: false });
  expect(await ray.get(plusOne.remote(2))).toBe(3);
  await ray.shutdown();

  const wrong = randomBytes(32).toString('hex');
  await expect(ray.init({ address: `127.0.0.1:${port}`, token: wrong, logToDriver: false })).rejects.toThrow(
    new RegExp(`^the head at 127\\.0\\.0\\.1:${port} refused this driver's cluster token \\(from init\\(\\{ token \\}\\)\\): the token may be wrong\\. Use the token \`tsray start --head\` printed`),
  );
  expect(ray.isInitialized()).toBe(false);

  // the right one, given explicitly
  await ray.init({ address: `127.0.0.1:${port}`, token, logToDriver: false });
  expect(await ray.get(plusOne.remote(3))).toBe(4);
  await ray.shutdown();
  expect(tsray('stop').out).toMatch(/Stopped the tsray cluster/);
}, 120_000);

test('init({ token }) must be 64 hex digits and comes with an address', async () => {
  await expect(ray.init({ address: '127.0.0.1:1', token: 'secret' })).rejects.toThrow('options.token is not valid: a cluster token is 64 hex digits (as `tsray start --head` prints it), got 6 characters');
  await expect(ray.init({ address: '127.0.0.1:1', token: 42 as unknown as string })).rejects.toThrow('options.token must be a string (the cluster token `tsray start --head` printed), got 42');
  await expect(ray.init({ token: 'a'.repeat(64) })).rejects.toThrow('options.token is for joining a running cluster: pass it with options.address (a cluster init() starts itself needs no token)');
});
