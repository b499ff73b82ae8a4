/**
 * `serve.onnx`: a ready-made deployment that serves an ONNX model with
 * onnxruntime-node (CPU by default; CUDA or other execution providers when
 * the installed build has them), with optional dynamic batching, and
 * `serve.onnx.mlp()` that writes a multi-layer perceptron's weights as an
 * ONNX model.
 *
 * HTTP: POST `{ "inputs": { "<input name>": nested array } }` (or a bare
 * nested array for a one-input model) answers `{ "outputs": { "<output
 * name>": nested array } }`; GET describes the model's inputs and outputs. Handles: `predict(inputs)` with the same shapes
 * (typed arrays accepted). With batching, concurrent requests' rows are
 * stacked into one run along the first dimension and split back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import { Deployment, type Application } from './api';
import { batch } from './batch';
import { BadRequestError, ServeError } from './errors';
import { ASYNC_INIT } from './internal/common';
import { checkKeys, type DeploymentOptions, resolveOptions } from './internal/options';
import type { Request } from './request';

/** A nested array of numbers (any depth), or a typed array (its shape taken from the model's input). */
export type TensorLike = number | bigint | boolean | TensorLike[] | ArrayBufferView;

/** Inputs of a prediction: by input name, or (a one-input model) the one input. */
export type OnnxInputs = Record<string, TensorLike> | TensorLike;

/** Outputs of a prediction, by output name, as nested arrays. */
export interface OnnxOutputs {
  outputs: Record<string, unknown>;
}

/** Options of {@link onnxDeployment}. */
export interface OnnxDeploymentOptions {
  /** the .onnx file (absolute, or relative to the working directory of the process that makes the deployment) */
  modelPath: string;
  /** dynamic batching of concurrent requests (every input's first dimension is the batch) */
  batch?: { maxBatchSize?: number; batchWaitTimeoutS?: number };
  /** onnxruntime execution providers in order of preference @default ['cpu'] */
  executionProviders?: string[];
  /** the deployment's options (name, numReplicas, autoscalingConfig, …) @default { name: 'OnnxModel' } */
  deployment?: DeploymentOptions;
}

interface OnnxConfig {
  modelPath: string;
  batch: { maxBatchSize: number; batchWaitTimeoutS: number } | null;
  executionProviders: string[];
}

type Ort = typeof import('onnxruntime-node');
type Session = Awaited<ReturnType<Ort['InferenceSession']['create']>>;
type OrtTensor = InstanceType<Ort['Tensor']>;
type TypedArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array | Uint32Array | BigInt64Array | BigUint64Array;

interface InputMeta {
  name: string;
  type: string;
  shape: Array<number | string>;
}

const ARRAYS: Record<string, (n: number) => TypedArray> = {
  float32: (n) => new Float32Array(n),
  float64: (n) => new Float64Array(n),
  int32: (n) => new Int32Array(n),
  int16: (n) => new Int16Array(n),
  int8: (n) => new Int8Array(n),
  uint8: (n) => new Uint8Array(n),
  uint16: (n) => new Uint16Array(n),
  uint32: (n) => new Uint32Array(n),
  int64: (n) => new BigInt64Array(n),
  uint64: (n) => new BigUint64Array(n),
  bool: (n) => new Uint8Array(n),
};

function shapeOf(v: TensorLike, where: string): number[] {
  const dims: number[] = [];
  let x: TensorLike = v;
  while (Array.isArray(x)) {
    dims.push(x.length);
    if (x.length === 0) break;
    x = x[0] as TensorLike;
  }
  if (Array.isArray(v) && dims.length === 0) throw new BadRequestError(`${where} is empty`);
  return dims;
}

