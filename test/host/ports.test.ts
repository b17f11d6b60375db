/**
 * Published ports against the real kernel, with real traffic: DNAT for TCP and UDP from the
 * outside host and from the host itself (its address and 127.0.0.1), host-IP bindings,
 * ephemeral ports and ranges, conflicts with other endpoints and with the host's own listeners
 * (read by src/host/ports.ts from /proc inside the host namespace), unpublishing live UDP flows,
 * and SCTP elements. And, with the real plugin (node dist/main.js, `npm run build` first) in a
 * namespace: published ports are held with bound sockets, so a process that binds one later gets
 * EADDRINUSE (issue 14.11), until it is unpublished, and again after a restart.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostPorts, Proto } from '../../src/decision.js';
import { PluginError } from '../../src/errors.js';
import { readHostPorts } from '../../src/host/listeners.js';
import { TABLE } from '../../src/plan/nft.js';
import { type TestNetns, createNetns, dockerId } from '../helpers/netns.js';
import { type CreatedNetwork, createNetwork, dockerLikeFirewall, ipOf, log, publish } from './plugin-fixture.js';
import { PluginProcess } from './plugin-process.js';
import {
  type Background,
  type Container,
  type World,
  HOST_ADDR,
  HOST_ADDR2,
  OUTSIDE_ADDR,
  OUTSIDE_ADDR2,
  SCTP,
  TCP,
  UDP,
  background,
  all,
  binding,
  container,
  received,
  routeLoopbackVia,
  serve,
  cleanUpServersAndNamespaces,
  tcpAsk,
  udpAsk,
  udpFlow,
  world,
} from './nat-fixture.js';
import { waitUntil } from '../helpers/wait.js';

const run = promisify(execFile);

/**
 * The HostPorts of a namespace, read by the real reader (src/host/ports.ts) from the files
 * inside that namespace (`ip netns exec NS cat FILE`), so the real parser sees its sockets.
 */
function nsHostPorts(ns: TestNetns): (protos: readonly Proto[]) => Promise<HostPorts> {
  const read = async (path: string): Promise<string> => {
    try {
      return (await run('ip', ['netns', 'exec', ns.name, 'cat', path], { encoding: 'utf8' })).stdout;
    } catch (err) {
      if (/No such file/.test(String((err as { stderr?: unknown }).stderr))) return '';
      throw err;
    }
  };
  return (protos) => readHostPorts(protos, read);
}

cleanUpServersAndNamespaces();

/** A world (Docker-like firewall: FORWARD policy DROP), one network, one container serving TCP and UDP 80. */
async function served(o: { hostPorts?: 'namespace' } = {}): Promise<{ w: World; net: CreatedNetwork; c: Container; server: Background }> {
  const w = await world({ firewall: dockerLikeFirewall, ...(o.hostPorts ? { hostPorts: nsHostPorts } : {}) });
  const net = await createNetwork(w.plugin);
  const c = await container(w, net);
  const server = await serve(c.box, 'c', { tcp: [80], udp: [80] });
  return { w, net, c, server };
}

const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

/** The host ports EndpointOperInfo reports for an endpoint. */
const hostPortsOf = (w: World, c: Container): number[] =>
  (
    w.plugin.endpointOperInfo({ NetworkID: c.ep.networkId, EndpointID: c.ep.id }).Value['com.docker.network.portmap'] as {
      HostPort: number;
    }[]
  ).map((b) => b.HostPort);

const nftMap = (ns: TestNetns, map: string): Promise<string> => ns.run(['nft', 'list', 'map', ...TABLE.split(' '), map]);

