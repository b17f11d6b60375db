/**
 * The entries of a cluster network's VXLAN device as differences (doctor/vxlan-entries.ts),
 * pure: the data plane's view (what it believes from etcd's records) against the entries the
 * kernel holds. One world holds every case at once: a neighbour entry with a wrong MAC, a
 * forwarding entry to a wrong host, a missing endpoint, a stray forwarding and neighbour entry,
 * a flood destination missing and one of no member (mynet.multicast), and a record this host
 * refused (listed, its entry never programmed, never repaired). The golden text is the
 * differences with their repair plans, then what each policy runs.
 */
import { describe, expect, it } from 'vitest';
import { reconcile, type Policy } from '../../../src/doctor/reconcile.js';
import type { PlaneKnowledge } from '../../../src/doctor/plane-knowledge.js';
import { entryDifferences } from '../../../src/doctor/vxlan-entries.js';
import { vxlanDifferences } from '../../../src/doctor/vxlan.js';
import type { Difference } from '../../../src/doctor/difference.js';
import type { KernelSnapshot } from '../../../src/host/kernel-snapshot.js';
import type { NftTable } from '../../../src/host/nft-json.js';
import { renderPlan } from '../../../src/plan/step.js';
import { guardComment, guardChain, peerSet } from '../../../src/plan/vxlan-firewall.js';
import type { ObservedEntries } from '../../../src/plan/vxlan.js';
import { BR, DEV, NET, bridge, goodDevice, world } from './cluster-fixture.js';
import { cleanKernel } from './fixture.js';

const [H2, H3, H4, H5] = ['198.18.70.2', '198.18.70.3', '198.18.70.4', '198.18.70.5'];

const plane: PlaneKnowledge = {
  members: [H2, H3],
  entries: [
    { address: '10.77.0.9', mac: '02:00:00:00:00:09', underlay: H2 },
    { address: '10.77.0.10', address6: 'fd77::10', mac: '02:00:00:00:00:0a', underlay: H3 },
    { address: '10.77.0.11', mac: '02:00:00:00:00:0b', underlay: H3 },
  ],
  flood: [H2, H3],
  following: true,
  refused: [{ id: 'f0'.repeat(32), node: 'host-x', reason: 'own-address', detail: 'address 10.77.0.2 is an endpoint of this host' }],
  refusedPolicies: [['/mynet/v1/policies/blue/bogus', 'policy.bogus: unknown field']],
};

const kernelEntries: ObservedEntries = {
  fdb: new Map([
    ['02:00:00:00:00:09', H2], // right
    ['02:00:00:00:00:0a', H4], // to a wrong host
    ['02:00:00:00:00:ee', H2], // no endpoint has it
  ]),
  neigh: new Map([
    ['10.77.0.9', '02:00:00:00:00:99'], // a wrong MAC
    ['10.77.0.10', '02:00:00:00:00:0a'],
    ['fd77::10', '02:00:00:00:00:0a'],
    ['10.77.0.99', '02:00:00:00:00:ee'], // no endpoint has it
  ]),
  flood: new Set([H2, H5]),
};

const n = world({ multicast: true }).networks.get(NET);
const record = n as NonNullable<typeof n>;

const show = (ds: readonly Difference[]): string =>
  ds
    .map((d) => `${d.kind} ${d.object}: ${d.detail}\n${d.fix.length ? renderPlan(d.fix).replace(/^/gm, '    ') : '    (nothing to run)'}`)
    .join('\n');

describe('the VXLAN entries against the data plane, as differences', () => {
  it('every kind of difference, with its repair (golden)', async () => {
    const found = entryDifferences(record, plane, kernelEntries);
    await expect(`${show(found)}\n`).toMatchFileSnapshot('../../golden/doctor-vxlan-entries.txt');
    // What etcd holds that this host refused is listed with nothing to run (the doctor cannot fix etcd's writer).
    expect(found.filter((d) => d.object.includes('f0f0f0f0f0f0'))).toMatchObject([{ fix: [] }]);
  });

  it('as the plane believes: only what etcd refused is listed', () => {
    const clean: ObservedEntries = {
      fdb: new Map(plane.entries?.map((e) => [e.mac, e.underlay])),
      neigh: new Map(plane.entries?.flatMap((e) => [e.address, ...(e.address6 ? [e.address6] : [])].map((a) => [a, e.mac]))),
      flood: new Set([H2, H3]),
    };
    expect(entryDifferences(record, plane, clean).map((d) => d.object)).toEqual([
      `${DEV} record f0f0f0f0f0f0 of node host-x`,
      'policy /mynet/v1/policies/blue/bogus',
    ]);
  });

  it('multicast off: every flood destination goes', () => {
    const plain = world().networks.get(NET);
    const found = entryDifferences(plain as NonNullable<typeof plain>, { ...plane, flood: [] }, kernelEntries);
    expect(found.filter((d) => d.object.includes(' flood ')).map((d) => `${d.object}: ${d.detail}`)).toEqual([
      `${DEV} flood ${H2}: multicast is off: nothing floods between hosts`,
      `${DEV} flood ${H5}: multicast is off: nothing floods between hosts`,
    ]);
  });

  it('a plane not following etcd: nothing compared, nothing removed on stale knowledge', () => {
    expect(entryDifferences(record, { ...plane, following: false }, kernelEntries)).toEqual([
      {
        kind: 'drift',
        object: DEV,
        detail: 'not compared: the endpoint records of etcd are not followed right now (etcd unreachable?)',
        fix: [],
      },
    ]);
    // No cluster follows it (no plane), or not a cluster network: nothing.
    expect(entryDifferences(record, undefined, kernelEntries)).toEqual([]);
  });
});

