/**
 * What a node offers: CPUs, GPUs (declared, or detected with nvidia-smi),
 * memory, the object store size, and custom resources.
 * @internal
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import type { Resources } from '../protocol/messages';

/** A GPU found on this machine. */
export interface DetectedGpu {
  id: string;
  name: string;
}

/** GPUs nvidia-smi reports (limited to CUDA_VISIBLE_DEVICES when set); [] without nvidia-smi. */
export function detectGpus(): DetectedGpu[] {
  let out: string;
  try {
    out = execFileSync('nvidia-smi', ['--query-gpu=index,name', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return [];
  }
  let gpus = out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [id, ...name] = l.split(',');
      return { id: (id ?? '').trim(), name: name.join(',').trim() };
    })
    .filter((g) => /^\d+$/.test(g.id));
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined) {
    const allowed = visible.split(',').map((s) => s.trim()).filter(Boolean);
    gpus = gpus.filter((g) => allowed.includes(g.id));
  }
  return gpus;
}

/** Ray's accelerator type name for a GPU model, e.g. "NVIDIA H100 80GB HBM3" -> "H100". */
export function acceleratorType(name: string): string {
  const m = /\b(H200|H100|H20|GH200|B200|B100|A100|A10G|A10|A30|A40|L40S|L40|L4|T4|V100|P100|P4|K80|RTX\s?\w+)\b/i.exec(name);
  if (m) return (m[1] as string).replace(/\s+/g, '').toUpperCase();
  const words = name.replace(/^NVIDIA\s+/i, '').split(/\s+/);
  return (words[0] ?? 'GPU').replace(/[^A-Za-z0-9_-]/g, '');
}

/** What the node is started with. */
export interface NodeSpec {
  /** every resource of the node, CPU and GPU included */
  resources: Resources;
  /** ids of its GPUs, as CUDA_VISIBLE_DEVICES takes them */
  gpuIds: string[];
  /** bytes of its shared-memory object store */
  objectStoreMemory: number;
}

/** Resources set by their own option, never through `resources`, and that option. */
const RESERVED: Record<string, { init: string; cli: string }> = {
  CPU: { init: 'numCpus', cli: '--num-cpus' },
  GPU: { init: 'numGpus', cli: '--num-gpus' },
  object_store_memory: { init: 'objectStoreMemory', cli: '--object-store-memory' },
  memory: { init: '', cli: '' },
};

/**
 * Why custom node resources cannot be used, or undefined. `how` says how
 * the caller names options: init() options or `tsray start` flags.
 */
export function nodeResourcesProblem(resources: Record<string, unknown>, how: 'init' | 'cli'): string | undefined {
  const where = how === 'init' ? 'options.resources' : '--resources';
  for (const [k, v] of Object.entries(resources)) {
    const own = RESERVED[k];
    if (own) {
      if (own[how] === '') return `${where} cannot set '${k}': a node's memory is its RAM less the object store`;
      return `${where} cannot set '${k}'; use ${how === 'init' ? `options.${own.init}` : own.cli} instead`;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return `${where}.${k} must be a non-negative number, got ${JSON.stringify(v)}`;
  }
  return undefined;
}

/** Default object store size: 30% of RAM (Ray's default), at most 8 GiB. */
export function defaultObjectStoreMemory(): number {
  return Math.min(Math.floor(os.totalmem() * 0.3), 8 * 1024 ** 3);
}

/**
 * Builds the node's resources from declared values and what the machine has
 * (CPUs, GPUs found by nvidia-smi, RAM).
 * @throws RangeError when `numGpus` is not a whole number (a node has whole
 *   GPUs; tasks may ask for fractions of one)
 * @throws TypeError when `resources` sets CPU, GPU, memory or
 *   object_store_memory, which have options of their own
 */
export function nodeSpec(opts: { numCpus?: number; numGpus?: number; resources?: Resources; objectStoreMemory?: number }): NodeSpec {
  if (opts.numGpus !== undefined && !(Number.isInteger(opts.numGpus) && opts.numGpus >= 0)) {
    throw new RangeError(`options.numGpus for a node must be a whole number of GPUs, got ${opts.numGpus}; tasks and actors may ask for a fraction of one with .options({ numGpus: 0.5 })`);
  }
  const problem = nodeResourcesProblem(opts.resources ?? {}, 'init');
  if (problem) throw new TypeError(problem);
  const cpus = opts.numCpus ?? os.availableParallelism();
  const store = opts.objectStoreMemory ?? defaultObjectStoreMemory();
  const resources: Resources = { CPU: cpus, memory: Math.max(0, Math.floor(os.totalmem() * 0.7) - store), object_store_memory: store };
  let gpuIds: string[] = [];
  if (opts.numGpus !== undefined) {
    const visible = process.env.CUDA_VISIBLE_DEVICES?.split(',').map((s) => s.trim()).filter(Boolean);
    gpuIds = Array.from({ length: opts.numGpus }, (_, i) => visible?.[i] ?? String(i));
    if (opts.numGpus > 0) resources.GPU = opts.numGpus;
  } else {
    const found = detectGpus();
    if (found.length > 0) {
      gpuIds = found.map((g) => g.id);
      resources.GPU = found.length;
      resources[`accelerator_type:${acceleratorType(found[0]?.name ?? '')}`] = 1;
    }
  }
  Object.assign(resources, opts.resources ?? {});
  return { resources, gpuIds, objectStoreMemory: store };
}
