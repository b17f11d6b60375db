import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TYPE } from '../../../src/dns/packet.js';
import { NameTable } from '../../../src/dns/records.js';
import type { DnsServer } from '../../../src/dns/server.js';
import { parseListen } from '../../../src/rules/listen.js';
import { decode, query, serveOnLoopback, udpAsk, udpBeforeMarker } from './dns-client.js';

const table = new NameTable('mynet', [
  { id: 'c', name: 'web', networks: [{ networkId: 'n', networkName: 'n1', ipv4: '10.9.0.2', aliases: [] }] },
]);

function tcpAsk(port: number, bufs: Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    const out: Buffer[] = [];
    let acc = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      acc = Buffer.concat([acc, d]);
      while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
        out.push(acc.subarray(2, 2 + acc.readUInt16BE(0)));
        acc = acc.subarray(2 + acc.readUInt16BE(0));
      }
      if (out.length === bufs.length) {
        c.end();
        resolve(out);
      }
    });
    c.on('error', reject);
    for (const b of bufs) {
      const h = Buffer.alloc(2);
      h.writeUInt16BE(b.length);
      c.write(Buffer.concat([h, b]));
    }
  });
}

describe('the DNS server on real sockets', () => {
  let srv: DnsServer;
  const counts: string[] = [];
  beforeAll(async () => {
    srv = await serveOnLoopback(() => table, counts);
  });
  afterAll(async () => srv.close());

  it('answers over UDP', async () => {
    const r = await udpAsk(srv.port, '127.0.0.1', query('web.n1.mynet', TYPE.A));
    expect(decode(r).answers).toEqual([{ type: TYPE.A, data: '10.9.0.2' }]);
  });

  it('answers several queries on one TCP connection', async () => {
    const [a, b] = await tcpAsk(srv.port, [query('web.n1.mynet', TYPE.A, { id: 1 }), query('nope.n1.mynet', TYPE.A, { id: 2 })]);
    expect(decode(a as Buffer)).toMatchObject({ id: 1, answers: [{ data: '10.9.0.2' }] });
    expect(decode(b as Buffer)).toMatchObject({ id: 2, rcode: 3 });
  });

  it('survives garbage and keeps answering', async () => {
    const got = await udpBeforeMarker(
      srv.port,
      '127.0.0.1',
      [Buffer.from('not dns'), Buffer.alloc(3)],
      query('web.n1.mynet', TYPE.A, { id: 0x5151 }),
    );
    expect(got).toHaveLength(1); // only the marker's answer: the garbage got none
    expect(decode(got[0] as Buffer)).toMatchObject({ id: 0x5151, answers: [{ data: '10.9.0.2' }] });
    expect(counts).toContain('dropped');
  });

  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.153:53')).toEqual({ host: '127.0.0.153', port: 53 });
    expect(parseListen('[::1]:5353')).toEqual({ host: '::1', port: 5353 });
    expect(parseListen('')).toBeUndefined();
    expect(() => parseListen('localhost:53')).toThrow(/MYNET_DNS_LISTEN/);
  });
});
