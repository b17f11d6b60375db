/**
 * The doctor on cluster networks, with real kernels and a real etcd: two "hosts" as namespaces
 * on an underlay bridge, each an in-process Plugin with its ClusterAgent (as main.ts wires them),
 * driven as dockerd drives them. The VXLAN device is a known link (never an orphan); forwarding
 * and neighbour entries that drift from etcd are found and repaired; a device or a firewall the
 * kernel lost is made again with its members. Everything is removed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../src/cluster/cluster-store.js';
import { EtcdKv } from '../../src/cluster/etcd-kv.js';
import { ClusterAgent } from '../../src/multihost/agent.js';
import type { Plugin } from '../../src/plugin.js';
import { vxlanName } from '../../src/plan/vxlan.js';
import { guardChain } from '../../src/plan/vxlan-firewall.js';
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
    locked: (fn) => (ref.plugin as Plugin).exclusive(fn),
    backoffMs: { first: 50, max: 200 },
  });
  ref.plugin = buildPlugin(ns, { cluster: agent });
  agent.start();
  return { ns, plugin: ref.plugin, agent, kv };
}

async function createNetwork(h: Host): Promise<void> {
  const p = await h.plugin.requestPool({ Pool: '10.77.0.0/16' }, log);
  const g = await h.plugin.requestAddress({ PoolID: p.PoolID, Options: GW }, log);
  await h.plugin.createNetwork({ NetworkID: NET, Options: { 'com.docker.network.generic': { 'mynet.cluster': CLUSTER } }, IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: g.Address }] }, log);
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
  for (const h of hosts) await createNetwork(h);
  const [a] = hosts as [Host, Host];
  const ip = (await a.plugin.requestAddress({ PoolID: a.poolId as string }, log)).Address;
  await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: dockerId(), Interface: { Address: ip } }, log);
  await until('host 2 programs host 1\'s endpoint', async () => (await fdbOf(hosts[1] as Host)).includes('dst 198.18.50.1'));
}, 60_000);

afterAll(async () => {
  for (const h of hosts) {
    await h.agent.stop();
    await h.kv.close();
  }
  await destroyCreated();
  await etcd?.destroy();
});

describe('the doctor on a cluster network', () => {
  it('the VXLAN device is a known link: no differences on a healthy host', async () => {
    const b = hosts[1] as Host;
    expect((await b.plugin.doctor(log, 'none')).map((r) => r.difference.object)).toEqual([]);
    expect(await b.agent.doctor(false, log)).toEqual([]);
  });

  it('a lost forwarding entry and a stray neighbour entry are found and repaired', async () => {
    const b = hosts[1] as Host;
    const mac = /^(\S+) dst 198\.18\.50\.1/m.exec(await fdbOf(b))?.[1] as string;
    await b.ns.run(['bridge', 'fdb', 'del', mac, 'dev', vxlanName(NET), 'self']);
    await b.ns.run(['ip', 'neigh', 'replace', '10.77.9.9', 'lladdr', '02:00:00:00:09:09', 'dev', vxlanName(NET), 'nud', 'permanent']);
    const found = await b.agent.doctor(false, log);
    expect(found.map((d) => d.object).sort()).toEqual([`${vxlanName(NET)} entry 10.77.0.2`, `${vxlanName(NET)} neighbour 10.77.9.9`]);
    await b.agent.doctor(true, log);
    expect(await fdbOf(b)).toContain(`${mac} dst 198.18.50.1`);
    expect(await neighOf(b)).not.toContain('10.77.9.9');
    expect(await b.agent.doctor(false, log)).toEqual([]);
  });

  it('a deleted VXLAN device and a flushed firewall are made again, members and entries included', async () => {
    const b = hosts[1] as Host;
    await b.ns.run(['ip', 'link', 'del', vxlanName(NET)]);
    await b.ns.run(['nft', 'delete', 'table', 'inet', 'mynet']);
    const found = await b.plugin.doctor(log, 'safe');
    expect(found.map((r) => r.difference.object)).toContain(`vxlan ${vxlanName(NET)}`);
    expect(found.every((r) => r.repaired)).toBe(true);
    await b.agent.doctor(true, log);
    expect(await fdbOf(b)).toContain('dst 198.18.50.1');
    const chain = await b.ns.run(['nft', 'list', 'set', 'inet', 'mynet', `vxpeers-${NET.slice(0, 12)}`]);
    expect(chain).toContain('198.18.50.1');
    expect(await b.ns.run(['nft', 'list', 'chain', 'inet', 'mynet', guardChain(NET)])).toContain('drop');
    // Nothing left for the doctor to find.
    expect((await b.plugin.doctor(log, 'none')).length).toBe(0);
  });
});
