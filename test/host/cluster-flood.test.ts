/**
 * Issue 23, item 5, host tier: the flood entries of a `mynet.multicast` cluster network follow
 * its membership in a real kernel, from a real etcd. One "host" namespace (mnt-no-…) with a
 * mynet bridge and VXLAN device and the real data plane (multihost/plane.ts) following etcd;
 * two other nodes' endpoint records (underlay 198.18.121.2 and .3, nowhere on a link) are
 * written to etcd as those hosts write them. The all-zero entry's destinations, read back with
 * `bridge -j fdb`, are exactly the member hosts: one per host however many endpoints it has,
 * gone with its last endpoint, back after a hand-made deletion through the doctor's comparison
 * (doctor/vxlan-entries.ts, on the plane's view and the entries read back).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../src/cluster/cluster-store.js';
import { EtcdKv } from '../../src/cluster/etcd-kv.js';
import type { ClusterBinding } from '../../src/driver/state.js';
import { applyPlan } from '../../src/host/executor.js';
import { NetworkPlane } from '../../src/multihost/plane.js';
import { bridgeSteps, macFromIPv4 } from '../../src/plan/link.js';
import { defaultBridgeName } from '../../src/plan/link-names.js';
import { parseFdb, parseFlood, parseNeigh, vxlanDeviceSteps, vxlanName } from '../../src/plan/vxlan.js';
import { entryDifferences } from '../../src/doctor/vxlan-entries.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { createNetns, destroyCreated, dockerId, silentLog, type TestNetns } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';

const CLUSTER = `no${Date.now().toString(36)}`;
const [A, B, C] = ['198.18.121.1', '198.18.121.2', '198.18.121.3'];

let etcd: TestEtcd;
let ns: TestNetns;
let plane: NetworkPlane;
let binding: ClusterBinding;
const kvs: EtcdKv[] = [];
const networkId = dockerId();
const stores: Record<string, ClusterStore> = {};

const flood = async (): Promise<string[]> =>
  [...parseFlood(await ns.run(['bridge', '-j', 'fdb', 'show', 'dev', vxlanName(networkId)]))].sort();
const floodIs = (want: string[]): Promise<number> =>
  waitUntil(`flood entries ${want.join(',') || 'none'}`, async () => JSON.stringify(await flood()) === JSON.stringify(want), {
    ms: 10_000,
    every: 25,
  });

/** An endpoint of node `n`, as that host writes it: its address claimed, then its record. */
async function endpoint(n: string, ip: string): Promise<string> {
  const s = stores[n] as ClusterStore;
  const id = dockerId();
  await s.claimAddress({ cluster: CLUSTER, subnet: '10.212.8.0/24', gateway: '10.212.8.1' }, ip);
  await s.publishEndpoint({ cluster: CLUSTER, id, address: ip, mac: macFromIPv4(`${ip}/24`) });
  return id;
}

beforeAll(async () => {
  etcd = await startEtcd({ dirPrefix: 'mnt-no-etcd-' });
  for (const [n, addr] of [
    ['a', A],
    ['b', B],
    ['c', C],
  ] as const) {
    const kv = new EtcdKv({ endpoints: [etcd.endpoint] });
    kvs.push(kv);
    stores[n] = new ClusterStore(kv, { name: `mnt-no-${n}`, address: addr });
  }
  const def = await (stores.a as ClusterStore).defineNetwork({ cluster: CLUSTER, subnet: '10.212.8.0/24', mtu: 1450, multicast: true });
  expect(def.multicast).toBe(true);
  ns = await createNetns({ prefix: 'mnt-no-' });
  const bridge = defaultBridgeName(networkId);
  await applyPlan(
    ns.exec,
    bridgeSteps({ networkId, name: bridge, mtu: 1450, addresses: [`${def.gateway}/24`], mac: def.gatewayMac }),
    silentLog,
  );
  await applyPlan(ns.exec, vxlanDeviceSteps({ networkId, cluster: CLUSTER, vni: def.vni, bridge, local: A, mtu: 1450 }), silentLog);
  binding = {
    name: CLUSTER,
    subnet: def.subnet,
    gateway: def.gateway,
    gatewayMac: def.gatewayMac,
    vni: def.vni,
    mtu: 1450,
    local: A,
    multicast: true,
  };
  plane = new NetworkPlane(networkId, binding, {
    store: stores.a as ClusterStore,
    exec: ns.exec,
    read: (argv) => ns.run(argv),
    log: silentLog,
    self: 'mnt-no-a',
    selfUnderlay: A,
    own: () => ({ ids: new Set(), addresses: new Map(), macs: new Map() }),
    backoffMs: { first: 50, max: 200 },
  });
  plane.start();
}, 60_000);

afterAll(async () => {
  await plane?.stop();
  await Promise.all(kvs.map((k) => k.close()));
  await destroyCreated();
  await etcd?.destroy();
});

describe('mynet.multicast: flood entries follow membership (real kernel, real etcd)', () => {
  it('one all-zero destination per member host, added and removed with its endpoints, repaired by the doctor', async () => {
    expect(await flood()).toEqual([]);
    const b1 = await endpoint('b', '10.212.8.10');
    await floodIs([B]);
    const b2 = await endpoint('b', '10.212.8.11');
    const c1 = await endpoint('c', '10.212.8.20');
    await floodIs([B, C]);
    // The endpoints' own entries are there too, and one flood row per host, not per endpoint.
    const rows = JSON.parse(await ns.run(['bridge', '-j', 'fdb', 'show', 'dev', vxlanName(networkId)])) as { mac: string; dst?: string }[];
    expect(rows.filter((r) => r.mac === '00:00:00:00:00:00')).toHaveLength(2);
    expect(rows.some((r) => r.mac === macFromIPv4('10.212.8.20/24') && r.dst === C)).toBe(true);

    await (stores.b as ClusterStore).withdrawEndpoint(CLUSTER, b1);
    await plane.idle();
    await waitUntil(
      'b1 gone',
      async () => !(await ns.run(['bridge', 'fdb', 'show', 'dev', vxlanName(networkId)])).includes(macFromIPv4('10.212.8.10/24')),
      { ms: 10_000, every: 25 },
    );
    expect(await flood()).toEqual([B, C]); // b still has an endpoint
    await (stores.c as ClusterStore).withdrawEndpoint(CLUSTER, c1);
    await floodIs([B]);

    // A destination deleted by hand: the doctor's comparison reports it and its repair puts it back.
    const dev = vxlanName(networkId);
    await ns.run(['bridge', 'fdb', 'del', '00:00:00:00:00:00', 'dev', dev, 'dst', B, 'self']);
    await plane.idle();
    const fdb = await ns.run(['bridge', '-j', 'fdb', 'show', 'dev', dev]);
    const kernel = {
      fdb: parseFdb(fdb),
      neigh: parseNeigh(await ns.run(['ip', '-j', 'neigh', 'show', 'dev', dev])),
      flood: parseFlood(fdb),
    };
    const found = entryDifferences({ id: networkId, cluster: binding }, plane.view(), kernel);
    expect(found.map((d) => d.object)).toEqual([`${dev} flood ${B}`]);
    for (const d of found) await applyPlan(ns.exec, d.fix, silentLog);
    expect(await flood()).toEqual([B]);

    await (stores.b as ClusterStore).withdrawEndpoint(CLUSTER, b2);
    await floodIs([]);
  });
});
