/**
 * mynet's DNS server: UDP and TCP on one address (MYNET_DNS_LISTEN, default 127.0.0.153:53),
 * answering from the current NameTable. Malformed packets are dropped (counted), never thrown;
 * responses (QR=1) are never answered. What a TCP client can make it hold is bounded (tcp.ts).
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import type { Logger } from 'pino';
import type { Listen } from '../rules/listen.js';
import { parseIp } from '../ip/address.js';
import { RCODE, type RR, TYPE, buildResponse, errorReply, parseQuery } from './packet.js';
import type { NameTable } from './records.js';
import { TCP_LIMITS, type TcpEvent, type TcpLimits, serveTcpConnection } from './tcp.js';

export type Answer = 'answer' | 'nodata' | 'nxdomain' | 'refused' | 'formerr' | 'notimp' | 'dropped';

const TTL = 5;

const addrBytes = (ip: string): Buffer => {
  const a = parseIp(ip);
  if (!a) return Buffer.alloc(0);
  const hex = a.value.toString(16).padStart(a.family === 4 ? 8 : 32, '0');
  return Buffer.from(hex, 'hex');
};

/** Answers one packet; `undefined` means drop it. */
export function answer(
  packet: Buffer,
  table: NameTable,
  maxSize: number | 'udp',
  count: (a: Answer) => void,
  turn = 0,
): Buffer | undefined {
  const p = parseQuery(packet);
  if (!p.ok) {
    if (p.reply === 'none') {
      count('dropped');
      return undefined;
    }
    count(p.reply);
    return errorReply(p.id, p.reply === 'notimp' ? RCODE.NOTIMP : RCODE.FORMERR, p.opcode);
  }
  const q = p.query;
  const size = maxSize === 'udp' ? q.udpSize : maxSize;
  if (q.cls !== 1) {
    count('refused');
    return buildResponse(q, { rcode: RCODE.REFUSED, authoritative: false, answers: [] }, size);
  }
  const r = table.lookup(q.name, turn);
  if (r.kind !== 'answer') {
    count(r.kind);
    return buildResponse(
      q,
      { rcode: r.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.REFUSED, authoritative: r.kind === 'nxdomain', answers: [] },
      size,
    );
  }
  const rrs: RR[] = [];
  if (q.type === TYPE.A || q.type === 255) rrs.push(...r.a.map((ip) => ({ name: q.name, type: TYPE.A, ttl: TTL, data: addrBytes(ip) })));
  if (q.type === TYPE.AAAA || q.type === 255)
    rrs.push(...r.aaaa.map((ip) => ({ name: q.name, type: TYPE.AAAA, ttl: TTL, data: addrBytes(ip) })));
  if (q.type === TYPE.PTR || q.type === 255) rrs.push(...r.ptr.map((t) => ({ name: q.name, type: TYPE.PTR, ttl: TTL, data: t })));
  count(rrs.length ? 'answer' : 'nodata');
  return buildResponse(q, { rcode: RCODE.NOERROR, authoritative: true, answers: rrs }, size);
}

export interface DnsServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startDnsServer(opts: {
  listen: Listen;
  table: () => NameTable;
  log: Logger;
  onQuery?: (a: Answer) => void;
  /** Bounds of DNS over TCP (defaults: TCP_LIMITS). */
  tcp?: Partial<TcpLimits>;
  /** What the server holds for each TCP connection (tests). */
  onTcp?: (e: TcpEvent) => void;
}): Promise<DnsServer> {
  const count = opts.onQuery ?? ((): void => undefined);
  // Each answer starts a name's addresses one further on (records.ts, bare.ts).
  let turn = 0;
  const next = (): number => (turn = (turn + 1) % 1_000_000);
  const limits: TcpLimits = { ...TCP_LIMITS, ...opts.tcp };
  const onTcp = opts.onTcp ?? ((): void => undefined);
  const family = opts.listen.host.includes(':') ? 'udp6' : 'udp4';
  const udp: Socket = createSocket({ type: family, reuseAddr: false });
  udp.on('message', (msg, rinfo) => {
    const out = answer(msg, opts.table(), 'udp', count, next());
    if (out) udp.send(out, rinfo.port, rinfo.address, (err) => err && opts.log.debug({ err }, 'dns: send failed'));
  });
  udp.on('error', (err) => opts.log.error({ err }, 'dns: udp socket error'));
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(opts.listen.port, opts.listen.host, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  const port = udp.address().port;
  const conns = new Set<TcpSocket>();
  // The high-water mark is where write() asks us to stop: the bound of answers queued per client.
  const tcp: Server = createServer({ highWaterMark: limits.maxQueuedBytes }, (sock) => {
    // Bounded: a flood of connections cannot exhaust fds or memory.
    if (conns.size >= limits.maxConnections) {
      onTcp({ kind: 'closed', why: 'full', queries: 0 });
      return sock.destroy();
    }
    conns.add(sock);
    sock.on('error', (err) => opts.log.debug({ err }, 'dns: tcp connection error'));
    sock.on('close', () => conns.delete(sock));
    serveTcpConnection(
      sock,
      limits,
      (packet) => answer(packet, opts.table(), 65535, count, next()),
      (e) => {
        if (e.kind === 'closed' && e.why !== 'client') opts.log.debug({ why: e.why, queries: e.queries }, 'dns: tcp connection closed');
        onTcp(e);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, opts.listen.host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  opts.log.info({ address: opts.listen.host, port }, 'dns: serving');
  return {
    address: opts.listen.host,
    port,
    close: async () => {
      for (const c of conns) c.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}
