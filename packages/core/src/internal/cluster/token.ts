/**
 * The cluster token: the shared secret that lets a process into a cluster
 * started with `tsray start --head`. The head generates it, writes it to the
 * session directory (readable by its user only) and prints it for joining
 * nodes; other processes get it from TSRAY_CLUSTER_TOKEN or that file.
 *
 * Every `tcp://` connection of a tokened cluster uses ZeroMQ CURVE with key
 * pairs derived from the token: one for servers (every ROUTER bound on tcp)
 * and one for clients (every DEALER connecting to tcp). A peer without the
 * token does not know the server's public key, so its handshake fails; a
 * peer that somehow had the server's public key but not the token still
 * lacks the client secret key, which the ZAP handler (see `zap.ts`) checks.
 * @internal
 */
import { createPrivateKey, createPublicKey, hkdfSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Environment variable that hands a process its cluster token. */
export const TOKEN_ENV = 'TSRAY_CLUSTER_TOKEN';

/** Name of the token file in a session directory. */
export const TOKEN_FILE = 'cluster_token';

/** A token: 64 hex digits (32 random bytes). */
const TOKEN_RE = /^[0-9a-f]{64}$/;

/** A new cluster token: 32 bytes from the system's secure random source, as hex. */
export function generateClusterToken(): string {
  return randomBytes(32).toString('hex');
}

/** Why `token` is not a valid cluster token, or undefined. */
export function tokenProblem(token: string): string | undefined {
  if (TOKEN_RE.test(token)) return undefined;
  return `a cluster token is 64 hex digits (as \`tsray start --head\` prints it), got ${token.length} characters`;
}

/** Path of the token file of a session directory. */
export function tokenFile(sessionDir: string): string {
  return path.join(sessionDir, TOKEN_FILE);
}

/** Writes `token` to the session directory's token file, readable and writable by this user only (0600). */
export function writeTokenFile(sessionDir: string, token: string): void {
  const file = tokenFile(sessionDir);
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  // the mode of writeFileSync applies only when it creates the file
  fs.chmodSync(file, 0o600);
}

/** Reads the session directory's token file; undefined when it is missing or holds no valid token. */
export function readTokenFile(sessionDir: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(tokenFile(sessionDir), 'utf8').trim();
  } catch {
    return undefined;
  }
  return tokenProblem(text) === undefined ? text : undefined;
}

let current: string | undefined;
let isSet = false;

/**
 * Sets this process's default cluster token (undefined: none), for the
 * service processes (head, node manager), whose every connection belongs to
 * one cluster. Endpoints opened from now on without a token of their own
 * use it; those already open keep what they had. Drivers never set it: each
 * of their connections carries its cluster's token.
 * @throws TypeError when `token` is not 64 hex digits
 */
export function setClusterToken(token: string | undefined): void {
  if (token !== undefined) {
    const problem = tokenProblem(token);
    if (problem) throw new TypeError(problem);
  }
  current = token;
  isSet = true;
}

/**
 * The token in TSRAY_CLUSTER_TOKEN (read each time), if any.
 * @throws TypeError when it is set but not a valid token
 */
export function tokenFromEnv(): string | undefined {
  const env = process.env[TOKEN_ENV]?.trim();
  if (!env) return undefined;
  const problem = tokenProblem(env);
  if (problem) throw new TypeError(`${TOKEN_ENV} is not valid: ${problem}`);
  return env;
}

/**
 * This process's default cluster token: what `setClusterToken` set, else
 * TSRAY_CLUSTER_TOKEN.
 * @throws TypeError when TSRAY_CLUSTER_TOKEN is set but not a valid token
 */
export function clusterToken(): string | undefined {
  return isSet ? current : tokenFromEnv();
}

const LOCAL_CLUSTERS = Symbol.for('tsray.localClusterTokens');

/** The tokens of the `ray.Cluster`s running in this process, by head address (HOST:PORT); on globalThis so every copy of tsray sees them. */
function localClusters(): Map<string, string> {
  const g = globalThis as unknown as Record<symbol, Map<string, string> | undefined>;
  return (g[LOCAL_CLUSTERS] ??= new Map());
}

