/**
 * Issue: foundation. The plugin started as `make run` starts it, then used as a user would:
 * `docker network create -d mynet` with and without mynet's IPAM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { type PluginHandle, SOCKET, removeStateDir, startPlugin } from './helpers/plugin.js';
import { Resources, mynetLinks } from './helpers/resources.js';
import { dockerOk, ok } from './helpers/sh.js';

interface IpamConfig {
  Subnet: string;
  Gateway?: string;
  IPRange?: string;
  AuxiliaryAddresses?: Record<string, string>;
}
const ipamOf = async (net: string): Promise<{ Driver: string; Config: IpamConfig[] }> =>
  JSON.parse(await dockerOk('network', 'inspect', net, '--format', '{{json .IPAM}}')) as { Driver: string; Config: IpamConfig[] };

describe('foundation: docker network create -d mynet', () => {
  let plugin: PluginHandle;
  const r = new Resources('f');

  beforeAll(async () => {
    plugin = await startPlugin({ viaMake: true });
  });
  afterAll(async () => {
    await r.cleanup();
    if (!plugin) return; // it never started: beforeAll's error says why
    await plugin.stop();
    // SIGTERM reached the plugin under make: it finished, saved and removed its socket.
    expect(plugin.logs()).toContain('"msg":"stopped"');
    expect(existsSync(SOCKET)).toBe(false);
    removeStateDir(plugin);
  });

  it('creates the README network with --subnet (Docker IPAM) and inspect shows it', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.99.0.0/24']);
    const ipam = await ipamOf(n);
    expect(ipam.Config[0]?.Subnet).toBe('10.99.0.0/24');
    expect(await dockerOk('network', 'inspect', n, '--format', '{{.Driver}}')).toBe('mynet');
  });

  it('with --ipam-driver mynet and no subnet, picks a pool from MYNET_DEFAULT_POOLS with a gateway', async () => {
    const n = await r.network(['-d', 'mynet', '--ipam-driver', 'mynet']);
    const ipam = await ipamOf(n);
    expect(ipam.Driver).toBe('mynet');
    expect(ipam.Config[0]?.Subnet).toMatch(/^10\.200\.\d+\.0\/24$/);
    expect(ipam.Config[0]?.Gateway).toBe(ipam.Config[0]?.Subnet.replace(/0\/24$/, '1'));
    const second = await ipamOf(await r.network(['-d', 'mynet', '--ipam-driver', 'mynet']));
    expect(second.Config[0]?.Subnet).not.toBe(ipam.Config[0]?.Subnet);
  });

  it('with --ipam-driver mynet honours --subnet, --ip-range, --gateway, --aux-address and --ipv6', async () => {
    const n = await r.network([
      '-d',
      'mynet',
      '--ipam-driver',
      'mynet',
      '--subnet',
      '10.98.0.0/16',
      '--ip-range',
      '10.98.5.0/24',
      '--gateway',
      '10.98.0.254',
      '--aux-address',
      'host1=10.98.0.10',
      '--ipv6',
      '--subnet',
      'fd00:98::/64',
    ]);
    const cfg = (await ipamOf(n)).Config;
    const v4 = cfg.find((c) => c.Subnet === '10.98.0.0/16');
    const v6 = cfg.find((c) => c.Subnet === 'fd00:98::/64');
    expect(v4).toMatchObject({ IPRange: '10.98.5.0/24', Gateway: '10.98.0.254', AuxiliaryAddresses: { host1: '10.98.0.10' } });
    expect(v6).toBeDefined();
    // dockerd shows only gateways the user gave; mynet's IPAM gave fd00:98::1, which is on the bridge.
    const id = await dockerOk('network', 'inspect', n, '--format', '{{.Id}}');
    expect(await ok('ip', ['-6', '-o', 'addr', 'show', 'dev', `mn-${id.slice(0, 12)}`])).toContain('fd00:98::1/64');
    // A container gets its address from the ip-range, with the pool's prefix length.
    const c = await r.container(['--network', n]);
    const addr = await dockerOk('exec', c, 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    expect(addr).toMatch(/inet 10\.98\.5\.\d+\/16/);
  });

  it("refuses an overlapping --subnet with mynet's message in the docker CLI error", async () => {
    await r.network(['-d', 'mynet', '--ipam-driver', 'mynet', '--subnet', '10.97.0.0/16']);
    const err = await r.networkFails(['-d', 'mynet', '--ipam-driver', 'mynet', '--subnet', '10.97.3.0/24']);
    expect(err).toContain('10.97.3.0/24 overlaps 10.97.0.0/16, already allocated by mynet');
  });

  it('refuses a bad option naming the key and the valid ones', async () => {
    const err = await r.networkFails(['-d', 'mynet', '-o', 'mynet.bogus=1']);
    expect(err).toContain('option mynet.bogus: unknown mynet option; valid mynet options: mynet.isolate, mynet.dns');
    const mtu = await r.networkFails(['-d', 'mynet', '-o', 'com.docker.network.driver.mtu=abc']);
    expect(mtu).toContain('option com.docker.network.driver.mtu');
  });

  it('docker network rm releases the pool and the bridge', async () => {
    const name = r.name('rm');
    await dockerOk('network', 'create', '-d', 'mynet', '--ipam-driver', 'mynet', '--subnet', '10.96.0.0/24', name);
    const id = await dockerOk('network', 'inspect', name, '--format', '{{.Id}}');
    expect(await mynetLinks()).toContain(`mn-${id.slice(0, 12)}`);
    await dockerOk('network', 'rm', name);
    expect(await mynetLinks()).not.toContain(`mn-${id.slice(0, 12)}`);
    // The same subnet can be had again: the pool and its gateway were released.
    await r.network(['-d', 'mynet', '--ipam-driver', 'mynet', '--subnet', '10.96.0.0/24'], name);
  });

  it('logs one JSON line per request with a request id, the route and the network id', () => {
    const lines = plugin
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const create = lines.find((l) => l.route === '/NetworkDriver.CreateNetwork' && l.msg === 'request');
    expect(create).toMatchObject({ status: 200 });
    expect(create?.reqId).toMatch(/^req-/);
    expect(create?.networkId).toMatch(/^[0-9a-f]{12}$/);
    expect(typeof create?.ms).toBe('number');
  });
});
