/**
 * Which ports the host already uses, from /proc (no process started): listening TCP sockets and
 * bound UDP sockets, and the ephemeral port range. Read only when a request publishes ports.
 */
import { readFileSync } from 'node:fs';
import type { HostPorts, Proto } from '../driver/connectivity.js';
import { formatIp, parseIp } from '../ip/address.js';

const FILES: Record<Proto, readonly string[]> = {
  tcp: ['/proc/net/tcp', '/proc/net/tcp6'],
  udp: ['/proc/net/udp', '/proc/net/udp6'],
  sctp: [],
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

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ''; // protocol not in this kernel
    throw err;
  }
}

/**
 * Reads lazily, one protocol at a time: on this kernel each /proc/net/{tcp,udp}[6] read walks
 * the whole socket hash table (~3 ms), so a TCP publish does not pay for UDP.
 */
export function readHostPorts(): HostPorts {
  const index = new Map<string, string[]>();
  const loaded = new Set<Proto>();
  const load = (proto: Proto): void => {
    if (loaded.has(proto)) return;
    loaded.add(proto);
    for (const file of FILES[proto]) {
      for (const line of read(file).split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 4) continue;
        // TCP: only LISTEN (0A); UDP: every bound socket (07 = unconnected).
        if (proto === 'tcp' && f[3] !== '0A') continue;
        const [addr, portHex] = (f[1] as string).split(':');
        const key = `${proto}/${parseInt(portHex as string, 16)}`;
        index.set(key, [...(index.get(key) ?? []), hexAddr(addr as string)]);
      }
    }
  };
  let ephemeral: [number, number] | undefined;
  return {
    listening: (proto, port) => {
      load(proto);
      return index.get(`${proto}/${port}`) ?? [];
    },
    get ephemeral(): [number, number] {
      if (!ephemeral) {
        const range = read('/proc/sys/net/ipv4/ip_local_port_range').trim().split(/\s+/).map(Number);
        ephemeral = range.length === 2 && range[0]! > 0 ? [range[0]!, range[1]!] : [32768, 60999];
      }
      return ephemeral;
    },
  };
}
