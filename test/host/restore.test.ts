/**
 * Restart: state committed through one Plugin (FileStore in a temp dir) is loaded by a new
 * Plugin, whose restore() must re-create what vanished behind its back (a reboot takes links
 * and iptables rules), leave what still exists alone, and remove only what a crash of a known
 * record provably left — never a link of a network the state does not know (a lost state must
 * not cut running containers off; `mynet doctor --fix` removes those), never a link without
 * our mark.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { FORWARD_CHAIN, MYNET_GROUP, endpointAlias, networkAlias } from '../../src/plan/link-names.js';
import { FileStore } from '../../src/store/file-store.js';
import { addrsOf, createNetns, destroyCreated, linkInfo } from '../helpers/netns.js';
import { buildPlugin, createEndpoint, createNetwork, forwardRules, ipOf, log, pings, plugContainer } from './plugin-fixture.js';

const dirs: string[] = [];
afterEach(async () => {
  await destroyCreated();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
afterAll(destroyCreated);

const hostIf = (id: string): string => `mnh${id.slice(0, 12)}`;
const contIf = (id: string): string => `mnc${id.slice(0, 12)}`;
const bridgeOf = (id: string): string => `mn-${id.slice(0, 12)}`;

it('restore() re-creates missing bridges and veths, keeps existing links, removes only our orphans', async () => {
  const ns = await createNetns();
  const dir = await mkdtemp(join(tmpdir(), 'mynet-host-'));
  dirs.push(dir);

  // Before the "reboot": two networks, three endpoints, committed to a FileStore.
  const store1 = new FileStore({ dir, log });
  const p1 = buildPlugin(ns, { state: await store1.load(), store: store1 });
  const netA = await createNetwork(p1, { v6Pool: 'fd00:60::/64', generic: { 'com.docker.network.driver.mtu': '1400' } });
  const e1 = await createEndpoint(p1, netA);
  const e2 = await createEndpoint(p1, netA);
  const netB = await createNetwork(p1);
  const e3 = await createEndpoint(p1, netB);
  await store1.close();

  // Behind the plugin's back: bridge A and e1's pair vanish, and so does the FORWARD jump.
  await ns.run(['ip', 'link', 'del', 'dev', bridgeOf(netA.id)]);
  await ns.run(['ip', 'link', 'del', 'dev', hostIf(e1.id)]);
  for (const cmd of ['iptables', 'ip6tables']) {
    await ns.run([cmd, '-w', '-D', 'FORWARD', '-m', 'comment', '--comment', 'mynet', '-j', FORWARD_CHAIN]);
  }
  // A veth of network A for an endpoint no record knows (a crash between host change and save),
  // a bridge of ours of a network the state does not know, and look-alikes without our mark,
  // which are not ours to touch.
  await ns.run([
    'ip',
    'link',
    'add',
    'name',
    'mnh0000000c0ffe',
    'group',
    String(MYNET_GROUP),
    'type',
    'veth',
    'peer',
    'name',
    'mnc0000000c0ffe',
    'group',
    String(MYNET_GROUP),
  ]);
  await ns.run(['ip', 'link', 'set', 'dev', 'mnh0000000c0ffe', 'alias', endpointAlias(netA.id, '0000000c0ffe')]);
  await ns.run(['ip', 'link', 'add', 'name', 'mn-orphan0001', 'group', String(MYNET_GROUP), 'type', 'bridge']);
  await ns.run(['ip', 'link', 'add', 'name', 'mn-orphan0002', 'type', 'bridge']);
  await ns.run(['ip', 'link', 'add', 'name', 'mnh0000000000ab', 'type', 'bridge']);

  const kept = [bridgeOf(netB.id), hostIf(e3.id), contIf(e3.id), hostIf(e2.id), contIf(e2.id), 'mn-orphan0002', 'mnh0000000000ab'];
  const indexBefore = new Map<string, number | undefined>();
  for (const name of kept) indexBefore.set(name, (await linkInfo(ns, name))?.ifindex);
  expect([...indexBefore.values()].every((i) => typeof i === 'number')).toBe(true);

  // After: a new plugin over the state loaded from disk.
  const store2 = new FileStore({ dir, log });
  const state2 = await store2.load();
  expect([...state2.networks.keys()].sort()).toEqual([netA.id, netB.id].sort());
  expect(state2.endpoints.size).toBe(3);
  const p2 = buildPlugin(ns, { state: state2, store: store2 });
  await p2.restore(log);

  const bridge = await linkInfo(ns, bridgeOf(netA.id));
  expect(bridge?.linkinfo?.info_kind).toBe('bridge');
  expect(bridge?.group).toBe(String(MYNET_GROUP));
  expect(bridge?.ifalias).toBe(networkAlias(netA.id));
  expect(bridge?.flags).toContain('UP');
  expect(bridge?.mtu).toBe(1400);
  const addrs = await addrsOf(ns, bridgeOf(netA.id));
  expect(addrs).toContainEqual(expect.objectContaining({ family: 'inet', local: '10.200.0.1', prefixlen: 24 }));
  expect(addrs).toContainEqual(expect.objectContaining({ family: 'inet6', local: 'fd00:60::1', prefixlen: 64, nodad: true }));

  const h1 = await linkInfo(ns, hostIf(e1.id));
  expect(h1?.master).toBe(bridgeOf(netA.id));
  expect(h1?.flags).toContain('UP');
  expect(h1?.mtu).toBe(1400);
  expect((await linkInfo(ns, contIf(e1.id)))?.address).toBe(e1.mac);

  for (const name of kept) expect((await linkInfo(ns, name))?.ifindex, name).toBe(indexBefore.get(name));
  expect((await linkInfo(ns, hostIf(e3.id)))?.master).toBe(bridgeOf(netB.id));
  // e2's veth survived its bridge: it must be on the re-created bridge again, or its container is cut off.
  expect((await linkInfo(ns, hostIf(e2.id)))?.master).toBe(bridgeOf(netA.id));

  expect(await linkInfo(ns, 'mnh0000000c0ffe')).toBeUndefined();
  expect(await linkInfo(ns, 'mnc0000000c0ffe')).toBeUndefined();
  // Of a network the state does not know: left at start, listed by the doctor, removed by --fix.
  expect(await linkInfo(ns, 'mn-orphan0001')).toBeDefined();
  expect(await linkInfo(ns, 'mn-orphan0002')).toBeDefined();
  expect(await linkInfo(ns, 'mnh0000000000ab')).toBeDefined();
  expect((await p2.doctor(log, 'none')).map((r) => `${r.difference.kind} ${r.difference.object}`)).toEqual(['orphan link mn-orphan0001']);
  expect((await p2.doctor(log, 'all')).map((r) => [r.difference.object, r.repaired])).toEqual([['link mn-orphan0001', true]]);
  expect(await linkInfo(ns, 'mn-orphan0001')).toBeUndefined();
  expect(await linkInfo(ns, 'mn-orphan0002')).toBeDefined();
  await store2.close();

  for (const save of ['iptables-save', 'ip6tables-save'] as const) {
    expect(await forwardRules(ns, save)).toEqual([`-A FORWARD -m comment --comment mynet -j ${FORWARD_CHAIN}`]);
  }
});

it('restore() with nothing stored changes nothing, not even links of ours', async () => {
  const ns = await createNetns();
  await ns.run(['ip', 'link', 'add', 'name', 'mn-lookalike', 'type', 'bridge']);
  await ns.run(['ip', 'link', 'add', 'name', 'mn-orphan0003', 'group', String(MYNET_GROUP), 'type', 'bridge']);
  const before = await ns.dump();
  await buildPlugin(ns).restore(log);
  expect(await ns.dump()).toEqual(before);
});

it('a start with the state wiped leaves every network in place: containers still ping; doctor lists, doctor --fix removes', async () => {
  const ns = await createNetns();
  const dir = await mkdtemp(join(tmpdir(), 'mynet-host-'));
  dirs.push(dir);
  const store1 = new FileStore({ dir, log });
  const p1 = buildPlugin(ns, { state: await store1.load(), store: store1 });
  const net = await createNetwork(p1);
  const a = await createEndpoint(p1, net);
  const b = await createEndpoint(p1, net);
  const boxA = await createNetns();
  const boxB = await createNetns();
  await plugContainer(ns, boxA, a);
  await plugContainer(ns, boxB, b);
  expect(await pings(boxA, ipOf(b.address))).toBe(true);
  await store1.close();

  // The state directory is wiped (or moved, or state.source changed); the plugin starts again.
  await rm(dir, { recursive: true, force: true });
  const store2 = new FileStore({ dir, log });
  const p2 = buildPlugin(ns, { state: await store2.load(), store: store2 });
  expect(p2.state.networks.size).toBe(0);
  const linksBefore = (await ns.dump()).links;
  await p2.restore(log);
  expect((await ns.dump()).links).toEqual(linksBefore);
  expect(await linkInfo(ns, bridgeOf(net.id))).toBeDefined();
  expect((await linkInfo(ns, hostIf(a.id)))?.master).toBe(bridgeOf(net.id));
  expect(await pings(boxA, ipOf(b.address))).toBe(true);
  expect(await pings(boxB, ipOf(a.address))).toBe(true);

  // `mynet doctor` lists what --fix would remove, and removes nothing.
  const listed = await p2.doctor(log, 'none');
  expect(
    listed
      .filter((r) => r.difference.object.startsWith('link '))
      .map((r) => `${r.difference.kind} ${r.difference.object}`)
      .sort(),
  ).toEqual([`orphan link ${bridgeOf(net.id)}`, `orphan link ${hostIf(a.id)}`, `orphan link ${hostIf(b.id)}`].sort());
  expect(await pings(boxA, ipOf(b.address))).toBe(true);
  // `mynet doctor --fix` removes them, each by name.
  const fixed = await p2.doctor(log, 'all');
  expect(fixed.filter((r) => r.difference.object.startsWith('link ')).every((r) => r.repaired)).toBe(true);
  expect(await linkInfo(ns, bridgeOf(net.id))).toBeUndefined();
  expect(await linkInfo(ns, hostIf(a.id))).toBeUndefined();
  expect(await pings(boxA, ipOf(b.address), false)).toBe(false);
  await store2.close();
});
