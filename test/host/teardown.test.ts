/**
 * Teardown puts the host back exactly as it was: after a whole lifecycle (pools, two networks,
 * endpoints with containers that really talk, Leave, DeleteEndpoint, DeleteNetwork, releases),
 * the namespace's links, addresses, iptables, ip6tables and nft ruleset equal the dump taken
 * before the first CreateNetwork.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FORWARD_CHAIN } from '../../src/plan/link-names.js';
import type { Plugin } from '../../src/plugin.js';
import { type TestNetns, createNetns, destroyCreated } from '../helpers/netns.js';
import { HostTeardownError } from '../../src/errors.js';
import { FailingExecutor, INJECTED } from './failing-executor.js';
import { linkInfo } from '../helpers/netns.js';
import {
  buildPlugin,
  createEndpoint,
  createNetwork,
  dockerLikeFirewall,
  hostLikeFilter,
  ipOf,
  log,
  pings,
  plugContainer,
} from './plugin-fixture.js';

afterEach(destroyCreated);
afterAll(destroyCreated);

/** Runs a whole lifecycle in `ns` and returns with every network deleted again. */
async function lifecycle(ns: TestNetns, plugin: Plugin): Promise<void> {
  const a = await createNetwork(plugin, {
    v6Pool: 'fd00:70::/64',
    generic: { 'com.docker.network.bridge.name': 'mnt-teardown', 'com.docker.network.driver.mtu': '1400' },
  });
  const b = await createNetwork(plugin);
  const a1 = await createEndpoint(plugin, a, { addressV6: 'fd00:70::11/64' });
  const a2 = await createEndpoint(plugin, a, { addressV6: 'fd00:70::12/64' });
  const b1 = await createEndpoint(plugin, b, { join: false });
  const box1 = await createNetns();
  const box2 = await createNetns();
  await plugContainer(ns, box1, a1);
  await plugContainer(ns, box2, a2);
  expect(await pings(box1, ipOf(a2.address))).toBe(true);
  expect(await pings(box2, 'fd00:70::11')).toBe(true);

  for (const ep of [a1, a2, b1]) {
    const req = { NetworkID: ep.networkId, EndpointID: ep.id };
    await plugin.leave(req, log);
    await plugin.deleteEndpoint(req, log);
    await plugin.releaseAddress({ PoolID: ep.networkId === a.id ? a.poolId4 : b.poolId4, Address: ipOf(ep.address) }, log);
  }
  for (const n of [a, b]) {
    await plugin.deleteNetwork({ NetworkID: n.id }, log);
    await plugin.releaseAddress({ PoolID: n.poolId4, Address: ipOf(n.gateway4) }, log);
  }
  for (const id of [...plugin.state.pools.keys()]) await plugin.releasePool({ PoolID: id }, log);
  expect(plugin.state.networks.size).toBe(0);
  expect(plugin.state.endpoints.size).toBe(0);
  expect(plugin.state.pools.size).toBe(0);
}

describe('teardown', () => {
  it.each([
    { label: 'a host where dockerd set up its chains (DOCKER-USER, FORWARD DROP)', setup: dockerLikeFirewall },
    { label: 'a host with plain filter tables', setup: hostLikeFilter },
  ])('restores the starting state on $label', async ({ setup }) => {
    const ns = await createNetns();
    await setup(ns);
    const before = await ns.dump();
    await lifecycle(ns, buildPlugin(ns));
    expect(await ns.dump()).toEqual(before);
  });

  it('in a namespace without filter tables, leaves only the empty tables iptables-nft made for the hook', async () => {
    // The first write of the hook makes iptables-nft create table ip/ip6 filter with an empty
    // FORWARD base chain (policy ACCEPT), and table ip raw with an empty PREROUTING. Those tables are not ours, so removing the hook
    // rightly leaves them; on a real host they exist before mynet starts.
    const ns = await createNetns();
    const before = await ns.dump();
    await lifecycle(ns, buildPlugin(ns));
    const after = await ns.dump();
    expect(after.links).toEqual(before.links);
    expect(after.addrs).toEqual(before.addrs);
    // And for the 127/8 guard, IPv4 only: table ip raw with an empty PREROUTING.
    const chains = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('-') || l.startsWith(':') || l.startsWith('*'));
    const filter = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
    expect(chains(after.iptables)).toEqual(['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...filter]);
    expect(chains(after.ip6tables)).toEqual(filter);
    expect(after.nft).not.toContain(FORWARD_CHAIN);
    expect(after.nft).not.toMatch(/jump|accept\s*$/m);
  });

  it('a failed step does not stop the teardown: the rest is removed, the error names the step, and the retry removes what failed', async () => {
    const ns = await createNetns();
    await hostLikeFilter(ns);
    const before = await ns.dump();
    const exec = new FailingExecutor(ns.exec);
    const plugin = buildPlugin(ns, { exec });
    const net = await createNetwork(plugin);
    const e1 = await createEndpoint(plugin, net, { join: false });
    const e2 = await createEndpoint(plugin, net, { join: false });
    const bridge = `mn-${net.id.slice(0, 12)}`;
    // DeleteNetwork's first op is e1's veth delete: the kernel "refuses" it.
    exec.arm(1);
    const err = await plugin.deleteNetwork({ NetworkID: net.id }, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostTeardownError);
    expect((err as HostTeardownError).failures).toEqual([
      { step: `delete veth mnh${e1.id.slice(0, 12)}`, error: expect.stringContaining(INJECTED) as string },
    ]);
    // Everything after it ran: e2's veth, the bridge, the table are gone; e1's veth is left.
    expect(await linkInfo(ns, `mnh${e2.id.slice(0, 12)}`)).toBeUndefined();
    expect(await linkInfo(ns, bridge)).toBeUndefined();
    expect((await ns.dump()).nft).not.toContain('table inet mynet');
    expect(await linkInfo(ns, `mnh${e1.id.slice(0, 12)}`)).toBeDefined();
    // The records stay, so dockerd's retry runs the teardown again and removes what failed.
    expect(plugin.state.networks.has(net.id)).toBe(true);
    exec.arm(0);
    await plugin.deleteNetwork({ NetworkID: net.id }, log);
    expect(plugin.state.networks.size).toBe(0);
    for (const ep of [e1, e2]) await plugin.releaseAddress({ PoolID: net.poolId4, Address: ipOf(ep.address) }, log);
    await plugin.releaseAddress({ PoolID: net.poolId4, Address: ipOf(net.gateway4) }, log);
    await plugin.releasePool({ PoolID: net.poolId4 }, log);
    expect(await ns.dump()).toEqual(before);
  });
});