describe('DNAT', () => {
  it('TCP and UDP: from the outside host (its address kept), and from the host on its own addresses and on 127.0.0.1', async () => {
    const { w, net, c } = await served();
    await publish(w.plugin, c.ep, [binding(TCP, 80, 8080), binding(UDP, 80, 8080)]);
    const gw = ipOf(net.gateway4);
    expect(
      await all({
        outTcp: tcpAsk(w.outside, HOST_ADDR, 8080),
        outUdp: udpAsk(w.outside, HOST_ADDR, 8080),
        out2Tcp: tcpAsk(w.outside, HOST_ADDR2, 8080),
        hostTcp: tcpAsk(w.host, HOST_ADDR, 8080),
        hostUdp: udpAsk(w.host, HOST_ADDR, 8080),
        // Output-chain DNAT, route_localnet on the bridge, and masquerade to the gateway address.
        loTcp: tcpAsk(w.host, '127.0.0.1', 8080),
        loUdp: udpAsk(w.host, '127.0.0.1', 8080),
      }),
    ).toEqual({
      outTcp: `c from ${OUTSIDE_ADDR}`,
      outUdp: `c from ${OUTSIDE_ADDR}`,
      out2Tcp: `c from ${OUTSIDE_ADDR2}`,
      hostTcp: `c from ${HOST_ADDR}`,
      hostUdp: `c from ${HOST_ADDR}`,
      loTcp: `c from ${gw}`,
      loUdp: `c from ${gw}`,
    });
    expect(hostPortsOf(w, c)).toEqual([8080, 8080]);
    // Unpublished ports stay closed.
    expect(await tcpAsk(w.outside, HOST_ADDR, 8081, false)).toBeUndefined();
  });

  it('HostIP 127.0.0.1: served to the host on 127.0.0.1, never to the outside host or a container, even sending to 127.0.0.1', async () => {
    const { w, net, c } = await served();
    await publish(w.plugin, c.ep, [binding(TCP, 80, 8081, { hostIp: '127.0.0.1' }), binding(UDP, 80, 8081, { hostIp: '127.0.0.1' })]);
    expect(await tcpAsk(w.host, '127.0.0.1', 8081)).toBe(`c from ${ipOf(net.gateway4)}`);
    expect(await udpAsk(w.host, '127.0.0.1', 8081)).toBe(`c from ${ipOf(net.gateway4)}`);

    // The outside host sends to 127.0.0.1 through the host (route + route_localnet on its side,
    // and on the host's side too, so the host's routing would take the packet in).
    await routeLoopbackVia(w.outside, 'mnt-out', HOST_ADDR);
    await w.host.run(['sysctl', '-q', '-w', 'net.ipv4.conf.mnt-up.route_localnet=1']);
    // Another container of the network, whose bridge has route_localnet on by design, tries too.
    const other = await container(w, net);
    await routeLoopbackVia(other.box, 'eth0', ipOf(net.gateway4));
    expect(
      await all({
        hostAddr: tcpAsk(w.host, HOST_ADDR, 8081, false),
        outAddr: tcpAsk(w.outside, HOST_ADDR, 8081, false),
        outLo: tcpAsk(w.outside, '127.0.0.1', 8081, false),
        outLoUdp: udpAsk(w.outside, '127.0.0.1', 8081, false),
        otherLo: tcpAsk(other.box, '127.0.0.1', 8081, false),
      }),
    ).toEqual({ hostAddr: undefined, outAddr: undefined, outLo: undefined, outLoUdp: undefined, otherLo: undefined });

    // The trick itself works: a DNAT rule of our own for 127.0.0.1 lets the outside host in, so
    // what keeps it out above is mynet's prerouting excluding 127.0.0.0/8.
    await w.host.exec.command(
      ['nft', '-f', '-'],
      log,
      [
        'add table ip mnt_probe',
        'add chain ip mnt_probe p { type nat hook prerouting priority dstnat - 1; }',
        `add rule ip mnt_probe p ip daddr 127.0.0.1 tcp dport 8081 dnat to ${c.ip}:80`,
      ].join('\n'),
    );
    expect(await tcpAsk(w.outside, '127.0.0.1', 8081)).toBe(`c from ${OUTSIDE_ADDR}`);
  });

  it('HostIP of one host address: answers on that address only', async () => {
    const { w, c } = await served();
    await publish(w.plugin, c.ep, [binding(TCP, 80, 8082, { hostIp: HOST_ADDR }), binding(UDP, 80, 8082, { hostIp: HOST_ADDR })]);
    expect(
      await all({
        outTcp: tcpAsk(w.outside, HOST_ADDR, 8082),
        outUdp: udpAsk(w.outside, HOST_ADDR, 8082),
        hostTcp: tcpAsk(w.host, HOST_ADDR, 8082),
      }),
    ).toEqual({ outTcp: `c from ${OUTSIDE_ADDR}`, outUdp: `c from ${OUTSIDE_ADDR}`, hostTcp: `c from ${HOST_ADDR}` });
    expect(
      await all({
        otherTcp: tcpAsk(w.outside, HOST_ADDR2, 8082, false),
        otherUdp: udpAsk(w.outside, HOST_ADDR2, 8082, false),
        lo: tcpAsk(w.host, '127.0.0.1', 8082, false),
      }),
    ).toEqual({ otherTcp: undefined, otherUdp: undefined, lo: undefined });
    expect(await nftMap(w.host, 'pub4')).toContain(`${HOST_ADDR} . tcp . 8082 : ${c.ip} . 80`);
  });
});

