/**
 * Issue 22, finding 21: a cluster network's definition could never be removed. Once every host
 * had deleted the network, etcd still held its definition and VXLAN id, and a new network of that
 * cluster name with another subnet was refused for good. Now each host keeps a membership of the
 * definition and the last one out removes it (cluster/definition-members.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../../src/cluster/cluster-store.js';
import { vniFor } from '../../../src/cluster/identity.js';
import { keys } from '../../../src/cluster/keys.js';
import type { Kv } from '../../../src/cluster/kv.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { type ClusterHost, clusterHost, clusterNetwork } from '../../helpers/cluster-host.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

const host = (kv: MemoryKv, name: string, address: string, refused?: Map<string, number>): ClusterHost => {
  const h = clusterHost(kv, name, address, { ...(refused && { refused }) });
  agents.push(h.agent);
  return h;
};
/** What etcd holds apart from the hosts' presences. */
const held = (kv: MemoryKv): string[] => [...kv.data.keys()].filter((k) => !k.startsWith(keys.nodes())).sort();
const gone = (kv: MemoryKv): Promise<number> =>
  waitUntil('the definition gone from etcd', () => held(kv).length === 0, { ms: 3000, every: 5 });
const subnetOf = (kv: MemoryKv): string | undefined =>
  (JSON.parse(kv.data.get(keys.network('blue'))?.value ?? '{}') as { subnet?: string }).subnet;

async function container(h: ClusterHost, pool: string, net: string, ep: string): Promise<void> {
  const ip = await h.plugin.requestAddress({ PoolID: pool }, log);
  await h.plugin.createEndpoint({ NetworkID: net, EndpointID: ep, Interface: { Address: ip.Address } }, log);
}

describe('a cluster network is removed from etcd by the last host that deletes it (finding 21)', () => {
  it('kept while one host has it; gone, VXLAN id and claims included, when both deleted it; then made again with another subnet', async () => {
    const kv = new MemoryKv();
    const [a, b] = [host(kv, 'host-a', '198.18.0.1'), host(kv, 'host-b', '198.18.0.2')];
    const [na, nb] = [hexId(0xa1), hexId(0xb1)];
    const pa = await clusterNetwork(a, { network: na, pool: '10.77.0.0/16', cluster: 'blue' });
    await clusterNetwork(b, { network: nb, pool: '10.77.0.0/16', cluster: 'blue' });
    await container(a, pa, na, hexId(0xa2));
    expect(held(kv)).toContain(keys.member('blue', 'host-a'));
    expect(held(kv)).toContain(keys.member('blue', 'host-b'));

    await a.plugin.deleteEndpoint({ NetworkID: na, EndpointID: hexId(0xa2) }, log);
    await a.plugin.deleteNetwork({ NetworkID: na }, log);
    await waitUntil("A's departure settled", () => a.plugin.state.departures.size === 0, { ms: 3000, every: 5 });
    // B still has it: the definition and B's membership stay, A's is gone.
    expect(held(kv).filter((k) => !k.includes('/members/'))).toEqual([keys.network('blue'), keys.vni(vniFor('blue'))]);
    expect(held(kv).filter((k) => k.includes('/members/'))).toEqual([keys.member('blue', 'host-b')]);

    await b.plugin.deleteNetwork({ NetworkID: nb }, log);
    await gone(kv);
    // Before: CONFLICT "already defined by node host-a as subnet 10.77.0.0/16 ...", for good.
    await clusterNetwork(a, { network: hexId(0xa3), pool: '10.78.0.0/16', cluster: 'blue' });
    expect(subnetOf(kv)).toBe('10.78.0.0/16');
  });

  it('a network deleted while etcd is down leaves its definition when etcd is back', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    await clusterNetwork(a, { network: hexId(0xa1), pool: '10.77.0.0/16', cluster: 'blue' });
    kv.down = true;
    await a.plugin.deleteNetwork({ NetworkID: hexId(0xa1) }, log);
    // The departure waits in the journal, retried on the back-off (10-50 ms here).
    await new Promise((r) => setTimeout(r, 200));
    expect(a.plugin.state.departures.has('blue')).toBe(true);
    expect(held(kv)).toContain(keys.network('blue'));
    kv.down = false;
    await gone(kv);
    await waitUntil('the departure settled', () => a.plugin.state.departures.size === 0, { ms: 3000, every: 5 });
  });

  it('a definition written before memberships reads as before and is kept; a refused membership is counted and never a member', async () => {
    const kv = new MemoryKv();
    const refused = new Map<string, number>();
    const old = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1', refused);
    // The bytes an older mynet wrote: no `members` field, no membership keys.
    await new ClusterStore(old, { name: 'host-old', address: '198.18.0.9' }).defineNetwork({
      cluster: 'blue',
      subnet: '10.77.0.0/16',
      mtu: 1450,
    });
    const legacy = JSON.parse(old.data.get(keys.network('blue'))?.value ?? '{}') as Record<string, unknown>;
    delete legacy.members;
    kv.external(keys.network('blue'), JSON.stringify(legacy));
    kv.external(keys.vni(legacy.vni as number), JSON.stringify({ v: 1, cluster: 'blue' }));
    await clusterNetwork(a, { network: hexId(0xa1), pool: '10.77.0.0/16', cluster: 'blue' });
    expect(held(kv).filter((k) => k.includes('/members/'))).toEqual([]);
    await a.plugin.deleteNetwork({ NetworkID: hexId(0xa1) }, log);
    await waitUntil('the departure settled', () => a.plugin.state.departures.size === 0, { ms: 3000, every: 5 });
    expect(kv.data.get(keys.network('blue'))?.value).toBe(JSON.stringify(legacy));

    // A definition of today's, and a membership under host-z's key that names host-y: refused.
    kv.external(keys.network('blue'), undefined);
    kv.external(keys.vni(legacy.vni as number), undefined);
    await clusterNetwork(a, { network: hexId(0xa2), pool: '10.79.0.0/16', cluster: 'blue' });
    kv.external(
      keys.member('blue', 'host-z'),
      JSON.stringify({ v: 1, cluster: 'blue', node: 'host-y', joinedAt: new Date().toISOString() }),
    );
    await a.plugin.deleteNetwork({ NetworkID: hexId(0xa2) }, log);
    await gone(kv);
    expect(refused.get('bad-membership')).toBe(1);
  });
});

