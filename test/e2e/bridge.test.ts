/**
 * Issue: bridges and veth pairs. Containers on a mynet network reach each other by address, by
 * name and by alias, on a host whose FORWARD policy is DROP.
 *
 * dockerd sets that policy only when it turns ip_forward on itself (not when forwarding was on
 * already, and never with 28's --ip-forward-no-drop), so whether the engine under test set it
 * depends on what ran before. This file sets DROP for its run, as dockerd, ufw or firewalld
 * leave it on most hosts, and puts the policy that was back afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyOfForward } from './global-setup.js';
import { type PluginHandle, removeStateDir, startPlugin } from './helpers/plugin.js';
import { Resources, exec, mynetLinks } from './helpers/resources.js';
import { dockerOk, ok, sh, waitFor } from './helpers/sh.js';

const ipOf = async (c: string, net: string): Promise<string> =>
  dockerOk('inspect', c, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
const ping = (from: string, to: string, v6 = false): ReturnType<typeof exec> =>
  exec(from, 'ping', v6 ? '-6' : '-4', '-c', '1', '-W', '2', to);

describe('bridges and veth pairs with a real dockerd', () => {
  let plugin: PluginHandle;
  const r = new Resources('b');

  let policy = '';

  beforeAll(async () => {
    policy = await policyOfForward();
    if (policy !== 'DROP') await ok('iptables', ['-w', '-P', 'FORWARD', 'DROP']);
    plugin = await startPlugin({ env: { MYNET_RECONCILE_INTERVAL: '1' } });
  });
  afterAll(async () => {
    await r.cleanup();
    await plugin?.stop();
    if (plugin) removeStateDir(plugin);
    if (policy && policy !== 'DROP') await ok('iptables', ['-w', '-P', 'FORWARD', policy]);
  });

  it("the seeds' scenario: --subnet=172.18.0.0/24 and --ip 172.18.0.10", async () => {
    const n = await r.network(['-d', 'mynet', '--subnet=172.18.0.0/24'], r.name('mynetwork'));
    const c = await r.container(['--network', n, '--ip', '172.18.0.10']);
    const addr = await dockerOk('exec', c, 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    expect(addr).toContain('inet 172.18.0.10/24');
    // The default route goes through our bridge's gateway, not through docker_gwbridge.
    expect(await dockerOk('exec', c, 'ip', 'route')).toContain('default via 172.18.0.1 dev eth0');
    expect((await exec(c, 'ip', 'link', 'show', 'eth1')).exitCode).not.toBe(0);
  });

  it('two containers ping each other by address, by name and by --network-alias, through FORWARD DROP', async () => {
    expect(await ok('iptables', ['-S', 'FORWARD'])).toContain('-P FORWARD DROP');
    const n = await r.network(['-d', 'mynet', '--subnet', '10.91.0.0/24']);
    const a = await r.container(['--network', n, '--network-alias', 'web']);
    const b = await r.container(['--network', n]);
    expect((await ping(b, await ipOf(a, n))).exitCode).toBe(0);
    expect((await ping(b, a)).exitCode).toBe(0);
    expect((await ping(b, 'web')).exitCode).toBe(0);
    expect((await ping(a, b)).exitCode).toBe(0);
  });

  it('the FORWARD hook is what lets traffic through, and it comes back after being removed', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.92.0.0/24']);
    const a = await r.container(['--network', n]);
    const b = await r.container(['--network', n]);
    const target = await ipOf(a, n);
    expect((await ping(b, target)).exitCode).toBe(0);
    // Remove our own jump, as a firewall reload would: dockerd's DROP policy now blocks the bridge.
    // The reconcile loop (every second here) may put it back before the ping's one packet goes
    // out; then the ping must have passed through a restored jump, and we remove it again.
    const jump = ['FORWARD', '-m', 'comment', '--comment', 'mynet', '-j', 'MYNET-FORWARD'];
    let blocked = false;
    for (let i = 0; i < 5 && !blocked; i++) {
      await ok('iptables', ['-D', ...jump]);
      blocked = (await ping(b, target)).exitCode !== 0;
      if (!blocked)
        expect((await sh('iptables', ['-C', ...jump])).exitCode, 'a ping went through while our FORWARD jump was absent').toBe(0);
    }
    expect(blocked).toBe(true);
    // The plugin re-asserts it (MYNET_RECONCILE_INTERVAL=1 here).
    await waitFor('the FORWARD hook to come back', async () => (await ping(b, target)).exitCode === 0, 15_000, 500);
  });

  it('docker network connect and disconnect add and remove an interface', async () => {
    const n1 = await r.network(['-d', 'mynet', '--subnet', '10.93.0.0/24']);
    const n2 = await r.network(['-d', 'mynet', '--subnet', '10.94.0.0/24']);
    const a = await r.container(['--network', n1]);
    const b = await r.container(['--network', n2]);
    await dockerOk('network', 'connect', '--alias', 'extra', n2, a);
    expect(await dockerOk('exec', a, 'ip', '-4', '-o', 'addr', 'show', 'eth1')).toMatch(/inet 10\.94\.0\.\d+\/24/);
    expect((await ping(b, 'extra')).exitCode).toBe(0);
    await dockerOk('network', 'disconnect', n2, a);
    expect((await exec(a, 'ip', 'link', 'show', 'eth1')).exitCode).not.toBe(0);
    expect((await ping(b, 'extra')).exitCode).not.toBe(0); // the alias went with the interface
  });

  it('--ipv6 with a v6 subnet gives IPv6 reachability between containers', async () => {
    const n = await r.network(['-d', 'mynet', '--ipv6', '--subnet', '10.95.0.0/24', '--subnet', 'fd00:95::/64']);
    const a = await r.container(['--network', n, '--ip6', 'fd00:95::a']);
    const b = await r.container(['--network', n]);
    expect(await dockerOk('exec', a, 'ip', '-6', '-o', 'addr', 'show', 'eth0')).toContain('fd00:95::a/64');
    await waitFor('IPv6 reachability', async () => (await ping(b, 'fd00:95::a', true)).exitCode === 0, 10_000, 500);
  });

  it('sets the MTU option on the bridge, the host veth and the container interface', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.90.0.0/24', '-o', 'com.docker.network.driver.mtu=1400']);
    const c = await r.container(['--network', n]);
    expect(await dockerOk('exec', c, 'cat', '/sys/class/net/eth0/mtu')).toBe('1400');
    const id = await dockerOk('network', 'inspect', n, '--format', '{{.Id}}');
    expect(await ok('cat', [`/sys/class/net/mn-${id.slice(0, 12)}/mtu`])).toBe('1400');
  });

  it('an internal network has no default route and no docker_gwbridge detour', async () => {
    const n = await r.network(['-d', 'mynet', '--internal', '--subnet', '10.89.0.0/24']);
    const a = await r.container(['--network', n]);
    const b = await r.container(['--network', n]);
    expect(await dockerOk('exec', a, 'ip', 'route')).not.toContain('default');
    expect((await exec(a, 'ip', 'link', 'show', 'eth1')).exitCode).not.toBe(0);
    expect((await ping(b, a)).exitCode).toBe(0);
  });

  it('refuses a bridge name that belongs to the host, leaving it untouched', async () => {
    const before = await ok('ip', ['-j', 'link', 'show', 'lo']);
    const err = await r.networkFails(['-d', 'mynet', '-o', 'com.docker.network.bridge.name=lo']);
    expect(err).toContain('a link named "lo" already exists and was not created by mynet');
    expect(await ok('ip', ['-j', 'link', 'show', 'lo'])).toBe(before);
  });

  it('survives a plugin restart: running containers keep talking, new ones join', async () => {
    const n = await r.network(['-d', 'mynet', '--subnet', '10.88.0.0/24']);
    const a = await r.container(['--network', n]);
    expect(await plugin.stop()).toBe(0);
    plugin = await startPlugin({ stateDir: plugin.stateDir, env: { MYNET_RECONCILE_INTERVAL: '1' } });
    const b = await r.container(['--network', n]);
    expect((await ping(b, a)).exitCode).toBe(0);
  });

  it('after all containers and networks are removed, no link of mynet is left on the host', async () => {
    await r.cleanup();
    expect(await mynetLinks()).toEqual([]);
    expect((await sh('iptables', ['-S', 'MYNET-FORWARD'])).exitCode).not.toBe(0);
  });
});