describe('choosing host ports', () => {
  it("HostPort 0 takes a free port of the namespace's ip_local_port_range, and it answers", async () => {
    const { w, c } = await served({ hostPorts: 'namespace' });
    await w.host.run(['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=40000 40009']);
    // The range's first port is taken by a process of the host.
    await serve(w.host, 'host', { tcp: [40000] });
    await publish(w.plugin, c.ep, [binding(TCP, 80, 0)]);
    const [port] = hostPortsOf(w, c);
    expect(port).toBeGreaterThan(40000);
    expect(port).toBeLessThanOrEqual(40009);
    expect(await tcpAsk(w.outside, HOST_ADDR, port as number)).toBe(`c from ${OUTSIDE_ADDR}`);
  });

  it('a host port range takes the first port no one uses', async () => {
    const { w, net, c } = await served({ hostPorts: 'namespace' });
    await serve(w.host, 'host', { tcp: [8000] }); // a process of the host on 8000
    const other = await container(w, net);
    await publish(w.plugin, other.ep, [binding(TCP, 80, 8001)]); // another container on 8001
    await publish(w.plugin, c.ep, [binding(TCP, 80, 8000, { hostPortEnd: 8005 })]);
    expect(hostPortsOf(w, c)).toEqual([8002]);
    expect(await tcpAsk(w.outside, HOST_ADDR, 8002)).toBe(`c from ${OUTSIDE_ADDR}`);
    expect(await tcpAsk(w.outside, HOST_ADDR, 8000)).toBe(`host from ${OUTSIDE_ADDR}`);
  });
});

