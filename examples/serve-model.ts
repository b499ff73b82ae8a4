/**
 * Serve an ONNX model over HTTP with dynamic batching, and query it with
 * fetch: `npx tsx examples/serve-model.ts` (PORT=… to use another port than 8000).
 *
 * The model is written here: a two-layer perceptron whose weights compute
 * XOR of two inputs (h1 = relu(a + b), h2 = relu(a + b - 1), y = h1 - 2·h2),
 * exported to ONNX with serve.onnx.mlp(). Any .onnx file serves the same way.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as serve from '@tsray/serve';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-serve-example-'));
  const modelPath = path.join(dir, 'xor.onnx');
  fs.writeFileSync(
    modelPath,
    serve.onnx.mlp({
      layers: [
        { weights: [[1, 1], [1, 1]], bias: [0, -1], activation: 'relu' },
        { weights: [[1], [-2]], bias: [0] },
      ],
    }),
  );
  await ray.init({ logToDriver: false });
  try {
    await serve.start({ http: { port } });
    const app = serve.onnx.deployment({ modelPath, batch: { maxBatchSize: 16, batchWaitTimeoutS: 0.005 }, deployment: { name: 'xor', numReplicas: 1, rayActorOptions: { numCpus: 0 } } }).bind();
    await serve.run(app, { name: 'xor', routePrefix: '/xor' });
    const url = `http://127.0.0.1:${port}/xor`;
    const ask = async (a: number, b: number): Promise<number> => {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { input: [[a, b]] } }) });
      if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
      const out = ((await r.json()) as serve.OnnxOutputs).outputs.output as number[][];
      return (out[0] as number[])[0] as number;
    };
    for (const [a, b] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) console.log(`xor(${a}, ${b}) = ${await ask(a, b)}`);
    // 64 requests at once: the replica stacks them into batches of up to 16 rows
    const ys = await Promise.all(Array.from({ length: 64 }, (_, i) => ask(i & 1, (i >> 1) & 1)));
    const wrong = ys.filter((y, i) => y !== ((i & 1) ^ ((i >> 1) & 1))).length;
    const info = (await (await fetch(url)).json()) as { runs: number; requests: number };
    console.log(`64 concurrent requests: ${wrong} wrong; the model ran ${info.runs} times for ${info.requests} requests`);
  } finally {
    await serve.shutdown();
    await ray.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
