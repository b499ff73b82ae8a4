import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as zmq from 'zeromq';
import { deriveClusterKeys, generateClusterToken } from '../src/internal/cluster/token';
import { decodeFrame, encodeFrame, partsFrame } from '../src/internal/protocol/codec';
import { MT } from '../src/internal/protocol/messages';
import { Child, alive } from './helpers/procs';
import { until } from './helpers/poll';
import { freePort } from './helpers/net';
import { expectNothingBroke, runFuzz } from './helpers/fuzz';

// these tests exercise CURVE, which loopback connections use only when asked to
process.env.TSRAY_ENCRYPT_LOOPBACK = '1';

const drivers = path.join(__dirname, 'drivers');
const cli = path.join(__dirname, '..', 'bin', 'tsray.js');

/** The environment of this test without a cluster token. */
function envWithoutToken(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.TSRAY_CLUSTER_TOKEN;
  return env;
}

describe('a cluster started with `tsray start --head`', () => {
  let tmp: string;
  let empty: string;
  let port: number;
  let started: string;
  let token: string;
  let sessionDir: string;
  let headPid: number;
  const children: Child[] = [];
  const sockets: zmq.Dealer[] = [];
  const tsray = (...args: string[]): { code: number | null; out: string } => {
    const r = spawnSync(process.execPath, [cli, ...args], { env: envWithoutToken({ TSRAY_TMPDIR: tmp }), encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout + r.stderr };
  };
  const headLog = (): string => fs.readFileSync(path.join(sessionDir, 'head.log'), 'utf8');
  /** The head's log and the logs of workers whose driver is gone. */
  const sessionLogs = (): string => {
    const dir = path.join(sessionDir, 'logs');
    const workers = fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'utf8')) : [];
    return [headLog(), ...workers].join('\n');
  };
  const dealer = (opts: Partial<zmq.SocketOptions<zmq.Dealer>>): zmq.Dealer => {
    // a peer whose handshake fails may never get a pipe to send on: bound the send too
    const d = new zmq.Dealer({ linger: 0, receiveTimeout: 2000, sendTimeout: 2000, ...opts });
    d.connect(`tcp://127.0.0.1:${port}`);
    sockets.push(d);
    return d;
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-sec-'));
    empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-sec-empty-'));
    port = await freePort();
    const r = tsray('start', '--head', '--port', String(port), '--num-cpus', '2');
    started = r.out;
    expect(r.code).toBe(0);
    token = (/Cluster token[^\n]*\n\s+([0-9a-f]{64})\n/.exec(started) ?? [])[1] as string;
    const rec = JSON.parse(fs.readFileSync(path.join(tmp, 'tsray', 'cluster.json'), 'utf8')) as { sessionDir: string; pid: number };
    sessionDir = rec.sessionDir;
    headPid = rec.pid;
  });

  afterEach(() => {
    for (const d of sockets.splice(0)) d.close();
    for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  });

  afterAll(() => {
    const r = tsray('stop');
    expect(r.out).toMatch(/Stopped the tsray cluster/);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(empty, { recursive: true, force: true });
  });

  test('it writes a fresh cluster token readable by its owner only, and prints it with how to join', () => {
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const file = path.join(sessionDir, 'cluster_token');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8').trim()).toBe(token);
    expect(started).toContain(`TSRAY_CLUSTER_TOKEN=${token} tsray start --address 127.0.0.1:${port}`);
  });

  test('it listens on loopback only', () => {
    const listening = fs
      .readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[3] === '0A' && parseInt((f[1] ?? '').split(':')[1] ?? '', 16) === port);
    expect(listening.map((f) => f[1])).toEqual([`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`]);
  });

  test('a peer without CURVE, or with another token, gets no answer and is logged; one with the token gets the tables; the head lives on', async () => {
    const ask = encodeFrame([{ t: MT.GetClusterInfo, reqId: 1 }]);
    const other = deriveClusterKeys(generateClusterToken());
    const refused = async (d: zmq.Dealer): Promise<void> => {
      // either the send finds no pipe (EAGAIN) or nothing comes back
      const sent = await d.send(ask).then(
        () => true,
        (e: { code?: string }) => (e.code === 'EAGAIN' ? false : Promise.reject(e)),
      );
      if (sent) await expect(d.receive()).rejects.toMatchObject({ code: 'EAGAIN' });
    };
    await refused(dealer({}));
    await refused(dealer({ curveServerKey: other.server.publicKey, curvePublicKey: other.client.publicKey, curveSecretKey: other.client.secretKey }));
    const mine = deriveClusterKeys(token);
    const member = dealer({ curveServerKey: mine.server.publicKey, curvePublicKey: mine.client.publicKey, curveSecretKey: mine.client.secretKey });
    await member.send(ask);
    const { frame } = partsFrame(await member.receive());
    const [reply] = decodeFrame(frame as Buffer).msgs;
    expect(reply).toMatchObject({ t: MT.Reply, ok: true, data: [expect.objectContaining({ isHead: true, alive: true })] });
    // the peer's address comes with ZeroMQ's event only when the handshake got far enough
    const at = `refused a connection to tcp://127\\.0\\.0\\.1:${port} from (127\\.0\\.0\\.1:\\d+|an unknown address): `;
    const logged = async (re: RegExp, what: string): Promise<void> =>
      until(() => re.test(headLog()), what).catch((e: Error) => {
        throw new Error(`${e.message}; the head logged:\n${headLog().split('\n').filter((l) => l.includes('refused')).join('\n')}`);
      });
    // which side notices the mismatch first is a race: the head logs one or the other
    await logged(new RegExp(`${at}(it does not use CURVE encryption|it broke off the CURVE handshake)`), 'the head to log the plain peer');
    await logged(new RegExp(`${at}its CURVE handshake failed \\(it does not have this cluster's token\\)`), 'the head to log the other token');
    expect(alive(headPid)).toBe(true);
  });

  test('tsray status reads the token from the session directory', () => {
    const r = tsray('status');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/1 node\(s\)/);
  });

  test('a driver with the token joins with init({ address }) and runs a task; one without is told to set TSRAY_CLUSTER_TOKEN', async () => {
    // TSRAY_TMPDIR points away from this cluster's files: the token must come from the environment
    const withToken = Child.start(process.execPath, [path.join(drivers, 'join.js'), `127.0.0.1:${port}`], { TSRAY_TMPDIR: empty, TSRAY_CLUSTER_TOKEN: token });
    children.push(withToken);
    expect((await withToken.exited).code).toBe(0);
    expect(withToken.out).toContain('RESULT 42');

    const without = new Child(
      spawn(process.execPath, [path.join(drivers, 'join.js'), `127.0.0.1:${port}`], { env: envWithoutToken({ TSRAY_TMPDIR: empty }), stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    children.push(without);
    expect((await without.exited).code).toBe(1);
    expect(without.out).toMatch(/ERROR RaySystemError: the head at 127\.0\.0\.1:\d+ refused this driver: it answers only holders of its cluster token, and this driver has none\. Set TSRAY_CLUSTER_TOKEN to the token `tsray start --head` printed/);

    const badToken = Child.start(process.execPath, [path.join(drivers, 'join.js'), `127.0.0.1:${port}`], { TSRAY_TMPDIR: empty, TSRAY_CLUSTER_TOKEN: 'letmein' });
    children.push(badToken);
    expect((await badToken.exited).code).toBe(1);
    expect(badToken.out).toContain('ERROR TypeError: TSRAY_CLUSTER_TOKEN is not valid: a cluster token is 64 hex digits');
    expect(alive(headPid)).toBe(true);
  });

  test('fuzzing its tcp port (as a member, as strangers, as raw bytes) and every ipc socket breaks nothing', async () => {
    const c = Child.start(process.execPath, [path.join(drivers, 'fuzz.js'), 'tcp'], { TSRAY_TMPDIR: tmp });
    children.push(c);
    const { sent, kinds, check } = await runFuzz(c, sessionLogs);
    // the head and node manager listen on ipc too; the driver (D) and workers (W) of a tcp cluster on tcp only
    expect(kinds).toMatch(/^hnDWt$/);
    expect(sent).toBeGreaterThanOrEqual(300 * kinds.length);
    expect(check.pids).toContain(headPid);
    expectNothingBroke(check);
    expect(alive(headPid)).toBe(true);
    expect(headLog()).not.toMatch(/uncaught|FATAL|Segmentation|heap out of memory/i);
  });
});

describe('loopback connections of a tokened cluster', () => {
  let tmp: string;
  let port: number;
  let token: string;
  let sessionDir: string;
  const sockets: zmq.Dealer[] = [];
  const env = (): NodeJS.ProcessEnv => {
    const e = envWithoutToken({ TSRAY_TMPDIR: tmp });
    delete e.TSRAY_ENCRYPT_LOOPBACK;
    return e;
  };
  const tsray = (...args: string[]): { code: number | null; out: string } => {
    const r = spawnSync(process.execPath, [cli, ...args], { env: env(), encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout + r.stderr };
  };
  const ask = async (opts: Partial<zmq.SocketOptions<zmq.Dealer>>): Promise<boolean> => {
    const d = new zmq.Dealer({ linger: 0, receiveTimeout: 1500, sendTimeout: 1500, ...opts });
    sockets.push(d);
    d.connect(`tcp://127.0.0.1:${port}`);
    try {
      await d.send(encodeFrame([{ t: MT.GetClusterInfo, reqId: 1 }]));
      const { frame } = partsFrame(await d.receive());
      return decodeFrame(frame as Buffer).msgs.some((m) => m.t === MT.Reply && m.ok);
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsray-plain-'));
    port = await freePort();
    const r = tsray('start', '--head', '--port', String(port), '--num-cpus', '1');
    expect(r.code).toBe(0);
    token = (/Cluster token[^\n]*\n\s+([0-9a-f]{64})\n/.exec(r.out) ?? [])[1] as string;
    sessionDir = (JSON.parse(fs.readFileSync(path.join(tmp, 'tsray', 'cluster.json'), 'utf8')) as { sessionDir: string }).sessionDir;
  });

  afterAll(() => {
    for (const d of sockets.splice(0)) d.close();
    tsray('stop');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('are authenticated with the token (PLAIN, unencrypted): strangers get nothing and are logged', async () => {
    const secret = deriveClusterKeys(token).client.secretKey;
    const other = deriveClusterKeys(generateClusterToken()).client.secretKey;
    expect(await ask({})).toBe(false);
    expect(await ask({ plainUsername: 'tsray', plainPassword: other })).toBe(false);
    expect(await ask({ plainUsername: 'tsray', plainPassword: secret })).toBe(true);
    await until(() => /refused a connection .*password is not this cluster's/.test(fs.readFileSync(path.join(sessionDir, 'head.log'), 'utf8')), 'the refusal in the head log');
  });
});
