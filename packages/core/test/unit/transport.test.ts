import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Endpoint, type Peer } from '../../src/internal/transport/endpoint';
import { MT, type Address, type Message } from '../../src/internal/protocol/messages';
import { CHUNKED_MAX, encodeFrame, frameParts, partsFrame } from '../../src/internal/protocol/codec';
import { Borrowing } from '../../src/internal/runtime/borrowing';
import { RefEntry, RefKind, ReferenceTable } from '../../src/internal/runtime/refs';
import { until } from '../helpers/poll';

let dir: string;
const open: Endpoint[] = [];

async function endpoint(name: string, handler: (m: Message, from: Peer) => void): Promise<Endpoint> {
  const ep = await Endpoint.bind(`ipc://${path.join(dir, name)}`, name, handler);
  open.push(ep);
  return ep;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-transport-'));
});

afterEach(() => {
  for (const ep of open.splice(0)) ep.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('Endpoint requests', () => {
  test('a request to a process that went away rejects when its connection is dropped', async () => {
    const got: Message[] = [];
    const silent = await endpoint('silent', (m) => got.push(m));
    const asker = await endpoint('asker', () => undefined);
    const answer = asker.request(silent.address, { t: MT.NodeStats });
    await until(() => got.length === 1, 'the request to arrive');
    asker.disconnect(silent.address, 'it exited with code 1');
    await expect(answer).rejects.toThrow(/no answer from .*silent: it exited with code 1/);
  });

  test('close rejects pending requests, and requests after close reject at once', async () => {
    const silent = await endpoint('silent', () => undefined);
    const asker = await endpoint('asker', () => undefined);
    const pending = asker.request(silent.address, { t: MT.NodeStats });
    asker.close();
    await expect(pending).rejects.toThrow(/closed/);
    await expect(asker.request(silent.address, { t: MT.NodeStats })).rejects.toThrow(/closed/);
  });
});

describe('small frames travel in copied chunks', () => {
  test('a frame of 129 to CHUNKED_MAX bytes is split into parts of 128 bytes behind a marker no frame starts with, and joined again', () => {
    for (const size of [1, 128, 129, 300, CHUNKED_MAX, CHUNKED_MAX + 1, 5000]) {
      const frame = Buffer.alloc(size, 7);
      const parts = frameParts(frame);
      const chunked = size > 128 && size <= CHUNKED_MAX;
      expect(parts.length).toBe(chunked ? 1 + Math.ceil(size / 128) : 1);
      if (chunked) expect([...(parts[0] as Buffer)]).toEqual([0xc1]);
      for (const part of parts) expect(part.length).toBeLessThanOrEqual(chunked ? 128 : size);
      const { frame: back, rest } = partsFrame(parts);
      expect(back?.equals(frame)).toBe(true);
      expect(rest).toEqual([]);
    }
    // an encoded frame never starts with the marker byte, so a bulk message (frame, bytes) is told apart
    expect(encodeFrame([{ t: MT.NodeStats, reqId: 1 }])[0]).not.toBe(0xc1);
    const bulk = partsFrame([Buffer.from([0x92]), Buffer.from([1, 2])]);
    expect([...(bulk.frame as Buffer)]).toEqual([0x92]);
    expect(bulk.rest).toHaveLength(1);
  });

  test('messages of every size reach their peer whole, in order', async () => {
    const sizes = [0, 50, 100, 200, 700, 1500, 20_000];
    const got: string[] = [];
    const server = await endpoint('server', (m, from) => {
      if (m.t === MT.NodeStats) server.respond(from, m.reqId, true, 'x'.repeat(sizes[got.length] ?? 0));
      got.push('asked');
    });
    const client = await endpoint('client', () => undefined);
    for (const n of sizes) expect((await client.call(server.address, { t: MT.NodeStats })).data).toBe('x'.repeat(n));
  });
});

describe('Endpoint bulk replies', () => {
  test('bytes sent with respondBytes arrive as the reply data, in order with the replies around them', async () => {
    const asked: Array<[number, Peer]> = [];
    const server = await endpoint('server', (m, from) => {
      if (m.t !== MT.NodeStats) return;
      asked.push([m.reqId, from]);
      if (asked.length < 3) return;
      // a plain reply, a bulk one and a plain one again, queued together
      const [[r1, p1], [r2, p2], [r3, p3]] = asked as [[number, Peer], [number, Peer], [number, Peer]];
      server.respond(p1, r1, true, 'before');
      server.respondBytes(p2, r2, new Uint8Array([1, 2, 3]));
      server.respond(p3, r3, true, 'after');
    });
    const client = await endpoint('client', () => undefined);
    const order: string[] = [];
    const calls = [0, 1, 2].map((i) =>
      client.call(server.address, { t: MT.NodeStats }).then((r) => {
        order.push(String(i));
        return r.data;
      }),
    );
    const [a, b, c] = await Promise.all(calls);
    expect(a).toBe('before');
    expect(b).toBeInstanceOf(Uint8Array);
    expect([...(b as Uint8Array)]).toEqual([1, 2, 3]);
    expect(c).toBe('after');
    expect(order).toEqual(['0', '1', '2']);
  });

  test('a request answered with bytes resolves with them', async () => {
    const payload = new Uint8Array(3 * 1024 * 1024).fill(7);
    const server = await endpoint('server', (m, from) => {
      if (m.t === MT.NodeStats) server.respondBytes(from, m.reqId, payload);
    });
    const client = await endpoint('client', () => undefined);
    const r = await client.call(server.address, { t: MT.NodeStats });
    expect(r.data).toBeInstanceOf(Uint8Array);
    expect((r.data as Uint8Array).length).toBe(payload.length);
    expect((r.data as Uint8Array)[payload.length - 1]).toBe(7);
  });
});

describe('Borrowing', () => {
  test('a removal waits only for the registrations sent before it, not for later ones', async () => {
    const adds: Array<{ ids: string[]; reqId: number; from: Peer }> = [];
    const removes: string[][] = [];
    const ownerEp = await endpoint('owner', (m, from) => {
      if (m.t === MT.AddBorrower) adds.push({ ids: m.ids, reqId: m.reqId, from });
      if (m.t === MT.RemoveBorrower) removes.push(m.ids);
    });
    const borrowerEp = await endpoint('borrower', () => undefined);
    const owner: Address = { workerId: 'owner', nodeId: 'n', endpoint: ownerEp.address, slot: 1 };
    const self: Address = { workerId: 'borrower', nodeId: 'n', endpoint: borrowerEp.address, slot: 2 };
    const table = new ReferenceTable(self, { freeOwned: () => undefined, releaseBorrowed: () => undefined, makeInstance: () => ({}), freeLarge: () => undefined });
    const entry = (id: string): RefEntry => new RefEntry(id, owner, false, RefKind.Object, table);
    const b = new Borrowing(borrowerEp, self, () => undefined, () => undefined);

    b.register(entry('first'), undefined);
    await until(() => adds.length === 1, 'the first registration');
    b.release(entry('released'));
    b.register(entry('second'), undefined);
    await until(() => adds.length === 2, 'the second registration');
    expect(removes).toEqual([]); // the first registration is not acknowledged yet

    const first = adds[0] as (typeof adds)[number];
    ownerEp.respond(first.from, first.reqId, true, []);
    // sent although the second registration is still unanswered (steady traffic never holds removals back)
    await until(() => removes.length === 1, 'the removal');
    expect(removes[0]).toEqual(['released']);
    const second = adds[1] as (typeof adds)[number];
    ownerEp.respond(second.from, second.reqId, true, []);
  });
});