describe('conflicts', () => {
  it('the same host port for a second endpoint: CONFLICT naming the port, and the failed request changes nothing', async () => {
    const { w, net, c } = await served();
    await publish(w.plugin, c.ep, [binding(TCP, 80, 8080)]);
    const second = await container(w, net);
    const before = await w.host.dump();
    // The first binding is free, the second conflicts: all or nothing.
    const err = await rejection(publish(w.plugin, second.ep, [binding(TCP, 80, 8090), binding(TCP, 80, 8080)]));
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).code).toBe('CONFLICT');
    expect((err as PluginError).message).toBe(`host port 8080/tcp is already published by mynet endpoint ${c.ep.id.slice(0, 12)}`);
    expect(await w.host.dump()).toEqual(before);
    expect(hostPortsOf(w, second)).toEqual([]);
    expect(await tcpAsk(w.outside, HOST_ADDR, 8090, false)).toBeUndefined();
    // Other protocols and other ports are free.
    await serve(second.box, 'second', { tcp: [80], udp: [80] });
    await publish(w.plugin, second.ep, [binding(TCP, 80, 8090), binding(UDP, 80, 8080)]);
    expect(await tcpAsk(w.outside, HOST_ADDR, 8090)).toBe(`second from ${OUTSIDE_ADDR}`);
    expect(await udpAsk(w.outside, HOST_ADDR, 8080)).toBe(`second from ${OUTSIDE_ADDR}`);
    expect(await tcpAsk(w.outside, HOST_ADDR, 8080)).toBe(`c from ${OUTSIDE_ADDR}`);
  });

  it('a process of the host listening on the port: CONFLICT naming the listener', async () => {
    const { w, c } = await served({ hostPorts: 'namespace' });
    // Listeners as the brief's node one-liner makes them: on [::] (dual-stack), and on 0.0.0.0 (TCP, UDP).
    await background(w.host, "require('net').createServer().listen(8086, () => console.log('ready'))", [], 'ready');
    await serve(w.host, 'host', { tcp: [8087], udp: [8088] });
    const before = await w.host.dump();
    for (const [b, listener] of [
      [binding(TCP, 80, 8086), '[::]:8086'],
      [binding(TCP, 80, 8087), '0.0.0.0:8087'],
      [binding(UDP, 80, 8088), '0.0.0.0:8088'],
      [binding(TCP, 80, 8087, { hostIp: HOST_ADDR }), '0.0.0.0:8087'],
    ] as const) {
      const err = await rejection(publish(w.plugin, c.ep, [b]));
      expect(err, listener).toBeInstanceOf(PluginError);
      expect((err as PluginError).code).toBe('CONFLICT');
      expect((err as PluginError).message).toContain(`is in use by a process listening on ${listener}`);
    }
    expect(await w.host.dump()).toEqual(before);
    // UDP 8087 and TCP 8088 are free.
    await publish(w.plugin, c.ep, [binding(UDP, 80, 8087), binding(TCP, 80, 8088)]);
    expect(await tcpAsk(w.outside, HOST_ADDR, 8088)).toBe(`c from ${OUTSIDE_ADDR}`);
  });

  it('listeners on one IPv6 address, or an IPv4-mapped one, conflict with bindings on that address', async () => {
    const w = await world({ firewall: dockerLikeFirewall, hostPorts: nsHostPorts });
    const net = await createNetwork(w.plugin, { v6Pool: 'fd00:72::/64' });
    const c = await container(w, net, { addressV6: 'fd00:72::2/64' });
    await serve(w.host, 'host', { tcp: [8089], bind: '::1' });
    // A dual-stack socket bound to an IPv4 address shows in /proc/net/tcp6 as ::ffff:127.0.0.1.
    await background(w.host, "require('net').createServer().listen(8090, '::ffff:127.0.0.1', () => console.log('ready'))", [], 'ready');
    for (const [b, listener] of [
      [binding(TCP, 80, 8089, { hostIp: '::1' }), '[::1]:8089'],
      [binding(TCP, 80, 8090, { hostIp: '127.0.0.1' }), '127.0.0.1:8090'],
    ] as const) {
      const err = await rejection(publish(w.plugin, c.ep, [b]));
      expect(err, listener).toBeInstanceOf(PluginError);
      expect((err as PluginError).message).toContain(`is in use by a process listening on ${listener}`);
    }
    // Another address of the same port is free.
    await publish(w.plugin, c.ep, [binding(TCP, 80, 8089, { hostIp: HOST_ADDR })]);
    expect(hostPortsOf(w, c)).toEqual([8089]);
  });
});

