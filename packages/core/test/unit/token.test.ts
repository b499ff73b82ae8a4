import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import {
  clusterToken,
  deriveClusterKeys,
  generateClusterToken,
  readTokenFile,
  setClusterToken,
  tokenFile,
  writeTokenFile,
  x25519PublicKey,
  z85Decode,
  z85Encode,
} from '../../src/internal/cluster/token';
import { Endpoint } from '../../src/internal/transport/endpoint';
import { encodeFrame } from '../../src/internal/protocol/codec';
import { MT } from '../../src/internal/protocol/messages';
import { until } from '../helpers/poll';

// these tests exercise CURVE, which loopback connections use only when asked to
process.env.TSRAY_ENCRYPT_LOOPBACK = '1';

describe('cluster tokens', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-token-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a generated token is 64 hex digits and never repeats', () => {
    const a = generateClusterToken();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(generateClusterToken()).not.toBe(a);
  });

  test('the token file is readable and writable by its owner only, and reads back', () => {
    const t = generateClusterToken();
    writeTokenFile(dir, t);
    expect(fs.statSync(tokenFile(dir)).mode & 0o777).toBe(0o600);
    expect(readTokenFile(dir)).toBe(t);
  });

  test('a missing or damaged token file reads as no token', () => {
    expect(readTokenFile(dir)).toBeUndefined();
    fs.writeFileSync(tokenFile(dir), 'not a token\n');
    expect(readTokenFile(dir)).toBeUndefined();
  });

  test('setClusterToken refuses what is not a token, naming the expected form', () => {
    expect(() => setClusterToken('secret')).toThrow('a cluster token is 64 hex digits (as `tsray start --head` prints it), got 6 characters');
    const t = generateClusterToken();
    setClusterToken(t);
    expect(clusterToken()).toBe(t);
    setClusterToken(undefined);
    expect(clusterToken()).toBeUndefined();
  });
});

describe('CURVE keys from a token', () => {
  test('z85 follows ZeroMQ RFC 32 (its test vector) and round-trips', () => {
    const hello = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    expect(z85Encode(hello)).toBe('HelloWorld');
    expect(z85Decode('HelloWorld')).toEqual(hello);
    expect(() => z85Encode(Buffer.alloc(3))).toThrow(/whole 4-byte groups/);
  });

  test('the public key computed from a secret key is the one libzmq pairs with it', () => {
    for (let i = 0; i < 5; i++) {
      const kp = zmq.curveKeyPair();
      expect(z85Encode(x25519PublicKey(z85Decode(kp.secretKey)))).toBe(kp.publicKey);
    }
  });

  test('keys are the same for the same token, different across tokens and roles', () => {
    const t = generateClusterToken();
    const a = deriveClusterKeys(t);
    expect(deriveClusterKeys(t)).toEqual(a);
    expect(a.server.publicKey).not.toBe(a.client.publicKey);
    expect(deriveClusterKeys(generateClusterToken()).server.publicKey).not.toBe(a.server.publicKey);
  });
});

