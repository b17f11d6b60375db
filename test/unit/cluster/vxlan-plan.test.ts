import { describe, expect, it } from 'vitest';
import { renderPlan } from '../../../src/plan/step.js';
import { guardCommands, guardFor, guardMemberCommands, guardTeardownCommands, guardUndo } from '../../../src/plan/vxlan-firewall.js';
import { nftScript } from '../../../src/plan/nft-text.js';
import { TABLE } from '../../../src/rules/nft-names.js';
import type { NftCommand } from '../../../src/plan/nft-change.js';

const text = (c: readonly NftCommand[]): string => nftScript(TABLE, c);
import {
  FLOOD_MAC,
  diffEntries,
  floodChangeSteps,
  floodSteps,
  inSync,
  parseFdb,
  parseFlood,
  parseNeigh,
  remoteEntries,
  remoteEntrySteps,
  removeEntrySteps,
  repairSteps,
  vxlanDeviceSteps,
  vxlanName,
  vxlanTeardownSteps,
} from '../../../src/plan/vxlan.js';

const NID = 'c38af9122a9a1c8bf8eeb6ece822e1bb24d7013aa212796ca4e1f1332a0bd1df';
const spec = { networkId: NID, cluster: 'blue', vni: 5000, bridge: 'mn-c38af9122a9a', local: '198.18.0.1', mtu: 1450 };
const web = { address: '10.77.0.5', mac: '02:42:0a:4d:00:05', underlay: '198.18.0.2' };
const db = { address: '10.77.0.6', mac: '02:42:0a:4d:00:06', underlay: '198.18.0.3' };

describe('VXLAN device plan', () => {
  it('one device per cluster network, learning off, ARP proxy on, port 4789, the recorded MTU, our group and alias', async () => {
    const plan = vxlanDeviceSteps(spec);
    await expect(renderPlan(plan)).toMatchFileSnapshot('../../golden/vxlan-device.txt');
    expect(vxlanName(NID)).toBe('mnxc38af9122a9a');
    expect(Buffer.byteLength(vxlanName(NID))).toBeLessThanOrEqual(15);
    // The create is undone by an ownership-checked delete; the leftover delete is checked too.
    expect(plan.filter((s) => s.undo).map((s) => s.undo)).toEqual([{ kind: 'link-del', name: 'mnxc38af9122a9a' }]);
    expect(plan[0]?.run).toEqual({ kind: 'link-del', name: 'mnxc38af9122a9a' });
    expect(renderPlan(vxlanTeardownSteps(NID))).toBe('# delete vxlan mnxc38af9122a9a\nip link del mnxc38af9122a9a  [if ours; absent ok]');
  });

  it('a remote endpoint: forwarding entry then neighbour entry, each undone; removal is idempotent', async () => {
    await expect(renderPlan([...remoteEntrySteps(NID, web), ...removeEntrySteps(NID, web)])).toMatchFileSnapshot(
      '../../golden/vxlan-entries.txt',
    );
  });

  it('never an all-zero (flood) forwarding entry', () => {
    const all = [
      ...vxlanDeviceSteps(spec),
      ...remoteEntrySteps(NID, web),
      ...repairSteps(NID, diffEntries([web, db], { fdb: new Map(), neigh: new Map() })),
    ];
    expect(renderPlan(all)).not.toMatch(/00:00:00:00:00:00/);
  });

  it('remote entries come from every endpoint record not of this node', () => {
    const recs = [
      { node: 'a', ...web, underlay: '198.18.0.1' },
      { node: 'b', ...db },
    ];
    expect(remoteEntries(recs, 'a')).toEqual([db]);
  });
});

describe('desired vs observed entries', () => {
  const fdbJson = JSON.stringify([
    { mac: '02:42:0a:4d:00:05', dst: '198.18.0.2', flags: ['self'], state: 'permanent' },
    { mac: '02:42:0a:4d:00:99', dst: '198.18.0.9', flags: ['self'], state: 'permanent' },
    { mac: '00:00:00:00:00:00', dst: '198.18.0.7', flags: ['self'], state: 'permanent' },
    // The bridge's own entries for the port have no dst: not the device's table.
    { mac: '6e:11:22:33:44:55', master: 'mn-c38af9122a9a', flags: ['master'], state: 'permanent' },
  ]);
  const neighJson = JSON.stringify([
    { dst: '10.77.0.5', lladdr: '02:42:0a:4d:00:05', state: ['PERMANENT'] },
    { dst: '10.77.0.99', lladdr: '02:42:0a:4d:00:99', state: ['PERMANENT'] },
  ]);

  it("parses the kernel's JSON", () => {
    expect(parseFdb(fdbJson)).toEqual(
      new Map([
        ['02:42:0a:4d:00:05', '198.18.0.2'],
        ['02:42:0a:4d:00:99', '198.18.0.9'],
      ]),
    );
    expect(parseFlood(fdbJson)).toEqual(new Set(['198.18.0.7']));
    expect(parseNeigh(neighJson)).toEqual(
      new Map([
        ['10.77.0.5', '02:42:0a:4d:00:05'],
        ['10.77.0.99', '02:42:0a:4d:00:99'],
      ]),
    );
    expect(parseFdb('')).toEqual(new Map());
  });

  it('finds the missing, the moved, the stray and the flood entry; the repair plan is golden', async () => {
    const moved = { ...web, underlay: '198.18.0.4' };
    const d = diffEntries([moved, db], { fdb: parseFdb(fdbJson), neigh: parseNeigh(neighJson), flood: parseFlood(fdbJson) });
    // Multicast off: the flood entry's one destination goes (by destination, so only that row).
    expect(d).toEqual({
      program: [moved, db],
      removeFdb: ['02:42:0a:4d:00:99'],
      removeNeigh: ['10.77.0.99'],
      addFlood: [],
      removeFlood: ['198.18.0.7'],
    });
    expect(inSync(d)).toBe(false);
    await expect(renderPlan(repairSteps(NID, d))).toMatchFileSnapshot('../../golden/vxlan-repair.txt');
    const good = diffEntries([web], { fdb: new Map([[web.mac, web.underlay]]), neigh: new Map([[web.address, web.mac]]) });
    expect(inSync(good)).toBe(true);
    expect(repairSteps(NID, good)).toEqual([]);
  });
});

