/**
 * Issue 24 over an IPv6-only underlay (issue 23), host tier: two hosts in namespaces on a bridge
 * that has only 2001:db8:64::/64 (the world of cluster-underlay6.test.ts, cluster-hosts-fixture.ts
 * with `underlay6`), a real etcd, a real plugin process per host with MYNET_WIREGUARD=userspace
 * (wireguard-go), an encrypted cluster network made as dockerd makes it. One world: the peers'
 * endpoints are [IPv6]:port and their tunnel addresses derived from the IPv6 underlay, ping and
 * TCP cross through the tunnel at MTU 1370 (1500 - 80 - 50), a capture on the underlay holds
 * WireGuard and no VXLAN nor payload, and plaintext VXLAN with the network's VNI from an IPv6
 * stranger is dropped and counted. Names: mnt-mnw6-* (the namespace helper wants mnt-); etcd on
 * 24070/24071; container subnet 10.226.0.0/16.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { plaintextCounter } from '../../src/plan/vxlan-firewall.js';
import { vxlanName } from '../../src/plan/vxlan.js';
import { linkInfo, randomHex } from '../helpers/netns.js';
import { Cluster, type Host, leftoverNamespaces } from './cluster-hosts-fixture.js';
import { fdbOf, namedCounter, tcpLine, until } from './cluster-checks.js';
import { type Container, type Network, createNetwork, removeContainer, removeNetwork, runContainer } from './dockerd-moves.js';
import { captureUnderlay, capturedLines, peerOf } from './wireguard-checks.js';
import { pings } from './plugin-fixture.js';

const TAG = 'mnt-mnw6-';
const CLUSTER = 'mnw6sec';
const SUBNET = '10.226.0.0/16';
const UNDERLAY = '2001:db8:64::';
const MTU = 1500 - 80 - 50;
/** Each host's own interface name: wireguard-go's control socket is per machine, not per namespace. */
const wgIf = (h: Host): string => `${TAG}w${h.label}`;

let cluster: Cluster;
let hosts: [Host, Host];
let nets: [Network, Network];
let boxes: [Container, Container];
const endpoints = async (h: Host): Promise<string> => (await h.ns.run(['wg', 'show', wgIf(h), 'endpoints'])).trim();

beforeAll(async () => {
  cluster = await Cluster.start({
    hosts: 2,
    tag: TAG,
    underlay6: UNDERLAY,
    etcdPorts: [24070, 24071],
    env: { MYNET_WIREGUARD: 'userspace' },
    hostEnv: Object.fromEntries(['a', 'b'].map((l) => [l, { MYNET_WIREGUARD_INTERFACE: `${TAG}w${l}` }])),
  });
  hosts = cluster.hosts as [Host, Host];
  const made = await Promise.all(
    hosts.map((h) => createNetwork(h, { subnet: SUBNET, cluster: CLUSTER, options: { 'mynet.encrypt': 'wireguard' } })),
  );
  nets = made as [Network, Network];
  boxes = [await runContainer(nets[0], { name: 'mnw6web' }), await runContainer(nets[1], { name: 'mnw6cli' })];
}, 90_000);

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const h of cluster.hosts)
    console.error(`--- host ${h.label}: last warnings and errors of its plugin\n${h.plugin.problems().slice(-8).join('\n')}`);
});

let removed = false;
afterAll(async () => {
  if (removed) return;
  for (const h of cluster?.hosts ?? []) {
    // wireguard-go holds its namespace open until its interface goes (a failure may leave it).
    await h.ns.succeeds(['ip', 'link', 'del', 'dev', wgIf(h)]);
  }
  await cluster?.destroy();
});

