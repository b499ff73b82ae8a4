/**
 * @tsray/serve benchmarks (issue 10), each against a peer in the same run:
 * HTTP through the proxy to a no-op deployment (2 replicas) against a bare
 * fastify handler (autocannon on loopback: requests/s at 100 connections,
 * p50 latency at 1), handle calls/s from a driver, an ONNX MLP served with
 * batching against onnxruntime-node called directly with the same batch
 * size, and how long autoscaling takes from a load step to new replicas
 * serving. `npm run bench -- serve [section…]`; writes bench/results/serve.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as http from 'node:http';
import { fork } from 'node:child_process';
import autocannon from 'autocannon';
import * as ray from '@tsray/core';
import * as serve from '@tsray/serve';
import { runSections, summarize, type Section } from './harness';
import { Noop, Sleeper } from './serve-apps';

/** Inputs of the benchmark's MLP. */
const IN = 256;
const SECONDS = Number(process.env.BENCH_SERVE_SECONDS ?? 10);
const PORT = 18600;
const PEER_PORT = 18601;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

async function cannon(url: string, connections: number, seconds: number): Promise<{ rps: number; p50: number; errors: number; non2xx: number }> {
  const r = await autocannon({ url, connections, duration: seconds, pipelining: 1 });
  return { rps: r.requests.average, p50: r.latency.p50, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

/** Median latency (ms) of `n` sequential GETs over one keep-alive connection. */
async function sequentialP50(url: string, n: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const t = performance.now();
      http
        .get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(performance.now() - t));
        })
        .on('error', reject);
    });
  for (let i = 0; i < 200; i++) await one();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await one());
  agent.destroy();
  return median(xs);
}

async function withPeer<T>(fn: () => Promise<T>): Promise<T> {
  const p = fork(path.join(__dirname, 'fastify-peer.js'), [String(PEER_PORT)], { stdio: 'inherit' });
  await new Promise<void>((resolve, reject) => {
    p.once('message', () => resolve());
    p.once('exit', (c) => reject(new Error(`the fastify peer exited (${c})`)));
  });
  try {
    return await fn();
  } finally {
    p.kill();
  }
}

/** 3 rounds each, alternating ours and the peer's, after a warm-up of each. */
const httpNoop: Section = {
  name: 'http_noop',
  async run(log) {
    await ray.init({ logToDriver: true });
    try {
      await serve.start({ http: { port: PORT } });
      await serve.run(Noop.bind(), { name: 'noop', routePrefix: '/' });
      const ours = `http://127.0.0.1:${PORT}/`;
      const peer = `http://127.0.0.1:${PEER_PORT}/`;
      await withPeer(async () => {
        await cannon(ours, 100, 2);
        await cannon(peer, 100, 2);
        const o: Array<{ rps: number; p50: number; errors: number; non2xx: number }> = [];
        const f: Array<{ rps: number; p50: number }> = [];
        for (let i = 0; i < 3; i++) {
          o.push(await cannon(ours, 100, SECONDS));
          f.push(await cannon(peer, 100, SECONDS));
        }
        const bad = o.reduce((a, r) => a + r.errors + r.non2xx, 0);
        log('http_noop_rps_100_connections', { ...summarize(o.map((r) => r.rps), 'req/s'), target: '≥ 10,000/s', ray: '~3-4k/s per proxy', note: `no-op deployment, 2 replicas, through the proxy; ${bad} errors or non-2xx` });
        log('fastify_rps_100_connections', { ...summarize(f.map((r) => r.rps), 'req/s'), note: 'a bare fastify handler in its own process' });
        log('http_noop_vs_fastify', { value: median(o.map((r) => r.rps)) / median(f.map((r) => r.rps)), unit: 'ratio', note: 'ratio of the medians, same run' });
        const o1: number[] = [];
        const f1: number[] = [];
        for (let i = 0; i < 3; i++) {
          o1.push(await sequentialP50(ours, 2000));
          f1.push(await sequentialP50(peer, 2000));
        }
        log('http_noop_p50_1_connection', { ...summarize(o1, 'ms'), note: 'median of 2,000 sequential requests on one keep-alive connection' });
        log('fastify_p50_1_connection', { ...summarize(f1, 'ms') });
        log('http_noop_added_p50', { value: median(o1) - median(f1), unit: 'ms', target: '≤ 1 ms', ray: '1-2 ms', note: 'median p50 through Serve minus fastify’s, same run' });
      });
    } finally {
      await serve.shutdown();
      await ray.shutdown();
    }
  },
};

/** Handle calls/s with 200 calls in flight (Ray's handle throughput benchmark). */
const handleThroughput: Section = {
  name: 'handle_throughput',
  async run(log) {
    await ray.init({ logToDriver: true });
    try {
      const h = await serve.run(Noop.bind(), { name: 'noop', routePrefix: null });
      const rate = async (seconds: number): Promise<number> => {
        let n = 0;
        const end = performance.now() + seconds * 1000;
        await Promise.all(
          Array.from({ length: 200 }, async () => {
            while (performance.now() < end) {
              await h.noop.remote();
              n++;
            }
          }),
        );
        return n / seconds;
      };
      await rate(1);
      const rounds: number[] = [];
      for (let i = 0; i < 4; i++) rounds.push(await rate(Math.max(2, SECONDS / 4)));
      log('handle_calls_per_s', { ...summarize(rounds, 'calls/s'), target: '≥ 20,000/s', note: 'a driver calling a no-op deployment (2 replicas), 200 calls in flight' });
    } finally {
      await serve.shutdown();
      await ray.shutdown();
    }
  },
};

