/**
 * Issue 23 item 4, host tier: a dual-stack cluster network on two hosts (namespaces on an IPv4
 * underlay, one real etcd, a real plugin process per host: cluster-hosts-fixture.ts), driven as
 * dockerd drives `docker network create --ipv6 --subnet 10.223.0.0/16 --subnet fd6c:6:1::/64`
 * and `docker run`. One world for every assertion: IPv6 claims in etcd, ping6 and TCP over IPv6
 * across hosts through the IPv6 anycast gateway's network, AAAA and PTR (in-addr.arpa and
 * ip6.arpa) across hosts, host B naming the network as compose would (`mnn3_mn6dual`), and
 * everything removed through the protocol (no claim left, no PTR left). Names carry the tag mnt-mn6- (test namespaces start with mnt-); the underlay is
 * 198.18.195.0/24 and etcd listens on ports 24040-24041.
 */
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vxlanName } from '../../src/plan/vxlan.js';
import { createNetns, dockerId, type TestNetns } from '../helpers/netns.js';
import { Cluster, type Host, leftoverNamespaces } from './cluster-hosts-fixture.js';
import { claims, tcpLine, until } from './cluster-checks.js';
import { post } from './plugin-client.js';
import { pings } from './plugin-fixture.js';

const TAG = 'mnt-mn6-';
const CLUSTER = 'mn6dual';
const V4 = '10.223.0.0/16';
const V6 = 'fd6c:6:1::/64';
/** Host B's Docker name of the network, as `docker compose -p mnn3` names it. */
const B_NAME = `mnn3_${CLUSTER}`;
const bare = (cidr: string): string => cidr.split('/')[0] as string;

interface DualNet {
  readonly host: Host;
  /** Its name in this host's Docker (each host names a cluster network its own way: compose prefixes the project). */
  readonly name: string;
  readonly id: string;
  readonly pool4: string;
  readonly pool6: string;
  readonly gw4: string;
  readonly gw6: string;
}
interface DualBox {
  readonly net: DualNet;
  readonly endpointId: string;
  readonly containerId: string;
  readonly ip4: string;
  readonly ip6: string;
  readonly box: TestNetns;
  readonly srcName: string;
}

let cluster: Cluster;
const nets: DualNet[] = [];
const boxes: DualBox[] = [];

/** dockerd's calls for `docker network create -d mynet --ipam-driver mynet --ipv6 --subnet V4 --subnet V6 -o mynet.cluster=…`. */
async function createDual(h: Host, name: string): Promise<DualNet> {
  const pool = async (Pool: string, V6: boolean): Promise<{ id: string; gw: string }> => {
    const p = await post<{ PoolID: string }>(h.socket, '/IpamDriver.RequestPool', {
      AddressSpace: 'mynet-local',
      Pool,
      SubPool: '',
      Options: {},
      V6,
    });
    const g = await post<{ Address: string }>(h.socket, '/IpamDriver.RequestAddress', {
      PoolID: p.PoolID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    });
    return { id: p.PoolID, gw: g.Address };
  };
  const [p4, p6] = [await pool(V4, false), await pool(V6, true)];
  const id = dockerId();
  await post(h.socket, '/NetworkDriver.CreateNetwork', {
    NetworkID: id,
    Options: { 'com.docker.network.enable_ipv6': true, 'com.docker.network.generic': { 'mynet.cluster': CLUSTER } },
    IPv4Data: [{ AddressSpace: 'mynet-local', Gateway: p4.gw, Pool: V4 }],
    IPv6Data: [{ AddressSpace: 'mynet-local', Gateway: p6.gw, Pool: V6 }],
  });
  const n = { host: h, name, id, pool4: p4.id, pool6: p6.id, gw4: p4.gw, gw6: p6.gw };
  nets.push(n);
  return n;
}

