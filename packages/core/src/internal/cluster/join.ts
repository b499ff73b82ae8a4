/**
 * Joining a running cluster: which cluster token a connection to it
 * presents, and the first question to its head (its nodes), with an error
 * that says why the head did not answer: nothing listens there, the head
 * refused the token (or the lack of one), or it took the connection and
 * said nothing.
 *
 * The token belongs to the connection, never to the process: a process that
 * used one cluster (a `ray.Cluster`, then `shutdown()`) joins another with
 * that other cluster's token.
 * @internal
 */
import * as zmq from 'zeromq';
import { RaySystemError } from '../../errors';
import { decodeFrame, encodeFrame, partsFrame } from '../protocol/codec';
import { MT, type NodeInfo } from '../protocol/messages';
import { curveClientOptions } from '../transport/curve';
import { clusterKeys, localClusterTokens, readTokenFile, tokenFile, tokenFromEnv, TOKEN_ENV } from './token';
import { readClusterRecord } from './cluster-file';
import { pidAlive } from './processes';

/** A connection's cluster token and where it came from (for error messages). */
export interface TokenChoice {
  /** the token; undefined: none */
  token: string | undefined;
  /** where it came from, in words ("init({ token })", "TSRAY_CLUSTER_TOKEN", ...) */
  source: string;
}

/** Whether two HOST:PORT addresses name the same head on this machine. */
function sameHead(a: string, b: string): boolean {
  if (a === b) return true;
  const split = (x: string): [string, string] => {
    const i = x.lastIndexOf(':');
    return [x.slice(0, i), x.slice(i + 1)];
  };
  const [ha, pa] = split(a);
  const [hb, pb] = split(b);
  const local = (h: string): boolean => h === 'localhost' || h.startsWith('127.') || h === '0.0.0.0' || h === '[::1]';
  return pa === pb && local(ha) && local(hb);
}

/**
 * The token to present to the head at `address` (HOST:PORT, or an ipc
 * address): `given` (init({ token })) first, then TSRAY_CLUSTER_TOKEN, then
 * the token of a `ray.Cluster` of this process at that address, then the
 * token file of the cluster `tsray start --head` started on this machine
 * when `address` is that cluster's (or 'auto').
 * @throws TypeError when TSRAY_CLUSTER_TOKEN is set but not a valid token
 */
export function chooseToken(address: string, given: string | undefined, auto: boolean): TokenChoice {
  if (given !== undefined) return { token: given, source: 'init({ token })' };
  const env = tokenFromEnv();
  if (env !== undefined) return { token: env, source: TOKEN_ENV };
  const hostPort = address.replace(/^tcp:\/\//, '');
  for (const [a, t] of localClusterTokens()) if (sameHead(a, hostPort)) return { token: t, source: 'the ray.Cluster this process started' };
  const rec = readClusterRecord();
  if (rec && pidAlive(rec.pid) && (auto || sameHead(rec.address, hostPort))) {
    const token = readTokenFile(rec.sessionDir);
    if (token !== undefined) return { token, source: `the token file of the cluster \`tsray start --head\` started on this machine (${tokenFile(rec.sessionDir)})` };
  }
  return { token: undefined, source: 'none' };
}

/** What the probe's socket saw of its connection. */
interface Seen {
  connected: boolean;
  handshake: boolean;
  /** a handshake failure: ZeroMQ's event type and error */
  failure: { type: string; code: string; message: string } | undefined;
  disconnects: number;
}

/**
 * Asks the head at `address` (tcp:// or ipc://) for the cluster's nodes,
 * presenting `choice.token`.
 * @throws RaySystemError that says why when no answer comes within `timeoutMs`
 */
export async function askHeadForNodes(address: string, choice: TokenChoice, timeoutMs = 5000): Promise<NodeInfo[]> {
  const sock = new zmq.Dealer({ linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs, ...curveClientOptions(address, clusterKeys(choice.token ?? null)) });
  const seen: Seen = { connected: false, handshake: false, failure: undefined, disconnects: 0 };
  try {
    watchConnection(sock, seen);
    sock.connect(address);
    await sock.send(encodeFrame([{ t: MT.GetClusterInfo, reqId: 1 }]));
    for (;;) {
      const { frame } = partsFrame(await sock.receive());
      const reply = frame ? decodeFrame(frame).msgs[0] : undefined;
      if (reply?.t === MT.Reply && reply.reqId === 1) {
        if (!reply.ok) throw new RaySystemError(`the head at ${address.replace('tcp://', '')} refused to list its nodes: ${reply.error ?? 'no reason given'}`);
        return reply.data as NodeInfo[];
      }
    }
  } catch (e) {
    if (e instanceof RaySystemError) throw e;
    throw new RaySystemError(whyNoAnswer(address, choice, seen, timeoutMs, (e as Error).message));
  } finally {
    if (!sock.closed) sock.close();
  }
}

/**
 * Records what the socket's connection does in `seen`, and closes the
 * socket at the first handshake failure (no answer is coming then).
 *
 * The monitor is read until it ends by itself, after the socket closed:
 * libzmq writes monitor events from its I/O thread with a blocking send, so
 * a monitor closed before its socket would stall every socket of the
 * process. (A receive loop, not `events.on()`: zeromq's emitter loads a
 * module lazily, which a test runner may have torn down.)
 */
function watchConnection(sock: zmq.Dealer, seen: Seen): void {
  let events: zmq.Observer;
  try {
    events = sock.events;
  } catch {
    return; // no monitor: the diagnosis has less to go on
  }
  void (async () => {
    try {
      for await (const ev of events) {
        if (ev.type === 'connect') seen.connected = true;
        else if (ev.type === 'handshake') seen.handshake = true;
        else if (ev.type === 'disconnect') seen.disconnects++;
        else if (ev.type === 'handshake:error:auth' || ev.type === 'handshake:error:protocol' || ev.type === 'handshake:error:other') {
          seen.failure ??= { type: ev.type, code: (ev.error as { code?: string }).code ?? '', message: ev.error.message };
          if (!sock.closed) sock.close();
        }
      }
    } catch {
      /* the monitor ended */
    }
  })();
}

/** The reason a head did not answer, from what its connection showed. */
function whyNoAnswer(address: string, choice: TokenChoice, seen: Seen, timeoutMs: number, detail: string): string {
  const at = address.replace('tcp://', '');
  const printed = 'the token `tsray start --head` printed (also in the cluster_token file of its session directory)';
  const refused = seen.failure !== undefined || (seen.connected && !seen.handshake && seen.disconnects > 0);
  if (refused) {
    if (choice.token === undefined) {
      return `the head at ${at} refused this driver: it answers only holders of its cluster token, and this driver has none. Set ${TOKEN_ENV} to ${printed}, or pass init({ token })`;
    }
    return `the head at ${at} refused this driver's cluster token (from ${choice.source}): the token may be wrong. Use ${printed}, through init({ token }) or ${TOKEN_ENV}`;
  }
  if (seen.connected) {
    return `the head at ${at} took the connection but did not answer within ${timeoutMs} ms (${detail}); it may be overloaded, or not a tsray head`;
  }
  return `no tsray head answers at ${at} (nothing accepted a connection within ${timeoutMs} ms); is the cluster running? Start it with \`tsray start --head\``;
}
