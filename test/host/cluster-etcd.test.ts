/**
 * The cluster store against a real etcd (Debian's 3.4, private, on loopback): the races issue 17
 * names, presence on a lease, the watch, and etcd stopped, frozen and restarted. Each "host" is
 * its own EtcdKv client (its own gRPC connection), as separate plugins would be.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStore, type EndpointChange } from '../../src/cluster/cluster-store.js';
import { EtcdKv } from '../../src/cluster/etcd-kv.js';
import { keys } from '../../src/cluster/keys.js';
import type { KvEvent } from '../../src/cluster/kv.js';
import { NodePresence } from '../../src/cluster/presence.js';
import type { EndpointRecord } from '../../src/cluster/records.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { waitUntil } from '../helpers/wait.js';

let etcd: TestEtcd;
const clients: EtcdKv[] = [];
const kv = (): EtcdKv => {
  const k = new EtcdKv({ endpoints: [etcd.endpoint] });
  clients.push(k);
  return k;
};
const host = (n: number): ClusterStore => new ClusterStore(kv(), { name: `host-${n}`, address: `198.18.0.${n}` });
const id = (n: number): string => n.toString(16).padStart(64, '0');
/** A record is published only with its address claimed (claim-guard.ts): claim, then publish, as a host does. */
const claimAndPublish = async (h: ClusterStore, e: Parameters<ClusterStore['publishEndpoint']>[0]): Promise<void> => {
  await h.claimAddress({ cluster: e.cluster, subnet: '10.77.0.0/16', gateway: '10.77.0.1' }, e.address);
  await h.publishEndpoint(e);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let cluster = 0;
/** A fresh cluster name per test, so tests share one etcd without seeing each other. */
const fresh = (): string => `c${Date.now().toString(36)}${++cluster}`;

const until = (what: string, ok: () => boolean | Promise<boolean>, ms = 15_000): Promise<number> => waitUntil(what, ok, { ms, every: 25 });

beforeAll(async () => {
  etcd = await startEtcd();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});
afterAll(async () => {
  await etcd?.destroy();
});

describe('races on a real etcd', () => {
  it('5 hosts claim one address at once: exactly one wins, the others are told who holds it', async () => {
    const name = fresh();
    const def = await host(1).defineNetwork({ cluster: name, subnet: '10.77.0.0/16', mtu: 1450 });
    for (let round = 0; round < 5; round++) {
      const hosts = [1, 2, 3, 4, 5].map(host);
      const ip = `10.77.1.${round + 10}`;
      const results = await Promise.allSettled(hosts.map((h) => h.claimAddress(def, ip)));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      const winner = (won[0] as PromiseFulfilledResult<{ node: string }>).value.node;
      for (const r of results) {
        if (r.status === 'rejected')
          expect(String(r.reason)).toContain(`Address: ${ip} of cluster network "${name}" is held by node ${winner}`);
      }
      expect(await hosts[0]?.listClaims(name)).toContainEqual(expect.objectContaining({ address: ip, node: winner }));
    }
  });

  it('two hosts define the same new network differently at once: exactly one definition', async () => {
    for (let round = 0; round < 5; round++) {
      const name = fresh();
      const [a, b] = [host(1), host(2)];
      const results = await Promise.allSettled([
        a.defineNetwork({ cluster: name, subnet: '10.77.0.0/16', mtu: 1450 }),
        b.defineNetwork({ cluster: name, subnet: '10.88.0.0/16', mtu: 1450 }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      const recorded = await a.getNetwork(name);
      expect(String(loser.reason)).toContain(`is already defined by node ${recorded?.createdBy} as subnet ${recorded?.subnet}`);
      // Both hosts now agree on the one definition.
      expect(await b.getNetwork(name)).toEqual(recorded);
    }
  });
});

describe('presence and records', () => {
  it('a leased presence key disappears after keep-alive stops; claims and endpoint records stay', async () => {
    const name = fresh();
    const b = host(2);
    const def = await b.defineNetwork({ cluster: name, subnet: '10.77.0.0/16', mtu: 1450 });
    await b.claimAddress(def, '10.77.0.2');
    await b.publishEndpoint({ cluster: name, id: id(2), address: '10.77.0.2', mac: '02:42:0a:4d:00:02' });
    // etcd 3.4's shortest lease is 2 s (1.5 election timeouts, rounded up); the plugin uses 10 s.
    const p = new NodePresence(kv(), b.node, { ttlS: 2 });
    await p.start();
    expect((await b.listNodes()).map((n) => n.name)).toContain('host-2');
    p.abandon();
    const stopped = Date.now();
    await until('presence to expire', async () => !(await b.listNodes()).some((n) => n.name === 'host-2'), 10_000);
    expect(Date.now() - stopped).toBeLessThan(6000);
    expect(await b.listClaims(name)).toEqual([expect.objectContaining({ address: '10.77.0.2', node: 'host-2' })]);
    expect(await b.listEndpoints(name)).toEqual([expect.objectContaining({ id: id(2) })]);
  });

  it('a prefix watch delivers puts and deletes', async () => {
    const name = fresh();
    const k = kv();
    const events: KvEvent[] = [];
    const start = (await k.list(keys.endpoints(name))).revision + 1;
    const w = await k.watch(keys.endpoints(name), start, {
      onEvents: (e) => events.push(...e),
      onBroken: (err) => events.push({ type: 'delete', key: `broken ${err.message}`, modRevision: 0 }),
    });
    const b = host(2);
    await claimAndPublish(b, { cluster: name, id: id(1), address: '10.77.0.2', mac: '02:42:0a:4d:00:02' });
    await b.withdrawEndpoint(name, id(1));
    await until('two events', () => events.length >= 2);
    expect(events.map((e) => `${e.type} ${e.key}`)).toEqual([`put ${keys.endpoint(name, id(1))}`, `delete ${keys.endpoint(name, id(1))}`]);
    await w.cancel();
  });
});

describe('a record put only while its claims are this host’s (issue 22, finding 4)', () => {
  it('putIfValues puts while every guard holds its value, not when one changed or is gone; publishEndpoint refuses another host’s claim', async () => {
    const name = fresh();
    const k = kv();
    const [g1, g2, target] = ['g1', 'g2', 'target'].map((x) => `/mnq4-test/${name}/${x}`) as [string, string, string];
    await k.put(g1, 'one');
    await k.put(g2, 'two');
    expect(
      await k.putIfValues(target, 'a', [
        { key: g1, value: 'one' },
        { key: g2, value: 'two' },
      ]),
    ).toBe(true);
    expect(
      await k.putIfValues(target, 'b', [
        { key: g1, value: 'one' },
        { key: g2, value: 'other' },
      ]),
    ).toBe(false);
    expect(await k.putIfValues(target, 'c', [{ key: `${g1}-gone`, value: '' }])).toBe(false);
    expect((await k.get(target))?.value).toBe('a');
    for (const key of [g1, g2, target]) await k.deleteIfValue(key, (await k.get(key))?.value ?? '');

    const [a, b] = [host(1), host(2)];
    const ref = { cluster: name, subnet: '10.77.0.0/16', gateway: '10.77.0.1' };
    await a.claimAddress(ref, '10.77.0.2');
    const e = { cluster: name, id: id(5), address: '10.77.0.2', mac: '02:42:0a:4d:00:02' };
    await expect(b.publishEndpoint(e)).rejects.toThrow(/10\.77\.0\.2 of cluster network "c.*" is claimed by node host-1 in etcd/);
    expect(await b.listEndpoints(name)).toEqual([]);
    expect(await a.releaseAddress(name, '10.77.0.2')).toBe('released');
    await claimAndPublish(b, e);
    expect(await b.listEndpoints(name)).toEqual([expect.objectContaining({ id: id(5), node: 'host-2' })]);
  });
});

describe('etcd down and back', () => {
  it('etcd killed, or frozen: calls fail within 3 s with a clear message; back: calls work again', async () => {
    const name = fresh();
    const a = host(1);
    const def = await a.defineNetwork({ cluster: name, subnet: '10.77.0.0/16', mtu: 1450 });
    for (const how of ['killed', 'frozen'] as const) {
      if (how === 'killed') await etcd.stop({ keepData: true });
      else etcd.freeze();
      for (const call of [
        () => a.claimAddress(def, '10.77.0.50'),
        () => a.defineNetwork({ cluster: fresh(), subnet: '10.9.0.0/16', mtu: 1450 }),
        () => a.listEndpoints(name),
      ]) {
        const t0 = performance.now();
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        const ms = performance.now() - t0;
        expect(err, how).toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
        expect(String(err)).toMatch(new RegExp(`cluster: etcd at ${etcd.endpoint} (did not answer .* within 3000 ms|failed .*)`));
        expect(ms, `${how}: ${String(err)}`).toBeLessThan(3300);
        console.log(`[figure] etcd ${how}: a call failed after ${ms.toFixed(0)} ms`);
      }
      if (how === 'killed') await etcd.restart();
      else etcd.thaw();
      const back = performance.now();
      // The circuit breaker lets calls through again within about a second.
      await until(
        `calls to work after etcd ${how}`,
        () =>
          a.claimAddress(def, '10.77.0.50').then(
            () => true,
            () => false,
          ),
        10_000,
      );
      console.log(`[figure] etcd ${how} then back: calls work again after ${(performance.now() - back).toFixed(0)} ms`);
    }
  });

  it('etcd restarted: the follower re-lists and converges, nothing lost', async () => {
    const name = fresh();
    const a = host(1);
    const b = host(2);
    await claimAndPublish(b, { cluster: name, id: id(1), address: '10.77.0.2', mac: '02:42:0a:4d:00:02' });
    await claimAndPublish(b, { cluster: name, id: id(2), address: '10.77.0.3', mac: '02:42:0a:4d:00:03' });
    const view = new Map<string, EndpointRecord>();
    const states: string[] = [];
    const f = a.followEndpoints(name, {
      onChanges: (cs: readonly EndpointChange[]) =>
        cs.forEach((c) => (c.type === 'put' ? view.set(c.endpoint.id, c.endpoint) : view.delete(c.endpoint.id))),
      onState: (s) => states.push(s),
      backoffMs: { first: 100, max: 500 },
    });
    try {
      await f.synced();
      expect([...view.keys()].sort()).toEqual([id(1), id(2)]);
      await etcd.stop({ keepData: true });
      await until('the follower to notice', () => f.current === 'resyncing');
      await etcd.restart();
      // Changes made as soon as etcd is back, by a host whose client reconnects first.
      const c = host(3);
      await until(
        'host 3 to reach etcd',
        () =>
          claimAndPublish(c, { cluster: name, id: id(3), address: '10.77.0.4', mac: '02:42:0a:4d:00:04' }).then(
            () => true,
            () => false,
          ),
        10_000,
      );
      expect(
        await b.withdrawEndpoint(name, id(1)).catch(async () => {
          await sleep(1200);
          return b.withdrawEndpoint(name, id(1));
        }),
      ).toBe('withdrawn');
      await until('convergence', () => view.size === 2 && view.has(id(2)) && view.has(id(3)) && f.current === 'synced', 15_000);
      expect(f.syncs).toBeGreaterThanOrEqual(2);
      // And the watch runs again after the re-list.
      await claimAndPublish(c, { cluster: name, id: id(4), address: '10.77.0.5', mac: '02:42:0a:4d:00:05' });
      await until('the new watch to deliver', () => view.has(id(4)));
    } finally {
      await f.stop();
    }
  });

  it('etcd away longer than the presence lease: the lease is lost, granted again, and the presence put back', async () => {
    const b = host(2);
    const events: string[] = [];
    const p = new NodePresence(
      kv(),
      { name: 'host-lease', address: '198.18.0.7' },
      { ttlS: 2, retryMs: 200, onLost: () => events.push('lost'), onRestored: () => events.push('restored') },
    );
    try {
      await p.start();
      await etcd.stop({ keepData: true });
      await sleep(4000);
      await etcd.restart();
      await until(
        'presence restored',
        async () =>
          events.includes('restored') &&
          (await b.listNodes().then(
            (ns) => ns.some((n) => n.name === 'host-lease'),
            () => false,
          )),
        20_000,
      );
      expect(events[0]).toBe('lost');
      // And it is kept alive on the new lease: still there after more than one TTL.
      await sleep(3000);
      expect((await b.listNodes()).map((n) => n.name)).toContain('host-lease');
    } finally {
      await p.stop();
    }
    expect((await b.listNodes()).map((n) => n.name)).not.toContain('host-lease');
  });

  it('etcd lost its data: the follower converges to empty, and to the republished records', async () => {
    const name = fresh();
    const a = host(1);
    const b = host(2);
    const ep = { cluster: name, id: id(9), address: '10.77.0.9', mac: '02:42:0a:4d:00:09' };
    await claimAndPublish(b, ep);
    const view = new Set<string>();
    const f = a.followEndpoints(name, {
      onChanges: (cs) => cs.forEach((c) => (c.type === 'put' ? view.add(c.endpoint.id) : view.delete(c.endpoint.id))),
      backoffMs: { first: 100, max: 500 },
    });
    try {
      await f.synced();
      expect(view.has(id(9))).toBe(true);
      await etcd.stop({ keepData: false });
      await etcd.restart();
      await until('the empty etcd to be seen', () => view.size === 0 && f.current === 'synced', 15_000);
      // What the orchestrator does on reconnect: claim and republish this host's endpoints from its journal.
      await until(
        'the republish',
        () =>
          claimAndPublish(b, ep).then(
            () => true,
            () => false,
          ),
        10_000,
      );
      await until('the republished endpoint', () => view.has(id(9)));
    } finally {
      await f.stop();
    }
  });
});
