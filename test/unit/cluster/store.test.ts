import { describe, expect, it } from 'vitest';
import { ClusterStore, type EndpointChange } from '../../../src/cluster/cluster-store.js';
import { keys } from '../../../src/cluster/keys.js';
import { NodePresence } from '../../../src/cluster/presence.js';
import type { EndpointRecord } from '../../../src/cluster/records.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { waitUntil } from '../../helpers/wait.js';

const A = { name: 'host-a', address: '198.18.0.1' };
const B = { name: 'host-b', address: '198.18.0.2' };
const id = (n: number): string => n.toString(16).padStart(64, '0');
const blue = { cluster: 'blue', subnet: '10.77.0.0/16', mtu: 1450 };

describe('ClusterStore: definitions and claims', () => {
  it('the first definition is recorded; the same one again is accepted; a different one is refused showing the recorded one', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, A);
    const b = new ClusterStore(kv, B);
    const d = await a.defineNetwork(blue);
    expect(d).toMatchObject({ cluster: 'blue', subnet: '10.77.0.0/16', gateway: '10.77.0.1', mtu: 1450, createdBy: 'host-a' });
    expect(await b.defineNetwork({ ...blue, subnet: '10.77.0.9/16' })).toEqual(d);
    // A host with a larger underlay MTU accepts the recorded smaller one; a smaller underlay cannot.
    expect(await b.defineNetwork({ ...blue, mtu: 8950 })).toEqual(d);
    await expect(b.defineNetwork({ ...blue, mtu: 1400 })).rejects.toThrow(
      /mtu 1450, not internal, multicast off; this host asked for .*mtu 1400/,
    );
    await expect(b.defineNetwork({ ...blue, subnet: '10.78.0.0/16' })).rejects.toThrow(
      /cluster network "blue" is already defined by node host-a as subnet 10.77.0.0\/16, gateway 10.77.0.1, vni \d+, mtu 1450, not internal, multicast off; this host asked for subnet 10.78.0.0\/16/,
    );
    await expect(b.defineNetwork({ ...blue, gateway: '10.77.0.254' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('two networks cannot share a VXLAN id', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, A);
    await a.defineNetwork({ ...blue, vni: 7000 });
    await expect(a.defineNetwork({ cluster: 'red', subnet: '10.88.0.0/16', mtu: 1450, vni: 7000 })).rejects.toThrow(
      /VXLAN id 7000 is already used by cluster network "blue"/,
    );
    expect(kv.data.has(keys.network('red'))).toBe(false);
  });

  it('an address is given once: the holder is named; the holder may claim it again; the gateway and foreign addresses are refused', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, A);
    const b = new ClusterStore(kv, B);
    const d = await a.defineNetwork(blue);
    expect(await a.claimAddress(d, '10.77.0.5')).toMatchObject({ address: '10.77.0.5', node: 'host-a' });
    expect(await a.claimAddress(d, '10.77.0.5/16')).toMatchObject({ node: 'host-a' });
    await expect(b.claimAddress(d, '10.77.0.5')).rejects.toThrow(/Address: 10.77.0.5 of cluster network "blue" is held by node host-a/);
    await expect(b.claimAddress(d, '10.77.0.1')).rejects.toThrow(/is the gateway/);
    await expect(b.claimAddress(d, '10.99.0.1')).rejects.toThrow(/not in cluster network "blue"/);
    expect(await b.releaseAddress('blue', '10.77.0.5')).toBe('not-ours');
    expect(await a.releaseAddress('blue', '10.77.0.5')).toBe('released');
    expect(await a.releaseAddress('blue', '10.77.0.5')).toBe('absent');
    expect(await b.claimAddress(d, '10.77.0.5')).toMatchObject({ node: 'host-b' });
  });

  it('claimAny skips what is held (one list) and reports exhaustion', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, A);
    const b = new ClusterStore(kv, B);
    const d = await a.defineNetwork({ cluster: 'tiny', subnet: '10.9.9.0/29', mtu: 1450 });
    const hosts = ['10.9.9.2', '10.9.9.3', '10.9.9.4', '10.9.9.5', '10.9.9.6'];
    await a.claimAddress(d, '10.9.9.2');
    kv.calls.length = 0;
    expect(await b.claimAny(d, hosts)).toMatchObject({ address: '10.9.9.3', node: 'host-b' });
    expect(kv.calls.filter((c) => c.startsWith('list'))).toHaveLength(1);
    expect(kv.calls.filter((c) => c.startsWith('create'))).toHaveLength(1);
    for (const h of ['10.9.9.4', '10.9.9.5', '10.9.9.6']) await a.claimAddress(d, h);
    await expect(b.claimAny(d, hosts)).rejects.toMatchObject({ code: 'POOL_EXHAUSTED' });
  });

  it('every call fails with CLUSTER_UNAVAILABLE when etcd is down, and nothing is half-written', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, A);
    const d = await a.defineNetwork(blue);
    kv.down = true;
    await expect(a.claimAddress(d, '10.77.0.9')).rejects.toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
    await expect(a.defineNetwork({ ...blue, cluster: 'red' })).rejects.toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
    await expect(a.publishEndpoint({ cluster: 'blue', id: id(1), address: '10.77.0.9', mac: '02:42:0a:4d:00:09' })).rejects.toMatchObject({
      code: 'CLUSTER_UNAVAILABLE',
    });
    kv.down = false;
    expect(await a.listClaims('blue')).toEqual([]);
  });

  it('a corrupt definition in etcd stops the call with STATE_CORRUPT naming the key', async () => {
    const kv = new MemoryKv();
    kv.external(keys.network('blue'), '{"v":1}');
    const err = new ClusterStore(kv, A).defineNetwork(blue);
    await expect(err).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
    await expect(err).rejects.toThrow(
      /etcd holds a record mynet cannot use: \/mynet\/v1\/networks\/blue: \/cluster must be a cluster name/,
    );
  });
});

