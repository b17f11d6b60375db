/**
 * Outbound NAT, ICC, internal networks and isolation against the real kernel, with real traffic:
 * the Plugin runs in a "host" namespace joined to an "outside" namespace that has no route to
 * any container subnet (nat-fixture.ts), so an answer from outside comes back only through NAT.
 */
import { describe, expect, it } from 'vitest';
import { removeForwardHook } from '../../src/host/forward-hook.js';
import { TABLE } from '../../src/plan/nft.js';
import { type TestNetns, createNetns } from '../helpers/netns.js';
import { createNetwork, dockerLikeFirewall, hostLikeFilter, ipOf, log, pings, publish, removeEndpoint } from './plugin-fixture.js';
import {
  type Container,
  type World,
  HOST_ADDR,
  HOST_ADDR2,
  HOST_ADDR6,
  OUTSIDE_ADDR,
  OUTSIDE_ADDR6,
  SCTP,
  TCP,
  UDP,
  all,
  binding,
  container,
  outsideV6,
  received,
  routeLoopbackVia,
  serve,
  cleanUpServersAndNamespaces,
  tcpAsk,
  udpAsk,
  v6Default,
  world,
} from './nat-fixture.js';

cleanUpServersAndNamespaces();

/**
 * A server on the outside host: TCP and UDP port 7000 of OUTSIDE_ADDR, answering "outside from
 * <source>". Bound to that one address: a UDP socket on 0.0.0.0 answers a peer of 198.51.100.0/24
 * from 198.51.100.2, which matches no conntrack entry on the host, so the SNATed flow's answer
 * would be lost (a multi-homed UDP server's classic mistake, not a NAT fault).
 */
const outsideServer = (w: World): ReturnType<typeof serve> => serve(w.outside, 'outside', { tcp: [7000], udp: [7000], bind: OUTSIDE_ADDR });

