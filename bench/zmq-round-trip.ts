/**
 * The ceiling of a sync call: two zeromq.js sockets over ipc in two
 * processes — this process's DEALER and a child's ROUTER that echoes
 * (bench/zmq-echo.js) — doing sequential request/reply with a small message.
 * A sync task or actor call is one such round trip plus tsray's work on
 * both ends, so its rate over this one says how much of the ceiling it
 * reaches.
 */
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { timeit, type Metric } from './harness';

/** Round trips per second (Ray's timeit method), in the same format as the other sections. */
export async function zmqRoundTrip(): Promise<Metric> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-bench-zmq-'));
  const address = `ipc://${path.join(dir, 'echo.sock')}`;
  // plain node: the benchmark itself runs under tsx, whose loader the child must not inherit
  const child = fork(path.join(__dirname, 'zmq-echo.js'), [address], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const dealer = new zmq.Dealer({ linger: 0 });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the ZeroMQ echo peer exited (code ${code})`)));
    });
    dealer.connect(address);
    const msg = Buffer.alloc(64, 1);
    return await timeit(async () => {
      await dealer.send(msg);
      await dealer.receive();
    });
  } finally {
    dealer.close();
    child.disconnect();
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
