/**
 * Issue 14.1: what one DNS-over-TCP client can make the plugin hold, and packets that must not
 * be answered. Each server here runs on a 127.0.0.x loopback address of its own, with small
 * limits so that every case takes well under 2 s.
 */
import { type Socket, connect } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TYPE } from '../../../src/dns/packet.js';
import { NameTable } from '../../../src/dns/records.js';
import { type DnsServer, startDnsServer } from '../../../src/dns/server.js';
import type { TcpEvent, TcpLimits } from '../../../src/dns/tcp.js';
import { decode, query, udpAsk, udpBeforeMarker } from './dns-client.js';
import { waitUntil } from '../../helpers/wait.js';

const HOST = '127.0.0.71';
// A long name with 6 addresses: its answers (~1.1 KB; names are not compressed) outgrow the
// kernel's socket buffers (~4.5 MB here on loopback) after ~4000 queries.
const LONG = 'x'.repeat(63);
const big = Array.from({ length: 6 }, (_, i) => ({
  id: `b${i}`,
  name: `b${i}`,
  networks: [{ networkId: 'n', networkName: LONG, ipv4: `10.9.1.${i + 1}`, aliases: [LONG] }],
}));
const table = new NameTable('mynet', [
  { id: 'c', name: 'web', networks: [{ networkId: 'n', networkName: 'n1', ipv4: '10.9.0.2', aliases: [] }] },
  ...big,
]);
const framed = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);

let srv: DnsServer | undefined;
const clients: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await srv?.close();
  srv = undefined;
});

async function start(tcp: Partial<TcpLimits>): Promise<{ server: DnsServer; events: TcpEvent[] }> {
  const events: TcpEvent[] = [];
  srv = await startDnsServer({
    listen: { host: HOST, port: 0 },
    table: () => table,
    log: pino({ level: 'silent' }),
    tcp,
    onTcp: (e) => events.push(e),
  });
  return { server: srv, events };
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect(port, HOST, () => resolve(c));
    clients.push(c);
    c.on('error', reject);
  });
}

/** The server's close event for a connection, within `ms` (rejects after). */
async function serverClosed(events: TcpEvent[], ms: number): Promise<{ why: string; queries: number; ms: number }> {
  const closed = () => events.find((x) => x.kind === 'closed');
  const waited = await waitUntil('the server to close the connection', () => closed() !== undefined, { ms });
  const e = closed();
  if (e?.kind !== 'closed') throw new Error('unreachable: the wait saw a close event');
  return { why: e.why, queries: e.queries, ms: waited };
}

/** Resolves with the ms until the server closed `c` (seen by a client that reads), rejects after `ms`. */
function closedWithin(c: Socket, ms: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
    c.on('close', () => {
      clearTimeout(t);
      resolve(Date.now() - t0);
    });
  });
}

/** A query turned into a response (QR=1), as another server would send it. */
function response(): Buffer {
  const b = query('web.n1.mynet', TYPE.A, { id: 0x4242 });
  b.writeUInt16BE(0x8180, 2);
  return b;
}