describe('ClusterStore: endpoints and following them', () => {
  const rec = (n: number): Parameters<ClusterStore['publishEndpoint']>[0] => ({
    cluster: 'blue',
    id: id(n),
    address: `10.77.0.${n + 1}`,
    mac: `02:42:0a:4d:00:${(n + 1).toString(16).padStart(2, '0')}`,
    name: `c${n}`,
  });

  /** A record is published only with its address claimed (claim-guard.ts): claim, then publish, as a host does. */
  const pub = async (s: ClusterStore, r: Parameters<ClusterStore['publishEndpoint']>[0]): Promise<EndpointRecord> => {
    await s.claimAddress({ cluster: 'blue', subnet: '10.77.0.0/16', gateway: '10.77.0.1' }, r.address);
    return s.publishEndpoint(r);
  };

  it("publish is not on a lease, withdraw only removes this node's own", async () => {
    const kv = new MemoryKv();
    const b = new ClusterStore(kv, B);
    const r = await pub(b, rec(1));
    expect(r).toMatchObject({ node: 'host-b', underlay: '198.18.0.2', address: '10.77.0.2' });
    expect(kv.data.get(keys.endpoint('blue', id(1)))?.lease).toBeUndefined();
    expect(await new ClusterStore(kv, A).withdrawEndpoint('blue', id(1))).toBe('not-ours');
    expect(await b.withdrawEndpoint('blue', id(1))).toBe('withdrawn');
    expect(await b.withdrawEndpoint('blue', id(1))).toBe('absent');
  });

  it("follows puts and deletes, then after a broken watch re-lists and converges: the gap's changes come, once, deletes included", async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, A);
    const b = new ClusterStore(kv, B);
    await pub(b, rec(1));
    await pub(b, rec(2));
    const seen: string[] = [];
    const view = new Map<string, EndpointRecord>();
    const apply = (cs: readonly EndpointChange[], how: { resync: boolean }): void => {
      for (const c of cs) {
        seen.push(`${how.resync ? 'resync ' : ''}${c.type} ${c.endpoint.id.slice(-1)}`);
        if (c.type === 'put') view.set(c.endpoint.id, c.endpoint);
        else view.delete(c.endpoint.id);
      }
    };
    const f = a.followEndpoints('blue', { onChanges: apply, backoffMs: { first: 5, max: 20 } });
    await f.synced();
    expect(seen.sort()).toEqual(['put 1', 'put 2']);
    seen.length = 0;
    await pub(b, rec(3));
    await b.withdrawEndpoint('blue', id(1));
    expect(seen).toEqual(['put 3', 'delete 1']);
    seen.length = 0;
    // The connection breaks; while it is down, endpoint 2 goes, 4 comes, 3 moves.
    kv.breakWatches();
    expect(f.current).toBe('resyncing');
    kv.down = true;
    await b.withdrawEndpoint('blue', id(2)).catch(() => undefined);
    kv.down = false;
    kv.external(keys.endpoint('blue', id(2)), undefined);
    await pub(b, rec(4));
    await pub(b, { ...rec(3), address: '10.77.0.99' });
    await f.synced();
    expect(seen.sort()).toEqual(['resync delete 2', 'resync put 3', 'resync put 4']);
    expect([...view.values()].map((e) => e.address).sort()).toEqual(['10.77.0.5', '10.77.0.99']);
    expect(kv.liveWatches).toBe(1);
    expect(f.syncs).toBe(2);
    await f.stop();
    expect(kv.liveWatches).toBe(0);
  });

  it('etcd lost its data (revisions start again at 1): converges to empty, then follows the republished records', async () => {
    const kv = new MemoryKv();
    const b = new ClusterStore(kv, B);
    for (let n = 1; n <= 20; n++) await pub(b, rec(n));
    const view = new Set<string>();
    const f = new ClusterStore(kv, A).followEndpoints('blue', {
      onChanges: (cs) => cs.forEach((c) => (c.type === 'put' ? view.add(c.endpoint.id) : view.delete(c.endpoint.id))),
      backoffMs: { first: 5, max: 10 },
    });
    await f.synced();
    expect(view.size).toBe(20);
    kv.wipe();
    await f.synced();
    expect(view.size).toBe(0);
    await pub(b, rec(3));
    expect([...view]).toEqual([id(3)]);
    await f.stop();
  });

  it('keeps re-listing while etcd is down, then converges', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, A);
    const states: string[] = [];
    const view = new Set<string>();
    kv.down = true;
    const f = a.followEndpoints('blue', {
      onChanges: (cs) => cs.forEach((c) => (c.type === 'put' ? view.add(c.endpoint.id) : view.delete(c.endpoint.id))),
      onState: (s) => states.push(s),
      backoffMs: { first: 5, max: 10 },
    });
    const lists = (): number => kv.calls.filter((c) => c.startsWith('list')).length;
    await waitUntil('three lists while etcd is down', () => lists() > 2);
    expect(lists()).toBeGreaterThan(2);
    expect(view.size).toBe(0);
    kv.down = false;
    await pub(new ClusterStore(kv, B), rec(7));
    await f.synced();
    expect([...view]).toEqual([id(7)]);
    expect(states.at(-1)).toBe('synced');
    expect(states).toContain('resyncing');
    await f.stop();
  });

  it('a record that does not fit is reported and never used; a good record turned bad is removed', async () => {
    const kv = new MemoryKv();
    const problems: string[] = [];
    const view = new Set<string>();
    const f = new ClusterStore(kv, A).followEndpoints('blue', {
      onChanges: (cs) => cs.forEach((c) => (c.type === 'put' ? view.add(c.endpoint.id) : view.delete(c.endpoint.id))),
      onProblem: (p) => problems.push(p),
    });
    await f.synced();
    await pub(new ClusterStore(kv, B), rec(5));
    expect(view.has(id(5))).toBe(true);
    kv.external(
      keys.endpoint('blue', id(5)),
      JSON.stringify({ ...(JSON.parse(kv.data.get(keys.endpoint('blue', id(5)))?.value ?? '{}') as EndpointRecord), mac: 'zz' }),
    );
    expect(view.has(id(5))).toBe(false);
    expect(problems[0]).toMatch(/\/mac must be a MAC address/);
    await f.stop();
  });
});

