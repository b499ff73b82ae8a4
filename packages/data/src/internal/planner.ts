/**
 * The planner: the optimized logical plan → physical operators in an
 * Execution (inputs before consumers). File reads are planned here (paths
 * listed, Parquet footers read), when the dataset first executes.
 * @internal
 */
import * as ray from '@tsray/core';
import type { LogicalOp, ReadSpec, Source } from './plan';
import { planRead } from './io';
import { optimize } from './rules';
import { ActorPoolOp } from './execution/actor-pool';
import { AllToAllOp, ZipOp } from './execution/barriers';
import { Execution, type ExecutionOptions } from './execution/executor';
import type { PhysicalOp } from './execution/operator';
import { InputOp, LimitOp, ReadOp, TaskMapOp, UnionOp } from './execution/ops';

/** Blocks range(n) gets by default: enough for every CPU twice, at most ~1M rows each. */
export function defaultRangeBlocks(n: number, cpus: number): number {
  return Math.max(1, Math.min(n, Math.max(cpus * 2, Math.ceil(n / 1_000_000))));
}

async function readSpecs(source: Exclude<Source, { kind: 'blocks' }>, cpus: number, limit: number | undefined): Promise<ReadSpec[]> {
  if (source.kind === 'range') {
    const blocks = source.numBlocks > 0 ? source.numBlocks : defaultRangeBlocks(source.n, cpus);
    const specs: ReadSpec[] = [];
    for (let i = 0; i < blocks; i++) {
      const start = Math.floor((i * source.n) / blocks);
      const end = Math.floor(((i + 1) * source.n) / blocks);
      if (end > start || (source.n === 0 && i === 0)) specs.push({ kind: 'range', start, end });
    }
    return specs;
  }
  const tasks = await planRead(source.format, source.paths, { ...source.options, ...(limit !== undefined ? { limit } : {}) });
  return tasks.map((task) => ({ kind: 'file', task }));
}

async function build(exec: Execution, op: LogicalOp): Promise<PhysicalOp> {
  switch (op.kind) {
    case 'Source': {
      const s = op.source;
      if (s.kind === 'blocks') {
        const input = exec.add(new InputOp(op.name, s.bundles.map((b) => ({ ...b, meta: { columns: [], wallMs: 0, cpuMs: 0, nodeId: '', ...b.meta }, owned: false })), exec));
        if (op.steps.length === 0) return input;
        return exec.add(new TaskMapOp(op.name, input, op.steps, op.compute, exec));
      }
      const specs = await readSpecs(s, exec.cpus, op.limit);
      const options = { ...(s.kind === 'files' ? s.options : {}), ...(op.columns ? { columns: op.columns } : {}), ...(op.limit !== undefined ? { limit: op.limit } : {}) };
      return exec.add(new ReadOp(op.name, specs, options, op.steps, op.compute, exec));
    }
    case 'Map': {
      const input = await build(exec, op.input);
      const c = op.compute;
      if (c.kind === 'tasks') return exec.add(new TaskMapOp(op.name, input, op.steps, c, exec));
      return exec.add(new ActorPoolOp(op.name, input, op.steps, c, exec));
    }
    case 'Limit':
      return exec.add(new LimitOp(await build(exec, op.input), op.n, exec));
    case 'AllToAll':
      return exec.add(new AllToAllOp(op.name, await build(exec, op.input), op.spec, exec));
    case 'Union': {
      const inputs: PhysicalOp[] = [];
      for (const i of op.inputs) inputs.push(await build(exec, i));
      return exec.add(new UnionOp(inputs, exec));
    }
    case 'Zip': {
      const left = await build(exec, op.left);
      const right = await build(exec, op.right);
      return exec.add(new ZipOp(left, right, exec));
    }
  }
}

/** CPUs and GPUs of the cluster (starting a local one, as Ray Data does, when tsray is not initialized). */
async function clusterSize(): Promise<{ cpus: number; gpus: number }> {
  if (!ray.isInitialized()) await ray.init();
  const r = await ray.clusterResources();
  return { cpus: Math.max(1, Math.floor(r.CPU ?? 1)), gpus: Math.floor(r.GPU ?? 0) };
}

/** An execution of `plan`, started. */
export async function execute(plan: LogicalOp, options: ExecutionOptions = {}): Promise<Execution> {
  const { cpus, gpus } = await clusterSize();
  const exec = new Execution(cpus, gpus, options);
  await build(exec, optimize(plan));
  exec.start();
  return exec;
}