describe('DNS over TCP: what one client can make the server hold', () => {
  it('stops reading from a client that pipelines thousands of queries and never reads, holds at most the limit, and closes it', async () => {
    const MAX = 16 * 1024;
    const { server, events } = await start({ maxQueuedBytes: MAX, stallMs: 300, maxQueries: 1_000_000 });
    const c = await open(server.port);
    c.pause(); // never reads an answer
    // 20 000 queries (~3 MB, ~22 MB of answers): far more than the kernel's buffers hold.
    const q = framed(query(`${LONG}.${LONG}.mynet`, TYPE.A));
    c.on('error', () => undefined); // the server's reset
    c.write(Buffer.concat(Array.from({ length: 20_000 }, () => q)));
    const end = await serverClosed(events, 4000);
    const queued = events.flatMap((e) => (e.kind === 'queued' || e.kind === 'paused' ? [e.bytes] : []));
    expect(events.some((e) => e.kind === 'paused')).toBe(true);
    // One answer over the mark at most.
    expect(Math.max(...queued)).toBeLessThanOrEqual(MAX + 1200);
    expect(end.why).toBe('stalled');
    expect(end.queries).toBeLessThan(20_000);
  });

  it('cuts off a client that trickles one byte at a time (progress is whole queries)', async () => {
    const { server, events } = await start({ idleMs: 300, lifeMs: 5000 });
    const c = await open(server.port);
    const q = framed(query('web.n1.mynet', TYPE.A));
    let i = 0;
    const trickle = setInterval(() => i < q.length && c.write(q.subarray(i, ++i)), 50);
    try {
      const ms = await closedWithin(c, 1500);
      expect(ms).toBeLessThan(1000);
    } finally {
      clearInterval(trickle);
    }
    expect(await serverClosed(events, 100)).toMatchObject({ why: 'idle', queries: 0 });
  });

  it("caps a connection's life even while it sends whole queries, and its number of queries", async () => {
    const { server, events } = await start({ idleMs: 300, lifeMs: 700, maxQueries: 1000 });
    const c = await open(server.port);
    let answers = 0;
    c.on('data', () => answers++);
    const ask = setInterval(() => c.write(framed(query('web.n1.mynet', TYPE.A))), 100);
    try {
      const ms = await closedWithin(c, 1500);
      expect(ms).toBeGreaterThanOrEqual(650);
    } finally {
      clearInterval(ask);
    }
    expect(answers).toBeGreaterThan(3);
    expect(await serverClosed(events, 100)).toMatchObject({ why: 'life' });

    // maxQueries: the answers up to the cap are sent, then the server closes.
    await srv?.close();
    const second = await start({ maxQueries: 5 });
    const d = await open(second.server.port);
    let got = Buffer.alloc(0);
    d.on('data', (b: Buffer) => (got = Buffer.concat([got, b])));
    const closed = closedWithin(d, 1500);
    d.write(Buffer.concat(Array.from({ length: 10 }, (_, k) => framed(query('web.n1.mynet', TYPE.A, { id: k })))));
    await closed;
    const ids: number[] = [];
    for (let p = 0; p + 2 <= got.length; p += 2 + got.readUInt16BE(p)) ids.push(decode(got.subarray(p + 2)).id);
    expect(ids).toEqual([0, 1, 2, 3, 4]);
    expect(await serverClosed(second.events, 100)).toMatchObject({ why: 'queries', queries: 5 });
  });

  it('refuses connections beyond maxConnections', async () => {
    const { server, events } = await start({ maxConnections: 2 });
    await open(server.port);
    await open(server.port);
    const third = await open(server.port);
    await closedWithin(third, 1000);
    expect(events).toContainEqual({ kind: 'closed', why: 'full', queries: 0 });
  });
});

describe('packets the server must not answer, or answers with NOTIMP', () => {
  it('drops a response (QR=1) over UDP and over TCP', async () => {
    const { server } = await start({});
    const udp = await udpBeforeMarker(server.port, HOST, [response()], query('web.n1.mynet', TYPE.A, { id: 0x5151 }));
    expect(udp.map((b) => decode(b).id)).toEqual([0x5151]); // only the marker's answer: the response got none
    const c = await open(server.port);
    let got = 0;
    c.on('data', (b: Buffer) => (got += b.length));
    const closed = closedWithin(c, 1000);
    c.write(framed(response()));
    await closed;
    expect(got).toBe(0);
    // and it keeps answering queries
    expect(decode(await udpAsk(server.port, HOST, query('web.n1.mynet', TYPE.A))).answers).toHaveLength(1);
  });

  it('answers opcode 2 (STATUS) with NOTIMP, echoing the opcode', async () => {
    const { server } = await start({});
    const q = query('web.n1.mynet', TYPE.A, { id: 77 });
    q.writeUInt16BE((2 << 11) | 0x0100, 2);
    const r = await udpAsk(server.port, HOST, q);
    expect(decode(r)).toMatchObject({ id: 77, rcode: 4 });
    expect((r.readUInt16BE(2) >> 11) & 0xf).toBe(2);
    expect(r.readUInt16BE(2) & 0x8000).toBe(0x8000);
  });
});