describe('unpublishing', () => {
  it('RevokeExternalConnectivity stops a live UDP flow and forgets it; the port then reaches the next container', async () => {
    const { w, net, c, server } = await served();
    await publish(w.plugin, c.ep, [binding(UDP, 80, 8080)]);
    const flow = await udpFlow(w.outside, HOST_ADDR, 8080);
    await waitFor(() => received(server).length >= 3, 'the flow reaches the old container');
    expect(await w.host.run(['conntrack', '-L', '-p', 'udp', '--reply-src', c.ip])).toContain('dport=8080');

    await w.plugin.revokeExternalConnectivity({ NetworkID: net.id, EndpointID: c.ep.id }, log);
    const n = received(server).length;
    // The flow's entry is forgotten after the answer (a background step).
    const oldFlow = (): Promise<string> => w.host.run(['conntrack', '-L', '--reply-src', c.ip]);
    await waitUntil('the old flow forgotten', async () => (await oldFlow()) === '', { ms: 5000, every: 50 });
    expect(await oldFlow()).toBe('');

    // The flow goes on (now to the host itself); the same host port published for a new
    // container reaches it. With three ports, the flows are found from one `conntrack -L`.
    const next = await container(w, net);
    const nextServer = await serve(next.box, 'next', { udp: [80] });
    await publish(w.plugin, next.ep, [binding(UDP, 81, 8079), binding(UDP, 80, 8080), binding(UDP, 82, 8081)]);
    await waitFor(() => received(nextServer).length >= 3, 'the flow reaches the new container');
    // Everything the flow sent since the revoke went elsewhere: one may have been on its way.
    expect(received(server).length - n).toBeLessThanOrEqual(1);
    flow.stop();
  });

  it('with no flow to forget, unpublishing spawns no process: the conntrack table is read in-process (issue 26)', async () => {
    const { w, net, c } = await served();
    await publish(w.plugin, c.ep, [binding(UDP, 80, 8080), binding(TCP, 80, 8080)]);
    // A flow of another address is in the table: only the container's own flows count.
    await w.host.run([
      'conntrack',
      '-I',
      '-p',
      'udp',
      '-s',
      OUTSIDE_ADDR,
      '-d',
      HOST_ADDR,
      '--sport',
      '5000',
      '--dport',
      '9',
      '-r',
      HOST_ADDR,
      '-q',
      OUTSIDE_ADDR,
      '--reply-port-src',
      '9',
      '--reply-port-dst',
      '5000',
      '-t',
      '60',
    ]);
    const before = w.host.exec.spawns;
    await w.plugin.revokeExternalConnectivity({ NetworkID: net.id, EndpointID: c.ep.id }, log);
    expect(w.host.exec.spawns - before).toBe(0);
    expect(await nftMap(w.host, 'pub4any')).not.toContain('elements');
  });

  it('SCTP: the binding becomes an element of pub4any', async () => {
    const { w, c } = await served();
    await publish(w.plugin, c.ep, [binding(SCTP, 80, 8080), binding(TCP, 80, 8080)]);
    const map = await nftMap(w.host, 'pub4any');
    expect(map).toContain(`sctp . 8080 : ${c.ip} . 80`);
    expect(map).toContain(`tcp . 8080 : ${c.ip} . 80`);
    await w.plugin.revokeExternalConnectivity({ NetworkID: c.ep.networkId, EndpointID: c.ep.id }, log);
    expect(await nftMap(w.host, 'pub4any')).not.toContain('elements');
  });
});

