/**
 * Issue: outbound NAT, isolation, internal networks and published ports, from the user's side.
 * An "outside host" namespace with no route to container subnets stands for the rest of the
 * network: only NAT makes its replies come back.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { restartDockerd } from './helpers/dockerd.js';
import { type Outside, makeOutside } from './helpers/outside.js';
import { httpGet, httpGetFrom, udpAsk, udpServerIn } from './helpers/net.js';
import { type PluginHandle, SOCKET, removeStateDir, startPlugin } from './helpers/plugin.js';
import { Resources, exec } from './helpers/resources.js';
import { docker, dockerOk, ok, sh, waitFor } from './helpers/sh.js';

const HTTPD = ['httpd', '-f', '-p', '80', '-h', '/www'];
const ipOf = (c: string, net: string): Promise<string> =>
  dockerOk('inspect', c, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
const ping = (from: string, to: string): Promise<boolean> => exec(from, 'ping', '-c', '1', '-W', '2', to).then((r) => r.exitCode === 0);

/** Asks the plugin itself (EndpointOperInfo) which ports are in force for a container. */
async function portsInForce(c: string, net: string): Promise<{ HostPort: number; Port: number; Proto: number }[]> {
  const ids = JSON.parse(await dockerOk('inspect', c, '--format', `{{json (index .NetworkSettings.Networks "${net}")}}`)) as {
    NetworkID: string;
    EndpointID: string;
  };
  const out = await ok('curl', [
    '-s',
    '--unix-socket',
    SOCKET,
    '-X',
    'POST',
    '-d',
    JSON.stringify({ NetworkID: ids.NetworkID, EndpointID: ids.EndpointID }),
    'http://plugin/NetworkDriver.EndpointOperInfo',
  ]);
  return (JSON.parse(out) as { Value: { 'com.docker.network.portmap': { HostPort: number; Port: number; Proto: number }[] } }).Value[
    'com.docker.network.portmap'
  ];
}

const nftMap = (map: string): Promise<string> => ok('nft', ['list', 'map', 'inet', 'mynet', map]);

