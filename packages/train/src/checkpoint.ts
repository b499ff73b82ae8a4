/**
 * `Checkpoint`: a directory of files — tfjs model artifacts with the
 * optimizer's state, and any files of the user's — that `report()` persists
 * under the run's storage path and `getCheckpoint()` hands back to a
 * restarted worker group.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { TrainError } from './errors';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
const METADATA = '.metadata.json';

/** Options of {@link Checkpoint.fromModel}. */
export interface FromModelOptions {
  /** Extra files to write next to the model: name → contents. */
  files?: Record<string, string | Uint8Array>;
  /** Small JSON-able facts about the checkpoint (`epoch`, …), read back with `getMetadata()`. */
  metadata?: Record<string, unknown>;
  /** Save the optimizer's state too (Adam's moments, the step count …). @default true */
  includeOptimizer?: boolean;
}

/** A checkpoint: a directory (see the module's notes). */
export class Checkpoint {
  /** @internal a directory the library made and may remove once it is persisted */
  readonly temporary: boolean;

  private constructor(
    /** The checkpoint's directory. */
    readonly path: string,
    temporary: boolean,
  ) {
    this.temporary = temporary;
  }

  /**
   * The checkpoint held in `dir` (the directory is used as it is, not copied).
   * @throws TypeError when `dir` is not an existing directory
   */
  static fromDirectory(dir: string): Checkpoint {
    if (typeof dir !== 'string' || dir === '') throw new TypeError(`Checkpoint.fromDirectory takes a directory path, got ${JSON.stringify(dir)}`);
    const abs = path.resolve(dir);
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new TypeError(`Checkpoint.fromDirectory: ${abs} is not a directory; write the checkpoint's files into a directory first`);
    return new Checkpoint(abs, false);
  }

  /**
   * A new checkpoint (in a fresh temporary directory) holding a tfjs
   * LayersModel — topology, weights and, with `includeOptimizer`, the
   * optimizer's state — plus `files`. Pass it to `report()`, which moves it
   * into the run's storage.
   */
  static async fromModel(model: tf.LayersModel, options: FromModelOptions = {}): Promise<Checkpoint> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-ckpt-'));
    try {
      await saveModel(model, dir, options.includeOptimizer !== false);
      for (const [name, data] of Object.entries(options.files ?? {})) {
        if (name.includes('..') || path.isAbsolute(name)) throw new TypeError(`Checkpoint.fromModel: file name ${JSON.stringify(name)} must be a relative path inside the checkpoint`);
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), data);
      }
      if (options.metadata) fs.writeFileSync(path.join(dir, METADATA), JSON.stringify(options.metadata));
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return new Checkpoint(dir, true);
  }

  /** The checkpoint's files copied into `dir` (a new temporary directory when omitted); resolves to that directory. */
  async toDirectory(dir?: string): Promise<string> {
    const to = dir === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-ckpt-')) : path.resolve(dir);
    await fs.promises.cp(this.path, to, { recursive: true });
    return to;
  }

  /** Calls `fn` with the checkpoint's directory (its own, not a copy: read, do not change it); resolves to what `fn` returns. */
  async asDirectory<T>(fn: (dir: string) => T | Promise<T>): Promise<T> {
    return fn(this.path);
  }

  /** The metadata saved with the checkpoint (`fromModel`'s `metadata`), or `{}`. */
  getMetadata(): Record<string, unknown> {
    const p = path.join(this.path, METADATA);
    return fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>) : {};
  }

  /** Whether the checkpoint holds a tfjs model (saved by `fromModel`). */
  hasModel(): boolean {
    return fs.existsSync(path.join(this.path, MODEL_JSON));
  }

  /**
   * The tfjs LayersModel saved in this checkpoint, compiled as it was
   * saved and with its optimizer's state restored when that was saved too.
   * @throws TrainError when the checkpoint holds no model
   */
  async loadModel(): Promise<tf.LayersModel> {
    if (!this.hasModel()) throw new TrainError(`the checkpoint at ${this.path} holds no tfjs model (${MODEL_JSON}); make checkpoints with Checkpoint.fromModel(model) to load them with loadModel()`);
    const tfjs = require('@tensorflow/tfjs') as typeof tf;
    const json = JSON.parse(fs.readFileSync(path.join(this.path, MODEL_JSON), 'utf8')) as {
      modelTopology: tf.io.ModelArtifacts['modelTopology'];
      trainingConfig?: tf.io.TrainingConfig;
      weightsManifest: Array<{ weights: tf.io.WeightsManifestEntry[] }>;
    };
    const bin = fs.readFileSync(path.join(this.path, WEIGHTS_BIN));
    const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer;
    const weightSpecs = json.weightsManifest.flatMap((m) => m.weights);
    return tfjs.loadLayersModel(tfjs.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData, trainingConfig: json.trainingConfig }));
  }

  /** For logs: `Checkpoint(<dir>)`. */
  toString(): string {
    return `Checkpoint(${this.path})`;
  }
}

/** Writes `model` as model.json + weights.bin (tfjs's layers-model format) into `dir`. */
async function saveModel(model: tf.LayersModel, dir: string, includeOptimizer: boolean): Promise<void> {
  const tfjs = require('@tensorflow/tfjs') as typeof tf;
  await model.save(
    tfjs.io.withSaveHandler(async (a) => {
      const parts = a.weightData === undefined ? [] : Array.isArray(a.weightData) ? a.weightData : [a.weightData];
      const bin = Buffer.concat(parts.map((p) => Buffer.from(p)));
      fs.writeFileSync(path.join(dir, WEIGHTS_BIN), bin);
      const json = { format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy, modelTopology: a.modelTopology, trainingConfig: a.trainingConfig, weightsManifest: [{ paths: [WEIGHTS_BIN], weights: a.weightSpecs ?? [] }] };
      fs.writeFileSync(path.join(dir, MODEL_JSON), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: bin.length } };
    }),
    { includeOptimizer: includeOptimizer && model.optimizer !== undefined && model.optimizer !== null },
  );
}
