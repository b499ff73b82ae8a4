/**
 * The worker group's collective: a ring allreduce among the training
 * workers over ZeroMQ, straight from worker to worker (the driver is not on
 * the path). Each worker binds one PULL socket that its predecessor in the
 * ring pushes to, and pushes to its successor: `ipc://` (a Linux abstract socket:
 * no file to clean up) when the two share a node, `tcp://` on the node's
 * address with CURVE when they do not. The group's CURVE key pair is made by
 * the trainer and reaches the workers only through the cluster's own
 * authenticated calls, so nothing outside the group can join the ring; on
 * ipc, which any local process could reach, every message carries the
 * group's secret token and one without it is dropped.
 *
 * The sockets live in a worker thread so that the ring can run while the
 * training step waits synchronously for it (tfjs calls an optimizer's
 * `applyGradients` synchronously inside `model.fit`): the main thread copies
 * the gradient into shared memory, posts the job and blocks in
 * `Atomics.wait` until the thread has reduced it. `allreduce()` is the same
 * without blocking (`Atomics.waitAsync`).
 *
 * Reduce-scatter then allgather (2·(n−1) steps, each moving 1/n of the
 * vector): every chunk's sum is computed once, by one worker, in ring order,
 * and copied to the others, so every worker ends with bit-identical values.
 * @internal
 */
import * as crypto from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { TrainError } from '../errors';

/** How a worker binds its ring socket: a socket file, or tcp on a host with the group's CURVE keys. */
export type BindSpec = { kind: 'ipc' } | { kind: 'tcp'; host: string; publicKey: string; secretKey: string };
/** Where a worker connects to its successor. */
export interface ConnectSpec {
  address: string;
  /** the group's keys, for a tcp successor */
  publicKey?: string;
  secretKey?: string;
}

// control words in the shared control block
const DONE = 1; // jobs finished by the thread
const STATUS = 2; // 0 ok, 1 failed (message in the text area)
const TEXT_AT = 64; // bytes: the error text area
const TEXT_LEN = 4096;

