/**
 * ZeroMQ CURVE for `tcp://` sockets of a tokened cluster (see
 * `cluster/token.ts`): socket options for servers and clients, the ZAP
 * handler that admits only clients holding the cluster's client key, and a
 * watch on every CURVE server that logs each refused peer.
 *
 * A peer without the token fails the handshake before ZAP is asked (it
 * cannot know the server's public key), and libzmq's monitor events do not
 * say who the peer was; so the watch finds the address of a refused
 * connection in the kernel's socket table (/proc/self/net/tcp), where the
 * connection the server just closed lingers in TIME_WAIT. Where that table
 * is not readable the refusal is logged without the address.
 * @internal
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as zmq from 'zeromq';
import { TOKEN_ENV, z85Encode, type ClusterKeys } from '../cluster/token';
import { RateLimitedLog, log } from '../log';
import { RaySystemError } from '../../errors';

/** Where libzmq asks for ZAP decisions (ZeroMQ RFC 27). */
const ZAP_ADDRESS = 'inproc://zeromq.zap.01';

const refusals = new RateLimitedLog();

/** Logs a refused peer (rate-limited per peer host and reason: a refused peer reconnects every 100 ms). */
function logRefusal(local: string, peer: string | undefined, reason: string): void {
  const host = peer?.replace(/:\d+$/, '') ?? 'unknown';
  refusals.warn(`refused ${host} (${reason.replace(/ \(.*/, '')})`, `refused a connection to ${local} from ${peer ?? 'an unknown address'}: ${reason}; it gets no answer. Peers of this cluster need its token (${TOKEN_ENV})`);
}

/** Whether `address` is one that CURVE protects (tcp). */
export function isTcp(address: string): boolean {
  return address.startsWith('tcp://');
}

/**
 * Whether a tcp address is on the loopback interface. Traffic there never
 * leaves the machine, so it is authenticated with the token (ZeroMQ PLAIN,
 * checked by the ZAP handler) but not encrypted: CURVE would cost about
 * three quarters of a loopback connection's throughput.
 * TSRAY_ENCRYPT_LOOPBACK=1 encrypts it too.
 */
export function isLoopback(address: string): boolean {
  // TSRAY_ENCRYPT_LOOPBACK=1: CURVE on loopback too
  if (process.env.TSRAY_ENCRYPT_LOOPBACK === '1') return false;
  return /^tcp:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\]):/.test(address);
}

/** How a socket at `address` is secured: not at all (ipc, or no token), PLAIN (loopback) or CURVE. */
export type Security = 'none' | 'plain' | 'curve';

/** See {@link Security}; `keys`: the connection's cluster keys (none: no token). */
export function securityOf(address: string, keys: ClusterKeys | undefined): Security {
  if (!isTcp(address) || !checkCurve(keys)) return 'none';
  return isLoopback(address) ? 'plain' : 'curve';
}

/** The PLAIN user name of cluster members. */
const PLAIN_USER = 'tsray';

/**
 * The ZAP domain of a cluster's servers: the ZAP handler, shared by every
 * server of the process, checks a peer against the keys of the server's
 * cluster (a process may hold connections to two clusters).
 */
function zapDomainOf(keys: ClusterKeys): string {
  return `tsray:${keys.server.publicKey}`;
}

/** Socket options of a ROUTER bound with `security` for the cluster of `keys`. */
export function serverOptions(security: Security, keys: ClusterKeys | undefined): Record<string, unknown> {
  if (security === 'none' || !keys) return {};
  // fail closed: without a ZAP handler running, libzmq would admit any peer that completes the handshake
  const zap = { zapDomain: zapDomainOf(keys), zapEnforceDomain: true };
  if (security === 'plain') return { plainServer: true, ...zap };
  return { curveServer: true, curveSecretKey: keys.server.secretKey, curvePublicKey: keys.server.publicKey, ...zap };
}

/** `keys`, checking that ZeroMQ can use them (it may be built without CURVE). */
function checkCurve(keys: ClusterKeys | undefined): ClusterKeys | undefined {
  if (keys && !zmq.capability.curve) {
    throw new RaySystemError(`a cluster token is set (${TOKEN_ENV}), but this build of zeromq has no CURVE support to encrypt tcp connections with; install a zeromq build with CURVE (the npm package's prebuilt binaries have it)`);
  }
  return keys;
}

/** Socket options that make a DEALER connecting to `address` a client of the cluster of `keys`; {} for ipc or without a token. */
export function curveClientOptions(address: string, keys: ClusterKeys | undefined): { curveServerKey?: string; curvePublicKey?: string; curveSecretKey?: string; plainUsername?: string; plainPassword?: string } {
  const security = securityOf(address, keys);
  if (security === 'none' || !keys) return {};
  // the client's secret key doubles as the PLAIN password: only token holders can derive it
  if (security === 'plain') return { plainUsername: PLAIN_USER, plainPassword: keys.client.secretKey };
  return { curveServerKey: keys.server.publicKey, curvePublicKey: keys.client.publicKey, curveSecretKey: keys.client.secretKey };
}

