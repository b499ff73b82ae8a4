/**
 * The parts of shipping by value that need no cluster: the free-identifier
 * walk, the worker-side compile (helpers, require from the defining file),
 * and Shippables through the value codec.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ray from '@tsray/core';
import { analyze } from '../../src/internal/shipping/scope';
import { compileShipped } from '../../src/internal/shipping/compile';
import { decodeValue, encodeValue } from '../../src/internal/serialization/value-codec';
import { exportedAs } from '../../src/internal/runtime/functions';
import '../../src/internal/api/shippable';

const free = (src: string): string[] => analyze(src).free;
const noTs = { cjs: (): void => undefined, esm: (): Promise<void> => Promise.resolve() };

describe('free identifiers', () => {
  test('parameters, locals, hoisted vars and function declarations are bound; what is used from outside is free', () => {
    expect(free('(a, { b, c: [d = e] }, ...rest) => a + b + d + rest.length + outer')).toEqual(['e', 'outer']);
    expect(free('function f(x) { if (x) { var v = 1; } return v + g(x) + arguments.length; function g(y) { return y; } }')).toEqual([]);
    expect(free('() => { { let inner = 1; } return inner; }')).toEqual(['inner']);
    expect(free('function named() { return named; }')).toEqual([]);
  });

  test('property names, labels, catch parameters, for heads and class members are not free', () => {
    expect(free('(o) => { loop: for (const [k, v] of Object.entries(o)) { try { o.k = v; } catch ({ message }) { continue loop; } } return { k: 1, [key]: 2 }; }')).toEqual([
      'Object',
      'key',
    ]);
    expect(free('class A extends Base { static #n = 0; x = A.#n; m() { return this.x + super.m(); } static { A.y = helper; } }')).toEqual(['Base', 'helper']);
  });

  test('assignments to outer names, exports.NAME reads and loader helpers are found', () => {
    const a = analyze('(x) => { counter += x; return (0, exports.helper)(x) + __name(x) + tslib_1.__awaiter; }');
    expect(a.free).toEqual(['counter', 'exports', '__name', 'tslib_1']);
    expect(a.exportReads).toEqual(['exports.helper']);
  });

  test("an arrow function's outer `this`, module.exports and exports[…] are found; a function's or class's own `this` is not", () => {
    expect(analyze('() => this.scale * 2').outerThis).toBe(true);
    expect(analyze('(x) => [1].map(function () { return this; })').outerThis).toBe(false);
    expect(analyze('function f() { return () => this.x; }').outerThis).toBe(false);
    expect(analyze('class A { x = this; m() { return () => this.x; } static { this.y = 1; } }').outerThis).toBe(false);
    expect(analyze('m() { return this.v; }').outerThis).toBe(false);
    expect(analyze('() => module.exports.helper() + exports[k]').exportReads).toEqual(['module.exports', 'exports[…]']);
    expect(analyze('(module) => module.exports').exportReads).toEqual([]);
  });

  test('methods, async and generator forms parse; import() and import.meta are located', () => {
    expect(analyze('async *m(x) { yield x; }').form).toBe('method');
    expect(analyze('async function* g() {}').form).toBe('expression');
    const src = 'async () => (await import("x")).v + import.meta.url';
    const a = analyze(src);
    expect(a.dynamicImports.map((p) => src.slice(p, p + 6))).toEqual(['import']);
    expect(a.importMetas.map(([s, e]) => src.slice(s, e))).toEqual(['import.meta']);
  });

  test('sloppy-mode code parses as such', () => {
    expect(analyze('function () { with (o) { return x; } }').strict).toBe(false);
    expect(analyze('() => 1').strict).toBe(true);
  });
});

describe('compiling shipped code in a worker', () => {
  const file = path.join(__dirname, 'shipping.test.ts');

  test('require() resolves from the defining file, and helpers the loader put in are supplied', () => {
    const f = compileShipped(
      {
        file,
        hash: 'h1',
        body: '"use strict";\nreturn (function packedLength(x) { const g = __name(() => require("msgpackr").pack(x).length, "g"); return g(); }\n);',
        needs: ['__name'],
        name: 'packedLength',
      },
      noTs,
    ) as (x: unknown) => number;
    expect(f([1, 2, 3])).toBe(4);
    expect(f.name).toBe('packedLength');
  });

  test('TypeScript helpers come from tslib', async () => {
    const f = compileShipped(
      { file, hash: 'h2', body: 'return (function (x) { return __awaiter(this, void 0, void 0, function* () { return x + 1; }); }\n);', needs: ['__awaiter'], name: 'inc' },
      noTs,
    ) as (x: number) => Promise<number>;
    expect(await f(1)).toBe(2);
    expect(f.name).toBe('inc');
  });

  test('the same hash is compiled once per process', () => {
    const s = { file, hash: 'h3', body: 'return (() => ({}));', needs: [], name: 'once' };
    expect(compileShipped(s, noTs)).toBe(compileShipped(s, noTs));
  });
});

describe('shippables through the value codec', () => {
  test('a shippable survives encoding and is still a shippable', () => {
    const s = ray.util.shippable((x: number) => x + 1, { what: 'test' });
    const back = decodeValue(encodeValue({ fn: s }).body, null, false) as { fn: ray.util.Shippable<(x: number) => number> };
    expect(ray.util.isShippable(back.fn)).toBe(true);
    expect(back.fn.byValue).toBe(true);
    expect(back.fn.what).toBe('test');
    expect(back.fn).not.toBe(s);
  });
});

describe('exports of an ES module', () => {
  test('are found by the declaration of the function\'s name in its source (ES modules cannot be read synchronously)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-exports-'));
    try {
      const file = path.join(dir, 'm.mjs');
      fs.writeFileSync(file, 'export default function pre() {}\nexport async function* gen() {}\nfunction loc() {}\nexport { loc as renamed };\n');
      const url = pathToFileURL(file).href;
      const named = (n: string): object => ({ [n]: function () {} })[n] as object;
      expect(['pre', 'gen', 'loc', 'other'].map((n) => exportedAs(named(n), url))).toEqual([...['default', 'gen', 'renamed'].map((name) => ({ name, byIdentity: false })), undefined]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
