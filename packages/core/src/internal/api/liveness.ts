/**
 * A driver's watch on what it cannot work without: the node manager of its
 * node and the cluster's head. When either dies the driver fails what is
 * pending with NodeDiedError instead of waiting forever (Ray's core worker
 * exits when its raylet dies, and gives up on a GCS that stays away).
 *
 * - The node manager runs on the driver's machine (they share the object
 *   store): its pid is looked at every RAYLET_CHECK_MS.
 * - The head of a cluster the driver started (init() without an address)
 *   is its child: its exit is seen at once. Any other head is pinged every
 *   PING_EVERY_MS; it is dead once it has not answered for the head timeout
 *   (TSRAY_HEAD_TIMEOUT_MS, default 5000) and several pings in a row went
 *   unanswered (so that a driver whose own event loop was blocked for a while
 *   does not mistake that for a dead head).
 *
 * Every timer is unref'd and pings do not keep the driver's endpoint
 * receiving: the watch never keeps a finished program alive.
 * @internal
 */
import type { ChildProcess } from 'node:child_process';
import { NodeDiedError } from '../../errors';
import { processGone } from '../cluster/processes';

/** How often the node manager's pid is looked at. */
const RAYLET_CHECK_MS = 250;
/** How often the head is pinged. */
const PING_EVERY_MS = 1000;
/** Pings in a row without an answer before the head counts as dead. */
const PINGS_MISSED = 3;

/** How long the head may stay silent before a driver gives up on it (TSRAY_HEAD_TIMEOUT_MS overrides it). */
export function headTimeoutMs(): number {
  const v = Number(process.env.TSRAY_HEAD_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 5000;
}

/** What the watch looks at. */
export interface LivenessTargets {
  /** the driver's node */
  nodeId: string;
  /** pid of its node manager */
  rayletPid: number;
  /** the head, HOST:PORT or an ipc address (for messages) */
  headAddress: string;
  /** the head process, when this driver started the cluster */
  headProc: ChildProcess | undefined;
  /** asks the head something small; rejects when it does not answer within `timeoutMs` */
  ping: (timeoutMs: number) => Promise<unknown>;
}

/** See the module comment. */
export class Liveness {
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private pinging = false;
  /** the node manager is gone: asking the head whether it is too */
  private checkingHead = false;
  private missed = 0;
  private lastAnswer = Date.now();
  private readonly onHeadExit = (code: number | null, signal: NodeJS.Signals | null): void => this.headExited(code, signal);

  constructor(
    private readonly t: LivenessTargets,
    /** called once, with the error pending calls fail with */
    private readonly onDied: (err: NodeDiedError) => void,
    private readonly timeoutMs = headTimeoutMs(),
  ) {}

  /** Starts watching. */
  start(): void {
    const every = (ms: number, f: () => void): void => {
      const timer = setInterval(f, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(RAYLET_CHECK_MS, () => this.checkRaylet());
    // a head this driver started is its child: its exit is seen at once, and one that is only slow
    // (a loaded machine) must not be taken for dead, which would stop a working cluster
    if (!this.t.headProc) every(PING_EVERY_MS, () => this.pingHead());
    const proc = this.t.headProc;
    if (proc) {
      if (proc.exitCode !== null || proc.signalCode !== null) queueMicrotask(() => this.headExited(proc.exitCode, proc.signalCode));
      else proc.once('exit', this.onHeadExit);
    }
  }

  /** Stops watching (shutdown). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.t.headProc?.removeListener('exit', this.onHeadExit);
  }

  private died(died: 'nodeManager' | 'head', pid: number, reason: string): void {
    if (this.stopped) return;
    this.stop();
    const where = this.t.headAddress.startsWith('tcp://') ? this.t.headAddress.slice('tcp://'.length) : undefined;
    this.onDied(new NodeDiedError({ died, nodeId: this.t.nodeId, pid, reason, ...(where ? { where } : {}) }));
  }

  private checkRaylet(): void {
    if (this.checkingHead || !processGone(this.t.rayletPid)) return;
    const head = this.t.headProc;
    if (head) {
      // the driver's own cluster: when the head is gone too, its exit (on its way) says which went first
      if (head.exitCode === null && head.signalCode === null && head.pid !== undefined && processGone(head.pid)) return;
      this.died('nodeManager', this.t.rayletPid, 'its process is gone');
      return;
    }
    // a head's own node manager stops with it: say whether the head is gone too
    this.checkingHead = true;
    this.t.ping(RAYLET_CHECK_MS * 4).then(
      () => this.died('nodeManager', this.t.rayletPid, 'its process is gone'),
      () => this.died('nodeManager', this.t.rayletPid, `its process is gone, and the head at ${this.t.headAddress.replace('tcp://', '')} does not answer either (a head's node manager stops with it)`),
    );
  }

  /**
   * The head this driver started exited. Killed by a signal, it died first;
   * otherwise it stopped because its node manager died (it stops the
   * cluster then), unless the node manager still runs.
   */
  private headExited(code: number | null, signal: NodeJS.Signals | null): void {
    const pid = this.t.headProc?.pid ?? -1;
    if (signal) this.died('head', pid, `its process was killed (${signal}), and the local cluster with it`);
    else if (processGone(this.t.rayletPid)) this.died('nodeManager', this.t.rayletPid, 'its process is gone, and the local cluster stopped with it');
    else this.died('head', pid, `its process exited (code ${code})`);
  }

  private pingHead(): void {
    if (this.pinging || this.stopped) return;
    this.pinging = true;
    this.t.ping(PING_EVERY_MS * 1.5).then(
      () => {
        this.pinging = false;
        this.missed = 0;
        this.lastAnswer = Date.now();
      },
      () => {
        this.pinging = false;
        this.missed++;
        const silent = Date.now() - this.lastAnswer;
        if (this.missed >= PINGS_MISSED && silent > this.timeoutMs) this.died('head', -1, `it has not answered for ${Math.round(silent / 100) / 10} s (the head timeout is ${this.timeoutMs} ms, TSRAY_HEAD_TIMEOUT_MS)`);
      },
    );
  }
}
