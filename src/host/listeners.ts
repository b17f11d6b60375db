/**
 * Which ports the host already uses, from /proc (no process started): listening TCP sockets and
 * bound UDP sockets, and the ephemeral port range. Read only when a request publishes ports, and
 * only for the protocols it publishes: on this kernel each /proc/net/{tcp,udp}[6] read walks the
 * whole socket hash table (~3.5 ms), so the files are read in parallel, off the event loop.
 */
import { readFile } from 'node:fs/promises';
import type { HostPorts, Proto } from '../decision.js';
import { formatIp, parseIp } from '../ip/address.js';

const FILES: Record<Proto, readonly string[]> = {
  tcp: ['/proc/net/tcp', '/proc/net/tcp6'],
  udp: ['/proc/net/udp', '/proc/net/udp6'],
  sctp: [],
};
const EPHEMERAL = '/proc/sys/net/ipv4/ip_local_port_range';
const DEFAULT_EPHEMERAL: [number, number] = [32768, 60999];

/** Reads a /proc file; '' when it does not exist (a protocol not in this kernel). */
export type ProcReader = (path: string) => Promise<string>;

const readProc: ProcReader = async (path) => {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
};

function hexAddr(h: string): string {
  if (h.length === 8) {
    const n = parseInt(h, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
  }
  // IPv6: four little-endian 32-bit words.
  const words = (h.match(/.{8}/g) ?? []).map((w) => (w.match(/../g) ?? []).reverse().join(''));
  const bytes = words.join('');
  // An IPv4-mapped address (a dual-stack socket bound to an IPv4 address) is that IPv4 address.
  if (/^0{20}ffff/i.test(bytes)) return hexAddr((bytes.slice(24).match(/../g) ?? []).reverse().join(''));
  // Canonical text (::1, fd00::1), as bindings are compared with it as text.
  const ip = parseIp((bytes.match(/.{4}/g) ?? []).join(':'));
  return ip ? formatIp(ip) : bytes;
}

/**
 * Adds the sockets of one /proc/net file to `index` (proto/port → local addresses) and the
 * local ports of TCP sockets that do not listen to `busy` (a client's connection from an
 * ephemeral port: a bind of that port fails with EADDRINUSE although nothing listens).
 */
function indexSockets(proto: Proto, text: string, index: Map<string, string[]>, busy: Set<string>): void {
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const [addr, portHex] = (f[1] as string).split(':');
    const key = `${proto}/${parseInt(portHex as string, 16)}`;
    // TCP: only LISTEN (0A) listens; UDP: every bound socket (07 = unconnected).
    if (proto === 'tcp' && f[3] !== '0A') {
      busy.add(key);
      continue;
    }
    const list = index.get(key);
    if (list) list.push(hexAddr(addr as string));
    else index.set(key, [hexAddr(addr as string)]);
  }
}

function parseEphemeral(text: string): [number, number] {
  const range = text.trim().split(/\s+/).map(Number);
  return range.length === 2 && range[0]! > 0 && range[1]! >= range[0]! ? [range[0]!, range[1]!] : DEFAULT_EPHEMERAL;
}

/** What the host uses on `protos` (the others look free), read once for one request. */
export async function readHostPorts(protos: readonly Proto[], read: ProcReader = readProc): Promise<HostPorts> {
  const files = [...new Set(protos)].flatMap((p) => FILES[p].map((file) => ({ proto: p, file })));
  const [range, ...texts] = await Promise.all([read(EPHEMERAL), ...files.map((f) => read(f.file))]);
  const index = new Map<string, string[]>();
  const busy = new Set<string>();
  files.forEach((f, i) => indexSockets(f.proto, texts[i] as string, index, busy));
  return {
    listening: (proto, port) => index.get(`${proto}/${port}`) ?? [],
    busy: (proto, port) => busy.has(`${proto}/${port}`),
    ephemeral: parseEphemeral(range),
  };
}