describe('outbound NAT', () => {
  it('masquerades: a container reaches the outside host over ICMP, TCP and UDP, which sees the host address', async () => {
    const w = await world({ firewall: dockerLikeFirewall });
    const net = await createNetwork(w.plugin);
    const c = await container(w, net);
    await outsideServer(w);
    expect(await pings(c.box, OUTSIDE_ADDR)).toBe(true);
    expect(await tcpAsk(c.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${HOST_ADDR}`);
    expect(await udpAsk(c.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${HOST_ADDR}`);
  });

  it('enable_ip_masquerade=false: the packets leave with the container address and no answer finds its way back', async () => {
    const w = await world({ firewall: dockerLikeFirewall });
    const net = await createNetwork(w.plugin, { generic: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' } });
    const c = await container(w, net);
    const server = await outsideServer(w);
    expect(
      await all({
        ping: pings(c.box, OUTSIDE_ADDR, false),
        tcp: tcpAsk(c.box, OUTSIDE_ADDR, 7000, false),
        udp: udpAsk(c.box, OUTSIDE_ADDR, 7000, false),
      }),
    ).toEqual({ ping: false, tcp: undefined, udp: undefined });
    // The datagrams did arrive, from the container's own address: only the way back is missing.
    expect(received(server).length).toBeGreaterThan(0);
    for (const r of received(server)) expect(r).toMatch(new RegExp(`^${c.ip.replace(/\./g, '\\.')}:\\d+ hello$`));
    expect(await w.host.run(['nft', 'list', 'set', ...TABLE.split(' '), 'masq4'])).not.toContain(net.pool4);
  });

  it('com.docker.network.host_ipv4: outbound traffic is SNATed to that host address', async () => {
    const w = await world({ firewall: dockerLikeFirewall });
    const net = await createNetwork(w.plugin, { generic: { 'com.docker.network.host_ipv4': HOST_ADDR2 } });
    const c = await container(w, net);
    await outsideServer(w);
    expect(await pings(c.box, OUTSIDE_ADDR)).toBe(true);
    expect(await tcpAsk(c.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${HOST_ADDR2}`);
    expect(await udpAsk(c.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${HOST_ADDR2}`);
    expect(await w.host.run(['nft', 'list', 'map', ...TABLE.split(' '), 'snat4'])).toContain(`${net.pool4} : ${HOST_ADDR2}`);
  });
});

describe('gateway modes, each family on its own (com.docker.network.bridge.gateway_mode_ipv4/6)', () => {
  /** A dual-stack network with one container, servers outside on both families. */
  async function dual(
    generic: Record<string, string>,
  ): Promise<{ w: World; c: Container; net: Awaited<ReturnType<typeof createNetwork>>; v6: string }> {
    const w = await world({ firewall: dockerLikeFirewall });
    await outsideV6(w);
    const net = await createNetwork(w.plugin, { v6Pool: 'fd00:72::/64', generic });
    const c = await container(w, net, { addressV6: 'fd00:72::10/64' });
    await v6Default(c, net.gateway6);
    await serve(w.outside, 'outside', { tcp: [7000], bind: '::' });
    await serve(c.box, 'c', { tcp: [80], bind: '::' });
    return { w, c, net, v6: 'fd00:72::10' };
  }

  it('gateway_mode_ipv4=routed: IPv4 leaves unmasqueraded and is reachable directly; IPv6 is still masqueraded and not reachable directly', async () => {
    const { w, c, net, v6 } = await dual({ 'com.docker.network.bridge.gateway_mode_ipv4': 'routed' });
    // IPv6 (nat): the outside sees the host's address, and has no way in.
    expect(await tcpAsk(c.box, OUTSIDE_ADDR6, 7000)).toBe(`outside from ${HOST_ADDR6}`);
    // IPv4 (routed): the outside sees the container's own address once it routes the subnet back.
    await w.outside.run(['ip', 'route', 'add', net.pool4, 'via', HOST_ADDR]);
    await w.outside.run(['ip', '-6', 'route', 'add', 'fd00:72::/64', 'via', HOST_ADDR6]);
    expect(await tcpAsk(c.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${c.ip}`);
    expect(await all({ in4: tcpAsk(w.outside, c.ip, 80), in6: tcpAsk(w.outside, v6, 80, false) })).toEqual({
      in4: `c from ${OUTSIDE_ADDR}`,
      in6: undefined,
    });
  });

  it('gateway_mode_ipv6=routed: IPv6 leaves unmasqueraded and is reachable directly; IPv4 is still masqueraded and not reachable directly', async () => {
    const { w, c, net, v6 } = await dual({ 'com.docker.network.bridge.gateway_mode_ipv6': 'routed' });
    expect(await tcpAsk(c.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${HOST_ADDR}`);
    await w.outside.run(['ip', 'route', 'add', net.pool4, 'via', HOST_ADDR]);
    await w.outside.run(['ip', '-6', 'route', 'add', 'fd00:72::/64', 'via', HOST_ADDR6]);
    expect(await tcpAsk(c.box, OUTSIDE_ADDR6, 7000)).toBe(`outside from ${v6}`);
    expect(await all({ in4: tcpAsk(w.outside, c.ip, 80, false), in6: tcpAsk(w.outside, v6, 80) })).toEqual({
      in4: undefined,
      in6: `c from ${OUTSIDE_ADDR6}`,
    });
  });

  it('gateway_mode_ipv6=nat-unprotected: IPv6 masqueraded and reachable directly; IPv4 (nat) not', async () => {
    const { w, c, net, v6 } = await dual({ 'com.docker.network.bridge.gateway_mode_ipv6': 'nat-unprotected' });
    expect(await tcpAsk(c.box, OUTSIDE_ADDR6, 7000)).toBe(`outside from ${HOST_ADDR6}`);
    await w.outside.run(['ip', 'route', 'add', net.pool4, 'via', HOST_ADDR]);
    await w.outside.run(['ip', '-6', 'route', 'add', 'fd00:72::/64', 'via', HOST_ADDR6]);
    expect(await all({ in4: tcpAsk(w.outside, c.ip, 80, false), in6: tcpAsk(w.outside, v6, 80) })).toEqual({
      in4: undefined,
      in6: `c from ${OUTSIDE_ADDR6}`,
    });
  });
});

describe("the firewall fails closed: without mynet's table, nothing of our links is forwarded", () => {
  it.each([
    { policy: 'DROP (dockerd)', firewall: dockerLikeFirewall },
    { policy: 'ACCEPT', firewall: hostLikeFilter },
  ])(
    'FORWARD policy $policy: isolation, internal networks and other hosts stay cut off when the table is deleted',
    async ({ firewall }) => {
      const w = await world({ firewall });
      await w.host.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      const netA = await createNetwork(w.plugin);
      const netB = await createNetwork(w.plugin);
      const netC = await createNetwork(w.plugin, { options: { 'com.docker.network.internal': true } });
      // Bridged traffic goes through FORWARD too (br_netfilter, as dockerd leaves it).
      await w.host.run(['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=1']);
      const a = await container(w, netA);
      const a2 = await container(w, netA);
      const b = await container(w, netB);
      const c = await container(w, netC);
      await c.box.run(['ip', 'route', 'add', 'default', 'via', ipOf(netC.gateway4)]);
      // The outside host routes every container subnet through the host: only the firewall stops it.
      for (const n of [netA, netC]) await w.outside.run(['ip', 'route', 'add', n.pool4, 'via', HOST_ADDR]);
      for (const x of [a, b]) await serve(x.box, x === a ? 'a' : 'b', { tcp: [80] });
      await outsideServer(w);
      await publish(w.plugin, a.ep, [binding(TCP, 80, 8080)]);
      const cutOff = (): Promise<unknown> =>
        all({
          aToB: tcpAsk(a.box, b.ip, 80, false),
          outsideToA: tcpAsk(w.outside, a.ip, 80, false),
          internalOut: tcpAsk(c.box, OUTSIDE_ADDR, 7000, false),
        });
      // With the table: what should flow flows, the rest is dropped.
      expect(await tcpAsk(a.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${HOST_ADDR}`);
      expect(await tcpAsk(w.outside, HOST_ADDR, 8080)).toBe(`a from ${OUTSIDE_ADDR}`);
      expect(await cutOff()).toEqual({ aToB: undefined, outsideToA: undefined, internalOut: undefined });
      expect(await tcpAsk(a2.box, a.ip, 80)).toBe(`a from ${a2.ip}`);

      await w.host.run(['nft', 'delete', 'table', ...TABLE.split(' ')]);
      expect(await cutOff()).toEqual({ aToB: undefined, outsideToA: undefined, internalOut: undefined });
      // Closed means closed: within a network too, while the table (its ICC rule) is gone.
      expect(await tcpAsk(a2.box, a.ip, 80, false)).toBeUndefined();
      // What MYNET-FORWARD dropped is our links' traffic only: the outside host still reaches the host.
      expect(await pings(w.outside, HOST_ADDR)).toBe(true);
    },
  );
});

describe('inter-container communication (ICC)', () => {
  it('enable_icc on (default): two containers of a network talk', async () => {
    const w = await world({ firewall: dockerLikeFirewall });
    const net = await createNetwork(w.plugin);
    const a = await container(w, net);
    const b = await container(w, net);
    await serve(b.box, 'b', { tcp: [80], udp: [80] });
    expect(await pings(a.box, b.ip)).toBe(true);
    expect(await tcpAsk(a.box, b.ip, 80)).toBe(`b from ${a.ip}`);
    expect(await udpAsk(a.box, b.ip, 80)).toBe(`b from ${a.ip}`);
  });

  it("enable_icc=false: not to each other, but to the outside host and to each other's published ports through the host address", async () => {
    const w = await world({ firewall: dockerLikeFirewall });
    // Off to start with, so that seeing it on proves the plan switched it on.
    await w.host.run(['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=0']);
    const net = await createNetwork(w.plugin, { generic: { 'com.docker.network.bridge.enable_icc': 'false' } });
    expect((await w.host.run(['sysctl', '-n', 'net.bridge.bridge-nf-call-iptables'])).trim()).toBe('1');
    const a = await container(w, net);
    const b = await container(w, net);
    await serve(a.box, 'a', { tcp: [80], udp: [80] });
    await serve(b.box, 'b', { tcp: [80], udp: [80] });
    await outsideServer(w);
    await publish(w.plugin, a.ep, [binding(TCP, 80, 8080), binding(UDP, 80, 8080)]);
    await publish(w.plugin, b.ep, [binding(TCP, 80, 8081), binding(UDP, 80, 8081)]);

    expect(
      await all({
        pingAB: pings(a.box, b.ip, false),
        pingBA: pings(b.box, a.ip, false),
        tcpAB: tcpAsk(a.box, b.ip, 80, false),
        udpBA: udpAsk(b.box, a.ip, 80, false),
      }),
    ).toEqual({ pingAB: false, pingBA: false, tcpAB: undefined, udpBA: undefined });

    for (const c of [a, b]) {
      expect(await pings(c.box, OUTSIDE_ADDR)).toBe(true);
      expect(await tcpAsk(c.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${HOST_ADDR}`);
    }
    // Hairpin: the answer must come back through the host, so the source is the gateway's.
    const gw = ipOf(net.gateway4);
    expect(await tcpAsk(a.box, HOST_ADDR, 8081)).toBe(`b from ${gw}`);
    expect(await udpAsk(a.box, HOST_ADDR, 8081)).toBe(`b from ${gw}`);
    expect(await tcpAsk(b.box, HOST_ADDR, 8080)).toBe(`a from ${gw}`);
    expect(await udpAsk(b.box, HOST_ADDR, 8080)).toBe(`a from ${gw}`);
  });
});

describe('internal networks', () => {
  it('containers talk to each other, reach nothing outside the network, are not reached from it, and publish nothing', async () => {
    const w = await world();
    // Forwarding on, as on any host running Docker, so what stops the traffic is mynet's rule.
    await w.host.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    const net = await createNetwork(w.plugin, { options: { 'com.docker.network.internal': true } });
    const a = await container(w, net);
    const b = await container(w, net);
    expect(a.ep.gateway).toBeUndefined(); // Join gives no gateway: no default route
    await serve(a.box, 'a', { tcp: [80], udp: [80] });
    await serve(b.box, 'b', { tcp: [80] });
    await outsideServer(w);
    expect(await pings(a.box, b.ip)).toBe(true);
    expect(await tcpAsk(b.box, a.ip, 80)).toBe(`a from ${b.ip}`);
    expect(await udpAsk(b.box, a.ip, 80)).toBe(`a from ${b.ip}`);

    // A container that routes through the bridge address anyway, and an outside host that
    // routes the subnet through the host, still get nowhere.
    const gw = ipOf(net.gateway4);
    await a.box.run(['ip', 'route', 'add', 'default', 'via', gw]);
    await w.outside.run(['ip', 'route', 'add', net.pool4, 'via', HOST_ADDR]);
    expect(
      await all({
        ping: pings(a.box, OUTSIDE_ADDR, false),
        tcp: tcpAsk(a.box, OUTSIDE_ADDR, 7000, false),
        udp: udpAsk(a.box, OUTSIDE_ADDR, 7000, false),
        pingIn: pings(w.outside, a.ip, false),
        tcpIn: tcpAsk(w.outside, a.ip, 80, false),
      }),
    ).toEqual({ ping: false, tcp: undefined, udp: undefined, pingIn: false, tcpIn: undefined });

    await expect(publish(w.plugin, a.ep, [binding(TCP, 80, 8080), binding(UDP, 80, 8080)])).resolves.toEqual({});
    for (const map of ['pub4', 'pub4any'])
      expect(await w.host.run(['nft', 'list', 'map', ...TABLE.split(' '), map])).not.toContain('elements');
    expect(w.plugin.endpointOperInfo({ NetworkID: net.id, EndpointID: a.ep.id }).Value['com.docker.network.portmap']).toEqual([]);
    expect(await tcpAsk(w.outside, HOST_ADDR, 8080, false)).toBeUndefined();
  });
});

describe('isolation between networks', () => {
  it.each([
    { a: 'true', b: 'true', open: false },
    { a: 'false', b: 'false', open: true },
    { a: 'false', b: 'true', open: false },
  ])('mynet.isolate=$a and $b: the networks reach each other: $open', async ({ a: isoA, b: isoB, open }) => {
    const w = await world();
    const netA = await createNetwork(w.plugin, { generic: { 'mynet.isolate': isoA } });
    const netB = await createNetwork(w.plugin, { generic: { 'mynet.isolate': isoB } });
    const a = await container(w, netA);
    const b = await container(w, netB);
    await serve(a.box, 'a', { tcp: [80] });
    await serve(b.box, 'b', { tcp: [80] });
    // Both reach the world: routing is fine, and what stops them is the isolation rule.
    expect([await pings(a.box, OUTSIDE_ADDR), await pings(b.box, OUTSIDE_ADDR)]).toEqual([true, true]);
    const seen = await all({
      pingAB: pings(a.box, b.ip, open),
      pingBA: pings(b.box, a.ip, open),
      tcpAB: tcpAsk(a.box, b.ip, 80, open),
      tcpBA: tcpAsk(b.box, a.ip, 80, open),
    });
    // No NAT between mynet networks: each sees the other's own address.
    expect(seen).toEqual(
      open
        ? { pingAB: true, pingBA: true, tcpAB: `b from ${a.ip}`, tcpBA: `a from ${b.ip}` }
        : { pingAB: false, pingBA: false, tcpAB: undefined, tcpBA: undefined },
    );
  });

  it('drops traffic between mynet containers and a non-mynet bridge (br-*), in both directions', async () => {
    const w = await world();
    // Another driver's network: bridge br-mntforeign with a container of its own.
    const foreign = await foreignBridge(w.host, 'br-mntforeign');
    await w.outside.run(['ip', 'route', 'add', '192.168.77.0/24', 'via', HOST_ADDR]);
    // Even a network that does not isolate itself from other mynet networks.
    const net = await createNetwork(w.plugin, { generic: { 'mynet.isolate': 'false' } });
    const c = await container(w, net);
    await serve(foreign, 'foreign', { tcp: [80] });
    await serve(c.box, 'c', { tcp: [80] });
    await outsideServer(w);
    // Both sides forward fine elsewhere.
    expect(await tcpAsk(foreign, OUTSIDE_ADDR, 7000)).toBe('outside from 192.168.77.2');
    expect(await tcpAsk(c.box, OUTSIDE_ADDR, 7000)).toBe(`outside from ${HOST_ADDR}`);
    expect(
      await all({
        pingOut: pings(c.box, '192.168.77.2', false),
        tcpOut: tcpAsk(c.box, '192.168.77.2', 80, false),
        pingIn: pings(foreign, c.ip, false),
        tcpIn: tcpAsk(foreign, c.ip, 80, false),
      }),
    ).toEqual({ pingOut: false, tcpOut: undefined, pingIn: false, tcpIn: undefined });
  });
});

describe("the host's loopback", () => {
  it("a container cannot reach the host's 127.0.0.1 services through the gateway, although route_localnet is on for the bridge", async () => {
    const w = await world();
    const net = await createNetwork(w.plugin);
    const c = await container(w, net);
    const bridge = `mn-${net.id.slice(0, 12)}`;
    expect((await w.host.run(['sysctl', '-n', `net.ipv4.conf.${bridge}.route_localnet`])).trim()).toBe('1');
    const local = await serve(w.host, 'host-lo', { tcp: [9999], udp: [9999], bind: '127.0.0.1' });
    expect(await tcpAsk(w.host, '127.0.0.1', 9999)).toBe('host-lo from 127.0.0.1');
    // The container sends to 127.0.0.1 through its gateway (CVE-2020-8558's path): it drops its
    // own loopback address, routes 127.0.0.1 via the gateway and accepts loopback answers.
    await routeLoopbackVia(c.box, 'eth0', ipOf(net.gateway4));
    expect(await all({ tcp: tcpAsk(c.box, '127.0.0.1', 9999, false), udp: udpAsk(c.box, '127.0.0.1', 9999, false) })).toEqual({
      tcp: undefined,
      udp: undefined,
    });
    expect(received(local).filter((r) => r.startsWith(`${c.ip}:`))).toEqual([]);
    // Losing mynet's table fails closed here too: the guard's iptables half (raw PREROUTING)
    // still drops it, while route_localnet stays on for the bridge.
    await w.host.run(['nft', 'delete', 'table', ...TABLE.split(' ')]);
    expect((await w.host.run(['sysctl', '-n', `net.ipv4.conf.${bridge}.route_localnet`])).trim()).toBe('1');
    expect(await all({ tcp: tcpAsk(c.box, '127.0.0.1', 9999, false), udp: udpAsk(c.box, '127.0.0.1', 9999, false) })).toEqual({
      tcp: undefined,
      udp: undefined,
    });
    expect(received(local).filter((r) => r.startsWith(`${c.ip}:`))).toEqual([]);
    // What stops it is that guard: without it too, the container gets in.
    await removeForwardHook(w.host.exec, log);
    expect(await tcpAsk(c.box, '127.0.0.1', 9999)).toBe(`host-lo from ${c.ip}`);
  });

  it("the host's own 127.0.0.1 still reaches a port published on 127.0.0.1, with the guard in both places", async () => {
    const w = await world();
    const net = await createNetwork(w.plugin);
    const c = await container(w, net);
    await serve(c.box, 'c', { tcp: [80] });
    await publish(w.plugin, c.ep, [binding(TCP, 80, 8089, { hostIp: '127.0.0.1' })]);
    expect(await w.host.run(['iptables-save', '-t', 'raw'])).toContain('-s 127.0.0.0/8 -m devgroup --src-group 0x6d6e');
    expect(await tcpAsk(w.host, '127.0.0.1', 8089)).toMatch(/^c from /);
  });
});

describe('teardown', () => {
  it('after every endpoint and network is removed, the host namespace is as before the first network: no inet mynet table', async () => {
    const w = await world({ firewall: dockerLikeFirewall });
    const before = await w.host.dump();
    const nets = [
      await createNetwork(w.plugin, { v6Pool: 'fd00:71::/64' }),
      await createNetwork(w.plugin, { generic: { 'com.docker.network.bridge.enable_icc': 'false', 'mynet.isolate': 'false' } }),
      await createNetwork(w.plugin, { generic: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' } }),
      await createNetwork(w.plugin, { generic: { 'com.docker.network.host_ipv4': HOST_ADDR2 } }),
      await createNetwork(w.plugin, { options: { 'com.docker.network.internal': true } }),
    ];
    const cs: [number, Container][] = [];
    for (const [i, n] of nets.entries()) {
      for (const k of [1, 2]) cs.push([i, await container(w, n, i === 0 ? { addressV6: `fd00:71::${k}/64` } : {})]);
    }
    let hostPort = 8000;
    for (const [, c] of cs) {
      await publish(w.plugin, c.ep, [
        binding(TCP, 80, hostPort),
        binding(UDP, 80, hostPort),
        binding(SCTP, 80, hostPort),
        binding(TCP, 81, hostPort + 1, { hostIp: '127.0.0.1' }),
        binding(UDP, 53, hostPort + 1, { hostIp: HOST_ADDR }),
      ]);
      hostPort += 2;
    }
    const [, first] = cs[0] as [number, Container];
    await serve(first.box, 'first', { tcp: [80] });
    expect(await tcpAsk(w.outside, HOST_ADDR, 8000)).toBe(`first from ${OUTSIDE_ADDR}`);
    const mid = await w.host.dump();
    expect(mid.nft).toContain(`table ${TABLE}`);
    expect(mid.nft).toContain(`${HOST_ADDR} . udp . 8001`);
    expect(mid.nft).toContain('sctp . 8000');

    for (const [i, c] of cs) await removeEndpoint(w.plugin, nets[i] as (typeof nets)[number], c.ep);
    for (const n of nets) {
      await w.plugin.deleteNetwork({ NetworkID: n.id }, log);
      await w.plugin.releaseAddress({ PoolID: n.poolId4, Address: ipOf(n.gateway4) }, log);
    }
    for (const id of [...w.plugin.state.pools.keys()]) await w.plugin.releasePool({ PoolID: id }, log);
    const after = await w.host.dump();
    expect(after.nft).not.toContain(TABLE);
    expect(after).toEqual(before);
  });
});

/** A bridge of another driver, with one "foreign container" (192.168.77.2, gateway .1) on it. */
async function foreignBridge(host: TestNetns, name: string): Promise<TestNetns> {
  const box = await createNetns();
  await host.run(['ip', 'link', 'add', 'name', name, 'type', 'bridge']);
  await host.run(['ip', 'addr', 'add', '192.168.77.1/24', 'dev', name]);
  await host.run(['ip', 'link', 'set', 'dev', name, 'up']);
  await host.run(['ip', 'link', 'add', 'name', 'mnt-fv', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', box.name]);
  await host.run(['ip', 'link', 'set', 'dev', 'mnt-fv', 'master', name, 'up']);
  await box.run(['ip', 'addr', 'add', '192.168.77.2/24', 'dev', 'eth0']);
  await box.run(['ip', 'link', 'set', 'dev', 'eth0', 'up']);
  await box.run(['ip', 'route', 'add', 'default', 'via', '192.168.77.1']);
  return box;
}
