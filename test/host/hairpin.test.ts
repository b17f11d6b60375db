/**
 * Issue 16: a container reaching its OWN published port through the host's address (hairpin to
 * itself), with br_netfilter on as dockerd leaves it. After DNAT the bridged frame must leave by
 * the port it came in on, which the bridge does only in hairpin mode: the veth plan sets it,
 * and turning it off on that one port brings back the time-out users saw.
 */
import { describe, expect, it } from 'vitest';
import { createNetwork, dockerLikeFirewall, ipOf, publish } from './plugin-fixture.js';
import { HOST_ADDR, TCP, UDP, all, binding, container, serve, tcpAsk, udpAsk, world, cleanUpServersAndNamespaces } from './nat-fixture.js';

cleanUpServersAndNamespaces();

describe('hairpin to itself', () => {
  it('a container reaches its own published TCP and UDP port through the host address; its port is in hairpin mode, and without it the ask times out', async () => {
    const w = await world({ firewall: dockerLikeFirewall });
    // dockerd loads br_netfilter and leaves bridged traffic passing the firewall: that is where
    // the DNATed frame is bridged back to its own port instead of being routed.
    await w.host.run(['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=1']);
    const net = await createNetwork(w.plugin);
    const c = await container(w, net);
    const peer = await container(w, net);
    await serve(c.box, 'c', { tcp: [80], udp: [80] });
    await publish(w.plugin, c.ep, [binding(TCP, 80, 8080), binding(UDP, 80, 8080)]);
    const gw = ipOf(net.gateway4);

    // The host side of each veth, on the bridge, in hairpin mode (`ip -d`: "hairpin on").
    const ports = (await w.host.run(['ip', '-d', '-o', 'link', 'show', 'type', 'veth']))
      .split('\n')
      .filter((l) => l.includes('bridge_slave'));
    expect(ports).toHaveLength(2);
    for (const p of ports) expect(p).toMatch(/ hairpin on /);

    // The answer comes back through the host (masqueraded to the gateway), as to a peer.
    expect(
      await all({
        selfTcp: tcpAsk(c.box, HOST_ADDR, 8080),
        selfUdp: udpAsk(c.box, HOST_ADDR, 8080),
        peerTcp: tcpAsk(peer.box, HOST_ADDR, 8080),
      }),
    ).toEqual({ selfTcp: `c from ${gw}`, selfUdp: `c from ${gw}`, peerTcp: `c from ${gw}` });

    // The control: hairpin off on c's port only. Its own port no longer answers; the peer's ask does.
    // The pair is named mnh<id> (host side) / mnc<id> (container side, Join's SrcName).
    const cPort = c.ep.srcName.replace(/^mnc/, 'mnh');
    expect(ports.filter((p) => p.includes(` ${cPort}@`))).toHaveLength(1);
    await w.host.run(['ip', 'link', 'set', 'dev', cPort, 'type', 'bridge_slave', 'hairpin', 'off']);
    expect(await all({ selfTcp: tcpAsk(c.box, HOST_ADDR, 8080, false), peerTcp: tcpAsk(peer.box, HOST_ADDR, 8080) })).toEqual({
      selfTcp: undefined,
      peerTcp: `c from ${gw}`,
    });
  });
});