function fill(out: TypedArray, v: TensorLike, dims: number[], where: string): void {
  let i = 0;
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  const walk = (x: TensorLike, d: number): void => {
    if (d === dims.length) {
      if (typeof x !== 'number' && typeof x !== 'bigint' && typeof x !== 'boolean') throw new BadRequestError(`${where} is not a rectangular nested array of numbers (found ${Array.isArray(x) ? 'an array' : typeof x} at depth ${d})`);
      (out as unknown as Array<number | bigint>)[i++] = big ? BigInt(typeof x === 'boolean' ? Number(x) : x) : Number(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== dims[d]) throw new BadRequestError(`${where} is not a rectangular nested array: a row at depth ${d} has ${Array.isArray(x) ? x.length : 'no'} items where ${dims[d]} were expected`);
    for (const y of x) walk(y, d + 1);
  };
  walk(v, 0);
}

/** Nested arrays of a tensor's data. */
function nest(data: ArrayLike<number | bigint | boolean | string>, dims: readonly number[]): unknown {
  const num = (x: number | bigint | boolean | string): unknown => (typeof x === 'bigint' ? (x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x) : x);
  if (dims.length === 0) return num(data[0] as number);
  let i = 0;
  const build = (d: number): unknown[] => {
    const n = dims[d] as number;
    const out: unknown[] = new Array(n);
    for (let k = 0; k < n; k++) out[k] = d === dims.length - 1 ? num(data[i++] as number) : build(d + 1);
    return out;
  };
  return build(0);
}

/** The deployment class behind {@link onnxDeployment}. */
export class OnnxModel {
  private session: Session | undefined;
  private ort: Ort | undefined;
  private inputs: InputMeta[] = [];
  /** runs of the model so far (with batching, fewer than requests) */
  private runs = 0;
  private requests = 0;
  private outputNames: string[] = [];
  private readonly batched: ((x: Record<string, { data: TypedArray; dims: number[] }>) => Promise<Record<string, { data: TypedArray; dims: number[] }>>) | undefined;

  constructor(private readonly cfg: OnnxConfig) {
    if (cfg.batch) this.batched = batch(cfg.batch, (items: Array<Record<string, { data: TypedArray; dims: number[] }>>) => this.runStacked(items));
  }

  /** Loads the model (the replica waits for it before it takes requests). */
  async [ASYNC_INIT](): Promise<void> {
    if (!fs.existsSync(this.cfg.modelPath)) throw new ServeError(`the ONNX model ${this.cfg.modelPath} does not exist on this node`);
    const ort = require('onnxruntime-node') as Ort;
    this.ort = ort;
    this.session = await ort.InferenceSession.create(this.cfg.modelPath, { executionProviders: this.cfg.executionProviders });
    const meta = (this.session as unknown as { inputMetadata?: Array<{ name: string; type?: string; shape?: Array<number | string> }> }).inputMetadata;
    this.inputs = this.session.inputNames.map((name, i) => {
      const m = meta?.[i];
      return { name, type: m?.type ?? 'float32', shape: m?.shape ?? [] };
    });
    this.outputNames = [...this.session.outputNames];
  }

  /** The model's inputs and outputs. */
  describe(): { inputs: InputMeta[]; outputs: string[]; executionProviders: string[]; runs: number; requests: number } {
    return { inputs: this.inputs, outputs: this.outputNames, executionProviders: this.cfg.executionProviders, runs: this.runs, requests: this.requests };
  }

  private toTensorData(inputs: OnnxInputs): Record<string, { data: TypedArray; dims: number[] }> {
    const only = this.inputs.length === 1 ? (this.inputs[0] as InputMeta).name : undefined;
    const bare = Array.isArray(inputs) || ArrayBuffer.isView(inputs) || typeof inputs !== 'object' || inputs === null;
    const named: Record<string, TensorLike> = only !== undefined && bare ? { [only]: inputs as TensorLike } : (inputs as Record<string, TensorLike>);
    if (typeof named !== 'object' || named === null) throw new BadRequestError(`the inputs must be an object of the model's inputs (${this.inputs.map((i) => i.name).join(', ')})`);
    const out: Record<string, { data: TypedArray; dims: number[] }> = {};
    for (const k of Object.keys(named)) {
      if (!this.inputs.some((i) => i.name === k)) throw new BadRequestError(`the model has no input '${k}'; its inputs are: ${this.inputs.map((i) => i.name).join(', ')}`);
    }
    for (const m of this.inputs) {
      const v = named[m.name];
      if (v === undefined) throw new BadRequestError(`input '${m.name}' is missing; the model's inputs are: ${this.inputs.map((i) => `${i.name} (${i.type} [${i.shape.join(', ')}])`).join(', ')}`);
      const make = ARRAYS[m.type];
      if (!make) throw new BadRequestError(`input '${m.name}' has type ${m.type}, which serve.onnx does not convert from JSON`);
      const where = `input '${m.name}'`;
      if (ArrayBuffer.isView(v)) {
        const src = v as unknown as TypedArray;
        const n = src.length;
        const fixed = m.shape.filter((d): d is number => typeof d === 'number').reduce((a, b) => a * b, 1);
        const free = m.shape.filter((d) => typeof d !== 'number').length;
        if (free > 1 || n % fixed !== 0 || (free === 0 && n !== fixed)) throw new BadRequestError(`${where}: a typed array of ${n} values does not fit the input's shape [${m.shape.join(', ')}]; pass a nested array instead`);
        const dims = m.shape.map((d) => (typeof d === 'number' ? d : n / fixed));
        const data = make(n);
        for (let i = 0; i < n; i++) (data as unknown as Array<number | bigint>)[i] = data instanceof BigInt64Array || data instanceof BigUint64Array ? BigInt(src[i] as number) : Number(src[i]);
        out[m.name] = { data, dims };
        continue;
      }
      const dims = shapeOf(v, where);
      if (m.shape.length > 0 && dims.length !== m.shape.length) throw new BadRequestError(`${where} has ${dims.length} dimensions, the model takes ${m.shape.length} ([${m.shape.join(', ')}])`);
      m.shape.forEach((d, i) => {
        if (typeof d === 'number' && dims[i] !== d) throw new BadRequestError(`${where} has ${dims[i]} at dimension ${i}, the model takes ${d} ([${m.shape.join(', ')}])`);
      });
      const data = make(dims.reduce((a, b) => a * b, 1));
      fill(data, v, dims, where);
      out[m.name] = { data, dims };
    }
    return out;
  }

  private async runRaw(feeds: Record<string, { data: TypedArray; dims: number[] }>): Promise<Record<string, { data: TypedArray; dims: number[] }>> {
    const ort = this.ort as Ort;
    const t: Record<string, OrtTensor> = {};
    for (const m of this.inputs) {
      const f = feeds[m.name] as { data: TypedArray; dims: number[] };
      t[m.name] = new ort.Tensor(m.type as 'float32', f.data as Float32Array, f.dims);
    }
    this.runs++;
    const r = await (this.session as Session).run(t);
    const out: Record<string, { data: TypedArray; dims: number[] }> = {};
    for (const name of this.outputNames) {
      const o = r[name] as OrtTensor;
      out[name] = { data: o.data as TypedArray, dims: [...o.dims] };
    }
    return out;
  }

  private async runStacked(items: Array<Record<string, { data: TypedArray; dims: number[] }>>): Promise<Array<Record<string, { data: TypedArray; dims: number[] }>>> {
    if (items.length === 1) return [await this.runRaw(items[0] as Record<string, { data: TypedArray; dims: number[] }>)];
    const rows = items.map((it) => (it[(this.inputs[0] as InputMeta).name] as { dims: number[] }).dims[0] ?? 1);
    const stacked: Record<string, { data: TypedArray; dims: number[] }> = {};
    for (const m of this.inputs) {
      const parts = items.map((it) => it[m.name] as { data: TypedArray; dims: number[] });
      const total = parts.reduce((a, p) => a + p.data.length, 0);
      const data = (ARRAYS[m.type] as (n: number) => TypedArray)(total);
      let off = 0;
      for (const p of parts) {
        (data as Float32Array).set(p.data as Float32Array, off);
        off += p.data.length;
      }
      const first = parts[0] as { dims: number[] };
      stacked[m.name] = { data, dims: [parts.reduce((a, p) => a + (p.dims[0] ?? 1), 0), ...first.dims.slice(1)] };
    }
    const out = await this.runRaw(stacked);
    const total = rows.reduce((a, b) => a + b, 0);
    const res: Array<Record<string, { data: TypedArray; dims: number[] }>> = items.map(() => ({}));
    for (const name of this.outputNames) {
      const o = out[name] as { data: TypedArray; dims: number[] };
      if (o.dims[0] !== total) throw new ServeError(`output '${name}' has ${o.dims[0]} rows for a batch of ${total}: this model cannot be batched (every output's first dimension must be the batch); deploy it without batch`);
      const per = o.data.length / total;
      let row = 0;
      rows.forEach((n, i) => {
        (res[i] as Record<string, { data: TypedArray; dims: number[] }>)[name] = { data: o.data.slice(row * per, (row + n) * per) as TypedArray, dims: [n, ...o.dims.slice(1)] };
        row += n;
      });
    }
    return res;
  }

  /** Runs the model on `inputs`; `{ outputs: { name: nested array } }`. */
  async predict(inputs: OnnxInputs): Promise<OnnxOutputs> {
    this.requests++;
    const feeds = this.toTensorData(inputs);
    const out = this.batched ? await this.batched(feeds) : await this.runRaw(feeds);
    const outputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(out)) outputs[k] = nest(v.data as unknown as ArrayLike<number>, v.dims);
    return { outputs };
  }

  /** HTTP: POST `{ "inputs": … }` (or a bare nested array). */
  async call(req: Request): Promise<OnnxOutputs | ReturnType<OnnxModel['describe']>> {
    if (req.method === 'GET') return this.describe();
    const body = req.json<unknown>();
    const inputs = typeof body === 'object' && body !== null && !Array.isArray(body) && 'inputs' in body ? (body as { inputs: OnnxInputs }).inputs : (body as OnnxInputs);
    return this.predict(inputs);
  }
}

