/**
 * The doctor against the real kernel, in throwaway namespaces: a Plugin with the real kernel
 * snapshot makes a network with two containers and a published port behind a dockerd-like
 * firewall (FORWARD policy DROP); then, behind its back, one thing at a time is taken away (a
 * bridge, a veth, a port element, the whole nft table, the FORWARD jump). Each time
 * doctor('none') reports exactly that and changes nothing, doctor('all') repairs it (checked in
 * the kernel, and with real traffic where traffic proves it), and the next doctor run is clean.
 * Orphans: a link in our group is removed by 'all' only; an unmarked look-alike never.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseNftTable } from '../../src/host/kernel-snapshot.js';
import { FORWARD_CHAIN, MYNET_GROUP, endpointAlias } from '../../src/plan/link-names.js';
import { type TestNetns, addrsOf, createNetns, destroyCreated, linkInfo } from '../helpers/netns.js';
import {
  HOST_ADDR,
  OUTSIDE_ADDR,
  TCP,
  type Container,
  type World,
  binding,
  container,
  outsideHost,
  serve,
  stopServers,
  tcpAsk,
} from './nat-fixture.js';
import {
  type CreatedNetwork,
  buildPlugin,
  createNetwork,
  dockerLikeFirewall,
  forwardRules,
  log,
  pings,
  publish,
} from './plugin-fixture.js';

afterEach(async () => {
  stopServers();
  await destroyCreated();
});
afterAll(destroyCreated);

const G = String(MYNET_GROUP);
const JUMP = ['-m', 'comment', '--comment', 'mynet', '-j', FORWARD_CHAIN];

interface Setup {
  readonly w: World;
  readonly net: CreatedNetwork;
  readonly bridge: string;
  /** Serves TCP 80 ("web from <peer>"), published on host port 8080. */
  readonly web: Container;
  readonly client: Container;
}

let s: Setup;

/** doctor('none') → the differences as "kind object". */
const found = async (): Promise<string[]> =>
  (await s.w.plugin.doctor(log, 'none')).map((r) => `${r.difference.kind} ${r.difference.object}`);
const webFromOutside = (expectAnswer = true): Promise<string | undefined> => tcpAsk(s.w.outside, HOST_ADDR, 8080, expectAnswer);

beforeEach(async () => {
  const host = await createNetns();
  await dockerLikeFirewall(host);
  const outside = await outsideHost(host);
  const plugin = buildPlugin(host);
  const w: World = { host, outside, plugin };
  const net = await createNetwork(plugin, { v6Pool: 'fd00:77::/64' });
  const web = await container(w, net, { addressV6: 'fd00:77::10/64' });
  const client = await container(w, net);
  await publish(plugin, web.ep, [binding(TCP, 80, 8080)]);
  await serve(web.box, 'web', { tcp: [80] });
  s = { w, net, bridge: `mn-${net.id.slice(0, 12)}`, web, client };
  // The starting point: the state and the kernel agree, and the port answers from outside.
  expect(await found()).toEqual([]);
  expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
});

/** 'all' repairs every difference, and a second run finds nothing. */
async function repairAll(): Promise<void> {
  const rs = await s.w.plugin.doctor(log, 'all');
  expect(rs.map((r) => [r.difference.object, r.repaired, r.error])).toEqual(rs.map((r) => [r.difference.object, true, undefined]));
  expect(await found()).toEqual([]);
}

const host = (): TestNetns => s.w.host;