describe('outbound NAT, isolation and published ports with a real dockerd', () => {
  let plugin: PluginHandle;
  let outside: Outside;
  const r = new Resources('p');

  beforeAll(async () => {
    plugin = await startPlugin();
    outside = await makeOutside(0);
  });
  afterAll(async () => {
    await r.cleanup();
    await outside?.destroy();
    await plugin?.stop();
    if (plugin) removeStateDir(plugin);
  });

  it("masquerades outbound traffic to the host's address (and not when disabled)", async () => {
    const on = await r.network(['-d', 'mynet', '--subnet', '10.81.0.0/24']);
    const off = await r.network(['-d', 'mynet', '--subnet', '10.81.1.0/24', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false']);
    const a = await r.container(['--network', on]);
    const b = await r.container(['--network', off]);
    expect(await ping(a, outside.ip)).toBe(true);
    // Without masquerade the outside host sees 10.81.1.x, to which it has no route back.
    expect(await ping(b, outside.ip)).toBe(false);
  });

  it("publishes -p 8080:80: answers from the outside host, the host's address and 127.0.0.1, with no proxy process", async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.82.0.0/24']);
    await r.container(['--network', n, '-p', '8080:80'], HTTPD);
    expect(await httpGet(outside.hostIp, 8080, outside.ns)).toBe('mynet-e2e');
    expect(await httpGet(outside.hostIp, 8080)).toBe('mynet-e2e');
    expect(await httpGet('127.0.0.1', 8080)).toBe('mynet-e2e');
    expect((await sh('pgrep', ['-f', 'docker-proxy.*8080'])).exitCode).not.toBe(0);
  });

  it("reaches a published port from containers through the host's address (hairpin), ICC on or off", async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.83.0.0/24', '-o', 'com.docker.network.bridge.enable_icc=false']);
    const web = await r.container(['--network', n, '-p', '8081:80'], HTTPD);
    const client = await r.container(['--network', n]);
    expect(await httpGetFrom(client, outside.hostIp, 8081)).toBe('mynet-e2e');
    // ICC off: not directly, though.
    expect(await httpGetFrom(client, await ipOf(web, n), 80)).toBe('');
    expect(await ping(client, web)).toBe(false);
    expect(await ping(client, outside.ip)).toBe(true);
  });

  it('binds a host IP: -p 127.0.0.1:8082:80 answers on 127.0.0.1 only', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.84.0.0/24']);
    await r.container(['--network', n, '-p', '127.0.0.1:8082:80'], HTTPD);
    expect(await httpGet('127.0.0.1', 8082)).toBe('mynet-e2e');
    expect(await httpGet(outside.hostIp, 8082, outside.ns)).toBe('');
    expect(await httpGet(outside.hostIp, 8082)).toBe('');
  });

  it("honours com.docker.network.bridge.host_binding_ipv4 as the network's default host IP", async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.84.1.0/24', '-o', 'com.docker.network.bridge.host_binding_ipv4=127.0.0.1']);
    await r.container(['--network', n, '-p', '8083:80'], HTTPD);
    expect(await httpGet('127.0.0.1', 8083)).toBe('mynet-e2e');
    expect(await httpGet(outside.hostIp, 8083, outside.ns)).toBe('');
  });

  it('-p 80 gets a free port from the ephemeral range and the plugin reports it', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.85.0.0/24']);
    const c = await r.container(['--network', n, '-p', '80'], HTTPD);
    const [binding] = await portsInForce(c, n);
    const [lo, hi] = (await ok('cat', ['/proc/sys/net/ipv4/ip_local_port_range'])).split(/\s+/).map(Number);
    expect(binding?.Port).toBe(80);
    expect(binding?.HostPort).toBeGreaterThanOrEqual(lo as number);
    expect(binding?.HostPort).toBeLessThanOrEqual(hi as number);
    expect(await httpGet(outside.hostIp, binding?.HostPort as number, outside.ns)).toBe('mynet-e2e');
  });

  it('publishes a host port range and UDP', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.85.1.0/24']);
    const c = await r.container(['--network', n, '-p', '9000-9002:9000-9002', '-p', '5353:53/udp']);
    const server = await udpServerIn(c, 53);
    try {
      expect(await udpAsk(outside.hostIp, 5353, outside.ns)).toBe('pong');
      expect(await udpAsk('127.0.0.1', 5353)).toBe('pong');
    } finally {
      server.kill();
    }
    const ports = (await portsInForce(c, n)).map((b) => `${b.HostPort}->${b.Port}/${b.Proto}`).sort();
    expect(ports).toEqual(['5353->53/17', '9000->9000/6', '9001->9001/6', '9002->9002/6']);
  });

  it('refuses a host port already published, or held by a host process, naming the port; nothing is left programmed', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.86.0.0/24']);
    await r.container(['--network', n, '-p', '8084:80'], HTTPD);
    const before = await nftMap('pub4any');
    const dup = r.name('dup');
    r.track(dup);
    const err = await docker('run', '-d', '--name', dup, '--network', n, '-p', '8084:80', '-p', '8085:80', 'mynet-test/busybox', ...HTTPD);
    expect(err.exitCode).not.toBe(0);
    expect(err.stderr).toContain('host port 8084/tcp is already published by mynet endpoint');
    expect(await nftMap('pub4any')).toBe(before); // 8085 was not left behind
    const server: Server = createServer();
    await new Promise<void>((res) => server.listen(8086, '0.0.0.0', res));
    try {
      const held = r.name('held');
      r.track(held);
      const e2 = await docker('run', '-d', '--name', held, '--network', n, '-p', '8086:80', 'mynet-test/busybox', ...HTTPD);
      expect(e2.stderr).toContain('host port 8086/tcp is in use by a process listening on 0.0.0.0:8086');
    } finally {
      server.close();
    }
  });

  it('an address given again to a new container works at once, with a neighbour that stayed (MAC from the IPv4 address, as Docker does)', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.139.0.0/24']);
    const stays = await r.container(['--network', n]);
    const old = await r.container(['--network', n, '-p', '8091:80'], HTTPD);
    const addr = await ipOf(old, n);
    expect(await ping(stays, addr)).toBe(true); // both neighbour caches now hold old's MAC
    expect(await httpGet('127.0.0.1', 8091)).toBe('mynet-e2e');
    await dockerOk('rm', '-f', old);
    const next = await r.container(['--network', n, '-p', '8091:80'], HTTPD);
    expect(await ipOf(next, n)).toBe(addr);
    expect(await httpGet('127.0.0.1', 8091)).toBe('mynet-e2e');
    expect(await ping(stays, addr)).toBe(true);
  });

  it('after docker rm the port is free, its flows are forgotten, and no element is left', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.87.0.0/24']);
    const c = await r.container(['--network', n, '-p', '8087:80'], HTTPD);
    expect(await httpGet('127.0.0.1', 8087)).toBe('mynet-e2e');
    await dockerOk('rm', '-f', c);
    expect(await nftMap('pub4any')).not.toContain('8087');
    expect((await sh('conntrack', ['-L', '-p', 'tcp', '--orig-port-dst', '8087'])).stdout).not.toContain('ESTABLISHED');
    await r.container(['--network', n, '-p', '8087:80'], HTTPD);
    expect(await httpGet('127.0.0.1', 8087)).toBe('mynet-e2e');
  });

  it('an internal network reaches nothing outside and gets no masquerade', async () => {
    const n = await r.network(['-d', 'mynet', '--internal', '--subnet', '10.88.0.0/24']);
    const a = await r.container(['--network', n]);
    const b = await r.container(['--network', n]);
    expect(await ping(a, b)).toBe(true);
    expect(await ping(a, outside.ip)).toBe(false);
    expect(await ping(a, outside.hostIp)).toBe(false);
  });

  it("isolates mynet networks from each other and from Docker's bridges, both ways", async () => {
    const n1 = await r.network(['-d', 'mynet', '--subnet', '10.89.0.0/24']);
    const n2 = await r.network(['-d', 'mynet', '--subnet', '10.89.1.0/24']);
    const dn = await r.network(['-d', 'bridge', '--subnet', '10.89.2.0/24']);
    const a = await r.container(['--network', n1]);
    const b = await r.container(['--network', n2]);
    const d = await r.container(['--network', dn]);
    expect(await ping(a, await ipOf(b, n2))).toBe(false);
    expect(await ping(b, await ipOf(a, n1))).toBe(false);
    expect(await ping(a, await ipOf(d, dn))).toBe(false);
    expect(await ping(d, await ipOf(a, n1))).toBe(false);
    // and still reach the outside
    expect(await ping(a, outside.ip)).toBe(true);
  });

  it('container addresses are not reachable directly from another host, only published ports', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.90.0.0/24']);
    const c = await r.container(['--network', n, '-p', '8088:80'], HTTPD);
    const cip = await ipOf(c, n);
    // Give the outside host a route to the container subnet through us, as a neighbour could.
    await outside.run('ip', 'route', 'add', '10.90.0.0/24', 'via', outside.hostIp);
    try {
      expect(await httpGet(cip, 80, outside.ns)).toBe('');
      expect(await httpGet(outside.hostIp, 8088, outside.ns)).toBe('mynet-e2e');
    } finally {
      await outside.run('ip', 'route', 'del', '10.90.0.0/24');
    }
  });
});

describe('dockerd restarts with mynet networks present', () => {
  let plugin: PluginHandle;
  const r = new Resources('dr');

  beforeAll(async () => {
    plugin = await startPlugin();
  });
  afterAll(async () => {
    await r.cleanup();
    await plugin?.stop();
    if (plugin) removeStateDir(plugin);
  });

  it('restarted containers come back with their published port and their peers, without restarting the plugin', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.91.0.0/24']);
    const web = await r.container(['--network', n, '--restart', 'always', '-p', '8090:80'], HTTPD);
    const peer = await r.container(['--network', n, '--restart', 'always']);
    expect(await httpGet('127.0.0.1', 8090)).toBe('mynet-e2e');
    await restartDockerd(inject('dockerdOwned'));
    await waitFor(
      'restarted containers',
      async () => (await dockerOk('ps', '-q', '--filter', `network=${n}`)).split('\n').filter(Boolean).length === 2,
      60_000,
      500,
    );
    await waitFor('the published port', async () => (await httpGet('127.0.0.1', 8090)) === 'mynet-e2e', 20_000, 500);
    expect(await ping(peer, web)).toBe(true);
  });
});
