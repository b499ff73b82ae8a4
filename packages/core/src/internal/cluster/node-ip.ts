/**
 * A node's IP address: the address it listens on and that other nodes reach
 * it at (`tsray start --node-ip-address`). Checked against this machine's
 * interfaces, and found, when not given, from the perspective of the head
 * (as Ray's `node_ip_address_from_perspective`): the local address the
 * kernel picks to reach the head.
 * @internal
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as os from 'node:os';

/** The IPv4 addresses of this machine's network interfaces, loopback included. */
export function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) if (i.family === 'IPv4') out.add(i.address);
  return out;
}

/** Whether `host` (an IP address or a name) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * What is wrong with `ip` as this node's address (`flag` names the option in
 * the message), or undefined: it must be an IPv4 address of one of this
 * machine's interfaces, not a wildcard, because nodes listen on it and
 * other nodes connect to it.
 */
export function nodeIpProblem(ip: string, flag = '--node-ip-address'): string | undefined {
  const mine = [...localAddresses()].sort();
  const list = `this machine's addresses: ${mine.join(', ')}`;
  if (ip === '0.0.0.0') return `${flag} must be this machine's address on the network the other nodes reach, not the wildcard 0.0.0.0 (nodes connect to it); ${list}`;
  if (net.isIPv6(ip)) return `${flag} must be an IPv4 address (IPv6 is not supported yet), got '${ip}'; ${list}`;
  if (!net.isIPv4(ip)) return `${flag} must be an IPv4 address, got '${ip}'; ${list}`;
  // the whole of 127.0.0.0/8 is this machine's loopback
  if (!mine.includes(ip) && !isLoopbackHost(ip)) return `${flag} ${ip} is not an address of this machine, so nothing can listen on it; give one of ${list}`;
  return undefined;
}

/**
 * The address of this machine that reaches `host:port` (the head): a UDP
 * socket "connected" there (no packet is sent) shows the local address the
 * kernel routes from. 127.0.0.1 for a head on loopback.
 */
export async function nodeIpFromPerspective(host: string, port: number): Promise<string> {
  if (isLoopbackHost(host)) return '127.0.0.1';
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(port, host, () => resolve());
    });
    return sock.address().address;
  } finally {
    sock.close();
  }
}