/** The thread's code: plain JavaScript, evaluated in a worker thread (so it runs under any loader the process uses). */
const THREAD = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const zmq = require(workerData.zmq);
const ctrl = new Int32Array(workerData.ctrl);
const text = new Uint8Array(workerData.ctrl, ${TEXT_AT}, ${TEXT_LEN});
let data = new Float32Array(0);
let pull, push, rank = 0, size = 1, warned = false;
// a context of its own: core's ZAP handler (in the process's shared context) would judge the group's CURVE peers by the cluster's keys
const context = new zmq.Context();
const token = Buffer.from(workerData.token, 'hex');
const MAGIC = 0x54524e47; // 'TRNG'
function finish(err) {
  if (err) {
    const b = Buffer.from(String(err && err.message || err)).subarray(0, ${TEXT_LEN} - 1);
    text.fill(0); text.set(b);
  }
  Atomics.store(ctrl, ${STATUS}, err ? 1 : 0);
  Atomics.add(ctrl, ${DONE}, 1);
  Atomics.notify(ctrl, ${DONE});
}
function bounds(len, i) { return [Math.floor((i * len) / size), Math.floor(((i + 1) * len) / size)]; }
async function sendChunk(job, step, len, c) {
  const [s, e] = bounds(len, c);
  const hdr = Buffer.alloc(32);
  token.copy(hdr, 16);
  hdr.writeUInt32LE(MAGIC, 0); hdr.writeUInt32LE(job >>> 0, 4); hdr.writeUInt32LE(step, 8); hdr.writeUInt32LE(len, 12);
  // a copy: the chunk may be overwritten before libzmq has sent it
  await push.send([hdr, Buffer.from(new Uint8Array(data.buffer, data.byteOffset + s * 4, (e - s) * 4))]);
}
async function recvChunk(job, step, len, c, add) {
  const [s, e] = bounds(len, c);
  let hdr, body;
  for (;;) {
    [hdr, body] = await pull.receive();
    if (hdr && hdr.length === 32 && hdr.readUInt32LE(0) === MAGIC && token.equals(hdr.subarray(16, 32))) break;
    // not from this group (no token): dropped
    if (!warned) { warned = true; console.warn('[tsray train] rank ' + rank + ': dropped a message on the allreduce socket that does not carry the group token'); }
  }
  const theirLen = hdr.readUInt32LE(12);
  if (theirLen !== len) throw new Error('the workers disagree on the size of what they allreduce: this worker (rank ' + rank + ') has ' + len + ' values, its predecessor ' + theirLen + '; every worker must build the same model and call allreduce with the same sizes in the same order');
  if (hdr.readUInt32LE(4) !== (job >>> 0) || hdr.readUInt32LE(8) !== step) throw new Error('ring allreduce out of step (rank ' + rank + ' at job ' + job + ' step ' + step + ', got job ' + hdr.readUInt32LE(4) + ' step ' + hdr.readUInt32LE(8) + '); every worker must call allreduce the same number of times');
  if (body.length !== (e - s) * 4) throw new Error('ring allreduce: a chunk of the wrong size arrived');
  const src = body.byteOffset % 4 === 0 ? new Float32Array(body.buffer, body.byteOffset, e - s) : new Float32Array(new Uint8Array(body).buffer);
  const dst = data.subarray(s, e);
  if (add) { for (let i = 0; i < src.length; i++) dst[i] += src[i]; } else dst.set(src);
}
let job = 0;
async function allreduce(len) {
  job++;
  if (size === 1) return;
  let step = 0;
  for (let k = 0; k < size - 1; k++, step++) {
    await sendChunk(job, step, len, (rank - k + size) % size);
    await recvChunk(job, step, len, (rank - k - 1 + size) % size, true);
  }
  for (let k = 0; k < size - 1; k++, step++) {
    await sendChunk(job, step, len, (rank + 1 - k + size) % size);
    await recvChunk(job, step, len, (rank - k + size) % size, false);
  }
}
parentPort.on('message', async (m) => {
  try {
    if (m.op === 'bind') {
      rank = m.rank; size = m.size;
      pull = new zmq.Pull({ context, linger: 0, receiveHighWaterMark: 0 });
      if (m.spec.kind === 'ipc') {
        const at = 'ipc://@' + m.name;
        await pull.bind(at);
        parentPort.postMessage({ op: 'bound', address: at });
      } else {
        pull.curveServer = true; pull.curvePublicKey = m.spec.publicKey; pull.curveSecretKey = m.spec.secretKey;
        await pull.bind('tcp://' + m.spec.host + ':0');
        parentPort.postMessage({ op: 'bound', address: pull.lastEndpoint });
      }
    } else if (m.op === 'connect') {
      push = new zmq.Push({ context, linger: 0, sendHighWaterMark: 0 });
      if (m.spec.publicKey) { push.curveServerKey = m.spec.publicKey; push.curvePublicKey = m.spec.publicKey; push.curveSecretKey = m.spec.secretKey; }
      push.connect(m.spec.address);
      parentPort.postMessage({ op: 'connected' });
    } else if (m.op === 'buffer') {
      data = new Float32Array(m.sab);
    } else if (m.op === 'allreduce') {
      try { await allreduce(m.len); finish(); } catch (e) { finish(e); }
    } else if (m.op === 'close') {
      try { pull && pull.close(); push && push.close(); } catch {}
      parentPort.postMessage({ op: 'closed' });
    }
  } catch (e) {
    parentPort.postMessage({ op: 'error', message: String(e && e.message || e) });
  }
});
`;

/**
 * One worker's end of the ring (see the module's notes). Created by the
 * training worker; `bind` and `connect` are called by the trainer while it
 * sets the group up, `allreduceSync`/`allreduce` by the training loop.
 */
export class Ring {
  private readonly thread: Worker;
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(TEXT_AT + TEXT_LEN));
  private data = new Float32Array(new SharedArrayBuffer(4 * 1024));
  private readonly replies: Array<(m: { op: string; address?: string; message?: string }) => void> = [];
  private dead: Error | undefined;
  private busy = false;

  /** `token`: the group's secret (hex), carried by every message; messages without it are dropped. */
  constructor(
    readonly rank: number,
    readonly size: number,
    token: string,
  ) {
    this.thread = new Worker(THREAD, { eval: true, workerData: { zmq: require.resolve('zeromq'), ctrl: this.ctrl.buffer, token } });
    this.thread.unref();
    this.thread.on('message', (m: { op: string; address?: string; message?: string }) => this.replies.shift()?.(m));
    this.thread.on('error', (e) => (this.dead = e));
    this.thread.on('exit', () => (this.dead ??= new TrainError('the allreduce thread of this training worker exited')));
    this.thread.postMessage({ op: 'buffer', sab: this.data.buffer });
  }

  private ask(m: Record<string, unknown>): Promise<{ op: string; address?: string }> {
    return new Promise((resolve, reject) => {
      this.replies.push((r) => (r.op === 'error' ? reject(new TrainError(`allreduce ring: ${r.message}`)) : resolve(r)));
      this.thread.postMessage(m);
    });
  }

  /** Binds this worker's receiving socket; resolves to the address its predecessor connects to. */
  async bind(spec: BindSpec): Promise<string> {
    const name = `tsray-ring-${process.pid}-${crypto.randomBytes(8).toString('hex')}`;
    const r = await this.ask({ op: 'bind', spec, rank: this.rank, size: this.size, name });
    return r.address as string;
  }

  /** Connects to the successor's socket. */
  async connect(spec: ConnectSpec): Promise<void> {
    await this.ask({ op: 'connect', spec });
  }

  private post(values: Float32Array): number {
    if (this.dead) throw new TrainError(`allreduce is not available: ${this.dead.message}`);
    if (this.busy) throw new TrainError('allreduce called again before the previous call finished; await each allreduce before the next');
    if (values.length > this.data.length) {
      let cap = this.data.length;
      while (cap < values.length) cap *= 2;
      this.data = new Float32Array(new SharedArrayBuffer(cap * 4));
      this.thread.postMessage({ op: 'buffer', sab: this.data.buffer });
    }
    this.data.set(values);
    const done = Atomics.load(this.ctrl, DONE);
    this.busy = true;
    this.thread.postMessage({ op: 'allreduce', len: values.length });
    return done;
  }

  private collect(values: Float32Array): Float32Array {
    this.busy = false;
    if (Atomics.load(this.ctrl, STATUS) !== 0) {
      const t = new Uint8Array(this.ctrl.buffer, TEXT_AT, TEXT_LEN);
      const end = t.indexOf(0);
      throw new TrainError(`allreduce failed on rank ${this.rank}: ${Buffer.from(t.subarray(0, end < 0 ? TEXT_LEN : end)).toString()}`);
    }
    values.set(this.data.subarray(0, values.length));
    return values;
  }

  /** Sums `values` across the group in place, blocking this thread until done. */
  allreduceSync(values: Float32Array): Float32Array {
    if (this.size === 1) return values;
    const done = this.post(values);
    while (Atomics.load(this.ctrl, DONE) === done) {
      Atomics.wait(this.ctrl, DONE, done, 1000);
      if (this.dead) throw new TrainError(`allreduce failed on rank ${this.rank}: ${this.dead.message}`);
    }
    return this.collect(values);
  }

  /** Sums `values` across the group in place. */
  async allreduce(values: Float32Array): Promise<Float32Array> {
    if (this.size === 1) return values;
    const done = this.post(values);
    while (Atomics.load(this.ctrl, DONE) === done) {
      const w = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<unknown> | string } }).waitAsync(this.ctrl, DONE, done, 1000);
      if (w.async) await w.value;
      if (this.dead) throw new TrainError(`allreduce failed on rank ${this.rank}: ${this.dead.message}`);
    }
    return this.collect(values);
  }

  /** Closes the sockets and stops the thread. */
  async close(): Promise<void> {
    if (!this.dead) {
      await Promise.race([this.ask({ op: 'close' }), new Promise((r) => setTimeout(r, 1000).unref())]);
      await this.thread.terminate();
    }
  }
}