/** The ZAP handler of this process, shared by its CURVE servers. */
class ZapHandler {
  private readonly sock = new zmq.Router({ linger: 0 });

  static async start(): Promise<ZapHandler | undefined> {
    const z = new ZapHandler();
    // the handler of an earlier server of this process may still hold the address: libzmq unbinds a closed socket soon, not at once
    const deadline = Date.now() + 2000;
    for (;;) {
      try {
        await z.sock.bind(ZAP_ADDRESS);
        break;
      } catch (e) {
        if ((e as { code?: string }).code === 'EADDRINUSE' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        // someone else in this process handles ZAP; servers enforce the ZAP domain, so peers are refused rather than let in unchecked
        z.sock.close();
        log.warn(`could not start the ZAP handler (${(e as Error).message}); tcp servers of this process refuse every peer until it runs`);
        return undefined;
      }
    }
    void z.loop();
    return z;
  }

  close(): void {
    this.sock.close();
  }

  private async loop(): Promise<void> {
    while (!this.sock.closed) {
      let f: Buffer[];
      try {
        f = await this.sock.receive();
      } catch {
        if (this.sock.closed) return;
        continue;
      }
      // [routing id, '', version, request id, domain, address, identity, mechanism, credentials...]
      const [id, empty, version, requestId, domain, address, , mechanism, credential, password] = f;
      if (!id || !empty || !version || !requestId) continue;
      const keys = domain !== undefined ? zapKeys.get(domain.toString())?.keys : undefined;
      const mech = mechanism?.toString();
      let ok = false;
      if (version.toString() === '1.0' && keys !== undefined && credential !== undefined) {
        if (mech === 'CURVE') ok = credential.length === 32 && z85Equals(credential, keys.client.publicKey);
        else if (mech === 'PLAIN') ok = credential.toString() === PLAIN_USER && password !== undefined && safeEqual(password, Buffer.from(keys.client.secretKey));
      }
      if (!ok) {
        const why = mech === 'PLAIN' ? 'its password is not this cluster\'s (it does not have the cluster token)' : mech === 'CURVE' ? 'its CURVE client key is not this cluster\'s (it does not have the cluster token)' : `it offered no credentials (${mech ?? 'no mechanism'}; it does not have the cluster token)`;
        logRefusal('this node', address?.toString() || undefined, why);
      }
      try {
        await this.sock.send([id, empty, '1.0', requestId, ok ? '200' : '400', ok ? 'OK' : 'not a member of this cluster', ok ? 'tsray' : '', '']);
      } catch (e) {
        if (this.sock.closed) return;
        log.warn(`ZAP reply failed: ${(e as Error).message}`);
      }
    }
  }
}

/** Constant-time comparison of two byte strings. */
function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function z85Equals(raw: Buffer, z85: string): boolean {
  return z85Encode(raw) === z85;
}

let zap: Promise<ZapHandler | undefined> | undefined;
let zapUsers = 0;
/** The clusters whose servers this process runs, by ZAP domain, with how many servers each. */
const zapKeys = new Map<string, { keys: ClusterKeys; users: number }>();

/**
 * Starts (or shares) this process's ZAP handler and admits members of the
 * cluster of `keys` to servers bound with its options; call `releaseZap`
 * with the same keys when the server closes.
 */
export async function acquireZap(keys: ClusterKeys): Promise<void> {
  zapUsers++;
  const domain = zapDomainOf(keys);
  const entry = zapKeys.get(domain);
  if (entry) entry.users++;
  else zapKeys.set(domain, { keys, users: 1 });
  zap ??= ZapHandler.start();
  await zap;
}

/** Stops admitting the cluster of `keys` once its last server is gone, and the ZAP handler once every server is. */
export function releaseZap(keys: ClusterKeys): void {
  const domain = zapDomainOf(keys);
  const entry = zapKeys.get(domain);
  if (entry && --entry.users <= 0) zapKeys.delete(domain);
  const p = zap;
  if (!p || --zapUsers > 0) return;
  zap = undefined;
  void p.then((z) => z?.close());
}

/** TCP states of a connection on its way out (everything but ESTABLISHED, SYN_* and LISTEN). */
const CLOSING_STATES = new Set(['04', '05', '06', '07', '08', '09', '0B']);

/** "ip:port" of a /proc/net/tcp address (hex, in host byte order per 32-bit word). */
function procAddress(hex: string): string {
  const [ip = '', port = '0'] = hex.split(':');
  const words = (ip.match(/.{8}/g) ?? []).map((w) => Buffer.from(w, 'hex').reverse());
  const bytes = Buffer.concat(words);
  const p = parseInt(port, 16);
  if (bytes.length === 4) return `${[...bytes].join('.')}:${p}`;
  if (bytes.subarray(0, 12).equals(Buffer.from('00000000000000000000ffff', 'hex'))) return `${[...bytes.subarray(12)].join('.')}:${p}`;
  const groups = (bytes.toString('hex').match(/.{4}/g) ?? []).map((g) => g.replace(/^0+(?=.)/, ''));
  return `[${groups.join(':')}]:${p}`;
}

/** The connections to a server port in the kernel's socket table, by the peer's "ip:port". */
interface SocketTable {
  /** peers whose connection is established */
  open: Set<string>;
  /** peers whose connection is closing or closed (TIME_WAIT and the like) */
  closing: Set<string>;
}

/**
 * Reads the connections to `host:port` from /proc/self/net/tcp{,6}: the
 * server's side of each, and, for peers on this machine, their side too
 * (whichever side closed first is the one that lingers). Undefined where
 * the table cannot be read.
 */
function socketTable(host: string, port: number): SocketTable | undefined {
  const table: SocketTable = { open: new Set(), closing: new Set() };
  let readable = false;
  const self = (ip: string): boolean => ip === host || ip.startsWith('127.') || ip === '[::1]';
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    readable = true;
    for (const line of text.split('\n').slice(1)) {
      const [, localHex, remoteHex, st] = line.trim().split(/\s+/);
      if (!localHex || !remoteHex || !st || st === '0A') continue;
      const local = procAddress(localHex);
      const remote = procAddress(remoteHex);
      let peer: string | undefined;
      if (local.endsWith(`:${port}`)) peer = remote;
      else if (remote.endsWith(`:${port}`) && self(remote.slice(0, remote.lastIndexOf(':')))) peer = local;
      if (peer === undefined) continue;
      if (st === '01') table.open.add(peer);
      else if (CLOSING_STATES.has(st)) table.closing.add(peer);
    }
  }
  return readable ? table : undefined;
}