/** A 256 → 1024 → 1024 → 16 MLP (2.6 MFLOP a row) with fixed pseudo-random weights. */
function mlpLayers(): serve.DenseLayer[] {
  let s = 11;
  const r = (): number => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.2;
  const dense = (i: number, o: number, activation: 'relu' | 'none'): serve.DenseLayer => ({ weights: Array.from({ length: i }, () => Array.from({ length: o }, r)), bias: Array.from({ length: o }, r), activation });
  return [dense(IN, 1024, 'relu'), dense(1024, 1024, 'relu'), dense(1024, 16, 'none')];
}

const onnxBatched: Section = {
  name: 'onnx_batched',
  async run(log, tmp) {
    const modelPath = path.join(tmp, 'mlp.onnx');
    fs.writeFileSync(modelPath, serve.onnx.mlp({ layers: mlpLayers() }));
    const row = Array.from({ length: IN }, (_, i) => Math.sin(i));
    // the peer: onnxruntime-node in this process, batches of 16 rows
    const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
    const session = await ort.InferenceSession.create(modelPath);
    const batch = new Float32Array(16 * IN);
    for (let i = 0; i < 16; i++) batch.set(row, i * IN);
    const direct = async (seconds: number): Promise<number> => {
      let rows = 0;
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        await session.run({ input: new ort.Tensor('float32', batch, [16, IN]) });
        rows += 16;
      }
      return rows / seconds;
    };
    await direct(1);
    const peer: number[] = [];
    for (let i = 0; i < 3; i++) peer.push(await direct(Math.max(2, SECONDS / 4)));
    await ray.init({ logToDriver: true });
    try {
      const h = await serve.run(serve.onnx.deployment({ modelPath, batch: { maxBatchSize: 16, batchWaitTimeoutS: 0.002 }, deployment: { name: 'mlp', numReplicas: 1, rayActorOptions: { numCpus: 0 } } }).bind(), { name: 'mlp', routePrefix: null });
      const rate = async (seconds: number): Promise<number> => {
        let n = 0;
        const end = performance.now() + seconds * 1000;
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (performance.now() < end) {
              await h.predict.remote([row]);
              n++;
            }
          }),
        );
        return n / seconds;
      };
      await rate(1);
      const ours: number[] = [];
      for (let i = 0; i < 3; i++) ours.push(await rate(Math.max(2, SECONDS / 4)));
      log('onnx_batched_rps', { ...summarize(ours, 'req/s'), note: '256→1024→1024→16 MLP, one row per request, 64 in flight from a driver, maxBatchSize 16, one replica' });
      log('onnx_direct_rows_per_s', { ...summarize(peer, 'rows/s'), note: 'onnxruntime-node in one process, batches of 16 rows' });
      log('onnx_batched_vs_direct', { value: median(ours) / median(peer), unit: 'ratio', target: '≥ 0.8', note: 'ratio of the medians, same run' });
    } finally {
      await serve.shutdown();
      await ray.shutdown();
    }
  },
};

/** From a load step (16 requests of 300 ms kept in flight) to the first new replica serving, and to all four. */
const autoscaleReaction: Section = {
  name: 'autoscale_reaction',
  async run(log) {
    await ray.init({ logToDriver: true });
    try {
      const first: number[] = [];
      const all: number[] = [];
      for (let round = 0; round < 3; round++) {
        const h = await serve.run(Sleeper.bind(), { name: 'sleeper', routePrefix: null });
        const base = new Set<number>([await h.sleep.remote(1)]);
        const t0 = performance.now();
        let firstNew: number | undefined;
        let stop = false;
        const pids = new Set<number>();
        const load = Promise.all(
          Array.from({ length: 16 }, async () => {
            while (!stop) {
              const pid = await h.sleep.remote(300);
              pids.add(pid);
              if (!base.has(pid) && firstNew === undefined) firstNew = performance.now() - t0;
              if (pids.size >= 4) stop = true;
            }
          }),
        );
        const deadline = performance.now() + 60_000;
        while (!stop && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        const allAt = performance.now() - t0;
        stop = true;
        await load;
        first.push((firstNew ?? Number.NaN) / 1000);
        all.push(allAt / 1000);
        await serve.delete('sleeper');
      }
      log('autoscale_first_new_replica_serving_s', { ...summarize(first, 's'), note: 'load step of 16 requests of 300 ms (target 2 ongoing per replica, upscaleDelayS 0, metricsIntervalS 0.1): until a request is answered by a new replica' });
      log('autoscale_all_replicas_serving_s', { ...summarize(all, 's'), note: 'until requests have been answered by 4 replicas (maxReplicas)' });
    } finally {
      await serve.shutdown();
      await ray.shutdown();
    }
  },
};

const SECTIONS: Section[] = [httpNoop, handleThroughput, onnxBatched, autoscaleReaction];
/** The sections' names. */
export const SECTION_NAMES: readonly string[] = SECTIONS.map((s) => s.name);

/** Runs the sections (all, or those named) and writes the results. */
export async function run(only?: string[]): Promise<void> {
  await runSections('serve', SECTIONS, only, { method: 'medians of 3-4 rounds (mean ± sd); ratios of medians measured in the same run', seconds: SECONDS });
}
