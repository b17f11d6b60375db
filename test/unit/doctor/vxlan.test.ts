/**
 * The cluster part of the reconciler (doctor/vxlan.ts), pure: a cluster network's VXLAN device
 * with the wrong attributes and its VXLAN guard gone or changed are differences with the repair
 * that makes them as recorded; the guard's members come from what the data plane last knew
 * (etcd unreachable or not), or from the kernel's own set before the plane knew anything.
 */
import { describe, expect, it } from 'vitest';
import { reconcile } from '../../../src/doctor/reconcile.js';
import { type DataPlaneView, vxlanDifferences } from '../../../src/doctor/vxlan.js';
import type { KernelSnapshot, LinkInfo } from '../../../src/host/kernel-snapshot.js';
import type { NftTable } from '../../../src/host/nft-json.js';
import { renderPlan } from '../../../src/plan/step.js';
import { guardChain, guardComment, peerSet } from '../../../src/plan/vxlan-firewall.js';
import { cleanKernel } from './fixture.js';
import { BR, DEV, NET, bridge, goodDevice, world } from './cluster-fixture.js';

const chain = guardChain(NET);
const set = peerSet(NET);

function table(o: { chain?: boolean; rule?: string; members?: string[]; set?: boolean } = {}): NftTable {
  const withChain = o.chain ?? true;
  return {
    chains: new Set(withChain ? [chain] : []),
    hooks: new Map(withChain ? [[chain, { type: 'filter', hook: 'input' as 'forward', prio: -5, policy: 'accept' }]] : []),
    rules: new Map(withChain ? [[chain, [o.rule ?? guardComment({ networkId: NET, vni: 4242 })]]] : []),
    sets: new Map(o.set === false ? [] : [[set, { kind: 'set', type: 'ipv4_addr', interval: false }]]),
    elements: new Map(o.set === false ? [] : [[set, o.members ?? ['198.18.70.2']]]),
  };
}

const kernel = (device: LinkInfo | undefined, t: NftTable | undefined): KernelSnapshot => ({
  links: new Map([[BR, bridge], ...(device ? [[DEV, device] as const] : [])]),
  nft: t,
  hook: cleanKernel().hook,
});

const known: DataPlaneView = new Map([
  [NET, { members: ['198.18.70.2'], entries: [{ address: '10.77.0.9', mac: '02:00:00:00:00:09', underlay: '198.18.70.2' }] }],
]);

describe('the VXLAN guard as a difference', () => {
  it('as made: no difference', () => {
    expect(vxlanDifferences(world(), kernel(goodDevice, table()), known)).toEqual([]);
  });

  it('its chain deleted by hand: missing, repaired with the members the plane last knew', () => {
    const [d, ...rest] = vxlanDifferences(world(), kernel(goodDevice, table({ chain: false, set: false })), known);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({
      kind: 'missing',
      object: `VXLAN guard ${chain}`,
      detail: 'its chain is missing: VXLAN from any host is accepted',
    });
    const text = renderPlan(d?.fix ?? []);
    expect(text).toContain(`add element inet mynet ${set} { 198.18.70.2 }`);
    expect(text).toContain(`ip saddr != @${set}`);
  });

  it('with the whole table gone too, and repaired by the safe policy (the reconcile loop) and by all (--fix), never by report', () => {
    const s = world();
    const observed = { kernel: kernel(goodDevice, undefined), marked: [], plane: known };
    const guard = (p: 'report' | 'safe' | 'all' | 'start') =>
      reconcile(s, observed, p).actions.filter((a) => a.differences.some((x) => x.object.startsWith('VXLAN guard')));
    expect(guard('report')).toEqual([]);
    for (const p of ['safe', 'all', 'start'] as const) expect(guard(p)).toHaveLength(1);
    // After the table's own repair (the networks' firewalls), so that the table is mynet's as made.
    const objects = reconcile(s, observed, 'safe').found.map((x) => x.object);
    expect(objects.indexOf(`VXLAN guard ${chain}`)).toBeGreaterThan(objects.indexOf('nft table inet mynet'));
  });

  it("before the plane knew anything (a start with etcd down), the members the kernel's set holds are kept", () => {
    const [d] = vxlanDifferences(world(), kernel(goodDevice, table({ rule: 'something else', members: ['198.18.70.3'] })), new Map());
    expect(d?.detail).toBe('its rule is not as mynet writes it');
    expect(renderPlan(d?.fix ?? [])).toContain(`{ 198.18.70.3 }`);
    // And the set is not judged by members nobody knows.
    expect(vxlanDifferences(world(), kernel(goodDevice, table({ members: ['198.18.70.3'] })), new Map())).toEqual([]);
  });

  it('members that differ from what the plane knows: drift', () => {
    const [d] = vxlanDifferences(world(), kernel(goodDevice, table({ members: ['198.18.70.2', '203.0.113.66'] })), known);
    expect(d).toMatchObject({ kind: 'drift', detail: 'its members are 198.18.70.2, 203.0.113.66, not 198.18.70.2' });
  });
});

