import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ray from '@tsray/core';
import * as data from '@tsray/data';
import { tempDir } from './helpers';

const tmp = tempDir('tsray-data-io-');
const file = (name: string, text: string | Buffer): string => {
  const p = path.join(tmp.dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
};

beforeAll(async () => {
  await ray.init({ numCpus: 2, logToDriver: false });
});
afterAll(async () => {
  await ray.shutdown();
  tmp.remove();
});

describe('reading', () => {
  test('readCsv types columns and keeps quoted delimiters, quotes and newlines', async () => {
    const p = file('a.csv', 'id,name,score,ok,note\n1,"Smith, J",1.5,true,\n2,"say ""hi""",2,false,"two\nlines"\n\n3,plain,-0.25,true,x\n');
    const rows = await data.readCsv(p).takeAll();
    expect(rows).toEqual([
      { id: 1, name: 'Smith, J', score: 1.5, ok: true, note: null },
      { id: 2, name: 'say "hi"', score: 2, ok: false, note: 'two\nlines' },
      { id: 3, name: 'plain', score: -0.25, ok: true, note: 'x' },
    ]);
    expect((await data.readCsv(p).schema()).types).toEqual(['Int64', 'Utf8', 'Float64', 'Bool', 'Utf8']);
  });

  test('a malformed CSV row fails with the file and line number', async () => {
    const p = file('bad.csv', 'a,b\n1,2\n3,4,5\n');
    const err = await data.readCsv(p).takeAll().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(data.DataReadError);
    expect((err as data.DataReadError).line).toBe(3);
    expect((err as Error).message).toBe(`${p}:3: the row has 3 fields but the header has 2 (a, b); fix the row, or quote fields that hold the delimiter`);
  });

  test('readJson reads JSON Lines and files holding one array; a malformed line names file and line', async () => {
    const lines = file('j/a.jsonl', '{"a":1,"b":"x"}\n\n{"a":2,"b":"y"}\n');
    const arr = file('j/b.json', '[{"a":3,"b":"z"}]');
    expect(await data.readJson([lines, arr]).takeAll()).toEqual([
      { a: 1, b: 'x' },
      { a: 2, b: 'y' },
      { a: 3, b: 'z' },
    ]);
    const bad = file('bad.jsonl', '{"a":1}\n{"a":\n');
    const err = await data.readJson(bad).takeAll().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(data.DataReadError);
    expect((err as Error).message).toMatch(new RegExp(`^${bad.replace(/[.]/g, '\\.')}:2: the line is not valid JSON`));
  });

  test('readText gives a row per line; readBinaryFiles a row per file', async () => {
    const t = file('t/x.txt', 'one\r\ntwo\nthree\n');
    expect((await data.readText(t).takeAll()).map((r) => r.text)).toEqual(['one', 'two', 'three']);
    const b = file('t/y.bin', Buffer.from([1, 2, 3]));
    const [row] = await data.readBinaryFiles(b).takeAll();
    expect(row?.path).toBe(b);
    expect([...(row?.bytes as Uint8Array)]).toEqual([1, 2, 3]);
  });

  test('paths: a directory (recursive, hidden files left out), a glob, a list; a missing path is named', async () => {
    file('d/p1.csv', 'v\n1\n');
    file('d/sub/p2.csv', 'v\n2\n');
    file('d/.hidden.csv', 'v\n9\n');
    file('d/_SUCCESS', '');
    expect((await data.readCsv(path.join(tmp.dir, 'd')).takeAll()).map((r) => r.v)).toEqual([1, 2]);
    expect((await data.readCsv(path.join(tmp.dir, 'd', '**', '*.csv')).takeAll()).map((r) => r.v)).toEqual([1, 2]);
    expect((await data.readCsv(path.join(tmp.dir, 'd', 'p*.csv')).takeAll()).map((r) => r.v)).toEqual([1]);
    const missing = path.join(tmp.dir, 'nope.csv');
    const err = await data.readCsv(missing).count().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(data.DataReadError);
    expect((err as Error).message).toBe(`the path '${missing}' does not exist (resolved to ${missing}); check the path, or give an absolute one`);
    await expect(data.readCsv(path.join(tmp.dir, 'd', '*.tsv')).count()).rejects.toThrow(/no file matches the pattern/);
  });
});

describe('writing', () => {
  test.each(['snappy', 'zstd', 'none'] as const)('writeParquet (%s) and readParquet round-trip, one read task per row group, columns projected', async (compression) => {
    const dir = path.join(tmp.dir, `pq-${compression}`);
    const ds = data.range(1000, { overrideNumBlocks: 4 }).map((r) => ({ id: r.id, s: `v${r.id}`, f: (r.id as number) / 4 }));
    const files = await ds.writeParquet(dir, { compression });
    expect(files.length).toBe(4);
    expect(files.every((f) => f.endsWith('.parquet'))).toBe(true);
    const back = data.readParquet(dir);
    expect(await back.count()).toBe(1000);
    const rows = await back.takeAll();
    expect(rows[999]).toEqual({ id: 999, s: 'v999', f: 249.75 });
    expect(await data.readParquet(dir, { columns: ['s'] }).take(2)).toEqual([{ s: 'v0' }, { s: 'v1' }]);
    // selectColumns right after the read becomes the read's column list
    expect(await data.readParquet(dir).selectColumns(['f']).take(1)).toEqual([{ f: 0 }]);
  });

  test('a file that is not Parquet fails with its name', async () => {
    const p = file('not.parquet', 'hello');
    const err = await data.readParquet(p).count().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(data.DataReadError);
    expect((err as Error).message).toMatch(new RegExp(`^${p.replace(/[.]/g, '\\.')} is not a Parquet file`));
  });

  test('writeCsv and writeJson round-trip through their readers', async () => {
    const ds = data.fromItems([
      { a: 1, b: 'x,y', c: true },
      { a: 2, b: 'say "q"', c: false },
    ]);
    const csv = path.join(tmp.dir, 'out-csv');
    await ds.writeCsv(csv);
    expect(await data.readCsv(csv).takeAll()).toEqual(await ds.takeAll());
    const json = path.join(tmp.dir, 'out-json');
    await ds.writeJson(json);
    expect(await data.readJson(json).takeAll()).toEqual(await ds.takeAll());
  });
});
