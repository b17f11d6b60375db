/**
 * The UDP answer cache (src/dns/answer-cache.ts): a kept answer is the answer built afresh but
 * for its ID; a replaced table, a rotated name and a full cache are answered afresh. Through the
 * real server on loopback, so what a client sees is what is checked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnswerCache } from '../../../src/dns/answer-cache.js';
import { TYPE } from '../../../src/dns/packet.js';
import { NameTable } from '../../../src/dns/records.js';
import { type DnsServer, answer } from '../../../src/dns/server.js';
import { decode, query, serveOnLoopback, udpAsk } from './dns-client.js';

const net = (ipv4: string, aliases: string[] = []) => [{ networkId: 'n', networkName: 'n1', ipv4, aliases }];
const first = new NameTable('mynet', [
  { id: 'a', name: 'web', networks: net('10.9.0.2') },
  { id: 'b', name: 'api1', networks: net('10.9.0.3', ['api']) },
  { id: 'c', name: 'api2', networks: net('10.9.0.4', ['api']) },
]);
const second = new NameTable('mynet', [{ id: 'a', name: 'web', networks: net('10.9.0.9') }]);

describe('the DNS answer cache', () => {
  let srv: DnsServer;
  let table = first;
  const counts: string[] = [];
  beforeAll(async () => {
    srv = await serveOnLoopback(() => table, counts);
  });
  afterAll(async () => srv.close());
  const ask = async (name: string, id: number): Promise<Buffer> => udpAsk(srv.port, '127.0.0.1', query(name, TYPE.A, { id }));

  it('a kept answer is byte for byte the fresh one but for its ID, and still counted', async () => {
    const fresh = answer(query('web.n1.mynet', TYPE.A, { id: 7 }), first, 'udp', () => undefined) as Buffer;
    counts.length = 0;
    const one = await ask('web.n1.mynet', 7);
    const two = await ask('web.n1.mynet', 8);
    expect(one).toEqual(fresh);
    expect(decode(two).id).toBe(8);
    expect(two.subarray(2)).toEqual(fresh.subarray(2));
    expect(counts).toEqual(['answer', 'answer']);
  });

  it('the name as the client spelled it is echoed (another spelling is another entry)', async () => {
    const r = await ask('WEB.n1.mynet', 9);
    expect(r.toString('latin1')).toContain('WEB');
    expect(decode(r).answers).toEqual([{ type: TYPE.A, data: '10.9.0.2' }]);
  });

  it('a replaced table is answered from, at once', async () => {
    await ask('web.n1.mynet', 10);
    table = second;
    expect(decode(await ask('web.n1.mynet', 11)).answers).toEqual([{ type: TYPE.A, data: '10.9.0.9' }]);
    expect(decode(await ask('api.n1.mynet', 12)).rcode).toBe(3); // NXDOMAIN in the new table
    table = first;
  });

  it('a name with several addresses is rotated on every query, never kept', async () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 4; i++) firsts.add(String(decode(await ask('api.n1.mynet', 20 + i)).answers[0]?.data));
    expect(firsts).toEqual(new Set(['10.9.0.3', '10.9.0.4']));
  });

  it('is bounded: a full cache starts again; queries too long are never kept', () => {
    const c = new AnswerCache<string>(2);
    const q = (n: string): Buffer => query(`${n}.n1.mynet`, TYPE.A, { id: 1 });
    c.set(first, q('a'), Buffer.from('x'), 'answer');
    c.set(first, q('b'), Buffer.from('y'), 'answer');
    expect(c.size).toBe(2);
    c.set(first, q('c'), Buffer.from('z'), 'answer');
    expect(c.size).toBe(1);
    expect(c.get(first, q('a'))).toBeUndefined();
    expect(c.get(first, q('c'))?.kind).toBe('answer');
    expect(c.get(second, q('c'))).toBeUndefined();
    c.set(first, q('x'.repeat(63) + '.' + 'y'.repeat(63)), Buffer.from('l'), 'answer'); // over MAX_QUERY
    expect(c.size).toBe(1);
  });
});
