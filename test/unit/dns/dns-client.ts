/** A minimal DNS client for tests: queries as dig sends them, and a decoder of our answers. */
import { createSocket } from 'node:dgram';
import { pino } from 'pino';
import { TYPE } from '../../../src/dns/packet.js';
import type { NameTable } from '../../../src/dns/records.js';
import { type DnsServer, startDnsServer } from '../../../src/dns/server.js';

/** mynet's DNS server on a free loopback port, serving `table()`, each answer's kind pushed to `counts`. */
export const serveOnLoopback = (table: () => NameTable, counts: string[]): Promise<DnsServer> =>
  startDnsServer({ listen: { host: '127.0.0.1', port: 0 }, table, log: pino({ level: 'silent' }), onQuery: (a) => counts.push(a) });

/** A query as dig would send it. */
export function query(name: string, type: number, opts: { id?: number; edns?: number } = {}): Buffer {
  const labels = name
    .split('.')
    .filter(Boolean)
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const h = Buffer.alloc(12);
  h.writeUInt16BE(opts.id ?? 0x1234, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(opts.edns ? 1 : 0, 10);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(type, 0);
  q.writeUInt16BE(1, 2);
  const opt = opts.edns ? Buffer.from([0, 0, 41, opts.edns >> 8, opts.edns & 255, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(0);
  return Buffer.concat([h, ...labels, Buffer.from([0]), q, opt]);
}

/** Decodes what our answers contain: rcode, flags and the answer records' data. */
export function decode(buf: Buffer): { id: number; rcode: number; aa: boolean; tc: boolean; answers: { type: number; data: string }[] } {
  const flags = buf.readUInt16BE(2);
  const an = buf.readUInt16BE(6);
  let pos = 12;
  const skipName = (): void => {
    while (buf[pos] !== 0) {
      if (((buf[pos] as number) & 0xc0) === 0xc0) {
        pos += 2;
        return;
      }
      pos += 1 + (buf[pos] as number);
    }
    pos += 1;
  };
  if (buf.readUInt16BE(4)) {
    skipName();
    pos += 4;
  }
  const answers: { type: number; data: string }[] = [];
  for (let i = 0; i < an; i++) {
    skipName();
    const type = buf.readUInt16BE(pos);
    const len = buf.readUInt16BE(pos + 8);
    const d = buf.subarray(pos + 10, pos + 10 + len);
    pos += 10 + len;
    const data = type === TYPE.A ? [...d].join('.') : type === TYPE.AAAA ? (d.toString('hex').match(/.{4}/g) ?? []).join(':') : labelsOf(d);
    answers.push({ type, data });
  }
  return { id: buf.readUInt16BE(0), rcode: flags & 0xf, aa: !!(flags & 0x400), tc: !!(flags & 0x200), answers };
}
function labelsOf(d: Buffer): string {
  const out: string[] = [];
  let p = 0;
  while (p < d.length && d[p] !== 0) {
    out.push(d.toString('latin1', p + 1, p + 1 + (d[p] as number)));
    p += 1 + (d[p] as number);
  }
  return out.join('.');
}

/**
 * Sends `packets` over UDP from one socket, then `marker` (a query); resolves with every
 * datagram that came back, up to and including the marker's answer. The server reads its socket
 * in order, so an answer to one of `packets` would have come before the marker's: nothing before
 * it means none was answered, without waiting for time to pass.
 */
export function udpBeforeMarker(port: number, host: string, packets: readonly Buffer[], marker: Buffer): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const got: Buffer[] = [];
    s.on('error', reject);
    s.on('message', (m) => {
      got.push(m);
      if (m.length >= 2 && m.readUInt16BE(0) === marker.readUInt16BE(0)) {
        s.close();
        resolve(got);
      }
    });
    for (const p of [...packets, marker]) s.send(p, port, host);
  });
}

/** One UDP query and its answer; rejects when none comes (a guard, not a test of absence). */
export function udpAsk(port: number, host: string, buf: Buffer, ms = 2000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      reject(new Error(`no UDP answer from ${host}:${port} in ${ms} ms`));
    }, ms);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(buf, port, host);
  });
}
