/**
 * CreateEndpoint / Join / Leave / DeleteEndpoint against the real kernel: the veth pair, real
 * traffic between two "containers" (namespaces of their own, configured as dockerd does) through
 * a FORWARD chain whose policy is DROP, rollback of a half-made endpoint, repeatable deletes.
 */
import { afterAll, afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { PluginError } from '../../src/errors.js';
import { Background } from '../../src/host/background.js';
import { ExecaExecutor } from '../../src/host/execa-executor.js';
import type { Executor } from '../../src/host/executor.js';
import { FORWARD_CHAIN, MYNET_GROUP, RETIRED_GROUP, endpointAlias } from '../../src/plan/link-names.js';
import { macFromIPv4 } from '../../src/plan/link.js';
import { type TestNetns, addrsOf, createNetns, destroyCreated, dockerId, linkInfo } from '../helpers/netns.js';
import type { CreateEndpointRequest } from '../../src/driver/endpoint.js';
import { type HostOp, renderOp } from '../../src/plan/step.js';
import { FailingExecutor, INJECTED, argvOf } from './failing-executor.js';
import { buildPlugin, createEndpoint, createNetwork, dockerLikeFirewall, ipOf, log, pings, plugContainer } from './plugin-fixture.js';

afterEach(destroyCreated);
afterAll(destroyCreated);

const hostIf = (id: string): string => `mnh${id.slice(0, 12)}`;
const contIf = (id: string): string => `mnc${id.slice(0, 12)}`;

describe('CreateEndpoint', () => {
  it('makes a veth pair: host side on the bridge and up, container side unaddressed with its MAC', async () => {
    const ns = await createNetns();
    const plugin = buildPlugin(ns);
    const net = await createNetwork(plugin, { generic: { 'com.docker.network.driver.mtu': '1400' } });
    const bridge = `mn-${net.id.slice(0, 12)}`;
    const generated = await createEndpoint(plugin, net, { join: false });
    const given = await createEndpoint(plugin, net, { join: false, mac: '02:42:0a:c8:00:63' });
    expect(generated.mac).toBe(macFromIPv4(generated.address));

    for (const ep of [generated, given]) {
      const h = await linkInfo(ns, hostIf(ep.id));
      expect(h?.linkinfo?.info_kind).toBe('veth');
      expect(h?.master).toBe(bridge);
      expect(h?.flags).toContain('UP');
      expect(h?.mtu).toBe(1400);
      expect(h?.group).toBe(String(MYNET_GROUP));
      expect(h?.ifalias).toBe(endpointAlias(net.id, ep.id));

      const c = await linkInfo(ns, contIf(ep.id));
      expect(c?.linkinfo?.info_kind).toBe('veth');
      expect(c?.address).toBe(ep.mac);
      expect(c?.mtu).toBe(1400);
      expect(c?.master).toBeUndefined();
      // dockerd addresses the container side after moving it; we must not.
      expect(await addrsOf(ns, contIf(ep.id))).toEqual([]);
    }
    expect(given.mac).toBe('02:42:0a:c8:00:63');
  });

  it('connects two containers across the bridge only through the FORWARD hook (policy DROP, br_netfilter on)', async () => {
    const ns = await createNetns();
    await dockerLikeFirewall(ns);
    // bridge-nf-call-* are per network namespace since Linux 5.3 (and a new namespace starts
    // with 1). On an older kernel /proc/sys/net/bridge is missing in a non-initial namespace:
    // then the host's setting decides whether bridged frames meet iptables here, so the
    // "fails without the hook" half is skipped and only the rules are checked.
    const perNs =
      (await ns.succeeds(['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=1'])) &&
      (await ns.succeeds(['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-ip6tables=1']));
    const plugin = buildPlugin(ns);
    const net = await createNetwork(plugin, { v6Pool: 'fd00:5c::/64' });
    const a = await createEndpoint(plugin, net, { addressV6: 'fd00:5c::a/64' });
    const b = await createEndpoint(plugin, net, { addressV6: 'fd00:5c::b/64' });
    expect(a.srcName).toBe(contIf(a.id));
    expect(a.gateway).toBe('10.200.0.1');
    const boxA = await createNetns();
    const boxB = await createNetns();
    expect(await plugContainer(ns, boxA, a)).toBe('eth0');
    await plugContainer(ns, boxB, b);

    const reach = async (expectReachable: boolean): Promise<boolean[]> => [
      await pings(boxA, ipOf(b.address), expectReachable),
      await pings(boxB, 'fd00:5c::a', expectReachable),
    ];
    const hookRules = async (): Promise<string[]> =>
      [
        ...(await ns.run(['iptables-save', '-t', 'filter'])).split('\n'),
        ...(await ns.run(['ip6tables-save', '-t', 'filter'])).split('\n'),
      ].filter((l) => l.endsWith(`-j ${FORWARD_CHAIN}`));

    expect(await hookRules()).toHaveLength(2);
    expect(await reach(true)).toEqual([true, true]);

    // What a dockerd restart or a firewall reload does: our jump disappears.
    for (const cmd of ['iptables', 'ip6tables']) {
      await ns.run([cmd, '-w', '-D', 'FORWARD', '-m', 'comment', '--comment', 'mynet', '-j', FORWARD_CHAIN]);
    }
    expect(await hookRules()).toHaveLength(0);
    if (perNs) expect(await reach(false)).toEqual([false, false]);
    else console.warn('br_netfilter sysctls are not per namespace on this kernel: "no hook, no traffic" not checked');

    await plugin.ensureHook(log);
    expect(await hookRules()).toHaveLength(2);
    expect(await reach(true)).toEqual([true, true]);
  });

  it('rolls back when any host op of the endpoint plan fails: no veth, dump unchanged', async () => {
    const ns = await createNetns();
    const exec = new FailingExecutor(ns.exec);
    const plugin = buildPlugin(ns, { exec });
    const net = await createNetwork(plugin);
    const request = (id: string): CreateEndpointRequest => ({
      NetworkID: net.id,
      EndpointID: id,
      Interface: { Address: '10.200.0.9/24', AddressIPv6: '', MacAddress: '' },
      Options: {},
    });
    // Count the plan's ops on a run that succeeds, then undo it.
    const probeId = dockerId();
    const before = await ns.dump();
    exec.arm(0);
    await plugin.createEndpoint(request(probeId), log);
    const total = exec.seen.length;
    expect(total).toBeGreaterThanOrEqual(3); // leftover, create pair, alias at least
    exec.arm(0);
    await plugin.deleteEndpoint({ NetworkID: net.id, EndpointID: probeId }, log);
    expect(await ns.dump()).toEqual(before);

    for (let n = 1; n <= total; n++) {
      const id = dockerId();
      exec.arm(n);
      const err = await plugin.createEndpoint(request(id), log).then(
        () => undefined,
        (e: unknown) => e,
      );
      const failed = exec.seen[n - 1] as HostOp;
      const where = `op ${n}/${total} (${renderOp(failed).split('\n')[0]})`;
      expect(err, where).toBeInstanceOf(PluginError);
      // "<step>: <command>: <kernel's words>; rolled back"
      const msg = (err as Error).message;
      expect(msg, where).toContain(hostIf(id));
      expect(msg.endsWith(`: ${argvOf(failed).join(' ')}: ${INJECTED}; rolled back`), `${where}: ${msg}`).toBe(true);
      expect(await linkInfo(ns, hostIf(id)), where).toBeUndefined();
      expect(await linkInfo(ns, contIf(id)), where).toBeUndefined();
      expect(await ns.dump(), where).toEqual(before);
      expect(plugin.state.endpoints.size, where).toBe(0);
    }
    // The failure after the pair was made really undid it (not just never made it).
    exec.arm(3);
    await expect(plugin.createEndpoint(request(dockerId()), log)).rejects.toThrow(/rolled back$/);
    expect(exec.seen.slice(0, 3).map((o) => o.kind)).toEqual(['link-del', 'ip', 'ip']);
    expect(exec.seen.slice(3).map((o) => o.kind)).toContain('link-del');
  });
});

describe('Leave / DeleteEndpoint', () => {
  async function withEndpoint(): Promise<{
    ns: TestNetns;
    box: TestNetns;
    plugin: ReturnType<typeof buildPlugin>;
    netId: string;
    epId: string;
  }> {
    const ns = await createNetns();
    const plugin = buildPlugin(ns);
    const net = await createNetwork(plugin);
    const ep = await createEndpoint(plugin, net);
    const box = await createNetns();
    await plugContainer(ns, box, ep);
    return { ns, box, plugin, netId: net.id, epId: ep.id };
  }

  it('deletes the pair (also the end inside the container), and a second Leave/DeleteEndpoint succeeds', async () => {
    const { ns, box, plugin, netId, epId } = await withEndpoint();
    const req = { NetworkID: netId, EndpointID: epId };
    await expect(plugin.leave(req, log)).resolves.toEqual({});
    await expect(plugin.leave(req, log)).resolves.toEqual({});
    await expect(plugin.deleteEndpoint(req, log)).resolves.toEqual({});
    expect(await linkInfo(ns, hostIf(epId))).toBeUndefined();
    expect(await linkInfo(box, 'eth0')).toBeUndefined();
    await expect(plugin.deleteEndpoint(req, log)).resolves.toEqual({});
    expect(plugin.state.endpoints.size).toBe(0);
  });

  it('succeeds for unknown endpoint and network ids', async () => {
    const { plugin, netId } = await withEndpoint();
    for (const req of [
      { NetworkID: netId, EndpointID: dockerId() },
      { NetworkID: dockerId(), EndpointID: dockerId() },
    ]) {
      await expect(plugin.leave(req, log)).resolves.toEqual({});
      await expect(plugin.deleteEndpoint(req, log)).resolves.toEqual({});
    }
    expect(plugin.state.endpoints.size).toBe(1);
  });

  it('DeleteEndpoint succeeds when the veth is already gone (container namespace destroyed first)', async () => {
    const { ns, box, plugin, netId, epId } = await withEndpoint();
    await box.destroy();
    await expect(plugin.deleteEndpoint({ NetworkID: netId, EndpointID: epId }, log)).resolves.toEqual({});
    expect(await linkInfo(ns, hostIf(epId))).toBeUndefined();
  });
});

describe('DeleteEndpoint with steps after the answer (as the plugin runs)', () => {
  it('the veth is down and retired before the answer, and retired veths go together, by one reap', async () => {
    const ns = await createNetns();
    const laterExec = new ExecaExecutor({ netns: ns.name, persistent: true });
    onTestFinished(() => laterExec.close());
    const plugin = buildPlugin(ns, { background: new Background(laterExec) });
    const net = await createNetwork(plugin);
    const bridge = `mn-${net.id.slice(0, 12)}`;
    const eps = [await createEndpoint(plugin, net, { join: false }), await createEndpoint(plugin, net, { join: false })];
    const stays = await createEndpoint(plugin, net, { join: false });
    for (const ep of eps) {
      await plugin.deleteEndpoint({ NetworkID: net.id, EndpointID: ep.id }, log);
      // Down at once (a down bridge port forwards nothing and the bridge forgets the MACs learnt
      // on it), out of our group; it leaves the bridge with its delete, after the answer.
      const h = await linkInfo(ns, hostIf(ep.id));
      if (h) {
        expect(h.flags, 'retired veth still up').not.toContain('UP');
        expect(h.group).toBe(String(RETIRED_GROUP));
      }
    }
    await plugin.drain();
    for (const ep of eps) expect(await linkInfo(ns, hostIf(ep.id))).toBeUndefined();
    expect((await linkInfo(ns, hostIf(stays.id)))?.master).toBe(bridge);
    // The same endpoint id again: its create waits for the queued reap, then makes the pair.
    await plugin.deleteEndpoint({ NetworkID: net.id, EndpointID: stays.id }, log);
    const r = await plugin.createEndpoint({ NetworkID: net.id, EndpointID: stays.id, Interface: { Address: stays.address } }, log);
    expect(r.Interface?.MacAddress).toBe(stays.mac);
    expect((await linkInfo(ns, hostIf(stays.id)))?.master).toBe(bridge);
  });

  it('a bridge whose ports are all taken, one by a retired veth, takes a new endpoint once the reap ran', async () => {
    const ns = await createNetns({ prefix: 'mnt-np1-' });
    // The reap waits until the executor asks for room, so the retired veth is still on the
    // bridge when the next endpoint comes.
    let asked = 0;
    let letGo = (): void => undefined;
    const gate = new Promise<void>((r) => (letGo = r));
    const laterExec = new ExecaExecutor({ netns: ns.name, persistent: true });
    onTestFinished(() => laterExec.close());
    const gated: Executor = {
      run: async (op, l) => {
        await gate;
        return laterExec.run(op, l);
      },
      runIpBatch: (ops, l) => laterExec.runIpBatch(ops, l),
    };
    const background = new Background(gated);
    const exec = new ExecaExecutor({
      netns: ns.name,
      persistent: true,
      whenBridgeFull: () => {
        asked++;
        letGo();
        return background.idle();
      },
    });
    onTestFinished(() => exec.close());
    const plugin = buildPlugin(ns, { background, exec });
    const net = await createNetwork(plugin);
    const bridge = `mn-${net.id.slice(0, 12)}`;
    // A bridge takes 1023 ports (the kernel's BR_MAX_PORTS, 1024, less port 0): 1022 of the
    // test's own, then one endpoint.
    const fill = Array.from({ length: 1022 }, (_, i) => ({
      kind: 'ip' as const,
      args: ['link', 'add', 'name', `mnt-np1f${i}`, 'master', bridge, 'type', 'veth', 'peer', 'name', `mnt-np1p${i}`],
    }));
    expect(await ns.exec.runIpBatch(fill, log)).toBeUndefined();
    const first = await createEndpoint(plugin, net, { join: false });
    await plugin.deleteEndpoint({ NetworkID: net.id, EndpointID: first.id }, log);
    expect((await linkInfo(ns, hostIf(first.id)))?.master, 'the retired veth is on its bridge until the reap').toBe(bridge);
    const next = await createEndpoint(plugin, net, { join: false });
    expect(asked).toBe(1);
    expect((await linkInfo(ns, hostIf(next.id)))?.master).toBe(bridge);
    expect(await linkInfo(ns, hostIf(first.id))).toBeUndefined();
  });

  it('restore deletes retired veths a crash left behind, and never a foreign link', async () => {
    const ns = await createNetns();
    await ns.run([
      'ip',
      'link',
      'add',
      'mnhdead0000001',
      'group',
      String(MYNET_GROUP + 1),
      'type',
      'veth',
      'peer',
      'name',
      'mncdead0000001',
    ]);
    await ns
      .run(['ip', 'link', 'add', 'mnt-foreign', 'type', 'dummy'])
      .catch(() => ns.run(['ip', 'link', 'add', 'mnt-foreign', 'type', 'bridge']));
    const plugin = buildPlugin(ns);
    await plugin.restore(log);
    expect(await linkInfo(ns, 'mnhdead0000001')).toBeUndefined();
    expect(await linkInfo(ns, 'mnt-foreign')).toBeDefined();
  });
});