describe('flood entries (mynet.multicast, issue 23)', () => {
  it('one all-zero destination per member host, appended; removed by destination, absent counts as removed', () => {
    expect(renderPlan(floodSteps(NID, '198.18.0.2'))).toContain(
      `bridge fdb append ${FLOOD_MAC} dev ${vxlanName(NID)} dst 198.18.0.2 self permanent`,
    );
    const un = floodChangeSteps(NID, ['198.18.0.2', '198.18.0.3'], ['198.18.0.3', '198.18.0.4']);
    expect(un.map((s) => s.run)).toEqual([
      { kind: 'bridge', args: ['fdb', 'del', FLOOD_MAC, 'dev', vxlanName(NID), 'dst', '198.18.0.2', 'self'], absentOk: true },
      { kind: 'bridge', args: ['fdb', 'append', FLOOD_MAC, 'dev', vxlanName(NID), 'dst', '198.18.0.4', 'self', 'permanent'] },
    ]);
    expect(floodChangeSteps(NID, ['198.18.0.2'], ['198.18.0.2'])).toEqual([]);
  });

  it('the diff adds the members not flooded to and removes the destinations no member has', () => {
    const fdb = JSON.stringify([
      { mac: FLOOD_MAC, dst: '198.18.0.2' },
      { mac: FLOOD_MAC, dst: '198.18.0.9' },
    ]);
    const d = diffEntries([], { fdb: parseFdb(fdb), neigh: new Map(), flood: parseFlood(fdb) }, ['198.18.0.2', '198.18.0.3']);
    expect(d).toMatchObject({ addFlood: ['198.18.0.3'], removeFlood: ['198.18.0.9'], removeFdb: [] });
    expect(inSync(d)).toBe(false);
    expect(renderPlan(repairSteps(NID, d))).toMatch(
      /fdb del 00:00:00:00:00:00 dev \S+ dst 198\.18\.0\.9 self[\s\S]*fdb append 00:00:00:00:00:00 dev \S+ dst 198\.18\.0\.3/,
    );
    expect(inSync(diffEntries([], { fdb: new Map(), neigh: new Map(), flood: new Set(['198.18.0.2']) }, ['198.18.0.2']))).toBe(true);
  });
});

describe('VXLAN firewall guard', () => {
  it('accepts our VNI only from members; a member change is one element change', async () => {
    const g = { networkId: NID, vni: 5000, peers: ['198.18.0.3', '198.18.0.2'] };
    await expect(
      [
        guardCommands(g),
        guardMemberCommands(NID, ['198.18.0.4'], []),
        guardMemberCommands(NID, [], ['198.18.0.3']),
        guardUndo(g),
        guardTeardownCommands(NID),
      ]
        .map(text)
        .join('\n---\n'),
    ).toMatchFileSnapshot('../../golden/vxlan-firewall.txt');
    expect(guardMemberCommands(NID, [], [])).toEqual([]);
    // No members yet: the set is empty and every VXLAN with our VNI is dropped.
    expect(text(guardCommands({ networkId: NID, vni: 5000, peers: [] }))).not.toMatch(/add element/);
  });

  it("over an IPv6 underlay (issue 23): an IPv6 member set and `ip6 saddr`, from the binding's local address", () => {
    const g = guardFor(NID, { vni: 5000, local: '2001:db8:62::1' }, ['2001:db8:62::2']);
    expect(g.family).toBe(6);
    const t = text(guardCommands(g));
    expect(t).toMatch(/add set inet mynet vxpeers-\S+ \{ type ipv6_addr; \}/);
    expect(t).toMatch(/add element inet mynet vxpeers-\S+ \{ 2001:db8:62::2 \}/);
    expect(t).toMatch(/@th,96,24 5000 ip6 saddr != @vxpeers-/);
    expect(t).not.toMatch(/ ip saddr/);
    // An IPv4 underlay's guard stays byte for byte what it was.
    expect(guardFor(NID, { vni: 5000, local: '198.18.0.1' }, []).family).toBeUndefined();
  });
});
