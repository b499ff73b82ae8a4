/**
 * Code shipped by value from drivers run as users run them: TypeScript under
 * tsx and under ts-node (compiled to ES5 there, so TypeScript's helpers
 * travel too), and an ES module under plain node (whose export is located).
 */
import * as path from 'node:path';
import { Child, alive, descendants } from './helpers/procs';

const root = path.join(__dirname, '..', '..', '..');
const drivers = path.join(__dirname, 'drivers');
const tsx = path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');

let children: Child[] = [];
afterEach(() => {
  for (const c of children) {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
    const pids = descendants(c.proc.pid as number);
    c.proc.kill('SIGKILL');
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
  }
  children = [];
});

const expected = { squares: [1, 4, 9], nested: 10, packed: 4, streamed: [0, 1, 2], captured: 'named k' };

test.each([
  ['TypeScript under tsx', [tsx, path.join(drivers, 'shipping.ts')], {}, { total: 5, es5: false }],
  ['TypeScript under ts-node (compiled to ES5)', ['-r', 'ts-node/register', path.join(drivers, 'shipping.ts')], { TS_NODE_TRANSPILE_ONLY: '1' }, { total: 'refused an ES5 class', es5: true }],
  ['an ES module under node', [path.join(drivers, 'shipping.mjs')], {}, { total: 5, exported: 'HEY!' }],
])('functions and classes defined in driver code run by value: %s', async (_name, args, env, more) => {
  const c = Child.start(process.execPath, args as string[], env as NodeJS.ProcessEnv, root);
  children.push(c);
  const [, json] = await c.waitFor(/RESULT (.*)\n/, 90_000);
  expect(JSON.parse(json as string)).toEqual({ ...expected, ...more });
  const { code } = await c.exited;
  expect(c.err).toBe('');
  expect(code).toBe(0);
});
