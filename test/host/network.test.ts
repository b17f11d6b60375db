/**
 * CreateNetwork / DeleteNetwork against the real kernel, each test in its own namespace:
 * what the bridge looks like, where the FORWARD hook lands, refusing a foreign bridge name,
 * rolling back a half-made network, and deletes that can be repeated.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PluginError } from '../../src/errors.js';
import { CHAIN_RULES } from '../../src/host/forward-hook.js';
import { FORWARD_CHAIN, MYNET_GROUP, networkAlias } from '../../src/plan/link-names.js';
import { type HostOp, renderOp } from '../../src/plan/step.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FailingExecutor, INJECTED, argvOf } from './failing-executor.js';
import { addrsOf, createNetns, destroyCreated, dockerId, linkInfo } from '../helpers/netns.js';
import { buildPlugin, createNetwork, dockerLikeFirewall, forwardRules, hostLikeFilter, log, networkRequest } from './plugin-fixture.js';

afterEach(destroyCreated);
afterAll(destroyCreated);

const JUMP = `-A FORWARD -m comment --comment mynet -j ${FORWARD_CHAIN}`;

describe('CreateNetwork', () => {
  const cases: { label: string; generic: Record<string, string>; name: (id: string) => string }[] = [
    { label: 'default name mn-<12 hex>', generic: {}, name: (id) => `mn-${id.slice(0, 12)}` },
    { label: 'com.docker.network.bridge.name', generic: { 'com.docker.network.bridge.name': 'mnt-br0' }, name: () => 'mnt-br0' },
  ];
  it.each(cases)('makes an owned, addressed bridge ($label) and the FORWARD hook', async ({ generic, name }) => {
    const ns = await createNetns();
    const plugin = buildPlugin(ns);
    const net = await createNetwork(plugin, {
      v6Pool: 'fd00:5a::/64',
      generic: { ...generic, 'com.docker.network.driver.mtu': '1400' },
    });
    const bridge = name(net.id);

    const link = await linkInfo(ns, bridge);
    expect(link).toBeDefined();
    expect(link?.linkinfo?.info_kind).toBe('bridge');
    expect(link?.group).toBe(String(MYNET_GROUP));
    expect(link?.ifalias).toBe(networkAlias(net.id));
    expect(link?.flags).toContain('UP');
    expect(link?.mtu).toBe(1400);

    const addrs = await addrsOf(ns, bridge);
    expect(addrs).toContainEqual(expect.objectContaining({ family: 'inet', local: '10.200.0.1', prefixlen: 24 }));
    expect(addrs).toContainEqual(expect.objectContaining({ family: 'inet6', local: 'fd00:5a::1', prefixlen: 64, nodad: true }));
    expect(net.gateway4).toBe('10.200.0.1/24');

    for (const save of ['iptables-save', 'ip6tables-save'] as const) {
      const text = await ns.run([save, '-t', 'filter']);
      expect(text).toContain(`:${FORWARD_CHAIN} - [`);
      for (const rule of CHAIN_RULES) expect(text).toContain(rule);
      expect(await forwardRules(ns, save)).toEqual([JUMP]);
    }
  });

  it('puts the FORWARD jump right after the DOCKER-USER jump, for iptables and ip6tables', async () => {
    const ns = await createNetns();
    await dockerLikeFirewall(ns);
    const plugin = buildPlugin(ns);
    await createNetwork(plugin);
    for (const save of ['iptables-save', 'ip6tables-save'] as const) {
      expect(await forwardRules(ns, save)).toEqual(['-A FORWARD -j DOCKER-USER', JUMP, '-A FORWARD -j DOCKER-FORWARD']);
      expect(await ns.run([save, '-t', 'filter'])).toContain(':FORWARD DROP');
    }
    // Ensuring again (dockerd restarted, the plugin re-registered) adds nothing.
    await plugin.ensureHook(log);
    expect(await forwardRules(ns, 'iptables-save')).toEqual(['-A FORWARD -j DOCKER-USER', JUMP, '-A FORWARD -j DOCKER-FORWARD']);
  });

  it.each(['mnt-foreign', 'lo'])('refuses bridge name %s that exists and is not ours, leaving nothing behind', async (taken) => {
    const ns = await createNetns();
    if (taken !== 'lo') await ns.run(['ip', 'link', 'add', 'name', taken, 'type', 'bridge']);
    const plugin = buildPlugin(ns);
    const before = await ns.dump();
    const { request } = await networkRequest(plugin, { generic: { 'com.docker.network.bridge.name': taken } });
    const err = await plugin.createNetwork(request, log).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).code).toBe('CONFLICT');
    expect((err as PluginError).message).toContain(`"${taken}"`);
    expect(await ns.dump()).toEqual(before);
    expect(plugin.state.networks.size).toBe(0);
  });

  it('rolls back when the kernel refuses a gateway address: no bridge, dump unchanged', async () => {
    const ns = await createNetns();
    // With IPv6 off on new links, adding the IPv6 gateway (after the bridge, its alias and the
    // IPv4 gateway were made) fails in the kernel. Newer kernels say so in an extended ack
    // ("Error: ipv6: IPv6 is disabled on this device."), older ones "RTNETLINK answers: Permission denied".
    await ns.run(['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
    const plugin = buildPlugin(ns);
    const before = await ns.dump();
    const { id, request } = await networkRequest(plugin, { v6Pool: 'fd00:5b::/64' });
    const err = await plugin.createNetwork(request, log).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PluginError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^add gateway fd00:5b::1\/64 to mn-[0-9a-f]{12}: ip addr add fd00:5b::1\/64 dev mn-[0-9a-f]{12} nodad: /);
    expect(msg).toMatch(/IPv6 is disabled on this device|Permission denied/);
    expect(msg).toMatch(/; rolled back$/);
    await expect(ns.run(['ip', 'link', 'show', `mn-${id.slice(0, 12)}`])).rejects.toThrow(/does not exist/);
    expect(await ns.dump()).toEqual(before);
    expect(plugin.state.networks.has(id)).toBe(false);
  });

  it('rolls back when any host op of the network plan fails: no bridge, dump unchanged', async () => {
    // Count the plan's ops on a run that succeeds, then fail each one in turn in a fresh namespace.
    const probe = await createNetns();
    const counter = new FailingExecutor(probe.exec);
    const counted = buildPlugin(probe, { exec: counter });
    const { request: probeRequest } = await networkRequest(counted, { v6Pool: 'fd00:5d::/64' });
    counter.arm(0);
    await counted.createNetwork(probeRequest, log);
    const total = counter.seen.length;
    expect(total).toBeGreaterThanOrEqual(7); // leftover, create, alias, 2 gateways, up, hook at least
    await probe.destroy();

    for (let n = 1; n <= total; n++) {
      const ns = await createNetns();
      await hostLikeFilter(ns);
      const exec = new FailingExecutor(ns.exec);
      const plugin = buildPlugin(ns, { exec });
      const before = await ns.dump();
      const { id, request } = await networkRequest(plugin, { v6Pool: 'fd00:5d::/64' });
      exec.arm(n);
      const err = await plugin.createNetwork(request, log).then(
        () => undefined,
        (e: unknown) => e,
      );
      const failed = exec.seen[n - 1] as HostOp;
      const where = `op ${n}/${total} (${renderOp(failed).split('\n')[0]})`;
      expect(err, where).toBeInstanceOf(PluginError);
      const msg = (err as Error).message;
      expect(msg.endsWith(`: ${argvOf(failed).join(' ')}: ${INJECTED}; rolled back`), `${where}: ${msg}`).toBe(true);
      expect(await linkInfo(ns, `mn-${id.slice(0, 12)}`), where).toBeUndefined();
      expect(await ns.dump(), where).toEqual(before);
      expect(plugin.state.networks.size, where).toBe(0);
      await ns.destroy();
    }
  });

  it('undoes the host changes when saving the state fails', async () => {
    const ns = await createNetns();
    await hostLikeFilter(ns);
    const store = new MemoryStore();
    const plugin = buildPlugin(ns, { store });
    const before = await ns.dump();
    const { id, request } = await networkRequest(plugin, { v6Pool: 'fd00:5e::/64' });
    store.failNext = true;
    await expect(plugin.createNetwork(request, log)).rejects.toThrow(/injected store failure/);
    expect(await linkInfo(ns, `mn-${id.slice(0, 12)}`)).toBeUndefined();
    expect(await ns.dump()).toEqual(before);
    expect(plugin.state.networks.size).toBe(0);
  });
});

describe('DeleteNetwork', () => {
  it('removes the bridge and the hook, and succeeds again and for unknown ids', async () => {
    const ns = await createNetns();
    const plugin = buildPlugin(ns);
    const net = await createNetwork(plugin);
    const bridge = `mn-${net.id.slice(0, 12)}`;
    await plugin.deleteNetwork({ NetworkID: net.id }, log);
    expect(await linkInfo(ns, bridge)).toBeUndefined();
    expect(await ns.run(['iptables-save', '-t', 'filter'])).not.toContain(FORWARD_CHAIN);
    await expect(plugin.deleteNetwork({ NetworkID: net.id }, log)).resolves.toEqual({});
    await expect(plugin.deleteNetwork({ NetworkID: dockerId() }, log)).resolves.toEqual({});
  });

  it('keeps the hook while another mynet network remains', async () => {
    const ns = await createNetns();
    const plugin = buildPlugin(ns);
    const a = await createNetwork(plugin);
    await createNetwork(plugin);
    await plugin.deleteNetwork({ NetworkID: a.id }, log);
    expect(await forwardRules(ns, 'iptables-save')).toEqual([JUMP]);
  });
});