describe('an encrypted cluster network over an IPv6-only underlay (wireguard-go)', () => {
  it('peers at [IPv6]:port with IPv4 tunnel addresses from the underlay; ping and TCP cross at MTU 1370', async () => {
    const [a, b] = hosts;
    const [ca, cb] = boxes;
    expect(await a.ns.run(['ip', '-4', '-o', 'addr', 'show', 'dev', cluster.underlayIf])).toBe('');
    const [pa, pb] = [await peerOf(cluster.etcd, a), await peerOf(cluster.etcd, b)];
    expect(pa).toMatchObject({ underlay: '2001:db8:64::1', tunnel: '100.64.0.1', port: 51820 });
    expect(pb).toMatchObject({ underlay: '2001:db8:64::2', tunnel: '100.64.0.2' });
    await until(
      'a and b are each other’s peers at [IPv6]:port',
      async () =>
        (await endpoints(a)).includes(`${pb.publicKey}\t[${b.address}]:51820`) &&
        (await endpoints(b)).includes(`${pa.publicKey}\t[${a.address}]:51820`),
    );
    const def = (await cluster.etcd.get(`/mynet/v1/networks/${CLUSTER}`)).values().next().value as { mtu: number; encrypt: string };
    expect(def).toMatchObject({ mtu: MTU, encrypt: 'wireguard' });
    for (const [h, n, c] of [
      [a, nets[0], ca],
      [b, nets[1], cb],
    ] as const) {
      expect((await linkInfo(c.box, c.ifname))?.mtu, `container MTU on ${h.label}`).toBe(MTU);
      expect((await linkInfo(h.ns, vxlanName(n.id)))?.mtu).toBe(MTU);
      expect((await linkInfo(h.ns, wgIf(h)))?.mtu).toBe(1500 - 80);
    }
    // VXLAN goes to the peer's tunnel address, inside WireGuard, not to its IPv6 underlay.
    await until('a forwards cb to b’s tunnel address', async () => (await fdbOf(nets[0])).get(cb.mac) === pb.tunnel);
    await until('ca reaches cb', () => pings(ca.box, cb.ip));
    expect(await pings(cb.box, ca.ip)).toBe(true);
    expect(await tcpLine(cb.box, ca.box, ca.ip, 8064, 'mnw6-through-the-tunnel')).toBe('mnw6-through-the-tunnel');
  }, 60_000);

  it('the IPv6 underlay carries WireGuard only: no VXLAN and none of the payload sent between the containers', async () => {
    const [ca, cb] = boxes;
    const payload = `${TAG}secret-${randomHex(8)}`;
    const pcap = await captureUnderlay(cluster.underlay.name, `${TAG}u2`, join(cluster.dir, 'underlay6.pcap'), async () => {
      expect(await tcpLine(ca.box, cb.box, cb.ip, 8065, payload)).toContain(payload);
      // A full-size packet at the network's MTU (1370 - 28 of ICMP and IP) passes with DF.
      expect(await ca.box.succeeds(['busybox', 'ping', '-c', '1', '-W', '2', '-s', String(MTU - 28), cb.ip])).toBe(true);
    });
    expect((await capturedLines(pcap, ['ip6', 'and', 'udp', 'port', '51820'])).length).toBeGreaterThan(4);
    expect(await capturedLines(pcap, ['udp', 'port', '4789'])).toEqual([]);
    expect(readFileSync(pcap).includes(Buffer.from(`${TAG}secret-`))).toBe(false);
  }, 60_000);

  it("plaintext VXLAN with the network's VNI from an IPv6 stranger is dropped and counted", async () => {
    const b = hosts[1];
    const cb = boxes[1];
    const vni = ((await cluster.etcd.get(`/mynet/v1/networks/${CLUSTER}`)).values().next().value as { vni: number }).vni;
    const x = await cluster.stranger();
    const dev = `${TAG}fx`;
    const args = ['id', String(vni), 'local', cluster.strangerAddress, 'remote', b.address, 'dstport', '4789', 'nolearning'];
    await x.run(['ip', 'link', 'add', dev, 'type', 'vxlan', ...args]);
    await x.run(['ip', 'addr', 'add', '10.226.255.250/16', 'dev', dev]);
    await x.run(['ip', 'link', 'set', dev, 'up']);
    await x.run(['ip', 'neigh', 'replace', cb.ip, 'lladdr', cb.mac, 'dev', dev, 'nud', 'permanent']);
    const counter = (): Promise<number> => namedCounter(b.ns, 'inet mynet', plaintextCounter(nets[1].id));
    const before = await counter();
    expect(await x.succeeds(['busybox', 'ping', '-c', '3', '-W', '1', cb.ip])).toBe(false);
    expect(await counter()).toBeGreaterThanOrEqual(before + 3);
    await x.destroy();
  }, 60_000);

  it('removed through the protocol: the WireGuard interfaces and peer records go, no namespace of ours is left', async () => {
    for (const c of boxes) await removeContainer(c);
    for (const n of nets) await removeNetwork(n);
    for (const h of hosts) expect(await h.ns.succeeds(['ip', 'link', 'show', 'dev', wgIf(h)])).toBe(false);
    await until('no peer record left', async () => (await cluster.etcd.get('/mynet/v1/wireguard/')).size === 0);
    removed = true;
    await cluster.destroy();
    expect(await leftoverNamespaces(TAG)).toEqual([]);
  }, 60_000);
});
