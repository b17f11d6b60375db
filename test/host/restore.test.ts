/**
 * Restart: state committed through one Plugin (FileStore in a temp dir) is loaded by a new
 * Plugin, whose restore() must re-create what vanished behind its back (a reboot takes links
 * and iptables rules), leave what still exists alone, and remove links of ours that belong to
 * no record — never a link without our mark.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { FORWARD_CHAIN, MYNET_GROUP, networkAlias } from '../../src/plan/link-names.js';
import { FileStore } from '../../src/store/file-store.js';
import { addrsOf, createNetns, destroyCreated, linkInfo } from '../helpers/netns.js';
import { buildPlugin, createEndpoint, createNetwork, forwardRules, log } from './plugin-fixture.js';

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
  // A link of ours that no record knows (a crash between host change and save), and look-alikes
  // without our mark, which are not ours to touch.
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
  await store2.close();

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

  expect(await linkInfo(ns, 'mn-orphan0001')).toBeUndefined();
  expect(await linkInfo(ns, 'mn-orphan0002')).toBeDefined();
  expect(await linkInfo(ns, 'mnh0000000000ab')).toBeDefined();

  for (const save of ['iptables-save', 'ip6tables-save'] as const) {
    expect(await forwardRules(ns, save)).toEqual([`-A FORWARD -m comment --comment mynet -j ${FORWARD_CHAIN}`]);
  }
});

it('restore() with nothing stored changes nothing but our orphans', async () => {
  const ns = await createNetns();
  await ns.run(['ip', 'link', 'add', 'name', 'mn-lookalike', 'type', 'bridge']);
  const before = await ns.dump();
  await ns.run(['ip', 'link', 'add', 'name', 'mn-orphan0003', 'group', String(MYNET_GROUP), 'type', 'bridge']);
  await buildPlugin(ns).restore(log);
  expect(await ns.dump()).toEqual(before);
});
