/**
 * The node manager's side of objects across nodes (Ray's object manager):
 *
 * - **pulls**: a process here needs an object whose bytes are on another
 *   node; the node manager copies it into this node's arena in chunks read
 *   from the node manager of the object's node (several chunks in flight per
 *   transfer, several transfers at once), and answers every process that
 *   asked meanwhile with the one local copy;
 * - **serving**: it reads chunks of objects in this node's arena (or spill
 *   files) for other nodes, and remembers which nodes took a copy;
 * - **primary copies**: a worker here made a large return for an owner on
 *   another node; the node manager keeps that block (the worker may exit)
 *   until the owner frees the object or dies;
 * - **freeing**: when an owner frees an object, its node manager tells the
 *   node of the primary copy, which tells every node it served. Copies are
 *   freed once no process here reads them, and evicted (least recently
 *   pulled first) when a pull needs room: a copy can always be pulled again.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { arenaAddon, type ArenaAddon, type ArenaHandle } from '../native';
import { log } from '../log';
import { MT, type Location, type MessageOf, type ObjectLoc } from '../protocol/messages';
import type { Endpoint, Peer } from '../transport/endpoint';

/** Bytes per chunk read from another node. */
export const CHUNK_BYTES = 8 * 1024 * 1024;
/** Chunks in flight per transfer. */
const WINDOW = 4;
/** Chunks in flight on this node, all transfers together. */
const MAX_IN_FLIGHT = 16;
/** How long one chunk may take before the transfer fails. */
const CHUNK_TIMEOUT_MS = 60_000;
/** Freed objects and dead owners remembered, to refuse late reads of their bytes. */
const TOMBSTONES = 10_000;

/** What the object manager needs from its node manager. */
export interface NodeObjectHooks {
  readonly nodeId: string;
  readonly endpoint: Endpoint;
  readonly arena: ArenaHandle;
  /** the node's spill root: copies and kept primaries that do not fit in memory go under it */
  readonly spillDir: string;
  /** where the node manager of `nodeId` listens, while that node is alive */
  nodeEndpoint(nodeId: string): string | undefined;
  /** whether a process of this node is registered (by worker id) */
  isClient(workerId: string): boolean;
}

/** A copy of another node's object in this node's store. */
interface Copy {
  readonly id: string;
  readonly loc: Location;
  /** where the primary copy is (the object's identity with its id) */
  readonly primary: Location;
  /** worker id of the object's owner */
  readonly owner: string;
  /** processes here that read it */
  readonly pins: Set<string>;
  /** freed by its owner while read: freed when the last reader lets go */
  doomed: boolean;
}

/** A primary copy this node manager keeps for an owner on another node. */
interface Primary {
  readonly loc: Location;
  readonly owner: string;
}

interface Transfer {
  readonly primary: Location;
  readonly done: Promise<Location>;
}

/** Where a transfer writes: a block of the arena or a spill file. */
interface Dest {
  readonly loc: Location;
  write(pos: number, bytes: Uint8Array): void;
  /** the transfer completed */
  seal(): void;
  /** the transfer failed: give the space back */
  abort(): void;
}

/** Transfer statistics, as NodeStats reports them. */
export interface TransferStats {
  /** transfers this node started (one per object, however many processes asked) */
  pulls: number;
  /** bytes those transfers brought here */
  pulledBytes: number;
  /** requests answered by a transfer already under way or a copy already here */
  dedupedPulls: number;
  /** chunks read here for other nodes */
  servedChunks: number;
  /** bytes of those chunks */
  servedBytes: number;
  /** copies of other nodes' objects held here now */
  copies: number;
  /** bytes of those copies */
  copyBytes: number;
  /** primary copies kept here for owners on other nodes */
  primaries: number;
  /** copies evicted to make room */
  evictions: number;
  /** transfers under way */
  active: number;
}

function sameLoc(a: Location, b: Location): boolean {
  return a.node === b.node && a.off === b.off && a.size === b.size && a.spill === b.spill;
}

/** A set that forgets its oldest members past `max`. */
function remember(s: Set<string>, v: string, max = TOMBSTONES): void {
  s.add(v);
  if (s.size > max) s.delete(s.values().next().value as string);
}

/** See the module comment. */
export class NodeObjectManager {
  private readonly A: ArenaAddon = arenaAddon();
  private readonly copies = new Map<string, Copy>();
  private readonly primaries = new Map<string, Primary>();
  private readonly transfers = new Map<string, Transfer>();
  /** objects read from here by other nodes: id -> nodes that took a copy, and the owner */
  private readonly served = new Map<string, { nodes: Set<string>; owner: string }>();
  private readonly freed = new Set<string>();
  private readonly deadOwners = new Set<string>();
  private inFlight = 0;
  private readonly slots: Array<() => void> = [];
  private stopped = false;
  private readonly st = { pulls: 0, pulledBytes: 0, dedupedPulls: 0, servedChunks: 0, servedBytes: 0, evictions: 0 };

