/**
 * Issue 22, findings 8 and 10, against a real etcd (Debian's 3.4, private, on loopback ports of
 * this test's own range): a prefix whose list is over the client's 4 MiB answer cap, and a
 * half-open connection (a proxy of the test's own that stops passing bytes without a reset).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdKv } from '../../src/cluster/etcd-kv.js';
import { PrefixFollower } from '../../src/cluster/follower.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitUntil } from '../helpers/wait.js';

const TAG = 'mnfa';
const PROXY_PORT = 24062;
let etcd: TestEtcd;
const clients: EtcdKv[] = [];
const followers: PrefixFollower[] = [];
const kv = (endpoint: string, o: { keepalive?: { timeMs: number; timeoutMs: number } } = {}): EtcdKv => {
  const k = new EtcdKv({ endpoints: [endpoint], ...o });
  clients.push(k);
  return k;
};
const follow = (k: EtcdKv, prefix: string): PrefixFollower => {
  const f = new PrefixFollower({ kv: k, prefix, onChanges: () => undefined, backoffMs: { first: 50, max: 500 } });
  followers.push(f);
  f.start();
  return f;
};

/** Passes bytes to etcd until `hold`: then it drops them both ways and keeps every socket open. */
class HalfOpenProxy {
  holding = false;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  constructor(target: number) {
    this.server = createServer((c) => {
      const up = createConnection(target, '127.0.0.1');
      for (const s of [c, up]) {
        this.sockets.add(s);
        s.on('error', () => s.destroy()); // a reset of either side ends its pair
        s.on('close', () => {
          c.destroy();
          up.destroy();
        });
      }
      c.on('data', (b) => void (this.holding || up.write(b)));
      up.on('data', (b) => void (this.holding || c.write(b)));
    });
  }
  listen(port: number): Promise<void> {
    return new Promise((resolve) => this.server.listen(port, '127.0.0.1', resolve));
  }
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

beforeAll(async () => {
  // A keepalive ping every second is allowed by this etcd (its default refuses pings under 5 s).
  etcd = await startEtcd({ ports: [24060, 24061], dirPrefix: `${TAG}-etcd-`, args: ['--grpc-keepalive-min-time=1s'] });
});
afterAll(async () => {
  for (const f of followers) await f.stop();
  for (const c of clients) await c.close();
  await etcd?.destroy();
});

describe('a list over the 4 MiB answer cap (issue 22, finding 8)', () => {
  it('three 1.4 MiB values and 600 small records under one prefix: listed whole, in order, and followed', async () => {
    const prefix = `/mynet/v1/endpoints/${TAG}-big/`;
    const k = kv(etcd.endpoint);
    const junk = 'x'.repeat(1.4 * 1024 * 1024);
    for (const n of [1, 2, 3]) await k.put(`${prefix}junk-${n}`, junk);
    for (let n = 0; n < 600; n++) await k.put(`${prefix}small-${String(n).padStart(4, '0')}`, `{"n":${n}}`);
    const list = await k.list(prefix);
    expect(list.items).toHaveLength(603);
    expect(list.items.map((i) => i.key)).toEqual([...list.items.map((i) => i.key)].sort());
    expect(list.items.filter((i) => i.value === junk)).toHaveLength(3);
    const f = follow(k, prefix);
    await waitUntil('the follower synced', () => f.current === 'synced', { ms: 15_000, every: 25 });
    expect(f.mirror.size).toBe(603);
  });
});

describe('a half-open connection to etcd (issue 22, finding 10)', () => {
  it('the follower stops being synced while its connection passes nothing; after the heal it has the change it missed', async () => {
    const proxy = new HalfOpenProxy(etcd.clientPort);
    await proxy.listen(PROXY_PORT);
    try {
      const prefix = `/mynet/v1/endpoints/${TAG}-half/`;
      const other = kv(etcd.endpoint);
      await other.put(`${prefix}before`, '1');
      const f = follow(kv(`http://127.0.0.1:${PROXY_PORT}`, { keepalive: { timeMs: 1000, timeoutMs: 1000 } }), prefix);
      await waitUntil('the follower synced', () => f.current === 'synced', { ms: 15_000, every: 25 });
      proxy.holding = true;
      await other.put(`${prefix}missed`, '2');
      // Without keepalive it stayed `synced` (81 s in the issue) while missing the change.
      await waitUntil('the follower no longer synced', () => f.current !== 'synced', { ms: 20_000, every: 25 });
      expect(f.mirror.get(`${prefix}missed`)).toBeUndefined();
      proxy.holding = false;
      await waitUntil('synced again with the change', () => f.current === 'synced' && f.mirror.get(`${prefix}missed`) !== undefined, {
        ms: 20_000,
        every: 25,
      });
    } finally {
      await proxy.close();
    }
  });
});