/** `docker run --name <name> --network …`: both addresses, the endpoint, Join, the sandbox with both families. */
async function runDual(net: DualNet, name: string): Promise<DualBox> {
  const s = net.host.socket;
  const addr = async (PoolID: string): Promise<string> =>
    (await post<{ Address: string }>(s, '/IpamDriver.RequestAddress', { PoolID, Address: '', Options: null })).Address;
  const [cidr4, cidr6] = [await addr(net.pool4), await addr(net.pool6)];
  const endpointId = dockerId();
  const ep = { NetworkID: net.id, EndpointID: endpointId };
  const none = { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] };
  await post(s, '/NetworkDriver.CreateEndpoint', {
    ...ep,
    Interface: { Address: cidr4, AddressIPv6: cidr6, MacAddress: '' },
    Options: none,
  });
  const j = await post<{ InterfaceName: { SrcName: string; DstPrefix: string }; Gateway?: string; GatewayIPv6?: string }>(
    s,
    '/NetworkDriver.Join',
    { ...ep, SandboxKey: `/var/run/docker/netns/${endpointId.slice(0, 12)}`, Options: {} },
  );
  const box = await createNetns({ prefix: `${TAG}c-` });
  const ifname = `${j.InterfaceName.DstPrefix}0`;
  await net.host.ns.run(['ip', 'link', 'set', 'dev', j.InterfaceName.SrcName, 'netns', box.name]);
  await box.run(['ip', 'link', 'set', 'dev', j.InterfaceName.SrcName, 'name', ifname]);
  await box.run(['ip', 'addr', 'add', cidr4, 'dev', ifname]);
  await box.run(['ip', 'addr', 'add', cidr6, 'dev', ifname, 'nodad']);
  await box.run(['ip', 'link', 'set', 'dev', ifname, 'up']);
  if (j.Gateway) await box.run(['ip', 'route', 'add', 'default', 'via', j.Gateway]);
  if (j.GatewayIPv6) await box.run(['ip', '-6', 'route', 'add', 'default', 'via', j.GatewayIPv6]);
  await post(s, '/NetworkDriver.ProgramExternalConnectivity', { ...ep, Options: none });
  const containerId = dockerId();
  net.host.docker.started({ id: containerId, name, networks: { [net.name]: { id: net.id, ip: bare(cidr4), ip6: bare(cidr6) } } });
  const b = { net, endpointId, containerId, ip4: bare(cidr4), ip6: bare(cidr6), box, srcName: j.InterfaceName.SrcName };
  boxes.push(b);
  return b;
}

async function removeDual(b: DualBox): Promise<void> {
  const s = b.net.host.socket;
  const ep = { NetworkID: b.net.id, EndpointID: b.endpointId };
  b.net.host.docker.destroyed(b.containerId);
  await post(s, '/NetworkDriver.RevokeExternalConnectivity', ep);
  await post(s, '/NetworkDriver.Leave', ep);
  await b.box.destroy();
  await post(s, '/NetworkDriver.DeleteEndpoint', ep);
  await post(s, '/IpamDriver.ReleaseAddress', { PoolID: b.net.pool4, Address: b.ip4 });
  await post(s, '/IpamDriver.ReleaseAddress', { PoolID: b.net.pool6, Address: b.ip6 });
}

async function removeNet(n: DualNet): Promise<void> {
  const s = n.host.socket;
  await post(s, '/NetworkDriver.DeleteNetwork', { NetworkID: n.id });
  for (const [PoolID, gw] of [
    [n.pool4, n.gw4],
    [n.pool6, n.gw6],
  ] as const) {
    await post(s, '/IpamDriver.ReleaseAddress', { PoolID, Address: bare(gw) });
    await post(s, '/IpamDriver.ReleasePool', { PoolID });
  }
}

/** What the host's mynet DNS answers, asked from the host's namespace as dockerd forwards. */
const dig = async (h: Host, ...q: string[]): Promise<string> =>
  (
    await execa('ip', ['netns', 'exec', h.ns.name, 'dig', '+short', '+time=1', '+tries=2', '@127.0.0.153', ...q], { reject: false })
  ).stdout.trim();
const aaaa = (h: Host, name: string): Promise<string> => dig(h, 'AAAA', name);
const ptr = (h: Host, ip: string): Promise<string> => dig(h, '-x', ip);

beforeAll(async () => {
  cluster = await Cluster.start({ hosts: 2, tag: TAG, underlay: '198.18.195', etcdPorts: [24040, 24041] });
}, 60_000);