/** Records the token of a `ray.Cluster` this process started (a driver joining it here uses it). */
export function registerLocalCluster(address: string, token: string): void {
  localClusters().set(address, token);
}

/** Forgets a `ray.Cluster` of this process (it shut down). */
export function unregisterLocalCluster(address: string): void {
  localClusters().delete(address);
}

/** The `ray.Cluster`s running in this process: head address (HOST:PORT) and token. */
export function localClusterTokens(): Array<[string, string]> {
  return [...localClusters().entries()];
}

/** A CURVE key pair, both keys Z85-encoded as ZeroMQ takes them. */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/** The CURVE keys of a cluster. */
export interface ClusterKeys {
  /** key pair of every tcp server (ROUTER) */
  server: CurveKeyPair;
  /** key pair of every tcp client (DEALER) */
  client: CurveKeyPair;
}

/** Keys derived lately, by token (a process uses one or two tokens). */
const derived = new Map<string, ClusterKeys>();

/** The CURVE keys derived from `token` (deterministic: every holder of the token derives the same keys). */
export function deriveClusterKeys(token: string): ClusterKeys {
  let k = derived.get(token);
  if (k) return k;
  k = { server: deriveKeyPair(token, 'server'), client: deriveKeyPair(token, 'client') };
  if (derived.size >= 8) derived.delete(derived.keys().next().value as string);
  derived.set(token, k);
  return k;
}

/**
 * The CURVE keys of a connection: of `token` when it is a string, none for
 * null, and of this process's default token (see {@link clusterToken}) when
 * it is undefined.
 */
export function clusterKeys(token?: string | null): ClusterKeys | undefined {
  const t = token === undefined ? clusterToken() : token;
  return t === null || t === undefined ? undefined : deriveClusterKeys(t);
}

function deriveKeyPair(token: string, role: 'server' | 'client'): CurveKeyPair {
  const secret = Buffer.from(hkdfSync('sha256', Buffer.from(token, 'utf8'), 'tsray-cluster-token-v1', `curve25519 ${role} key`, 32));
  return { secretKey: z85Encode(secret), publicKey: z85Encode(x25519PublicKey(secret)) };
}

/** PKCS#8 DER header of an X25519 private key (RFC 8410); the 32 raw bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The X25519 (curve25519) public key of a 32-byte secret key. */
export function x25519PublicKey(secret: Buffer): Buffer {
  if (secret.length !== 32) throw new RangeError(`an X25519 secret key is 32 bytes, got ${secret.length}`);
  const priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  // the raw key is the last 32 bytes of the SubjectPublicKeyInfo
  return Buffer.from(spki.subarray(spki.length - 32));
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** Z85 (ZeroMQ RFC 32) encoding of `data`, whose length must be a multiple of 4. */
export function z85Encode(data: Buffer): string {
  if (data.length % 4 !== 0) throw new RangeError(`z85 encodes whole 4-byte groups, got ${data.length} bytes`);
  let out = '';
  for (let i = 0; i < data.length; i += 4) {
    let v = data.readUInt32BE(i);
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.push(Z85[v % 85] as string);
      v = Math.floor(v / 85);
    }
    out += chunk.reverse().join('');
  }
  return out;
}

/** Decodes Z85 text (length a multiple of 5). */
export function z85Decode(text: string): Buffer {
  if (text.length % 5 !== 0) throw new RangeError(`z85 text is whole 5-character groups, got ${text.length} characters`);
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let v = 0;
    for (let j = 0; j < 5; j++) {
      const d = Z85.indexOf(text[i + j] as string);
      if (d < 0) throw new RangeError(`'${text[i + j]}' is not a z85 character`);
      v = v * 85 + d;
    }
    if (v > 0xffffffff) throw new RangeError('z85 group out of range');
    out.writeUInt32BE(v, (i / 5) * 4);
  }
  return out;
}