/** A Kv whose first writeIfAt waits for `open`: a host's join read, then held between its read and its write. */
function heldAtFirstTxn(kv: Kv): { kv: Kv; reached: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  let reached = (): void => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const at = new Promise<void>((r) => (reached = r));
  let first = true;
  const proxy = Object.create(kv) as Kv;
  proxy.writeIfAt = async (c, w) => {
    if (first) {
      first = false;
      reached();
      await gate;
    }
    return kv.writeIfAt(c, w);
  };
  return { kv: proxy, reached: at, open };
}

describe('a create racing the last host out (finding 21)', () => {
  const wanted = { cluster: 'blue', subnet: '10.77.0.0/16', mtu: 1450 };

  it('the removal first: the join read the definition, its write fails, and it makes a new one of its own (members: only it)', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, { name: 'host-a', address: '198.18.0.1' });
    await a.defineNetwork(wanted);
    const slow = heldAtFirstTxn(kv);
    const b = new ClusterStore(slow.kv, { name: 'host-b', address: '198.18.0.2' });
    const joining = b.defineNetwork({ ...wanted, subnet: '10.77.0.0/16' });
    await slow.reached;
    expect(await a.leaveNetwork('blue')).toEqual({ outcome: { kind: 'removed' }, refused: [] });
    expect(kv.data.has(keys.network('blue'))).toBe(false);
    slow.open();
    const def = await joining;
    expect(def.createdBy).toBe('host-b');
    expect([...kv.data.keys()].filter((k) => k.includes('/members/'))).toEqual([keys.member('blue', 'host-b')]);
    expect(kv.data.has(keys.vni(def.vni))).toBe(true);
  });

  it('the join first: the last host out reads it again and keeps the definition for it', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, { name: 'host-a', address: '198.18.0.1' });
    const recorded = await a.defineNetwork(wanted);
    const slow = heldAtFirstTxn(kv);
    const leaver = new ClusterStore(slow.kv, { name: 'host-a', address: '198.18.0.1' });
    const leaving = leaver.leaveNetwork('blue');
    await slow.reached; // it read "no other member"
    await new ClusterStore(kv, { name: 'host-b', address: '198.18.0.2' }).defineNetwork(wanted);
    slow.open();
    expect(await leaving).toEqual({ outcome: { kind: 'kept', by: ['host-b'] }, refused: [] });
    expect(kv.data.get(keys.network('blue'))?.value).toBe(JSON.stringify(recorded));
    expect([...kv.data.keys()].filter((k) => k.includes('/members/'))).toEqual([keys.member('blue', 'host-b')]);
  });
});
