/**
 * Issue 23 item 4, host tier: a cluster network over an IPv6-only underlay. Two hosts in
 * namespaces on a bridge that has only 2001:db8:62::/64 (no IPv4 address anywhere on it; etcd
 * listens on its IPv6 address there), each with a real plugin process whose MYNET_NODE_ADDRESS
 * is IPv6 (cluster-hosts-fixture.ts), driven as dockerd drives `docker network create` and
 * `docker run`. One world for every assertion: presence and endpoint records carry the IPv6
 * underlay, the VXLAN device's source is it, forwarding entries point at the other host's, the
 * MTU is the underlay's minus 70, ping and TCP cross, and VXLAN with the network's VNI from a
 * non-member IPv6 address is dropped by the guard (`ip6 saddr`). Names carry the tag
 * mnt-mn62-; etcd listens on ports 24042-24043 of its own namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerSet } from '../../src/plan/vxlan-firewall.js';
import { vxlanName } from '../../src/plan/vxlan.js';
import { linkInfo } from '../helpers/netns.js';
import { claims, endpointRecords, fdbOf, tcpLine, until } from './cluster-checks.js';
import { forgeVxlan } from './forged-vxlan.js';
import { Cluster, type Host, leftoverNamespaces } from './cluster-hosts-fixture.js';
import { type Container, createNetwork, type Network, removeContainer, removeNetwork, runContainer } from './dockerd-moves.js';
import { pings } from './plugin-fixture.js';

const TAG = 'mnt-mn62-';
const CLUSTER = 'mn62';
const SUBNET = '10.223.62.0/24';
const UNDERLAY = '2001:db8:62::';

let cluster: Cluster;
let nets: Network[] = [];
let boxes: Container[] = [];

beforeAll(async () => {
  cluster = await Cluster.start({ hosts: 2, tag: TAG, underlay6: UNDERLAY, etcdPorts: [24042, 24043] });
}, 60_000);

let destroyed = false;
afterAll(async () => {
  if (!destroyed) await cluster?.destroy();
});

describe('a cluster network over an IPv6-only underlay', () => {
  it('records carry the IPv6 underlay, the VXLAN device sends from it, the MTU is 70 less; ping and TCP cross hosts', async () => {
    const [ha, hb] = cluster.hosts as [Host, Host];
    expect(ha.address).toBe('2001:db8:62::1');
    // No IPv4 on the underlay: what crosses it is IPv6 or nothing.
    expect(await ha.ns.run(['ip', '-4', '-o', 'addr', 'show', 'dev', cluster.underlayIf])).toBe('');
    nets = [await createNetwork(ha, { subnet: SUBNET, cluster: CLUSTER }), await createNetwork(hb, { subnet: SUBNET, cluster: CLUSTER })];
    const [na, nb] = nets as [Network, Network];
    boxes = [await runContainer(na, { name: 'mn62web' }), await runContainer(nb, { name: 'mn62cli' })];
    const [ca, cb] = boxes as [Container, Container];
    const def = (await cluster.etcd.get(`/mynet/v1/networks/${CLUSTER}`)).values().next().value as { mtu: number };
    expect(def.mtu).toBe(1430);
    for (const [h, n, c] of [
      [ha, na, ca],
      [hb, nb, cb],
    ] as const) {
      const [vx] = JSON.parse(await h.ns.run(['ip', '-j', '-d', 'link', 'show', 'dev', vxlanName(n.id)])) as {
        mtu: number;
        linkinfo: { info_data: { local6?: string; local?: string } };
      }[];
      expect(vx?.linkinfo.info_data.local6 ?? vx?.linkinfo.info_data.local, `vxlan source on ${h.label}`).toBe(h.address);
      expect(vx?.mtu).toBe(1430);
      expect((await linkInfo(c.box, c.ifname))?.mtu, `container MTU on ${h.label}`).toBe(1430);
    }
    const records = await endpointRecords(cluster.etcd, CLUSTER);
    expect(records.get(ca.endpointId)?.underlay).toBe(ha.address);
    expect(records.get(cb.endpointId)?.underlay).toBe(hb.address);
    await until(`${hb.label} forwards ${ca.mac} to ${ha.address}`, async () => (await fdbOf(nb)).get(ca.mac) === ha.address);
    await until(`${ha.label} forwards ${cb.mac} to ${hb.address}`, async () => (await fdbOf(na)).get(cb.mac) === hb.address);
    expect(await pings(cb.box, ca.ip)).toBe(true);
    expect(await pings(ca.box, cb.ip)).toBe(true);
    expect(await tcpLine(cb.box, ca.box, ca.ip, 8062, 'mn62-over-v6-underlay')).toBe('mn62-over-v6-underlay');
    // A full-size datagram of the container MTU crosses: 1430 - 20 - 8 bytes of ICMP payload.
    expect(await cb.box.succeeds(['busybox', 'ping', '-c', '1', '-W', '2', '-s', '1402', ca.ip])).toBe(true);
  }, 60_000);

  it("VXLAN with the network's VNI from a non-member IPv6 address is dropped by the guard's `ip6 saddr` set", async () => {
    const [ha] = cluster.hosts as [Host, Host];
    const [na] = nets as [Network, Network];
    const [ca, cb] = boxes as [Container, Container];
    expect(await ha.ns.run(['nft', 'list', 'set', 'inet', 'mynet', peerSet(na.id)])).toMatch(/type ipv6_addr[\s\S]*2001:db8:62::2/);
    const vni = ((await cluster.etcd.get(`/mynet/v1/networks/${CLUSTER}`)).values().next().value as { vni: number }).vni;
    const stranger = await cluster.stranger();
    const forged = await forgeVxlan({
      stranger,
      strangerAddress: cluster.strangerAddress,
      host: ha,
      networkId: na.id,
      vni,
      to: ca,
      fake: '10.223.62.250/24',
      tag: TAG,
    });
    expect(forged.asMember, 'frames of a member with this VNI arrive').toBeGreaterThan(0);
    expect(forged).toMatchObject({ toContainer: 0, toDevice: 0 });
    expect(forged.dropped).toBeGreaterThanOrEqual(5);
    expect(await pings(cb.box, ca.ip)).toBe(true);
    await stranger.destroy();
  }, 60_000);

  it('removed through the protocol: no claim left in etcd, no namespace of ours left', async () => {
    for (const c of boxes.splice(0)) await removeContainer(c);
    for (const n of nets.splice(0)) await removeNetwork(n);
    await until('no claim left', async () => (await claims(cluster.etcd, CLUSTER)).size === 0);
    destroyed = true;
    await cluster.destroy();
    expect(await leftoverNamespaces(TAG)).toEqual([]);
  }, 60_000);
});
