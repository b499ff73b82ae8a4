/**
 * Every example runs end to end, as a user would run it, in its own process.
 */
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const root = path.join(__dirname, '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the quick start estimates pi, counts with an actor and shares a large array', () => {
  const r = run(tsx, ['examples/quickstart.ts']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/pi ≈ 3\.1\d* from 16 tasks/);
  expect(r.out).toMatch(/counter actor reached 1000 after 1,000 calls/);
  expect(r.out).toMatch(/summed it to 50,000,000/);
  expect(r.out).toMatch(/done in \d+ ms/);
});

test.each([
  ['CommonJS JavaScript with node', process.execPath, ['examples/formats/commonjs.js'], {}, 'commonjs: 4+2+3 = 9 words'],
  ['an ES module with node', process.execPath, ['examples/formats/esm.mjs'], {}, 'esm: 4+2+3 = 9 words'],
  ['TypeScript with tsx', tsx, ['examples/formats/typescript.ts'], {}, 'typescript: 4+2+3 = 9 words'],
  ['TypeScript with ts-node', process.execPath, ['-r', 'ts-node/register', 'examples/formats/typescript.ts'], { TS_NODE_TRANSPILE_ONLY: '1' }, 'typescript: 4+2+3 = 9 words'],
  ['an ES module in TypeScript with tsx', tsx, ['examples/formats/esm-typescript.mts'], {}, 'esm-typescript: 2+3 words'],
])('remote functions and actors defined in %s run in workers', (_name, cmd, args, env, expected) => {
  const r = run(cmd as string, args as string[], env as NodeJS.ProcessEnv);
  expect(r.err).toBe('');
  expect(r.out.trim()).toBe(expected);
  expect(r.code).toBe(0);
});

test('the data example reads CSV and Parquet, featurizes, aggregates, writes Parquet and streams batches', () => {
  const r = run(tsx, ['examples/data-preprocessing.ts']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/cleaned 4948 of 5000 trips; columns: trip_id, city, distance_km, minutes, paid, fare, kmh/);
  expect(r.out).toMatch(/Lisbon: mean speed \d+\.\d km\/h/);
  expect(r.out).toMatch(/wrote 4 Parquet files, 4948 rows/);
  expect(r.out).toMatch(/epoch 1: 20 batches, 4948 rows/);
});

test('the serve example serves an ONNX model with batching over HTTP and queries it with fetch', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = require('node:net').createServer() as import('node:net').Server;
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as import('node:net').AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const r = run(tsx, ['examples/serve-model.ts'], { PORT: String(port) });
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/xor\(0, 0\) = 0\nxor\(0, 1\) = 1\nxor\(1, 0\) = 1\nxor\(1, 1\) = 0\n/);
  const m = /64 concurrent requests: 0 wrong; the model ran (\d+) times for 68 requests/.exec(r.out);
  expect(m).not.toBeNull();
  expect(Number(m?.[1])).toBeLessThan(68);
});

test('the train example fits an MLP on the penguins on 2 workers and exports it to ONNX', () => {
  const r = run(tsx, ['examples/train-mlp.ts']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/penguins: \d+ to train on, \d+ to validate/);
  const acc = /validation accuracy (\d+\.\d)%/.exec(r.out);
  expect(Number(acc?.[1])).toBeGreaterThanOrEqual(90);
  const dir = /results in (\S+);/.exec(r.out)?.[1] as string;
  expect(require('node:fs').existsSync(require('node:path').join(dir, 'model.onnx'))).toBe(true);
  require('node:fs').rmSync(dir, { recursive: true, force: true });
});
