/**
 * A process's ZeroMQ endpoint. Each process binds one ROUTER, where peers
 * reach it, and opens one DEALER per peer it sends to. Replies go back over
 * the connection the request came in on.
 *
 * zeromq.js allows one pending send and one pending receive per socket, so
 * every socket has a single receive loop and an outbox: messages queued while
 * a send is in flight are coalesced into one frame per destination, which is
 * where the runtime's batching comes from.
 *
 * With a cluster token (`cluster/token.ts`), `tcp://` addresses are bound by
 * a ROUTER of their own that is a CURVE server, and DEALERs to `tcp://`
 * addresses are CURVE clients; `ipc://` stays plain (the session directory
 * is private to its user). The token belongs to the endpoint: a process may
 * hold endpoints into two clusters.
 *
 * A driver's endpoint (`idleExit`) must not keep its process alive by
 * listening, yet must read what arrives (worker logs, node deaths) while
 * the program runs: while nothing waits for a reply its receive loops stop,
 * and an unref'd timer looks at its sockets every IDLE_POLL_MS and reads
 * what is there without blocking.
 * @internal
 */
import * as zmq from 'zeromq';
import { decodeFrame, encodeFrame, frameParts, partsFrame } from '../protocol/codec';
import { MT, type Message, type MessageOf } from '../protocol/messages';
import { RateLimitedLog, log } from '../log';
import { RaySystemError } from '../../errors';
import { clusterKeys, type ClusterKeys } from '../cluster/token';
import { acquireZap, curveClientOptions, releaseZap, securityOf, serverOptions, watchRefusals, type Security } from './curve';

/** Who a message came from, for replying. */
export type Peer = { readonly kind: 'router'; readonly id: Buffer; readonly key: string; /** which of the endpoint's ROUTERs it came in on */ readonly r?: number } | { readonly kind: 'dealer'; readonly address: string };

/** Receives every message that is not a reply to one of our requests. */
export type MessageHandler = (msg: Message, from: Peer) => void;

/** A reply message. */
export type Reply = MessageOf<MT.Reply>;

type Dest = Buffer | null;

/** A request message before its `reqId` is assigned. */
export type RequestMessage = Message extends infer M ? (M extends unknown ? ('reqId' extends keyof M ? Omit<M, 'reqId'> : never) : never) : never;

/**
 * Queues messages per destination and sends them one frame at a time. A
 * message with an attachment (bulk bytes: object chunks) goes alone, as a
 * ZeroMQ message of two frames — the message, then the raw bytes — so that
 * the bytes are never copied into a msgpack frame.
 */
class Outbox {
  private queue = new Map<string, { dest: Dest; msgs: Message[]; bulk: boolean }>();
  private readonly attached = new WeakMap<Message, Uint8Array>();
  private busy = false;
  closed = false;

  constructor(
    private readonly sock: zmq.Router | zmq.Dealer,
    private readonly label: string,
  ) {}