describe("the VXLAN device's attributes", () => {
  it.each([
    ['a wrong VNI', { id: 999 }, 'VNI 999, not 4242'],
    ['a wrong local address', { local: '198.18.70.99' }, 'local address 198.18.70.99, not 198.18.70.1'],
    ['a wrong port', { port: 8472 }, 'port 8472, not 4789'],
    ['learning on and proxy off', { learning: true, proxy: false }, 'learning on, ARP proxy off'],
  ])('%s: drift, made again (ownership-checked delete, create, mark, attach) with its forwarding entries', (_what, change, detail) => {
    const dev = { ...goodDevice, vxlan: { ...(goodDevice.vxlan as NonNullable<LinkInfo['vxlan']>), ...change } };
    const [d, ...rest] = vxlanDifferences(world(), kernel(dev, table()), known);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ kind: 'drift', object: `vxlan ${DEV}`, detail: `${detail}: made again` });
    const ops = (d?.fix ?? []).map((st) => st.run);
    expect(ops[0]).toEqual({ kind: 'link-del', name: DEV });
    const text = renderPlan(d?.fix ?? []);
    expect(text).toContain('type vxlan id 4242 local 198.18.70.1 dstport 4789 nolearning proxy');
    expect(text).toContain(`ip link set dev ${DEV} master ${BR} up`);
    expect(text).toContain(`bridge fdb replace 02:00:00:00:00:09 dev ${DEV} dst 198.18.70.2 self permanent`);
  });

  it('a wrong MTU is set in place; a device off its bridge is attached again', () => {
    const found = vxlanDifferences(world(), kernel({ ...goodDevice, mtu: 1500, master: 'mn-other' }, table()), known);
    expect(found.map((d) => d.detail)).toEqual(['MTU is 1500, not 1450', `is attached to mn-other, not ${BR}`]);
  });

  it('a missing device is made again with the entries the plane knows', () => {
    const [d] = vxlanDifferences(world(), kernel(undefined, table()), known);
    expect(d).toMatchObject({ kind: 'missing', object: `vxlan ${DEV}` });
    expect(renderPlan(d?.fix ?? [])).toContain('bridge fdb replace 02:00:00:00:00:09');
  });
});

describe('a network made from an underlay address this host no longer runs with (finding 9)', () => {
  const NEW = '198.18.70.12';

  it('drift: the device made again from the new address, and the record changed with it', () => {
    const s = world();
    const [d, ...rest] = vxlanDifferences(s, kernel(goodDevice, table()), known, NEW);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ kind: 'drift', object: `vxlan ${DEV}` });
    expect(d?.detail).toBe(`made from 198.18.70.1, this host's underlay address is now ${NEW}: made again from it`);
    const text = renderPlan(d?.fix ?? []);
    expect(text).toContain(`type vxlan id 4242 local ${NEW} dstport 4789 nolearning proxy`);
    expect(text).toContain(`bridge fdb replace 02:00:00:00:00:09 dev ${DEV} dst 198.18.70.2 self permanent`);
    const [c] = d?.changes ?? [];
    expect(c?.op === 'network.put' && c.network.cluster?.local).toBe(NEW);
    // Once the record says so, the device made from it has no difference.
    s.apply(d?.changes ?? []);
    const dev = { ...goodDevice, vxlan: { ...(goodDevice.vxlan as NonNullable<LinkInfo['vxlan']>), local: NEW } };
    expect(vxlanDifferences(s, kernel(dev, table()), known, NEW)).toEqual([]);
  });

  it('the same address, or none known: no difference; the reconcile loop repairs it (safe)', () => {
    expect(vxlanDifferences(world(), kernel(goodDevice, table()), known, '198.18.70.1')).toEqual([]);
    expect(vxlanDifferences(world(), kernel(goodDevice, table()), known, undefined)).toEqual([]);
    const r = reconcile(world(), { kernel: kernel(goodDevice, table()), marked: [], plane: known, underlay: NEW }, 'start');
    const rebinding = r.actions.filter((a) => a.changes.length > 0);
    expect(rebinding.map((a) => a.differences.map((x) => x.object))).toEqual([[`vxlan ${DEV}`]]);
  });
});
