import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { nodeSpec } from '../../src/internal/cluster/node-resources';
import { GpuPool, gpuRequestProblem } from '../../src/internal/raylet/resources';

const CLI = path.join(__dirname, '..', '..', 'bin', 'tsray.js');

function tsray(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, TSRAY_TMPDIR: path.join(__dirname, 'no-such-tmp') } });
  return { status: r.status, stderr: r.stderr };
}

describe('node resources', () => {
  test('a node has whole GPUs', () => {
    expect(() => nodeSpec({ numCpus: 1, numGpus: 1.5, objectStoreMemory: 1 << 20 })).toThrow(/numGpus for a node must be a whole number of GPUs, got 1.5/);
    expect(() => nodeSpec({ numCpus: 1, numGpus: 0.5, objectStoreMemory: 1 << 20 })).toThrow(RangeError);
    const two = nodeSpec({ numCpus: 1, numGpus: 2, objectStoreMemory: 1 << 20 });
    expect(two.gpuIds).toHaveLength(2);
    expect(two.resources).toMatchObject({ GPU: 2, CPU: 1 });
  });

  test('CPU and GPU cannot be set through resources, and the error names the option to use', () => {
    expect(() => nodeSpec({ numCpus: 1, resources: { CPU: 4 } })).toThrow("options.resources cannot set 'CPU'; use options.numCpus instead");
    expect(() => nodeSpec({ numCpus: 1, resources: { GPU: 1 } })).toThrow("options.resources cannot set 'GPU'; use options.numGpus instead");
    expect(() => nodeSpec({ numCpus: 1, resources: { object_store_memory: 1 } })).toThrow(/use options.objectStoreMemory/);
    expect(nodeSpec({ numCpus: 1, resources: { custom: 2 }, objectStoreMemory: 1 << 20 }).resources).toMatchObject({ CPU: 1, custom: 2 });
  });

  test('a GPU request above 1 must be whole, as in Ray', () => {
    expect(gpuRequestProblem(0.5)).toBeUndefined();
    expect(gpuRequestProblem(1)).toBeUndefined();
    expect(gpuRequestProblem(2)).toBeUndefined();
    expect(gpuRequestProblem(1.5)).toMatch(/above 1 must be a whole number of GPUs, got 1.5/);
    expect(gpuRequestProblem(-1)).toMatch(/non-negative/);
    const pool = new GpuPool(['0', '1']);
    expect(() => pool.acquire(1.5)).toThrow(RangeError);
    expect(pool.acquire(2)).toEqual([
      ['0', 1],
      ['1', 1],
    ]);
  });
});

describe('tsray start flags', () => {
  test('--resources cannot set CPU or GPU, and the error names the flag to use', () => {
    const cpu = tsray('start', '--head', '--resources', '{"CPU": 4}');
    expect(cpu.status).toBe(2);
    expect(cpu.stderr).toContain("--resources cannot set 'CPU'; use --num-cpus instead");
    const gpu = tsray('start', '--head', '--resources', '{"GPU": 1}');
    expect(gpu.status).toBe(2);
    expect(gpu.stderr).toContain("--resources cannot set 'GPU'; use --num-gpus instead");
  });

  test('--num-gpus must be a whole number', () => {
    const r = tsray('start', '--head', '--num-gpus', '1.5');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--num-gpus must be a non-negative integer, got '1.5'");
  });

  test('--resources amounts must be non-negative numbers', () => {
    const r = tsray('start', '--head', '--resources', '{"custom": -1}');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--resources.custom must be a non-negative number, got -1');
  });

  test('--node-ip-address must be an IPv4 address of this machine, not a wildcard, and the error lists the machine\'s addresses', () => {
    // 192.0.2.0/24 is reserved for documentation: no machine has it
    const foreign = tsray('start', '--head', '--node-ip-address', '192.0.2.7');
    expect(foreign.status).toBe(2);
    expect(foreign.stderr).toContain("--node-ip-address 192.0.2.7 is not an address of this machine, so nothing can listen on it; give one of this machine's addresses: ");
    expect(foreign.stderr).toContain('127.0.0.1');
    const wildcard = tsray('start', '--address', '127.0.0.1:1', '--node-ip-address', '0.0.0.0');
    expect(wildcard.status).toBe(2);
    expect(wildcard.stderr).toContain('--node-ip-address must be this machine\'s address on the network the other nodes reach, not the wildcard 0.0.0.0');
    const name = tsray('start', '--head', '--node-ip-address', 'my-host');
    expect(name.status).toBe(2);
    expect(name.stderr).toContain("--node-ip-address must be an IPv4 address, got 'my-host'");
    expect(tsray('start', '--head', '--node-ip-address', '::1').stderr).toContain("--node-ip-address must be an IPv4 address (IPv6 is not supported yet), got '::1'");
  });
});
