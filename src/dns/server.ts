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
import { AnswerCache } from './answer-cache.js';
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
  return respond(packet, table, maxSize, count, turn).reply;
}

/**
 * An answer, and whether it may be kept for the same query bytes (answer-cache.ts): only a
 * NOERROR/NXDOMAIN/REFUSED answer that did not depend on the turn (at most one record of each kind).
 */
interface Response {
  readonly reply: Buffer | undefined;
  readonly kind: Answer;
  readonly keep: boolean;
}

function respond(packet: Buffer, table: NameTable, maxSize: number | 'udp', count: (a: Answer) => void, turn: number): Response {
  const done = (kind: Answer, reply: Buffer | undefined, keep: boolean): Response => {
    count(kind);
    return { reply, kind, keep };
  };
  const p = parseQuery(packet);
  if (!p.ok) {
    if (p.reply === 'none') return done('dropped', undefined, false);
    return done(p.reply, errorReply(p.id, p.reply === 'notimp' ? RCODE.NOTIMP : RCODE.FORMERR, p.opcode), false);
  }
  const q = p.query;
  const size = maxSize === 'udp' ? q.udpSize : maxSize;
  if (q.cls !== 1) return done('refused', buildResponse(q, { rcode: RCODE.REFUSED, authoritative: false, answers: [] }, size), true);
  const r = table.lookup(q.name, turn);
  if (r.kind !== 'answer') {
    const rcode = r.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.REFUSED;
    return done(r.kind, buildResponse(q, { rcode, authoritative: r.kind === 'nxdomain', answers: [] }, size), true);
  }
  const rrs: RR[] = [];
  if (q.type === TYPE.A || q.type === 255) rrs.push(...r.a.map((ip) => ({ name: q.name, type: TYPE.A, ttl: TTL, data: addrBytes(ip) })));
  if (q.type === TYPE.AAAA || q.type === 255)
    rrs.push(...r.aaaa.map((ip) => ({ name: q.name, type: TYPE.AAAA, ttl: TTL, data: addrBytes(ip) })));
  if (q.type === TYPE.PTR || q.type === 255) rrs.push(...r.ptr.map((t) => ({ name: q.name, type: TYPE.PTR, ttl: TTL, data: t })));
  const keep = r.a.length <= 1 && r.aaaa.length <= 1 && r.ptr.length <= 1;
  return done(rrs.length ? 'answer' : 'nodata', buildResponse(q, { rcode: RCODE.NOERROR, authoritative: true, answers: rrs }, size), keep);
}

/** Answers a UDP packet from the cache when it can, and keeps what it may (answer-cache.ts). */
function answerUdp(
  cache: AnswerCache<Answer>,
  packet: Buffer,
  table: NameTable,
  count: (a: Answer) => void,
  turn: () => number,
): Buffer | undefined {
  const hit = cache.get(table, packet);
  if (hit) {
    count(hit.kind);
    return hit.reply;
  }
  const r = respond(packet, table, 'udp', count, turn());
  if (r.keep && r.reply) cache.set(table, packet, r.reply, r.kind);
  return r.reply;
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
  const cache = new AnswerCache<Answer>();
  // One callback for every send (not a closure per packet: this is the hot path).
  const sent = (err: Error | null): void => {
    if (err) opts.log.debug({ err }, 'dns: send failed');
  };
  udp.on('message', (msg, rinfo) => {
    const out = answerUdp(cache, msg, opts.table(), count, next);
    if (out) udp.send(out, rinfo.port, rinfo.address, sent);
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
