/**
 * The doctor on cluster networks, with real kernels and a real etcd: two "hosts" as namespaces
 * on an underlay bridge, each an in-process Plugin with its ClusterAgent (as main.ts wires them),
 * driven as dockerd drives them. The VXLAN device is a known link (never an orphan); forwarding
 * and neighbour entries that drift from etcd are found and repaired; a device or a firewall the
 * kernel lost is made again with its members; the VXLAN guard deleted by hand is found and put
 * back by the doctor and by the reconcile loop's policy (etcd down too), after which a stranger's
 * VXLAN is dropped again; a VXLAN device with a wrong VNI or source address is made again with
 * its entries. Everything is removed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../src/cluster/cluster-store.js';
import { EtcdKv } from '../../src/cluster/etcd-kv.js';
import { ClusterAgent } from '../../src/multihost/agent.js';
import type { Plugin } from '../../src/plugin.js';
import { vxlanName } from '../../src/plan/vxlan.js';
import { dropCounter, guardChain, peerSet } from '../../src/plan/vxlan-firewall.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { createNetns, destroyCreated, dockerId, silentLog as log, type TestNetns } from '../helpers/netns.js';
import { buildPlugin } from './plugin-fixture.js';
import { waitUntil } from '../helpers/wait.js';

interface Host {
  readonly ns: TestNetns;
  readonly plugin: Plugin;
  readonly agent: ClusterAgent;
  readonly kv: EtcdKv;
  poolId?: string;
}

const CLUSTER = `doc${Date.now().toString(36)}`;
const NET = dockerId();
const GW = { RequestAddressType: 'com.docker.network.gateway' };
let etcd: TestEtcd;
let underlay: TestNetns;
let stranger: TestNetns;
const hosts: Host[] = [];

const until = (what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<number> => waitUntil(what, ok, { ms, every: 25 });

async function makeHost(n: number): Promise<Host> {
  const ns = await createNetns();
  const address = `198.18.50.${n}`;
  await underlay.run(['ip', 'link', 'add', `mntdoc${n}`, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', ns.name]);
  await underlay.run(['ip', 'link', 'set', `mntdoc${n}`, 'master', 'mntdocul', 'up']);
  await ns.run(['ip', 'addr', 'add', `${address}/24`, 'dev', 'ul0']);
  await ns.run(['ip', 'link', 'set', 'ul0', 'up']);
  const kv = new EtcdKv({ endpoints: [etcd.endpoint] });
  const ref: { plugin?: Plugin } = {};
  const agent = new ClusterAgent({
    store: new ClusterStore(kv, { name: `doc-host-${n}`, address }),
    underlayMtu: 1500,
    exec: ns.exec,
    read: (argv) => ns.run(argv),
    log,
    state: () => (ref.plugin as Plugin).state,
    backoffMs: { first: 50, max: 200 },
  });
  ref.plugin = buildPlugin(ns, { cluster: agent });
  agent.start();
  return { ns, plugin: ref.plugin, agent, kv };
}

async function createNetwork(h: Host): Promise<void> {
  const p = await h.plugin.requestPool({ Pool: '10.77.0.0/16' }, log);
  const g = await h.plugin.requestAddress({ PoolID: p.PoolID, Options: GW }, log);
  await h.plugin.createNetwork(
    {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': { 'mynet.cluster': CLUSTER } },
      IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: g.Address }],
    },
    log,
  );
  h.poolId = p.PoolID;
}

const fdbOf = async (h: Host): Promise<string> => h.ns.run(['bridge', 'fdb', 'show', 'dev', vxlanName(NET)]);
const neighOf = async (h: Host): Promise<string> => h.ns.run(['ip', 'neigh', 'show', 'dev', vxlanName(NET)]);

beforeAll(async () => {
  etcd = await startEtcd();
  underlay = await createNetns();
  await underlay.run(['ip', 'link', 'add', 'mntdocul', 'type', 'bridge']);
  await underlay.run(['ip', 'link', 'set', 'mntdocul', 'up']);
  hosts.push(await makeHost(1), await makeHost(2));
  // A namespace on the underlay that is no member (198.18.50.9): VXLAN of its own to host 2.
  stranger = await createNetns();
  await underlay.run(['ip', 'link', 'add', 'mntdoc9', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', stranger.name]);
  await underlay.run(['ip', 'link', 'set', 'mntdoc9', 'master', 'mntdocul', 'up']);
  await stranger.run(['ip', 'addr', 'add', '198.18.50.9/24', 'dev', 'ul0']);
  await stranger.run(['ip', 'link', 'set', 'ul0', 'up']);
  for (const h of hosts) await createNetwork(h);
  const [a] = hosts as [Host, Host];
  const ip = (await a.plugin.requestAddress({ PoolID: a.poolId as string }, log)).Address;
  await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: dockerId(), Interface: { Address: ip } }, log);
  await until("host 2 programs host 1's endpoint", async () => (await fdbOf(hosts[1] as Host)).includes('dst 198.18.50.1'));
}, 60_000);

afterAll(async () => {
  for (const h of hosts) {
    await h.agent.stop();
    await h.kv.close();
  }
  await destroyCreated();
  await etcd?.destroy();
});

const vniOf = (h: Host): number => h.plugin.state.networks.get(NET)?.cluster?.vni as number;
const drops = async (h: Host): Promise<number> =>
  Number(/packets (\d+)/.exec(await h.ns.run(['nft', 'list', 'counter', 'inet', 'mynet', dropCounter(NET)]))?.[1] ?? NaN);
const deleteGuard = async (h: Host): Promise<void> => {
  for (const [kind, name] of [
    ['chain', guardChain(NET)],
    ['set', peerSet(NET)],
    ['counter', dropCounter(NET)],
  ])
    await h.ns.run(['nft', 'delete', kind as string, 'inet', 'mynet', name as string]);
};
const guardObject = `VXLAN guard ${guardChain(NET)}`;

/** The stranger sends VXLAN with the network's VNI to host 2 (ARP for a container's address, flooded there). */
async function strangerSends(vni: number): Promise<void> {
  if (!(await stranger.succeeds(['ip', 'link', 'show', 'dev', 'mntdocx']))) {
    await stranger.run([
      'ip',
      'link',
      'add',
      'mntdocx',
      'type',
      'vxlan',
      'id',
      String(vni),
      'local',
      '198.18.50.9',
      'dstport',
      '4789',
      'nolearning',
    ]);
    await stranger.run(['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'mntdocx', 'dst', '198.18.50.2']);
    await stranger.run(['ip', 'addr', 'add', '10.77.200.9/16', 'dev', 'mntdocx']);
    await stranger.run(['ip', 'link', 'set', 'mntdocx', 'up']);
    // A fixed neighbour: each echo request is one frame to host 2, and no ARP goes on after the call.
    await stranger.run(['ip', 'neigh', 'replace', '10.77.0.250', 'lladdr', '02:6d:00:00:00:fa', 'dev', 'mntdocx', 'nud', 'permanent']);
  }
  // busybox's ping: this machine has no other. Each echo request is one frame (the neighbour is fixed).
  await stranger.run(['busybox', 'ping', '-c', '3', '-i', '0.2', '-W', '1', '10.77.0.250']).catch(() => undefined); // no answer is expected
}

describe('the doctor on a cluster network', () => {
  it('the VXLAN device is a known link: no differences on a healthy host', async () => {
    const b = hosts[1] as Host;
    expect((await b.plugin.doctor(log, 'none')).map((r) => r.difference.object)).toEqual([]);
  });

  it('a lost forwarding entry and a stray neighbour entry are found and repaired', async () => {
    const b = hosts[1] as Host;
    const mac = /^(\S+) dst 198\.18\.50\.1/m.exec(await fdbOf(b))?.[1] as string;
    await b.ns.run(['bridge', 'fdb', 'del', mac, 'dev', vxlanName(NET), 'self']);
    await b.ns.run(['ip', 'neigh', 'replace', '10.77.9.9', 'lladdr', '02:00:00:00:09:09', 'dev', vxlanName(NET), 'nud', 'permanent']);
    const found = await b.plugin.doctor(log, 'none');
    expect(found.map((r) => [r.difference.kind, r.difference.object, r.repaired]).sort()).toEqual([
      ['drift', `${vxlanName(NET)} entry 10.77.0.2`, false],
      ['drift', `${vxlanName(NET)} neighbour 10.77.9.9`, false],
    ]);
    // The reconcile loop's policy repairs both (what etcd's records say, on our own device).
    expect((await b.plugin.doctor(log, 'safe')).every((r) => r.repaired)).toBe(true);
    expect(await fdbOf(b)).toContain(`${mac} dst 198.18.50.1`);
    expect(await neighOf(b)).not.toContain('10.77.9.9');
    expect(await b.plugin.doctor(log, 'none')).toEqual([]);
  });

  it("the VXLAN guard deleted by hand: the doctor reports it, --fix puts it back with its member, and a stranger's VXLAN is dropped again", async () => {
    const b = hosts[1] as Host;
    await deleteGuard(b);
    const found = await b.plugin.doctor(log, 'none');
    expect(found.map((r) => [r.difference.object, r.difference.detail])).toEqual([
      [guardObject, 'its chain is missing: VXLAN from any host is accepted'],
    ]);
    const fixed = await b.plugin.doctor(log, 'all');
    expect(fixed.map((r) => [r.difference.object, r.repaired])).toEqual([[guardObject, true]]);
    expect(await b.ns.run(['nft', 'list', 'set', 'inet', 'mynet', peerSet(NET)])).toContain('198.18.50.1');
    const before = await drops(b);
    await strangerSends(vniOf(b));
    expect(await drops(b)).toBeGreaterThanOrEqual(before + 3);
    expect(await b.plugin.doctor(log, 'none')).toEqual([]);
  });

  it("with etcd unreachable, the reconcile loop's policy puts the guard back with the members the data plane last knew", async () => {
    const b = hosts[1] as Host;
    await etcd.stop({ keepData: true });
    try {
      await until('host 2 notices that etcd is gone', () => Promise.resolve(b.agent.planes.get(NET)?.synced === false));
      await deleteGuard(b);
      // main.ts's loop: plugin.doctor(log, 'safe'); the entries of an unfollowed plane are listed as not compared.
      const r = await b.plugin.doctor(log, 'safe');
      expect(r.map((x) => [x.difference.object, x.repaired])).toEqual([
        [guardObject, true],
        [vxlanName(NET), false],
      ]);
      expect(await b.ns.run(['nft', 'list', 'set', 'inet', 'mynet', peerSet(NET)])).toContain('198.18.50.1');
      const before = await drops(b);
      await strangerSends(vniOf(b));
      expect(await drops(b)).toBeGreaterThanOrEqual(before + 3);
    } finally {
      await etcd.restart();
    }
    await until('host 2 follows etcd again', () => Promise.resolve(b.agent.planes.get(NET)?.synced === true));
  });

  it.each([
    ['a wrong VNI', (vni: number) => ['id', String(vni + 1), 'local', '198.18.50.2'], 'VNI'],
    ['a wrong local address', (vni: number) => ['id', String(vni), 'local', '198.18.50.77'], 'local address 198.18.50.77'],
  ])(
    'a VXLAN device with %s is reported, made again as recorded, on its bridge, with its forwarding entries',
    async (_what, attrs, detail) => {
      const b = hosts[1] as Host;
      const dev = vxlanName(NET);
      const vni = vniOf(b);
      await b.ns.run(['ip', 'link', 'del', dev]);
      await b.ns.run([
        'ip',
        'link',
        'add',
        'name',
        dev,
        'mtu',
        '1450',
        'group',
        '28014',
        'type',
        'vxlan',
        ...attrs(vni),
        'dstport',
        '4789',
        'nolearning',
        'proxy',
      ]);
      await b.ns.run(['ip', 'link', 'set', 'dev', dev, 'master', `mn-${NET.slice(0, 12)}`, 'up']);
      const found = await b.plugin.doctor(log, 'none');
      expect(found.map((r) => r.difference.object)).toEqual([`vxlan ${dev}`]);
      expect(found[0]?.difference.detail).toContain(detail);
      expect((await b.plugin.doctor(log, 'safe')).every((r) => r.repaired)).toBe(true);
      const [link] = JSON.parse(await b.ns.run(['ip', '-d', '-j', 'link', 'show', 'dev', dev])) as {
        master?: string;
        linkinfo: { info_data: { id: number; local: string } };
      }[];
      expect([link?.linkinfo.info_data.id, link?.linkinfo.info_data.local, link?.master]).toEqual([
        vni,
        '198.18.50.2',
        `mn-${NET.slice(0, 12)}`,
      ]);
      expect(await fdbOf(b)).toContain('dst 198.18.50.1');
      expect(await b.plugin.doctor(log, 'none')).toEqual([]);
    },
  );

  it('a deleted VXLAN device and a flushed firewall are made again, members and entries included', async () => {
    const b = hosts[1] as Host;
    await b.ns.run(['ip', 'link', 'del', vxlanName(NET)]);
    await b.ns.run(['nft', 'delete', 'table', 'inet', 'mynet']);
    const found = await b.plugin.doctor(log, 'safe');
    expect(found.map((r) => r.difference.object)).toContain(`vxlan ${vxlanName(NET)}`);
    expect(found.every((r) => r.repaired)).toBe(true);
    expect(await fdbOf(b)).toContain('dst 198.18.50.1');
    const chain = await b.ns.run(['nft', 'list', 'set', 'inet', 'mynet', `vxpeers-${NET.slice(0, 12)}`]);
    expect(chain).toContain('198.18.50.1');
    expect(await b.ns.run(['nft', 'list', 'chain', 'inet', 'mynet', guardChain(NET)])).toContain('drop');
    // Nothing left for the doctor to find.
    expect((await b.plugin.doctor(log, 'none')).length).toBe(0);
  });
});