describe('held host ports: the real plugin in a namespace', () => {
  let dir = '';
  let nsName = '';
  let plugin: PluginProcess | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mnt-held-'));
    plugin = new PluginProcess(() => nsName, join(dir, 'plugin'), {
      MYNET_DNS_LISTEN: '',
      MYNET_LOG_LEVEL: 'error',
      MYNET_RECONCILE_INTERVAL: '3600',
    });
  });
  afterAll(async () => {
    await plugin?.kill9();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const call = (path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> =>
    new Promise((res, rej) => {
      const data = JSON.stringify(body);
      const req = request(
        { socketPath: plugin?.socket, agent, method: 'POST', path, headers: { 'Content-Length': Buffer.byteLength(data) } },
        (r) => {
          let t = '';
          r.on('data', (d: Buffer) => (t += d.toString()));
          r.on('end', () => res({ status: r.statusCode ?? 0, body: JSON.parse(t) as Record<string, unknown> }));
        },
      );
      req.on('error', rej);
      req.end(data);
    });
  const ok = async (path: string, body: unknown): Promise<void> => {
    const r = await call(path, body);
    expect(r, path).toEqual({ status: 200, body: expect.anything() as unknown });
  };

  async function start(ns: TestNetns): Promise<void> {
    nsName = ns.name;
    await plugin?.start();
  }
  async function stop(): Promise<void> {
    await plugin?.stop();
  }

  /** What a process of the host gets when it binds proto/port on host in the namespace: 'bound' or the errno. */
  const bindInNs = async (ns: TestNetns, proto: 'tcp' | 'udp', port: number, host: string): Promise<string> => {
    const script =
      proto === 'tcp'
        ? 'const s = require("net").createServer(); s.on("error", (e) => { console.log(e.code); process.exit(0); }); s.listen(+process.argv[1], process.argv[2], () => { console.log("bound"); process.exit(0); });'
        : 'const s = require("dgram").createSocket(process.argv[2].includes(":") ? "udp6" : "udp4"); s.on("error", (e) => { console.log(e.code); process.exit(0); }); s.bind(+process.argv[1], process.argv[2], () => { console.log("bound"); process.exit(0); });';
    return (await run('ip', ['netns', 'exec', ns.name, 'node', '-e', script, String(port), host], { encoding: 'utf8' })).stdout.trim();
  };

  it('a process that binds a published port later gets EADDRINUSE, on any address of it; after Revoke it binds; a restart holds the stored ports again', async () => {
    const ns = await createNetns();
    await start(ns);
    const NET = dockerId();
    const EP = dockerId();
    await ok('/NetworkDriver.CreateNetwork', {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'x', Pool: '10.91.0.0/24', Gateway: '10.91.0.1/24' }],
      IPv6Data: [],
    });
    await ok('/NetworkDriver.CreateEndpoint', {
      NetworkID: NET,
      EndpointID: EP,
      Interface: { Address: '10.91.0.2/24', AddressIPv6: '', MacAddress: '' },
      Options: {},
    });
    await ok('/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/x', Options: {} });
    const portmap = [
      { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
      { Proto: 17, IP: '', Port: 53, HostIP: '', HostPort: 8053, HostPortEnd: 8053 },
    ];
    await ok('/NetworkDriver.ProgramExternalConnectivity', {
      NetworkID: NET,
      EndpointID: EP,
      Options: { 'com.docker.network.portmap': portmap },
    });
    // One after the other: two of them would be in each other's way.
    const tries = async (): Promise<Record<string, string>> => ({
      tcpAny: await bindInNs(ns, 'tcp', 8080, '0.0.0.0'),
      tcpDual: await bindInNs(ns, 'tcp', 8080, '::'),
      tcpLo: await bindInNs(ns, 'tcp', 8080, '127.0.0.1'),
      udpAny: await bindInNs(ns, 'udp', 8053, '0.0.0.0'),
      udpLo: await bindInNs(ns, 'udp', 8053, '127.0.0.1'),
      // The container has no IPv6 address: nothing is published, nor held, on IPv6 only.
      tcp6Lo: await bindInNs(ns, 'tcp', 8080, '::1'),
    });
    const held = {
      tcpAny: 'EADDRINUSE',
      tcpDual: 'EADDRINUSE',
      tcpLo: 'EADDRINUSE',
      udpAny: 'EADDRINUSE',
      udpLo: 'EADDRINUSE',
      tcp6Lo: 'bound',
    };
    expect(await tries()).toEqual(held);

    // Restarted: the stored ports are held again.
    await stop();
    expect(await bindInNs(ns, 'tcp', 8080, '0.0.0.0')).toBe('bound');
    await start(ns);
    // A readiness wait, not a bound: each try starts a node process, slow on a loaded CI machine (5 s was missed).
    await waitUntil('the restarted plugin to hold 8080 again', async () => (await bindInNs(ns, 'tcp', 8080, '0.0.0.0')) !== 'bound', {
      ms: 30_000,
      every: 50,
    });
    expect(await tries()).toEqual(held);

    await ok('/NetworkDriver.RevokeExternalConnectivity', { NetworkID: NET, EndpointID: EP });
    expect(await tries()).toEqual({ tcpAny: 'bound', tcpDual: 'bound', tcpLo: 'bound', udpAny: 'bound', udpLo: 'bound', tcp6Lo: 'bound' });

    // A process already on the port: the bind at publish time is the conflict check, naming it.
    const server = await background(ns, "require('net').createServer().listen(8086, () => console.log('ready'))", [], 'ready');
    const refused = await call('/NetworkDriver.ProgramExternalConnectivity', {
      NetworkID: NET,
      EndpointID: EP,
      Options: {
        'com.docker.network.portmap': [portmap[0], { Proto: 6, IP: '', Port: 81, HostIP: '', HostPort: 8086, HostPortEnd: 8086 }],
      },
    });
    expect(refused).toEqual({
      status: 500,
      body: {
        Err: `hold 2 host port socket(s) of ${EP.slice(0, 12)}: host port 8086/tcp is in use by a process listening on [::]:8086; rolled back`,
      },
    });
    server.stop();
    // All or nothing: 8080 of the refused request is neither held nor published.
    expect(await bindInNs(ns, 'tcp', 8080, '0.0.0.0')).toBe('bound');
    expect(await ns.run(['nft', 'list', 'map', ...TABLE.split(' '), 'pub4any'])).not.toContain('8080');

    await ok('/NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP });
    await ok('/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP });
    await ok('/NetworkDriver.DeleteNetwork', { NetworkID: NET });
    await stop();
  });
});

const waitFor = (ok: () => boolean, what: string, ms = 5000): Promise<number> => waitUntil(what, ok, { ms, every: 50 });