let destroyed = false;
afterAll(async () => {
  if (!destroyed) await cluster?.destroy();
});

describe('a dual-stack cluster network on two hosts over an IPv4 underlay', () => {
  let a: DualBox;
  let b: DualBox;

  it("IPv6 addresses are claimed in etcd; each host answers NDP for the other host's container; ping6 and TCP over IPv6 cross hosts", async () => {
    const [ha, hb] = cluster.hosts as [Host, Host];
    const [na, nb] = [await createDual(ha, CLUSTER), await createDual(hb, B_NAME)];
    expect(bare(na.gw6)).toBe('fd6c:6:1::1');
    expect(bare(nb.gw6)).toBe('fd6c:6:1::1');
    a = await runDual(na, 'mn6web');
    b = await runDual(nb, 'mn6cli');
    const held = await claims(cluster.etcd, CLUSTER);
    expect(held.get(a.ip6)?.node).toBe(ha.nodeName);
    expect(held.get(b.ip6)?.node).toBe(hb.nodeName);
    await until(`${hb.label} answers NDP for ${a.ip6}`, async () =>
      (await hb.ns.run(['ip', '-6', 'neigh', 'show', 'dev', vxlanName(nb.id)])).includes(`${a.ip6} lladdr`),
    );
    expect(await pings(b.box, a.ip6)).toBe(true);
    expect(await pings(a.box, b.ip6)).toBe(true);
    expect(await pings(b.box, a.ip4)).toBe(true);
    expect(await tcpLine(b.box, a.box, a.ip6, 8066, 'mn6-over-v6')).toBe('mn6-over-v6');
  }, 60_000);

  it("AAAA across hosts: B answers A's container by name, and A B's", async () => {
    const [ha, hb] = cluster.hosts as [Host, Host];
    await until('B answers AAAA for mn6web', async () => (await aaaa(hb, `mn6web.${CLUSTER}.mynet`)) === a.ip6);
    await until('A answers AAAA for mn6cli', async () => (await aaaa(ha, `mn6cli.${CLUSTER}.mynet`)) === b.ip6);
  }, 30_000);

  it("PTR across hosts, in-addr.arpa and ip6.arpa: A's container named on B as B's own are, under B's name of the network", async () => {
    const [ha, hb] = cluster.hosts as [Host, Host];
    // B's own container, as mynet names it on B (dockerd answers that one itself, as mn6cli.<network>.).
    await until("B's PTR of its own mn6cli", async () => (await ptr(hb, b.ip6)) === `mn6cli.${B_NAME}.mynet.`);
    expect(await ptr(hb, b.ip4)).toBe(`mn6cli.${B_NAME}.mynet.`);
    // A's container: the same form, B's network name (before: mn6web.mn6dual.mynet., A's cluster name).
    expect(await ptr(hb, a.ip6)).toBe(`mn6web.${B_NAME}.mynet.`);
    expect(await ptr(hb, a.ip4)).toBe(`mn6web.${B_NAME}.mynet.`);
    // And that name resolves forward on B, as a local container's does.
    expect(await aaaa(hb, `mn6web.${B_NAME}.mynet`)).toBe(a.ip6);
    expect(await ptr(ha, b.ip6)).toBe(`mn6cli.${CLUSTER}.mynet.`);
  }, 30_000);

  it('removed through the protocol: no PTR left on the other host, no claim left in etcd, no namespace of ours left', async () => {
    const [ha, hb] = cluster.hosts as [Host, Host];
    await removeDual(a);
    boxes.splice(boxes.indexOf(a), 1);
    await until("B no longer answers A's container's PTR", async () => (await ptr(hb, a.ip6)) === '' && (await ptr(hb, a.ip4)) === '');
    // Only that one: B's container is still named on A.
    expect(await ptr(ha, b.ip6)).toBe(`mn6cli.${CLUSTER}.mynet.`);
    for (const x of boxes.splice(0)) await removeDual(x);
    for (const n of nets.splice(0)) await removeNet(n);
    await until('no claim left', async () => (await claims(cluster.etcd, CLUSTER)).size === 0);
    destroyed = true;
    await cluster.destroy();
    expect(await leftoverNamespaces(TAG)).toEqual([]);
  }, 60_000);
});