  constructor(private readonly h: NodeObjectHooks) {}

  // ---------------------------------------------------------------- pulls

  /** A process here asks for a local copy of an object on another node. */
  onPull(m: MessageOf<MT.PullObject>, from: Peer): void {
    const reader = from.kind === 'router' ? from.key : undefined;
    this.pull(m.id, m.loc, m.owner).then(
      (local) => {
        const c = this.copies.get(m.id);
        // a reader that died while the copy came never unpins it: only live processes pin
        if (reader !== undefined && c && sameLoc(c.loc, local) && this.h.isClient(reader) && !this.deadOwners.has(reader)) c.pins.add(reader);
        this.h.endpoint.respond(from, m.reqId, true, local);
      },
      (e: Error) => this.h.endpoint.respond(from, m.reqId, false, undefined, e.message, 'OBJECT_LOST'),
    );
  }

  /** The local copy of an object: one already here, the transfer under way, or a new transfer. */
  private pull(id: string, primary: Location, owner: string): Promise<Location> {
    if (primary.node === this.h.nodeId) return Promise.resolve(primary);
    const c = this.copies.get(id);
    if (c && sameLoc(c.primary, primary)) {
      this.st.dedupedPulls++;
      // most recently used last: eviction takes the oldest first
      this.copies.delete(id);
      this.copies.set(id, c);
      return Promise.resolve(c.loc);
    }
    if (c) this.dropCopy(c, true); // a stale copy of an earlier object with this id
    const t = this.transfers.get(id);
    if (t && sameLoc(t.primary, primary)) {
      this.st.dedupedPulls++;
      return t.done;
    }
    const done = this.transfer(id, primary, owner).finally(() => {
      if (this.transfers.get(id)?.done === done) this.transfers.delete(id);
    });
    this.transfers.set(id, { primary, done });
    return done;
  }

  private async transfer(id: string, primary: Location, owner: string): Promise<Location> {
    const src = this.h.nodeEndpoint(primary.node);
    if (src === undefined) throw new Error(`its node ${primary.node} is dead or no longer in the cluster`);
    this.st.pulls++;
    const size = primary.size;
    const dest = this.allocate(id, size);
    let next = 0;
    // once one lane fails the others stop: nothing is written into a block that is being given back
    let failed = false;
    const n = Math.max(1, Math.ceil(size / CHUNK_BYTES));
    const lane = async (): Promise<void> => {
      while (next < n && !this.stopped && !failed) {
        const pos = next++ * CHUNK_BYTES;
        const len = Math.min(CHUNK_BYTES, size - pos);
        await this.slot();
        let data: unknown;
        try {
          const r = await this.h.endpoint.call(src, { t: MT.ReadChunk, id, loc: primary, pos, len, node: this.h.nodeId, owner }, CHUNK_TIMEOUT_MS);
          data = r.data;
        } finally {
          this.release();
        }
        if (failed) return;
        if (!(data instanceof Uint8Array) || data.length !== len) throw new Error(`node ${primary.node} sent a bad chunk at ${pos}`);
        dest.write(pos, data);
      }
    };
    const lanes = Array.from({ length: Math.min(WINDOW, n) }, () =>
      lane().catch((e: unknown) => {
        failed = true;
        throw e;
      }),
    );
    // every lane has settled before the block is sealed or given back
    const results = await Promise.allSettled(lanes);
    const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    try {
      if (bad) throw bad.reason;
      if (this.stopped) throw new Error('the node manager is stopping');
    } catch (e) {
      dest.abort();
      throw new Error(`it could not be copied from node ${primary.node}: ${(e as Error).message.replace(/^no answer from \S+: /, '')}`);
    }
    dest.seal();
    this.st.pulledBytes += size;
    // the owner may have freed it or died while it was coming
    if (this.freed.has(id) || this.deadOwners.has(owner)) {
      dest.abort();
      throw new Error(this.freed.has(id) ? 'it was freed by its owner' : `its owner ${owner} died`);
    }
    this.copies.set(id, { id, loc: dest.loc, primary, owner, pins: new Set(), doomed: false });
    return dest.loc;
  }