/** Why a handshake failed, for the log. */
function handshakeReason(code: string): string {
  if (code === 'ERR_ZMTP_MECHANISM_MISMATCH') return 'it does not use CURVE encryption (it was started without this cluster\'s token)';
  if (code === 'ERR_ZMTP_CRYPTOGRAPHIC') return 'its CURVE handshake failed (it does not have this cluster\'s token)';
  return `its handshake failed (${code})`;
}

/**
 * Logs every peer that a CURVE server refuses, with its address where the
 * kernel's socket table has it. Runs until the socket closes.
 *
 * Monitor events do not say which connection failed, so the peers are
 * found by looking at the table when connections come and go: a refused
 * peer is one that was open (seen at its accept) and is not any more, or one
 * newly closing, when a handshake failed. A legitimate connection closing
 * at the same moment may be named along with it.
 */
export function watchRefusals(sock: zmq.Router, local: string): void {
  const m = /^tcp:\/\/(.*):(\d+)$/.exec(local);
  const host = m?.[1] ?? '';
  const port = Number(m?.[2]);
  let open = new Set<string>();
  // connections seen closing (legitimate ones, or refusals already logged), with when
  const closing = new Map<string, number>();
  const pending: string[] = [];
  const scan = (): void => {
    const now = Date.now();
    for (const [k, t] of closing) if (now - t > 120_000) closing.delete(k);
    const table = socketTable(host, port);
    const candidates = new Set<string>();
    if (table) {
      for (const p of open) if (!table.open.has(p)) candidates.add(p);
      for (const p of table.closing) if (!closing.has(p)) candidates.add(p);
      for (const p of table.closing) closing.set(p, now);
      for (const p of candidates) closing.set(p, now);
      open = table.open;
    }
    if (pending.length === 0) return;
    const reason = pending[0] as string;
    pending.length = 0;
    if (candidates.size === 0) logRefusal(local, undefined, reason);
    for (const p of candidates) logRefusal(local, p, reason);
  };
  const events = sock.events;
  void (async () => {
    try {
      for await (const ev of events) {
        if (ev.type === 'accept') {
          scan();
        } else if (ev.type === 'handshake:error:protocol') {
          pending.push(handshakeReason(ev.error.code));
        } else if (ev.type === 'handshake:error:other') {
          // a plain ZeroMQ peer that sees the CURVE greeting first hangs up before the server reads its own
          pending.push(`it broke off the CURVE handshake (${ev.error.message}): a peer without CURVE or without this cluster's token does that`);
        } else if (ev.type === 'disconnect') {
          // the socket table shows the closed connection once the close went through
          setTimeout(scan, 10).unref();
        }
      }
    } catch (e) {
      if (!sock.closed) log.debug(`watching ${local} stopped: ${(e as Error).message}`);
    }
  })();
}