describe('Endpoint with a cluster token', () => {
  const open: Endpoint[] = [];
  const raw: zmq.Dealer[] = [];
  let dir: string;
  const token = generateClusterToken();
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-curve-'));
    setClusterToken(token);
  });
  afterEach(() => {
    for (const ep of open.splice(0)) ep.close();
    for (const d of raw.splice(0)) d.close();
    setClusterToken(undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A server answering NodeStats on ipc and tcp. */
  async function server(): Promise<Endpoint> {
    const ep: Endpoint = await Endpoint.bind(
      `ipc://${path.join(dir, 'server')}`,
      'server',
      (m, from) => {
        if (m.t === MT.NodeStats) ep.respond(from, m.reqId, true, 'stats');
      },
      {},
      ['tcp://127.0.0.1:0'],
    );
    open.push(ep);
    return ep;
  }

  function rawDealer(address: string, opts: Partial<zmq.SocketOptions<zmq.Dealer>>): zmq.Dealer {
    // a peer whose handshake fails may never get a pipe to send on: bound the send too
    const d = new zmq.Dealer({ linger: 0, receiveTimeout: 1000, sendTimeout: 1000, ...opts });
    d.connect(address);
    raw.push(d);
    return d;
  }

  test('peers with the token talk over tcp (encrypted) and ipc (plain)', async () => {
    const s = await server();
    const tcp = s.addresses.find((a) => a.startsWith('tcp://')) as string;
    const c = await Endpoint.bind(`ipc://${path.join(dir, 'client')}`, 'client', () => undefined);
    open.push(c);
    expect((await c.call(tcp, { t: MT.NodeStats }, 10_000)).data).toBe('stats');
    expect((await c.call(s.address, { t: MT.NodeStats }, 10_000)).data).toBe('stats');
    // ipc takes plain ZeroMQ connections
    const plain = rawDealer(s.address, {});
    await plain.send(encodeFrame([{ t: MT.NodeStats, reqId: 7 }]));
    expect((await plain.receive()).length).toBe(1);
  });

  test('a server bound right after the last one closed still checks peers: the ZAP handler restarts, and servers fail closed', async () => {
    const lines: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      // closing the last server stops the handler; the next one binds while the old one is still going away
      for (let i = 0; i < 10; i++) (await server()).close();
      const s = await server();
      const tcp = s.addresses.find((a) => a.startsWith('tcp://')) as string;
      const other = deriveClusterKeys(generateClusterToken());
      const p = rawDealer(tcp, { curveServerKey: deriveClusterKeys(token).server.publicKey, curvePublicKey: other.client.publicKey, curveSecretKey: other.client.secretKey });
      const sent = await p.send(encodeFrame([{ t: MT.NodeStats, reqId: 1 }])).then(
        () => true,
        (e: { code?: string }) => (e.code === 'EAGAIN' ? false : Promise.reject(e)),
      );
      if (sent) await expect(p.receive()).rejects.toMatchObject({ code: 'EAGAIN' });
      expect(lines.filter((l) => l.includes('could not start the ZAP handler'))).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  });

  test('a tcp peer without CURVE, with another token, or with the server key but not the client key gets no answer, and is logged', async () => {
    const s = await server();
    const tcp = s.addresses.find((a) => a.startsWith('tcp://')) as string;
    const lines: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const other = deriveClusterKeys(generateClusterToken());
      const mine = deriveClusterKeys(token);
      const peers = [
        rawDealer(tcp, {}),
        rawDealer(tcp, { curveServerKey: other.server.publicKey, curvePublicKey: other.client.publicKey, curveSecretKey: other.client.secretKey }),
        // knows the server's public key, yet has no client key of this cluster: refused by ZAP
        rawDealer(tcp, { curveServerKey: mine.server.publicKey, curvePublicKey: other.client.publicKey, curveSecretKey: other.client.secretKey }),
      ];
      for (const p of peers) {
        // refused: either the send finds no pipe (EAGAIN) or nothing comes back
        const sent = await p.send(encodeFrame([{ t: MT.NodeStats, reqId: 1 }])).then(
          () => true,
          (e: { code?: string }) => (e.code === 'EAGAIN' ? false : Promise.reject(e)),
        );
        if (sent) await expect(p.receive()).rejects.toMatchObject({ code: 'EAGAIN' });
      }
      await until(() => lines.some((l) => /refused a connection to tcp:\/\/127\.0\.0\.1:\d+ from (127\.0\.0\.1:\d+|an unknown address): it does not use CURVE/.test(l)), 'the plain peer to be logged');
      await until(() => lines.some((l) => /from (127\.0\.0\.1:\d+|an unknown address): its CURVE handshake failed/.test(l)), 'the other token to be logged');
      await until(() => lines.some((l) => /from 127\.0\.0\.1: its CURVE client key is not this cluster's/.test(l)), 'the wrong client key to be logged');
    } finally {
      spy.mockRestore();
    }
    // and the server still answers members
    const good = rawDealer(tcp, { curveServerKey: deriveClusterKeys(token).server.publicKey, curvePublicKey: deriveClusterKeys(token).client.publicKey, curveSecretKey: deriveClusterKeys(token).client.secretKey });
    await good.send(encodeFrame([{ t: MT.NodeStats, reqId: 2 }]));
    expect((await good.receive()).length).toBe(1);
  });
});