describe('the VXLAN entries under each policy (doctor/reconcile.ts)', () => {
  const table: NftTable = {
    chains: new Set([guardChain(NET)]),
    hooks: new Map([[guardChain(NET), { type: 'filter' as const, hook: 'input' as 'forward', prio: -5, policy: 'accept' }]]),
    rules: new Map([[guardChain(NET), [guardComment({ networkId: NET, vni: 4242 })]]]),
    sets: new Map([[peerSet(NET), { kind: 'set' as const, type: 'ipv4_addr', interval: false }]]),
    elements: new Map([[peerSet(NET), [H2, H3]]]),
  };
  const kernel: KernelSnapshot = {
    links: new Map([
      [BR, bridge],
      [DEV, goodDevice],
    ]),
    nft: table,
    hook: cleanKernel().hook,
    entries: new Map([[DEV, kernelEntries]]),
  };
  const run = (p: Policy): string => {
    const r = reconcile(world({ multicast: true }), { kernel, marked: [], plane: new Map([[NET, plane]]) }, p);
    const cluster = (d: Difference): boolean => d.object.startsWith(DEV) || d.object.startsWith('policy ');
    const repaired = r.actions.flatMap((a) => a.differences).filter(cluster);
    return `${p}: repairs ${repaired.length}, leaves ${
      r.left
        .filter(cluster)
        .map((d) => d.object)
        .join(', ') || 'nothing'
    }`;
  };

  it('a device made again brings its entries: they are not compared in the same run', () => {
    const wrong = { ...goodDevice, vxlan: { ...(goodDevice.vxlan as NonNullable<typeof goodDevice.vxlan>), id: 999 } };
    const found = vxlanDifferences(
      world({ multicast: true }),
      { ...kernel, links: new Map([...kernel.links, [DEV, wrong]]) },
      new Map([[NET, plane]]),
    );
    expect(found.map((d) => d.object)).toEqual([
      `vxlan ${DEV}`,
      `${DEV} record f0f0f0f0f0f0 of node host-x`,
      'policy /mynet/v1/policies/blue/bogus',
    ]);
  });

  it("the cluster's own findings (Observed.found, last) go through the same policies", () => {
    const wg = (kind: Difference['kind'], object: string): Difference => ({
      kind,
      object,
      detail: '…',
      fix: [{ what: object, run: { kind: 'wg', args: ['set', 'mnwg0', 'peer', 'x'] } }],
    });
    const found = [
      wg('missing', 'wireguard mnwg0 peer of node host-b'),
      wg('orphan', 'wireguard mnwg0 peer AAAAAAAA…'),
      { kind: 'drift' as const, object: "this host's underlay address", detail: 'moved', fix: [] },
    ];
    const clean = { ...kernel, entries: new Map<string, ObservedEntries>() };
    const repaired = (p: Policy): string[] =>
      reconcile(world(), { kernel: clean, marked: [], plane: new Map([[NET, {}]]), found }, p)
        .actions.flatMap((a) => a.differences.map((d) => d.object))
        .filter((o) => found.some((f) => f.object === o));
    expect(repaired('report')).toEqual([]);
    expect(repaired('safe')).toEqual(['wireguard mnwg0 peer of node host-b']);
    expect(repaired('all')).toEqual(['wireguard mnwg0 peer of node host-b', 'wireguard mnwg0 peer AAAAAAAA…']);
  });

  it('report repairs nothing; start, safe and all repair every entry; what etcd refused is left by all of them', async () => {
    const text = (['report', 'start', 'safe', 'all'] as const).map(run).join('\n');
    await expect(`${text}\n`).toMatchFileSnapshot('../../golden/doctor-vxlan-entries-policies.txt');
  });
});