describe('NodePresence', () => {
  it('is on a lease: it goes when the lease does, while claims and endpoints stay', async () => {
    const kv = new MemoryKv();
    const b = new ClusterStore(kv, B);
    const d = await b.defineNetwork(blue);
    await b.claimAddress(d, '10.77.0.2');
    await b.publishEndpoint({ cluster: 'blue', id: id(1), address: '10.77.0.2', mac: '02:42:0a:4d:00:02' });
    const p = new NodePresence(kv, B);
    await p.start();
    expect((await b.listNodes()).map((n) => n.name)).toEqual(['host-b']);
    p.abandon();
    expect(await b.listNodes()).toEqual([]);
    expect(await b.listClaims('blue')).toHaveLength(1);
    expect(await b.listEndpoints('blue')).toHaveLength(1);
  });

  it('refuses a live node of the same name at another address, takes over its own', async () => {
    const kv = new MemoryKv();
    await new NodePresence(kv, B).start();
    await expect(new NodePresence(kv, { name: 'host-b', address: '198.18.0.9' }).start()).rejects.toThrow(
      /node "host-b" is already present in the cluster at 198.18.0.2/,
    );
    await new NodePresence(kv, B).start();
    expect(await new ClusterStore(kv, A).listNodes()).toHaveLength(1);
  });

  it('a lost lease is granted again and the key put back', async () => {
    const kv = new MemoryKv();
    const events: string[] = [];
    const p = new NodePresence(kv, B, { retryMs: 5, onLost: () => events.push('lost'), onRestored: () => events.push('restored') });
    await p.start();
    const [loseIt] = [...kv.lost.values()];
    loseIt?.();
    expect(await new ClusterStore(kv, A).listNodes()).toEqual([]);
    await waitUntil('the presence restored', () => events.includes('restored'));
    expect(events).toEqual(['lost', 'restored']);
    expect((await new ClusterStore(kv, A).listNodes()).map((n) => n.address)).toEqual(['198.18.0.2']);
    await p.stop();
    expect(await new ClusterStore(kv, A).listNodes()).toEqual([]);
  });
});