describe('doctor on a real kernel', () => {
  it('a deleted bridge: reported; re-created with its gateways, the surviving veths re-attached, traffic back', async () => {
    await host().run(['ip', 'link', 'del', 'dev', s.bridge]);
    expect(await found()).toEqual([`missing bridge ${s.bridge}`]);
    expect(await linkInfo(host(), s.bridge)).toBeUndefined(); // 'none' changed nothing

    await repairAll();
    const br = await linkInfo(host(), s.bridge);
    expect(br).toMatchObject({ group: G, mtu: 1500, linkinfo: { info_kind: 'bridge' } });
    expect(br?.flags).toContain('UP');
    const addrs = (await addrsOf(host(), s.bridge)).map((a) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual(expect.arrayContaining([s.net.gateway4, s.net.gateway6]));
    for (const c of [s.web, s.client]) expect((await linkInfo(host(), `mnh${c.ep.id.slice(0, 12)}`))?.master).toBe(s.bridge);
    expect(await pings(s.client.box, s.web.ip)).toBe(true);
    expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
  });

  it('a deleted veth: reported; made again on its bridge, with its mark', async () => {
    const veth = `mnh${s.client.ep.id.slice(0, 12)}`;
    await host().run(['ip', 'link', 'del', 'dev', veth]);
    expect(await found()).toEqual([`missing veth ${veth}`]);
    expect(await linkInfo(host(), veth)).toBeUndefined();

    await repairAll();
    const v = await linkInfo(host(), veth);
    expect(v).toMatchObject({ master: s.bridge, group: G, ifalias: endpointAlias(s.net.id, s.client.ep.id), mtu: 1500 });
    expect(v?.flags).toContain('UP');
    // Its peer waits in the host namespace, as after CreateEndpoint (the container's end went
    // with the old pair: reconnecting a running container is dockerd's, not the doctor's).
    expect((await linkInfo(host(), `mnc${s.client.ep.id.slice(0, 12)}`))?.group).toBe(G);
    expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
  });

  it('a deleted port element: reported; added again, and the port answers again', async () => {
    await host().run(['nft', 'delete', 'element', 'inet', 'mynet', 'pub4any', '{ tcp . 8080 }']);
    expect(await webFromOutside(false)).toBeUndefined();
    expect(await found()).toEqual(['missing port 8080/tcp']);

    await repairAll();
    expect(await host().run(['nft', 'list', 'map', 'inet', 'mynet', 'pub4any'])).toContain(`tcp . 8080 : ${s.web.ip} . 80`);
    expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
  });

  it('the whole nft table deleted: reported once; rebuilt with every chain and element, and the port answers again', async () => {
    const before = parseNftTable(await host().run(['nft', '-j', 'list', 'table', 'inet', 'mynet']));
    await host().run(['nft', 'delete', 'table', 'inet', 'mynet']);
    expect(await webFromOutside(false)).toBeUndefined();
    expect(await found()).toEqual(['missing nft table inet mynet']);
    expect(await host().succeeds(['nft', 'list', 'table', 'inet', 'mynet'])).toBe(false);

    await repairAll();
    const after = parseNftTable(await host().run(['nft', '-j', 'list', 'table', 'inet', 'mynet']));
    expect([...after.chains].sort()).toEqual([...before.chains].sort());
    const sorted = (t: typeof before): [string, string[]][] =>
      [...t.elements].map(([m, els]): [string, string[]] => [m, [...els].sort()]).sort();
    expect(sorted(after)).toEqual(sorted(before));
    expect(after.elements.get('pub6any')).toEqual(['tcp . 8080 : fd00:77::10 . 80']);
    expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
  });

  it('the FORWARD jump deleted (a firewall reload): reported; put back right after DOCKER-USER, traffic back', async () => {
    await host().run(['iptables', '-w', '-D', 'FORWARD', ...JUMP]);
    // dockerd's FORWARD policy is DROP: without the jump, forwarded traffic dies.
    expect(await webFromOutside(false)).toBeUndefined();
    expect(await found()).toEqual(['missing FORWARD hook']);

    await repairAll();
    expect(await forwardRules(host(), 'iptables-save')).toEqual([
      '-A FORWARD -j DOCKER-USER',
      `-A FORWARD -m comment --comment mynet -j ${FORWARD_CHAIN}`,
      '-A FORWARD -j DOCKER-FORWARD',
    ]);
    expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
  });

  it("an orphan in our group is removed by 'all' only; an unmarked look-alike is never touched", async () => {
    const orphan = 'mn-orphanX';
    const lookalike = 'mn-lookalikeX';
    await host().run(['ip', 'link', 'add', orphan, 'group', G, 'type', 'bridge']);
    await host().run(['ip', 'link', 'add', lookalike, 'type', 'bridge']);
    const lookalikeIndex = (await linkInfo(host(), lookalike))?.ifindex;
    expect(await found()).toEqual([`orphan link ${orphan}`]);

    const safe = await s.w.plugin.doctor(log, 'safe');
    expect(safe.map((r) => [r.difference.object, r.repaired])).toEqual([[`link ${orphan}`, false]]);
    expect(await linkInfo(host(), orphan)).toBeDefined();
    expect((await linkInfo(host(), lookalike))?.ifindex).toBe(lookalikeIndex);

    await repairAll();
    expect(await linkInfo(host(), orphan)).toBeUndefined();
    expect((await linkInfo(host(), lookalike))?.ifindex).toBe(lookalikeIndex);
    // Nothing of the network was disturbed.
    expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
  });

  it("an unmarked link squatting a missing bridge's name is not touched: the repair fails, saying why", async () => {
    await host().run(['ip', 'link', 'del', 'dev', s.bridge]);
    await host().run(['ip', 'link', 'add', s.bridge, 'type', 'bridge']);
    const squatter = await linkInfo(host(), s.bridge);
    // Not in our group, so not in the snapshot: our bridge is missing.
    expect(await found()).toEqual([`missing bridge ${s.bridge}`]);

    const [r] = await s.w.plugin.doctor(log, 'all');
    expect(r?.repaired).toBe(false);
    expect(r?.error).toMatch(/does not carry mynet's mark/);
    const still = await linkInfo(host(), s.bridge);
    expect(still?.ifindex).toBe(squatter?.ifindex);
    expect(still?.group).not.toBe(G);

    // Once the name is free again, the repair goes through.
    await host().run(['ip', 'link', 'del', 'dev', s.bridge]);
    await repairAll();
    expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
  });

  it("'safe' repairs what is missing: several things at once, in one run", async () => {
    await host().run(['ip', 'link', 'set', 'dev', s.bridge, 'down']);
    await host().run(['ip', 'link', 'set', 'dev', s.bridge, 'mtu', '1400']);
    await host().run(['ip', 'addr', 'del', s.net.gateway4, 'dev', s.bridge]);
    await host().run(['iptables', '-w', '-D', 'FORWARD', ...JUMP]);
    // The kernel flushes a link's IPv6 addresses when it goes down: the IPv6 gateway went too.
    const before = await s.w.plugin.doctor(log, 'none');
    expect(before.map((r) => `${r.difference.object}: ${r.difference.detail}`)).toEqual([
      `bridge ${s.bridge}: is down`,
      `bridge ${s.bridge}: gateway ${s.net.gateway4} is not on it`,
      `bridge ${s.bridge}: gateway ${s.net.gateway6} is not on it`,
      `bridge ${s.bridge}: MTU is 1400, not 1500`,
      'FORWARD hook: iptables FORWARD does not jump to MYNET-FORWARD',
    ]);

    const rs = await s.w.plugin.doctor(log, 'safe');
    expect(rs.every((r) => r.repaired)).toBe(true);
    expect(await found()).toEqual([]);
    const br = await linkInfo(host(), s.bridge);
    expect(br?.mtu).toBe(1500);
    expect(br?.flags).toContain('UP');
    expect((await addrsOf(host(), s.bridge)).map((a) => `${a.local}/${a.prefixlen}`)).toEqual(
      expect.arrayContaining([s.net.gateway4, s.net.gateway6]),
    );
    expect(await webFromOutside()).toBe(`web from ${OUTSIDE_ADDR}`);
  });
});
