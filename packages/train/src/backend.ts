/**
 * Which tfjs backend a training worker uses: `@tensorflow/tfjs-node-gpu`
 * with `useGpu`, else `@tensorflow/tfjs-node` when the user installed it,
 * else the WASM backend (`@tensorflow/tfjs-backend-wasm`, SIMD where the CPU
 * has it), else tfjs's plain CPU backend. TSRAY_TRAIN_BACKEND=wasm|cpu|tensorflow
 * picks one.
 */
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { TrainConfigError } from './errors';

/** Where to look for the user's optional tfjs packages: their program's directory first. */
function searchPaths(extra?: string): string[] {
  const main = require.main?.filename;
  return [...(extra ? [extra] : []), process.cwd(), ...(main ? [path.dirname(main)] : []), __dirname];
}

/** The resolved path of `pkg` from the user's side, or undefined when it is not installed. */
export function findPackage(pkg: string, from?: string): string | undefined {
  try {
    return require.resolve(pkg, { paths: searchPaths(from) });
  } catch {
    return undefined;
  }
}

/** The message for useGpu without a GPU backend. */
export function noGpuBackend(): string {
  return 'scalingConfig.useGpu is true, but @tensorflow/tfjs-node-gpu is not installed, so tfjs cannot use a GPU; install it (npm install @tensorflow/tfjs-node-gpu, on a machine with CUDA) or set useGpu: false';
}

/**
 * Sets up tfjs in this process as Train's workers do (see the module's
 * notes) — call it in the driver before evaluating a trained model there.
 * Resolves to the backend's name (`'wasm (SIMD)'`, `'cpu'`, …).
 * @throws TrainConfigError (rejects) with `useGpu` when @tensorflow/tfjs-node-gpu is not installed
 */
export async function setupTfjs(useGpu = false, from?: string): Promise<string> {
  const tfjs = require('@tensorflow/tfjs') as typeof tf;
  const forced = process.env.TSRAY_TRAIN_BACKEND;
  const native = useGpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  const nativePath = forced === undefined || forced === 'tensorflow' ? findPackage(native, from) : undefined;
  if (useGpu && !nativePath) throw new TrainConfigError(noGpuBackend());
  if (nativePath) {
    require(nativePath);
    if (await tfjs.setBackend('tensorflow')) return `tensorflow (${native})`;
  }
  if (forced !== 'cpu') {
    require('@tensorflow/tfjs-backend-wasm');
    try {
      if (await tfjs.setBackend('wasm')) {
        await tfjs.ready();
        const simd = tfjs.env().getAsync ? await tfjs.env().getAsync('WASM_HAS_SIMD_SUPPORT') : undefined;
        return `wasm${simd ? ' (SIMD)' : ''}`;
      }
    } catch {
      // falls back to cpu below
    }
  }
  await tfjs.setBackend('cpu');
  return 'cpu';
}