  /** Queues `msg` for `dest` (sent with the others queued for it, in one frame; alone with `attachment`). */
  push(key: string, dest: Dest, msg: Message, attachment?: Uint8Array): void {
    if (this.closed) return;
    let q = this.queue.get(key);
    if (!q) {
      q = { dest, msgs: [], bulk: false };
      this.queue.set(key, q);
    }
    q.msgs.push(msg);
    if (attachment) {
      this.attached.set(msg, attachment);
      q.bulk = true;
    }
    if (!this.busy) {
      this.busy = true;
      // after the I/O callbacks of this turn of the event loop, not after this
      // one's microtasks: messages that callbacks of one turn queue (many HTTP
      // requests arriving at once, replies to a batch of calls) leave in one
      // frame. Each ZeroMQ send wakes the socket's I/O thread, which costs
      // tens of microseconds on a VM; one send per turn instead of one per
      // message raised async tasks from 42k/s to 60k/s and sync calls from
      // 3.1k/s to 3.9k/s on the 2-core VM (same session).
      setImmediate(() => void this.pump());
    }
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.size > 0 && !this.closed) {
        const batch = this.queue;
        this.queue = new Map();
        for (const { dest, msgs, bulk } of batch.values()) {
          if (!bulk) {
            await this.sendParts(dest, frameParts(encodeFrame(msgs)));
            continue;
          }
          let from = 0;
          for (let i = 0; i <= msgs.length; i++) {
            const bytes = i < msgs.length ? this.attached.get(msgs[i] as Message) : undefined;
            if (i < msgs.length && !bytes) continue;
            if (i > from) await this.sendParts(dest, frameParts(encodeFrame(msgs.slice(from, i))));
            if (bytes) await this.sendParts(dest, [encodeFrame([msgs[i] as Message]), bytes]);
            from = i + 1;
          }
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private async sendParts(dest: Dest, parts: Uint8Array[]): Promise<void> {
    try {
      if (dest) await (this.sock as zmq.Router).send([dest, ...parts]);
      else await (this.sock as zmq.Dealer).send(parts);
    } catch (e) {
      if (!this.closed) log.debug(`send on ${this.label} failed: ${(e as Error).message}`);
    }
  }
}

/** A DEALER to one peer, with its outbox and who watches its connection. */
interface DealerRecord {
  sock: zmq.Dealer;
  out: Outbox;
  watchers?: Set<(up: boolean) => void>;
}

let requestCounter = 0;

interface PendingRequest {
  readonly address: string;
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
  /** does not keep an idle-exit endpoint receiving (liveness pings) */
  weak?: boolean;
}

/** How an endpoint is set up. */
export interface EndpointOptions {
  /** a driver's endpoint: it never keeps the process alive by listening (see the module comment) */
  idleExit?: boolean;
  /**
   * The cluster token of its tcp connections: a token, null for none, or
   * undefined for the process's default (`cluster/token.ts`).
   */
  token?: string | null;
}

/** What `request()` takes besides the message. */
export interface RequestOptions {
  /** do not keep an idle-exit endpoint receiving while waiting for the answer (it is read when it comes, while the process lives) */
  weak?: boolean;
}

/** A printable name for a peer, for logs. */
function peerName(p: Peer): string {
  if (p.kind === 'dealer') return p.address;
  return /^[\x20-\x7e]+$/.test(p.key) ? p.key : `0x${p.id.toString('hex').slice(0, 16)}`;
}

const SOCKET_OPTIONS = { linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 } as const;
/** In idle-exit mode, receive loops wake this often to see whether to stop. */
const ACTIVE_POLL_MS = 100;
/** In idle-exit mode, stopped receive loops are looked at this often for messages (unref'd: it keeps nothing alive). */
const IDLE_POLL_MS = 25;

/** See the module comment. */
export class Endpoint {
  /** one ROUTER, or with a cluster token one for ipc and one (CURVE) for tcp */
  private readonly routers: Array<{ sock: zmq.Router; out: Outbox; curve: boolean }>;
  private readonly dealers = new Map<string, DealerRecord>();
  private readonly pending = new Map<number, PendingRequest>();
  private readonly dropLog = new RateLimitedLog();
  private closed = false;
  private readonly handler: MessageHandler;
  /** idle-exit mode: receive only while something waits for messages */
  private readonly idleExit: boolean;
  private holds = 0;
  /** pending requests that do not keep the endpoint receiving */
  private weakPending = 0;
  /** stopped receive loops, by socket, with how to restart each */
  private readonly stopped = new Map<zmq.Socket, () => void>();
  private idleTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly address: string,
    private readonly identity: string,
    routers: Array<{ sock: zmq.Router; curve: boolean }>,
    handler: MessageHandler,
    idleExit: boolean,
    /** the cluster keys of its tcp connections (none without a token) */
    private readonly keys: ClusterKeys | undefined,
  ) {
    this.routers = routers.map((r) => ({ ...r, out: new Outbox(r.sock, 'router') }));
    this.handler = handler;
    this.idleExit = idleExit;
    for (let i = 0; i < this.routers.length; i++) void this.routerLoop(i);
  }

  /**
   * In idle-exit mode (drivers), counts things waiting for messages; while
   * the count and pending requests are zero, receive loops stop so that the
   * process can exit when the user's program is done.
   */
  keepAlive(delta: number): void {
    this.holds += delta;
    if (this.idleExit && delta > 0 && this.stopped.size > 0) this.wake();
  }

  private get active(): boolean {
    return !this.idleExit || this.holds > 0 || this.pending.size > this.weakPending;
  }

  private wake(): void {
    const loops = [...this.stopped.values()];
    this.stopped.clear();
    this.stopIdlePoll();
    for (const restart of loops) restart();
  }

  /** Restarts the stopped loops whose sockets have a message; they read what is there and stop again. */
  private idlePoll(): void {
    for (const [sock, restart] of [...this.stopped]) {
      let ready: boolean;
      try {
        ready = sock.closed || sock.readable;
      } catch {
        ready = true; // the loop sees the error
      }
      if (!ready) continue;
      this.stopped.delete(sock);
      restart();
    }
    if (this.stopped.size === 0) this.stopIdlePoll();
  }

  private stopIdlePoll(): void {
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = undefined;
  }

  /**
   * Binds a ROUTER at `address` (`ipc://path` or `tcp://host:port`; a tcp
   * port of 0 picks a free one) and starts receiving.
   */
  static async bind(address: string, identity: string, handler: MessageHandler, opts: EndpointOptions = {}, extra: string[] = []): Promise<Endpoint> {
    const idleExit = opts.idleExit ?? false;
    const keys = clusterKeys(opts.token);
    const all = [address, ...extra];
    const kinds = all.map((a) => securityOf(a, keys));
    const curve = kinds.some((k) => k !== 'none');
    const routers: Array<{ sock: zmq.Router; curve: boolean; security: Security }> = [];
    const routerFor = (security: Security): zmq.Router => {
      let r = routers.find((x) => x.security === security);
      if (!r) {
        r = { sock: new zmq.Router({ ...SOCKET_OPTIONS, mandatory: false, ...(idleExit ? { receiveTimeout: ACTIVE_POLL_MS } : {}), ...serverOptions(security, keys) }), curve: security !== 'none', security };
        routers.push(r);
      }
      return r.sock;
    };
    const bound: string[] = [];
    if (curve && keys) await acquireZap(keys);
    for (const [i, a] of all.entries()) {
      const security = kinds[i] as Security;
      const router = routerFor(security);
      try {
        await router.bind(a.endsWith(':0') ? a.slice(0, -2) + ':*' : a);
      } catch (e) {
        for (const r of routers) r.sock.close();
        if (curve && keys) releaseZap(keys);
        const err = new RaySystemError(`could not listen on ${a}: ${(e as Error).message}`);
        (err as { code?: string }).code = (e as { code?: string }).code;
        throw err;
      }
      const at = router.lastEndpoint ?? a;
      bound.push(at);
      // PLAIN peers all reach the ZAP handler, which logs refusals; CURVE ones may fail before it
      // (a driver does not watch: its watch would keep the process alive)
      if (security === 'curve' && !idleExit) watchRefusals(router, at);
    }
    const ep = new Endpoint(bound[0] as string, identity, routers, handler, idleExit, keys);
    ep.addresses = bound;
    return ep;
  }

  /** Every address this endpoint listens at. */
  addresses: string[] = [];

  /** Sends `msg` to the process listening at `address`. */
  send(address: string, msg: Message): void {
    if (this.closed) return;
    this.dealer(address).out.push('', null, msg);
  }

  /** Sends `msg` back to `peer`. */
  reply(peer: Peer, msg: Message): void {
    if (this.closed) return;
    if (peer.kind === 'router') (this.routers[peer.r ?? 0] ?? this.routers[0])?.out.push(peer.key, peer.id, msg);
    else this.send(peer.address, msg);
  }

  /**
   * Sends a request (its `reqId` is filled in) and resolves with the reply
   * message whose `reqId` matches. Rejects after `timeoutMs` (default: never).
   */
  request(address: string, msg: RequestMessage, timeoutMs?: number, opts?: RequestOptions): Promise<Message> {
    const reqId = ++requestCounter;
    const full = { ...msg, reqId } as unknown as Message;
    return new Promise<Message>((resolve, reject) => {
      if (this.closed) {
        reject(this.closedError ?? new RaySystemError('the connection was closed (shutdown)'));
        return;
      }
      const entry: PendingRequest = { address, resolve, reject };
      if (opts?.weak) {
        entry.weak = true;
        this.weakPending++;
      }
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          if (this.pending.delete(reqId) && entry.weak) this.weakPending--;
          reject(new RaySystemError(`no answer from ${address} within ${timeoutMs} ms`));
        }, timeoutMs);
        if (entry.weak) entry.timer.unref();
      }
      this.pending.set(reqId, entry);
      if (this.idleExit && !entry.weak && this.stopped.size > 0) this.wake();
      this.send(address, full);
    });
  }

  /** Like `request`, for requests answered with `MT.Reply`; rejects when `ok` is false. */
  async call(address: string, msg: RequestMessage, timeoutMs?: number, opts?: RequestOptions): Promise<Reply> {
    const r = await this.request(address, msg, timeoutMs, opts);
    if (r.t !== MT.Reply) throw new RaySystemError(`unexpected reply type ${r.t}`);
    if (!r.ok) {
      const err = new RaySystemError(r.error ?? 'request failed');
      if (r.code) (err as { code?: string }).code = r.code;
      throw err;
    }
    return r;
  }

  /**
   * Answers request `reqId` of `peer` with bulk bytes: an `MT.Reply` whose
   * `data` is `bytes`, sent as a raw second frame (no copy into msgpack).
   */
  respondBytes(peer: Peer, reqId: number, bytes: Uint8Array): void {
    if (this.closed) return;
    const m: Reply = { t: MT.Reply, reqId, ok: true };
    if (peer.kind === 'router') (this.routers[peer.r ?? 0] ?? this.routers[0])?.out.push(peer.key, peer.id, m, bytes);
    else this.dealer(peer.address).out.push('', null, m, bytes);
  }

  /** Sends an `MT.Reply` to `peer`. */
  respond(peer: Peer, reqId: number, ok: boolean, data?: unknown, error?: string, code?: string): void {
    const m: Reply = { t: MT.Reply, reqId, ok };
    if (data !== undefined) m.data = data;
    if (error !== undefined) m.error = error;
    if (code !== undefined) m.code = code;
    this.reply(peer, m);
  }

  /**
   * Closes the connection to `address` (its process is gone), dropping what
   * is queued for it; requests waiting for its answer reject with `reason`.
   */
  disconnect(address: string, reason = 'the process at the other end exited'): void {
    this.failRequestsTo(address, reason);
    const d = this.dealers.get(address);
    if (!d) return;
    this.dealers.delete(address);
    d.out.closed = true;
    d.sock.close();
  }

  /**
   * Tells `onChange(false)` when the connection to `address` drops (the
   * process there exited or was killed: its kernel closed the socket, or the
   * network reset it) and `onChange(true)` when it is up again (a process
   * accepts the connection there). A host that vanishes without
   * closing anything is not seen here: heartbeats find that. Watching ends
   * with `disconnect(address)` or `close()`. Not for idle-exit endpoints: the
   * watch keeps the process alive.
   */
  watch(address: string, onChange: (up: boolean) => void): void {
    if (this.idleExit) throw new RaySystemError('watch() is not for idle-exit endpoints');
    const d = this.dealer(address);
    if (d.watchers) {
      d.watchers.add(onChange);
      return;
    }
    const watchers = new Set([onChange]);
    d.watchers = watchers;
    const events = d.sock.events;
    void (async () => {
      while (!events.closed) {
        let ev: zmq.Event;
        try {
          ev = await events.receive();
        } catch {
          return; // the socket closed
        }
        if (ev.type === 'end') return;
        const up = ev.type === 'connect' || ev.type === 'handshake' ? true : ev.type === 'disconnect' ? false : undefined;
        if (up === undefined) continue;
        for (const w of watchers) {
          try {
            w(up);
          } catch (e) {
            log.warn(`a connection watcher of ${address} failed: ${(e as Error).stack ?? String(e)}`);
          }
        }
      }
    })();
  }

  /** Rejects every request waiting for an answer from `address`. */
  failRequestsTo(address: string, reason: string): void {
    for (const [id, p] of this.pending) {
      if (p.address !== address) continue;
      this.pending.delete(id);
      if (p.weak) this.weakPending--;
      if (p.timer) clearTimeout(p.timer);
      p.reject(new RaySystemError(`no answer from ${address}: ${reason}`));
    }
  }

  /** What requests made after close() reject with. */
  private closedError: Error | undefined;

  /** Stops everything; pending requests (and later ones) reject, with `reason` when given. */
  close(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closedError = reason;
    this.stopIdlePoll();
    this.stopped.clear();
    for (const r of this.routers) {
      r.out.closed = true;
      r.sock.close();
      if (r.curve && this.keys) releaseZap(this.keys);
    }
    for (const d of this.dealers.values()) {
      d.out.closed = true;
      d.sock.close();
    }
    this.dealers.clear();
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.weakPending = 0;
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(reason ?? new RaySystemError('the connection was closed (shutdown)'));
    }
  }

  private dealer(address: string): DealerRecord {
    let d = this.dealers.get(address);
    if (!d) {
      const sock = new zmq.Dealer({ ...SOCKET_OPTIONS, routingId: this.identity, ...(this.idleExit ? { receiveTimeout: ACTIVE_POLL_MS } : {}), ...curveClientOptions(address, this.keys) });
      sock.connect(address);
      d = { sock, out: new Outbox(sock, address) };
      this.dealers.set(address, d);
      void this.dealerLoop(address, sock);
    }
    return d;
  }

  /** Handles the parts of one ZeroMQ message (after a ROUTER's routing id). */
  private dispatch(parts: readonly Buffer[], from: Peer): void {
    const { frame, rest } = partsFrame(parts);
    const extraFrames = rest.length;
    const attachment = rest[0];
    if (!frame || extraFrames > 1) {
      this.dropLog.warn('frames', `dropped a message with ${extraFrames + (frame ? 1 : 0)} frames (expected 1) from ${peerName(from)}`);
      return;
    }
    const { msgs, dropped } = decodeFrame(frame);
    if (extraFrames === 1) {
      // bulk bytes come only as the data of one successful reply (see respondBytes)
      const m = msgs[0];
      if (msgs.length !== 1 || m?.t !== MT.Reply || !m.ok || m.data !== undefined || !attachment) {
        this.dropLog.warn('frames', `dropped a message of 2 frames that is not a reply with bytes from ${peerName(from)}`);
        return;
      }
      m.data = attachment;
    }
    for (const why of dropped) this.dropLog.warn(why.replace(/\(.*|\d+/g, ''), `dropped a malformed message from ${peerName(from)}: ${why}`);
    for (const m of msgs) {
      if (m.t === MT.Reply || m.t === MT.ObjectReply) {
        const p = this.pending.get(m.reqId);
        if (p) {
          this.pending.delete(m.reqId);
          if (p.weak) this.weakPending--;
          if (p.timer) clearTimeout(p.timer);
          p.resolve(m);
          continue;
        }
        if (m.t === MT.Reply) continue;
      }
      try {
        this.handler(m, from);
      } catch (e) {
        this.dropLog.warn(`handler-${m.t}`, `message of type ${m.t} failed: ${(e as Error).stack ?? String(e)}`);
      }
    }
  }

  /**
   * Whether a loop should stop for now (idle-exit mode, nothing waits for a
   * reply, and nothing is there to read without waiting); registers its
   * restart with the idle poll.
   */
  private pause(sock: zmq.Socket, restart: () => void): boolean {
    if (this.active) return false;
    try {
      if (sock.readable) return false;
    } catch {
      return false; // the receive reports it
    }
    this.stopped.set(sock, restart);
    if (!this.idleTimer) {
      this.idleTimer = setInterval(() => this.idlePoll(), IDLE_POLL_MS);
      this.idleTimer.unref();
    }
    return true;
  }

  private async routerLoop(r: number): Promise<void> {
    const router = (this.routers[r] as { sock: zmq.Router }).sock;
    const restart = (): void => void this.routerLoop(r);
    while (!this.closed) {
      // an idle driver reads only what is there: a receive that waits would keep the process alive
      if (this.idleExit && this.pause(router, restart)) return;
      let parts: Buffer[];
      try {
        parts = await router.receive();
      } catch (e) {
        if (this.closed) return;
        if ((e as { code?: string }).code === 'EAGAIN') continue;
        // never retry in a tight loop: a persistent error would block the process
        log.warn(`receive on ${this.address} failed: ${(e as Error).message}`);
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      const id = parts[0];
      if (!id) continue;
      this.dispatch(parts.slice(1), r === 0 ? { kind: 'router', id, key: id.toString('latin1') } : { kind: 'router', id, key: id.toString('latin1'), r });
    }
  }

  private async dealerLoop(address: string, sock: zmq.Dealer): Promise<void> {
    const from: Peer = { kind: 'dealer', address };
    const restart = (): void => void this.dealerLoop(address, sock);
    while (!this.closed && !sock.closed) {
      if (this.idleExit && this.pause(sock, restart)) return;
      let parts: Buffer[];
      try {
        parts = await sock.receive();
      } catch (e) {
        if (this.closed || sock.closed) return;
        if ((e as { code?: string }).code === 'EAGAIN') continue;
        log.warn(`receive from ${address} failed: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      this.dispatch(parts, from);
    }
  }
}
