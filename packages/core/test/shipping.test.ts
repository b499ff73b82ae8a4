/**
 * Functions and classes that are not top-level definitions are shipped by
 * value (their source text), checked for captured variables where they are
 * made; exports of the calling module and library calls at a module's top
 * level are located. Everything here is inline in jest's own test file.
 */
import * as crypto from 'node:crypto';
import * as ray from '@tsray/core';
import { fromIife, registerInside, remotePreprocess, shipPreprocess, times7 } from './fixtures/shipping';
import { applyScaler, callShipped } from './fixtures/tsray-lib/src/index';

beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
});

/** The error `f` throws (failing when it throws nothing). */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('definitions made inside a function are shipped by value', () => {
  test('an inline arrow function runs as a task, in another process', async () => {
    const addOne = ray.remote((x: number) => x + 1);
    const pid = ray.remote(() => process.pid);
    expect(await ray.get([addOne.remote(1), addOne.remote(41)])).toEqual([2, 42]);
    expect(await ray.get(pid.remote())).not.toBe(process.pid);
  });

  test('async, generator and async generator functions run', async () => {
    const slowDouble = ray.remote(async (x: number) => {
      await new Promise((r) => setTimeout(r, 1));
      return x * 2;
    });
    const countTo = ray.remote({ numReturns: 'streaming' }, function* (n: number) {
      for (let i = 1; i <= n; i++) yield i;
    });
    const ticks = ray.remote({ numReturns: 'streaming' }, async function* (n: number) {
      for (let i = 0; i < n; i++) yield `tick ${i}`;
    });
    expect(await ray.get(slowDouble.remote(21))).toBe(42);
    const counted: number[] = [];
    for await (const r of countTo.remote(3)) counted.push(await ray.get(r));
    expect(counted).toEqual([1, 2, 3]);
    const ticked: string[] = [];
    for await (const r of ticks.remote(2)) ticked.push(await ray.get(r));
    expect(ticked).toEqual(['tick 0', 'tick 1']);
  });

  test('a method of an object runs as a task', async () => {
    const maths = {
      hypot(a: number, b: number): number {
        return Math.sqrt(a * a + b * b);
      },
    };
    expect(await ray.get(ray.remote(maths.hypot).remote(3, 4))).toBe(5);
  });

  test('an inline class that extends a global class runs as an actor', async () => {
    const Store = ray.remote(
      class Store extends Map<string, number> {
        put(k: string, v: number): number {
          this.set(k, v);
          return this.size;
        }
        total(): number {
          let t = 0;
          for (const v of this.values()) t += v;
          return t;
        }
      },
    );
    const s = Store.remote();
    await ray.get([s.put.remote('a', 1), s.put.remote('b', 2)]);
    expect(await ray.get(s.total.remote())).toBe(3);
    expect(s.className).toBe('Store');
  });

  test('require() inside the function resolves packages and TypeScript files from the defining file', async () => {
    const packs = ray.remote((v: unknown) => {
      const { pack, unpack } = require('msgpackr') as typeof import('msgpackr');
      const { shout } = require('./fixtures/shipping-required') as typeof import('./fixtures/shipping-required');
      return shout(String(unpack(pack(v))));
    });
    expect(await ray.get(packs.remote('hi'))).toBe('HI!');
  });

  test('import() inside the function resolves packages and relative modules from the defining file', async () => {
    const imports = ray.remote(async () => {
      const msgpackr = await import('msgpackr');
      const local = (await import('./fixtures/shipping-imported.mjs' as string)) as { answer: number };
      return local.answer + msgpackr.unpack(msgpackr.pack(0)) + (await import('node:path')).sep.length;
    });
    expect(await ray.get(imports.remote())).toBe(43);
  });

  test('code shipped by value can ship code by value itself (a task that submits an inline task)', async () => {
    const outer = ray.remote(async (x: number) => {
      const core = require('@tsray/core') as typeof ray;
      const inner = core.remote((y: number) => y * 2);
      return core.get(inner.remote(x));
    });
    expect(await ray.get(outer.remote(21))).toBe(42);
  });

  test('a function that captures a variable fails at ray.remote(), naming it and the fix', () => {
    const factor = 3;
    const err = thrown(() => ray.remote((x: number) => x * factor));
    expect(err).toBeInstanceOf(ray.RemoteDefinitionError);
    expect(err.message).toMatch(/^the function given to ray\.remote\(\) captures `factor`, defined outside it\. It is made inside .* at shipping\.test\.ts:\d+, not at the top level of a module/);
    expect(err.message).toContain('Pass `factor` as an argument, `require` it inside the function, or define the function at the top level of a module');
  });

  test('a module-level import used inside the function is a capture too', () => {
    const err = thrown(() => ray.remote(() => ray.isInitialized()));
    expect(err.message).toMatch(/captures `ray`/);
    const cls = thrown(() => ray.remote(class { n = thrown; }));
    expect(cls.message).toMatch(/^the class given to ray\.remote\(\) captures `thrown`/);
  });

  test("an import named like a global (crypto) is a capture, not the worker's global, and the error says how to reach the global", () => {
    const err = thrown(() => ray.remote((s: string) => crypto.createHash('sha256').update(s).digest('hex')));
    expect(err).toBeInstanceOf(ray.RemoteDefinitionError);
    expect(err.message).toMatch(/captures `crypto` \(declared in its module, where it hides the global of that name that a worker would see\)/);
    expect(err.message).toContain('Pass `crypto` as an argument');
    expect(err.message).toContain('To use the worker\'s global `crypto` instead, write `globalThis.crypto`.');
    // the global itself, named as such, ships
    expect(() => ray.remote(() => globalThis.crypto.randomUUID())).not.toThrow();
  });

  test("an arrow function that uses the enclosing `this` fails at ray.remote(): a worker has no such `this`", () => {
    class Pipeline {
      scale = 2;
      stage(): unknown {
        return ray.remote((x: number) => x * this.scale);
      }
    }
    const err = thrown(() => new Pipeline().stage());
    expect(err.message).toMatch(/captures `this` \(the `this` of the code around the arrow function; a worker has none\)/);
    expect(err.message).toContain('Pass the value as an argument');
    // module.exports in the function is the worker's own: a capture as well
    expect(thrown(() => ray.remote(() => (module.exports as Record<string, unknown>).x)).message).toMatch(/captures `module\.exports` \(the module's own exports/);
  });

  test('shippable() names what takes the function in its error', () => {
    const err = thrown(() => registerInside(4));
    expect(err).toBeInstanceOf(ray.RemoteDefinitionError);
    expect(err.message).toMatch(/^registerScaler's function captures `k`, defined outside it\. It is made inside registerInside at shipping\.ts:\d+/);
  });

  test("a definition made in an anonymous function run at a module's top level (an IIFE) is shipped by value", async () => {
    expect(fromIife.byValue).toBe(true);
    expect(await ray.get(callShipped.remote(fromIife, 1))).toBe(0);
  });

  test('a function made by eval ships by value when it uses only globals', async () => {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const f = new Function('ray', 'return ray.remote(function evaled(x) { return Math.max(x, 10); })')(ray) as ray.RemoteFunction<(x: number) => number>;
    expect(await ray.get(f.remote(3))).toBe(10);
  });
});

describe('definitions that are located', () => {
  test("an export of the calling module is found by identity and may use its module's names", async () => {
    const s = shipPreprocess();
    expect(s.byValue).toBe(false);
    expect(s.name).toBe('preprocess');
    expect(await ray.get(callShipped.remote(s, '/data/train.csv'))).toBe('TRAIN');
    expect(await ray.get(remotePreprocess().remote('/data/test.csv'))).toBe('TEST');
  });

  test("a library call at a module's top level is located by the first frame outside tsray's packages", async () => {
    expect(times7.byValue).toBe(false);
    expect(await ray.get(applyScaler.remote(times7, 6))).toBe(42);
  });
});

describe('ray.util.shippable', () => {
  test('a function shipped by value travels in task arguments and is called in the worker', async () => {
    const len = ray.util.shippable((s: string) => s.length, { what: 'ds.map' });
    expect(len.byValue).toBe(true);
    expect(ray.util.isShippable(len)).toBe(true);
    expect(await len.call('local')).toBe(5);
    expect(await ray.get(callShipped.remote(len, 'abcd'))).toBe(4);
    // put once, passed by reference to many tasks
    const stored = ray.put(len);
    expect(await ray.get([callShipped.remote(stored, 'ab'), callShipped.remote(stored, 'abc')])).toEqual([2, 3]);
  });

  test('a shippable made in a worker and returned to the driver is loaded and called there', async () => {
    const make = ray.remote(() => (require('@tsray/core') as typeof ray).util.shippable((x: number) => x * 10, { name: 'tenfold' }));
    const s = (await ray.get(make.remote())) as unknown as ray.util.Shippable<(x: number) => number>;
    expect(ray.util.isShippable(s)).toBe(true);
    expect(s.name).toBe('tenfold');
    expect(await s.call(4)).toBe(40);
  });

  test('bad input fails with a message that names it', () => {
    expect(() => ray.util.shippable(42 as unknown as () => void, { what: 'ds.map' })).toThrow('ds.map takes a function or a class, got 42');
    expect(() => ray.util.shippable(() => 1, { wat: 'x' } as unknown as ray.util.ShippableOptions)).toThrow("unknown shippable() option 'wat'; the options are: what, name");
    expect(() => ray.util.shippable(Math.max)).toThrow(/is a native or bound function: its source text is not available/);
  });
});
