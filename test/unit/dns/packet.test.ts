import { describe, expect, it } from 'vitest';
import { RCODE, TYPE, buildResponse, parseQuery } from '../../../src/dns/packet.js';
import { decode, query } from './dns-client.js';
import { NameTable } from '../../../src/dns/records.js';
import { answer } from '../../../src/dns/server.js';
import { prng } from '../support.js';

const table = new NameTable('mynet', [
  { id: 'c1', name: 'web', networks: [{ networkId: 'n1', networkName: 'front', ipv4: '10.1.0.2', ipv6: 'fd00::2', aliases: ['www'] }] },
  ...Array.from({ length: 40 }, (_, i) => ({
    id: `r${i}`,
    name: `replica${i}`,
    networks: [{ networkId: 'n1', networkName: 'front', ipv4: `10.1.1.${i + 1}`, aliases: ['many'] }],
  })),
]);
const ask = (name: string, type: number, size: number | 'udp' = 'udp', edns?: number): ReturnType<typeof decode> => {
  const out = answer(query(name, type, edns ? { edns } : {}), table, size, () => undefined);
  if (!out) throw new Error('dropped');
  return decode(out);
};

describe('DNS packets', () => {
  it('parses a query and echoes id and question', () => {
    const p = parseQuery(query('Web.Front.Mynet', TYPE.A, { id: 7 }));
    expect(p).toMatchObject({ ok: true, query: { id: 7, name: 'Web.Front.Mynet', type: TYPE.A, cls: 1, rd: true, udpSize: 512 } });
    expect(ask('web.front.mynet', TYPE.A).id).toBe(0x1234);
  });

  it('answers A, AAAA and PTR (v4 and v6) authoritatively, case-insensitively', () => {
    expect(ask('WEB.front.mynet', TYPE.A)).toMatchObject({ rcode: RCODE.NOERROR, aa: true, answers: [{ type: TYPE.A, data: '10.1.0.2' }] });
    expect(ask('web.front.mynet', TYPE.AAAA).answers).toEqual([{ type: TYPE.AAAA, data: 'fd00:0000:0000:0000:0000:0000:0000:0002' }]);
    expect(ask('2.0.1.10.in-addr.arpa', TYPE.PTR).answers).toEqual([{ type: TYPE.PTR, data: 'web.front.mynet' }]);
    expect(ask(`2.${'0.'.repeat(29)}d.f.ip6.arpa`, TYPE.PTR).answers).toEqual([{ type: TYPE.PTR, data: 'web.front.mynet' }]);
  });

  it('answers aliases and <container>.<zone>', () => {
    expect(ask('www.front.mynet', TYPE.A).answers[0]?.data).toBe('10.1.0.2');
    expect(ask('web.mynet', TYPE.A).answers[0]?.data).toBe('10.1.0.2');
  });

  it('NXDOMAIN for unknown names in the zone; NODATA for a known name without that type', () => {
    expect(ask('nope.front.mynet', TYPE.A)).toMatchObject({ rcode: RCODE.NXDOMAIN, aa: true, answers: [] });
    expect(ask('replica1.front.mynet', TYPE.AAAA)).toMatchObject({ rcode: RCODE.NOERROR, answers: [] });
  });

  it('REFUSED outside the zone: not an open resolver', () => {
    expect(ask('example.com', TYPE.A).rcode).toBe(RCODE.REFUSED);
    expect(ask('1.1.168.192.in-addr.arpa', TYPE.PTR).rcode).toBe(RCODE.REFUSED);
  });

  it('truncates over UDP when the answer exceeds 512 bytes, honours the EDNS size, and is complete over TCP', () => {
    expect(ask('many.front.mynet', TYPE.A)).toMatchObject({ tc: true, answers: [] });
    expect(ask('many.front.mynet', TYPE.A, 'udp', 4096).answers).toHaveLength(40);
    expect(ask('many.front.mynet', TYPE.A, 65535).answers).toHaveLength(40);
  });

  it('drops malformed packets without throwing (random bytes, short headers, pointer loops)', () => {
    const r = prng(42);
    const kinds = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(Array.from({ length: Math.floor(r() * 80) }, () => Math.floor(r() * 256)));
      const counted: string[] = [];
      const out = answer(b, table, 'udp', (a) => counted.push(a));
      // Each packet is counted once; only a dropped one goes unanswered, and an answer has a whole header.
      expect(counted, `packet ${i}`).toHaveLength(1);
      const kind = counted[0] as string;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      expect(out === undefined, `packet ${i} (${kind}) unanswered`).toBe(kind === 'dropped');
      expect(out?.length ?? 12, `packet ${i}: reply length`).toBeGreaterThanOrEqual(12);
    }
    // Random bytes hit both refusals: too short to answer (dropped) and a header with a bad body.
    expect(kinds.get('dropped')).toBeGreaterThan(50);
    expect(kinds.get('formerr')).toBeGreaterThan(50);
    const loop = query('a.mynet', TYPE.A);
    loop[12] = 0xc0;
    loop[13] = 12; // the name points at itself
    expect(parseQuery(loop).ok).toBe(false);
    expect(answer(Buffer.alloc(5), table, 'udp', () => undefined)).toBeUndefined();
  });

  it('builds a response with TC when nothing fits', () => {
    const q = parseQuery(query('x.mynet', TYPE.A));
    if (!q.ok) throw new Error('parse');
    const big = Array.from({ length: 100 }, () => ({ name: 'x.mynet', type: TYPE.A, ttl: 5, data: Buffer.from([1, 2, 3, 4]) }));
    expect(decode(buildResponse(q.query, { rcode: 0, authoritative: true, answers: big }, 512)).tc).toBe(true);
  });
});