/** Found again in replicas by importing this module. */
const ONNX_MODEL = ray.util.shippable(OnnxModel, { what: 'serve.onnx.deployment' });

/** A deployment whose constructor arguments are fixed (`bind()` takes none). */
class OnnxDeployment extends Deployment<OnnxModel> {
  /** @internal */
  constructor(
    private readonly config: OnnxConfig,
    options: DeploymentOptions,
  ) {
    super(OnnxModel, options, resolveOptions(options, 'OnnxModel', 'serve.onnx.deployment() deployment'), ONNX_MODEL);
  }

  override bind(): Application<OnnxModel> {
    return super.bind(this.config);
  }

  override options(options: DeploymentOptions): OnnxDeployment {
    return new OnnxDeployment(this.config, { ...this.given, ...options });
  }
}

/**
 * A ready-made deployment serving the ONNX model at `modelPath`; `bind()` it
 * with no arguments. Inputs that do not fit the model fail with
 * BadRequestError (HTTP 400) naming the input and the shape it takes.
 *
 * ```ts
 * const app = serve.onnx.deployment({ modelPath: 'model.onnx', batch: { maxBatchSize: 16, batchWaitTimeoutS: 0.005 } }).bind();
 * const h = await serve.run(app, { routePrefix: '/model' });
 * await h.predict.remote([[1, 2, 3, 4]]);   // { outputs: { output: [[…]] } }
 * ```
 * @throws TypeError naming the option, for a bad option; a missing model file fails here
 */