  private slot(): Promise<void> {
    if (this.inFlight < MAX_IN_FLIGHT) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slots.push(resolve));
  }

  private release(): void {
    const next = this.slots.shift();
    if (next) next();
    else this.inFlight--;
  }

  /** Room for a copy: a block of the arena (evicting unread copies if needed), else a spill file. */
  private allocate(id: string, size: number): Dest {
    const A = this.A;
    const arena = this.h.arena;
    let off = A.alloc(arena, size, 0);
    if (off < 0 && this.evict(size)) off = A.alloc(arena, size, 0);
    if (off >= 0) {
      const o = off;
      return {
        loc: { node: this.h.nodeId, off: o, size },
        write: (pos, bytes) => void A.write(arena, o + pos, bytes),
        seal: () => void A.seal(arena, o, 0),
        abort: () => void A.free(arena, o),
      };
    }
    const dir = path.join(this.h.spillDir, 'copies');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${id}-${Date.now().toString(36)}`);
    const fd = fs.openSync(file, 'w', 0o600);
    let open = true;
    const close = (): void => {
      if (open) fs.closeSync(fd);
      open = false;
    };
    log.debug(`copy of ${id} (${size} bytes) goes to ${file}: the store has no room`);
    return {
      loc: { node: this.h.nodeId, size, spill: file },
      write: (pos, bytes) => {
        let done = 0;
        while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, pos + done);
      },
      seal: close,
      abort: () => {
        close();
        fs.rm(file, { force: true }, () => undefined);
      },
    };
  }

  /** Frees unread copies, oldest first, until `size` bytes fit; whether something was freed. */
  private evict(size: number): boolean {
    let any = false;
    for (const c of [...this.copies.values()]) {
      if (c.pins.size > 0 || c.loc.spill !== undefined) continue;
      this.dropCopy(c, true);
      this.st.evictions++;
      any = true;
      if (this.A.stats(this.h.arena).largestFree >= size) break;
    }
    return any;
  }

  /** A process here no longer reads these copies. */
  onUnpin(ids: string[], from: Peer): void {
    if (from.kind !== 'router') return;
    for (const id of ids) {
      const c = this.copies.get(id);
      if (!c || !c.pins.delete(from.key)) continue;
      if (c.doomed && c.pins.size === 0) this.dropCopy(c, true);
    }
  }

  /** Frees a copy now (`force`), or once nobody here reads it. */
  private dropCopy(c: Copy, force: boolean): void {
    if (!force && c.pins.size > 0) {
      c.doomed = true;
      return;
    }
    if (this.copies.get(c.id) === c) this.copies.delete(c.id);
    this.freeLoc(c.loc);
  }

  private freeLoc(loc: Location): void {
    if (loc.spill !== undefined) fs.rm(loc.spill, { force: true }, () => undefined);
    else if (loc.off !== undefined) this.A.free(this.h.arena, loc.off);
  }

  // ---------------------------------------------------------------- serving

  /** Another node reads a chunk of an object whose primary copy is here. */
  onReadChunk(m: MessageOf<MT.ReadChunk>, from: Peer): void {
    const fail = (why: string): void => this.h.endpoint.respond(from, m.reqId, false, undefined, why, 'OBJECT_LOST');
    const { loc, pos, len } = m;
    if (loc.node !== this.h.nodeId) return fail(`it is not on node ${this.h.nodeId}`);
    if (this.freed.has(m.id)) return fail('it was freed by its owner');
    if (this.deadOwners.has(m.owner)) return fail(`its owner ${m.owner} died`);
    if (pos + len > loc.size) return fail(`a chunk at ${pos} of ${len} bytes is past its end (${loc.size} bytes)`);
    if (pos === 0) {
      let s = this.served.get(m.id);
      if (!s) this.served.set(m.id, (s = { nodes: new Set(), owner: m.owner }));
      s.nodes.add(m.node);
    }
    this.st.servedChunks++;
    this.st.servedBytes += len;
    if (loc.spill === undefined) {
      // a copy: the frame goes out later, and a freed block may be reused by then
      this.h.endpoint.respondBytes(from, m.reqId, Buffer.from(new Uint8Array(this.A.view(this.h.arena, (loc.off as number) + pos, len))));
      return;
    }
    void readFileRange(loc.spill, pos, len).then(
      (bytes) => this.h.endpoint.respondBytes(from, m.reqId, bytes),
      (e: Error) => fail(`its spill file ${loc.spill} cannot be read (${e.message})`),
    );
  }

  // ---------------------------------------------------------------- primaries

  /** A worker here made the primary copy of an object owned on another node: keep it for the owner. */
  onPin(m: MessageOf<MT.PinObject>, from: Peer): void {
    const worker = from.kind === 'router' ? from.key : '';
    if (!this.h.isClient(worker)) {
      this.h.endpoint.respond(from, m.reqId, false, undefined, `process ${worker} is not registered here`);
      return;
    }
    let loc = m.loc;
    try {
      if (loc.node !== this.h.nodeId) throw new Error(`it is not on node ${this.h.nodeId}`);
      if (this.deadOwners.has(m.owner.workerId)) throw new Error(`its owner ${m.owner.workerId} died`);
      if (loc.spill !== undefined) {
        // the worker's spill directory goes with it: move the file out
        const dir = path.join(this.h.spillDir, 'primaries');
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const file = path.join(dir, `${m.id}-${Date.now().toString(36)}`);
        fs.renameSync(loc.spill, file);
        loc = { ...loc, spill: file };
      } else if (loc.off === undefined || !this.A.seal(this.h.arena, loc.off, 0)) {
        throw new Error(`no block at ${String(loc.off)}`);
      }
    } catch (e) {
      this.h.endpoint.respond(from, m.reqId, false, undefined, `object ${m.id} could not be kept for its owner: ${(e as Error).message}`);
      return;
    }
    const old = this.primaries.get(m.id);
    if (old && !sameLoc(old.loc, loc)) this.freeLoc(old.loc);
    this.primaries.set(m.id, { loc, owner: m.owner.workerId });
    this.freed.delete(m.id);
    this.h.endpoint.respond(from, m.reqId, true, loc);
  }

  // ---------------------------------------------------------------- freeing

  /** Owners freed objects (see FreeObjects' `hop`). */
  onFree(objs: ObjectLoc[], hop: number, from: Peer): void {
    const out = new Map<string, { node: string; hop: number; objs: ObjectLoc[] }>();
    const forward = (node: string, o: ObjectLoc, next: number): void => {
      if (node === this.h.nodeId) return;
      const key = `${next}\0${node}`;
      let l = out.get(key);
      if (!l) out.set(key, (l = { node, hop: next, objs: [] }));
      l.objs.push(o);
    };
    for (const o of objs) {
      const c = this.copies.get(o.id);
      if (c && sameLoc(c.primary, o.loc)) {
        // the owner lets go of its own reads with the free
        if (hop === 0 && from.kind === 'router') c.pins.delete(from.key);
        this.dropCopy(c, false);
      }
      if (hop === 2) continue;
      if (o.loc.node !== this.h.nodeId) {
        if (hop === 0) forward(o.loc.node, o, 1);
        continue;
      }
      // the primary copy is here
      remember(this.freed, o.id);
      const p = this.primaries.get(o.id);
      if (p && sameLoc(p.loc, o.loc)) {
        this.primaries.delete(o.id);
        this.freeLoc(p.loc);
      }
      const s = this.served.get(o.id);
      this.served.delete(o.id);
      for (const n of s?.nodes ?? []) forward(n, o, 2);
    }
    for (const { node, hop: next, objs: list } of out.values()) {
      const ep = this.h.nodeEndpoint(node);
      if (ep !== undefined) this.h.endpoint.send(ep, { t: MT.FreeObjects, objs: list, hop: next });
    }
  }

  /**
   * A process died (here or on another node): the primaries kept for it go,
   * copies of what it owned go once unread, and what it read here is let go.
   */
  onProcessGone(workerId: string): void {
    remember(this.deadOwners, workerId);
    for (const [id, p] of this.primaries) {
      if (p.owner !== workerId) continue;
      this.primaries.delete(id);
      this.freeLoc(p.loc);
    }
    for (const [id, s] of this.served) if (s.owner === workerId) this.served.delete(id);
    for (const c of [...this.copies.values()]) {
      const unpinned = c.pins.delete(workerId);
      if (c.owner === workerId) this.dropCopy(c, false);
      else if (unpinned && c.doomed && c.pins.size === 0) this.dropCopy(c, true);
    }
  }

  /** Statistics for NodeStats. */
  stats(): TransferStats {
    let copyBytes = 0;
    for (const c of this.copies.values()) copyBytes += c.loc.size;
    return { ...this.st, copies: this.copies.size, copyBytes, primaries: this.primaries.size, active: this.transfers.size };
  }

  /** Stops transfers (the node is going away); the arena and spill directory go with the node manager. */
  stop(): void {
    this.stopped = true;
  }
}

/** Reads `len` bytes at `pos` of a file. */
async function readFileRange(file: string, pos: number, len: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await fh.read(buf, done, len - done, pos + done);
      if (bytesRead === 0) throw new Error(`it ends before byte ${pos + len}`);
      done += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}