export function onnxDeployment(options: OnnxDeploymentOptions): Deployment<OnnxModel> {
  if (typeof options !== 'object' || options === null) throw new TypeError('serve.onnx.deployment() takes an options object: { modelPath, batch?, executionProviders?, deployment? }');
  checkKeys(options, ['modelPath', 'batch', 'executionProviders', 'deployment'], 'serve.onnx.deployment()');
  if (typeof options.modelPath !== 'string' || options.modelPath === '') throw new TypeError('serve.onnx.deployment() modelPath must be the path of an .onnx file');
  const modelPath = path.resolve(options.modelPath);
  if (!fs.existsSync(modelPath)) throw new TypeError(`serve.onnx.deployment() modelPath ${modelPath} does not exist`);
  let b: OnnxConfig['batch'] = null;
  if (options.batch !== undefined) {
    checkKeys(options.batch, ['maxBatchSize', 'batchWaitTimeoutS'], 'serve.onnx.deployment() batch');
    b = { maxBatchSize: options.batch.maxBatchSize ?? 16, batchWaitTimeoutS: options.batch.batchWaitTimeoutS ?? 0.005 };
    if (!Number.isInteger(b.maxBatchSize) || b.maxBatchSize < 1) throw new RangeError(`serve.onnx.deployment() batch.maxBatchSize must be a whole number ≥ 1, got ${String(b.maxBatchSize)}`);
  }
  const eps = options.executionProviders ?? ['cpu'];
  if (!Array.isArray(eps) || eps.some((e) => typeof e !== 'string')) throw new TypeError("serve.onnx.deployment() executionProviders must be a list of names (['cuda', 'cpu'])");
  const depOptions: DeploymentOptions = { name: 'OnnxModel', maxOngoingRequests: b ? Math.max(32, b.maxBatchSize * 2) : 5, ...(options.deployment ?? {}) };
  return new OnnxDeployment({ modelPath, batch: b, executionProviders: eps }, depOptions);
}
