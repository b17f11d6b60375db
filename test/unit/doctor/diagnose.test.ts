/**
 * The doctor's decision, on the state and kernel output of a real run (test/fixtures/kernel):
 * the clean snapshot gives nothing, and each way a host drifts (taken apart below as it happens
 * on a host) gives one difference whose fix plan repairs exactly that.
 */
import { nftScript } from '../../../src/plan/nft-text.js';
import { describe, expect, it } from 'vitest';
import { type Difference, diagnose, safeToRepair } from '../../../src/doctor/diagnose.js';
import { State } from '../../../src/driver/state.js';
import { hookStatus } from '../../../src/host/forward-hook.js';
import type { KernelSnapshot } from '../../../src/host/kernel-snapshot.js';
import { type HostPlan, renderPlan } from '../../../src/plan/step.js';
import {
  BR_DUAL,
  BR_INTERNAL,
  BR_SNAT,
  E1,
  VETH_E1,
  VETH_E2,
  VETH_E3,
  cleanKernel,
  dropElement,
  fixtureState,
  fixtureText,
  withLink,
  withNft,
  withoutLink,
} from './fixture.js';

const only = (ds: Difference[]): Difference => {
  expect(ds.map((d) => `${d.kind} ${d.object}: ${d.detail}`)).toHaveLength(1);
  return ds[0] as Difference;
};
const lines = (plan: HostPlan): string[] => renderPlan(plan).split('\n');
/** Every nft script of a plan, joined. */
const scripts = (plan: HostPlan): string =>
  plan.flatMap((s) => (s.run.kind === 'nft' ? [nftScript(s.run.table, s.run.commands)] : [])).join('\n');

describe('diagnose: a clean host', () => {
  it('the state and the kernel of the same real run give no differences', () => {
    expect(diagnose(fixtureState(), cleanKernel())).toEqual([]);
  });

  it('no networks and nothing of ours in the kernel give no differences (no table, no hook expected)', () => {
    const empty: KernelSnapshot = { links: new Map(), nft: undefined, hook: hookStatus('*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n') };
    expect(diagnose(new State(), empty)).toEqual([]);
  });
});

describe('diagnose: missing and drifted (safe repairs)', () => {
  it('a missing bridge: the fix re-creates it with its gateways and re-attaches the veths that survived', () => {
    // The kernel detaches the veths of a deleted bridge; they stay, with no master.
    let k = withoutLink(cleanKernel(), BR_DUAL);
    for (const v of [VETH_E1, VETH_E2]) k = withLink(k, v, ({ master: _gone, ...l }) => l);
    const d = only(diagnose(fixtureState(), k));
    expect(d).toMatchObject({ kind: 'missing', object: `bridge ${BR_DUAL}` });
    expect(safeToRepair(d)).toBe(true);
    const plan = lines(d.fix);
    expect(plan.some((l) => l.startsWith(`ip link add name ${BR_DUAL} mtu 1500 `) && l.includes('group 28014 type bridge'))).toBe(true);
    expect(plan).toContain(`ip addr add 10.201.0.1/24 dev ${BR_DUAL}`);
    expect(plan).toContain(`ip addr add fd00:201::1/64 dev ${BR_DUAL} nodad`);
    expect(plan).toContain(`ip link set dev ${BR_DUAL} up`);
    expect(plan).toContain(`ip link set dev ${VETH_E1} master ${BR_DUAL}`);
    expect(plan).toContain(`ip link set dev ${VETH_E2} master ${BR_DUAL}`);
    // Surviving veths are not made again (that would cut the containers off).
    expect(plan.some((l) => l.startsWith(`ip link add name ${VETH_E1} `))).toBe(false);
    // The bridge's firewall is programmed with it.
    expect(scripts(d.fix)).toContain(`add element inet mynet egress { "${BR_DUAL}" : jump egress-a16ea39fe89d }`);
  });

  it('a missing bridge whose veth went too: the fix makes that veth again, on the new bridge', () => {
    let k = withoutLink(withoutLink(cleanKernel(), BR_DUAL), VETH_E2);
    k = withLink(k, VETH_E1, ({ master: _gone, ...l }) => l);
    const plan = lines(only(diagnose(fixtureState(), k)).fix);
    expect(plan).toContain(`ip link set dev ${VETH_E1} master ${BR_DUAL}`);
    expect(plan.some((l) => l.startsWith(`ip link add name ${VETH_E2} mtu 1500 group 28014 master ${BR_DUAL} up type veth`))).toBe(true);
    // The bridge comes before anything attached to it.
    expect(plan.findIndex((l) => l.startsWith(`ip link add name ${BR_DUAL} `))).toBeLessThan(
      plan.findIndex((l) => l.startsWith(`ip link add name ${VETH_E2} `)),
    );
  });

  it('a bridge that is down: brought up', () => {
    const d = only(
      diagnose(
        fixtureState(),
        withLink(cleanKernel(), BR_SNAT, (l) => ({ ...l, up: false })),
      ),
    );
    expect(d).toMatchObject({ kind: 'drift', object: `bridge ${BR_SNAT}`, detail: 'is down' });
    expect(lines(d.fix)).toEqual([`# bring up ${BR_SNAT}`, `ip link set dev ${BR_SNAT} up`]);
  });

  it('a gateway address that is gone: added again (IPv6 without DAD)', () => {
    const k = withLink(cleanKernel(), BR_DUAL, (l) => ({ ...l, addrs: [] }));
    const ds = diagnose(fixtureState(), k);
    expect(ds.map((d) => [d.kind, d.object, d.detail])).toEqual([
      ['drift', `bridge ${BR_DUAL}`, 'gateway 10.201.0.1/24 is not on it'],
      ['drift', `bridge ${BR_DUAL}`, 'gateway fd00:201::1/64 is not on it'],
    ]);
    expect(ds.flatMap((d) => lines(d.fix)).filter((l) => !l.startsWith('#'))).toEqual([
      `ip addr add 10.201.0.1/24 dev ${BR_DUAL}`,
      `ip addr add fd00:201::1/64 dev ${BR_DUAL} nodad`,
    ]);
  });

  it("an MTU that drifted: set back to the network's", () => {
    const d = only(
      diagnose(
        fixtureState(),
        withLink(cleanKernel(), BR_SNAT, (l) => ({ ...l, mtu: 1500 })),
      ),
    );
    expect(d).toMatchObject({ kind: 'drift', object: `bridge ${BR_SNAT}`, detail: 'MTU is 1500, not 1400' });
    expect(lines(d.fix)).toContain(`ip link set dev ${BR_SNAT} mtu 1400`);
  });

  it("a missing host veth: made again on its bridge, with the network's MTU", () => {
    const d = only(diagnose(fixtureState(), withoutLink(cleanKernel(), VETH_E3)));
    expect(d).toMatchObject({ kind: 'missing', object: `veth ${VETH_E3}`, detail: 'endpoint 7159bf12552a has no host-side veth' });
    const plan = lines(d.fix);
    expect(
      plan.some((l) =>
        l.startsWith(`ip link add name ${VETH_E3} mtu 1400 group 28014 master ${BR_SNAT} up type veth peer name mnc7159bf12552a`),
      ),
    ).toBe(true);
    expect(plan).toContain(`ip link set dev ${VETH_E3} alias mynet net:ae428ef4fcd8 ep:7159bf12552a`);
  });

  it('a veth on the wrong bridge, or on none: attached to its own', () => {
    const wrong = only(
      diagnose(
        fixtureState(),
        withLink(cleanKernel(), VETH_E3, (l) => ({ ...l, master: BR_DUAL })),
      ),
    );
    expect(wrong).toMatchObject({ kind: 'drift', object: `veth ${VETH_E3}`, detail: `is attached to ${BR_DUAL}, not ${BR_SNAT}` });
    expect(lines(wrong.fix)).toEqual([`# attach ${VETH_E3} to ${BR_SNAT}`, `ip link set dev ${VETH_E3} master ${BR_SNAT}`]);
    const none = only(
      diagnose(
        fixtureState(),
        withLink(cleanKernel(), VETH_E3, ({ master: _gone, ...l }) => l),
      ),
    );
    expect(none.detail).toBe(`is attached to nothing, not ${BR_SNAT}`);
  });

  it("the whole nft table gone: one difference whose fix rebuilds every network's firewall and every published port", () => {
    const clean = cleanKernel();
    const d = only(diagnose(fixtureState(), { ...clean, nft: undefined }));
    expect(d).toMatchObject({ kind: 'missing', object: 'nft table inet mynet' });
    expect(safeToRepair(d)).toBe(true);
    const all = scripts(d.fix);
    // Everything the real table held is in the fix: every chain, every element of every map and set.
    for (const chain of clean.nft?.chains ?? []) expect(all).toContain(`add chain inet mynet ${chain}`);
    const elements = [...(clean.nft?.elements ?? [])].flatMap(([map, els]) => els.map((el) => [map, el] as const));
    expect(elements.length).toBeGreaterThan(15);
    for (const [map, el] of elements) {
      expect(all, `${map} ${el}`).toMatch(
        new RegExp(`add element inet mynet ${map} \\{ ([^}]*, )?${el.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(, [^}]*)? \\}`),
      );
    }
    for (const br of [BR_DUAL, BR_SNAT, BR_INTERNAL]) expect(d.fix.map((s) => s.what)).toContain(`program the firewall of ${br}`);
    expect(d.fix.map((s) => s.what)).toContain('publish every port again');
  });

  it('the table gone with no published ports: the fix has no port step', () => {
    const s = fixtureState();
    for (const e of [...s.endpoints.values()]) s.apply([{ op: 'endpoint.put', endpoint: { ...e, ports: [] } }]);
    const d = only(diagnose(s, { ...cleanKernel(), nft: undefined }));
    expect(d.fix.map((x) => x.what)).toEqual([
      `program the firewall of ${BR_DUAL}`,
      `program the firewall of ${BR_SNAT}`,
      `program the firewall of ${BR_INTERNAL}`,
    ]);
  });

  it("a network's egress element gone: that network's firewall is programmed again, and nothing else", () => {
    const k = dropElement(cleanKernel(), 'egress', `"${BR_SNAT}" : jump egress-ae428ef4fcd8`);
    const d = only(diagnose(fixtureState(), k));
    expect(d).toMatchObject({
      kind: 'missing',
      object: `firewall of ${BR_SNAT}`,
      detail: `missing egress "${BR_SNAT}" : jump egress-ae428ef4fcd8`,
    });
    expect(d.fix.map((s) => s.what)).toEqual([`program the firewall of ${BR_SNAT}`]);
    expect(scripts(d.fix)).toContain(`add element inet mynet egress { "${BR_SNAT}" : jump egress-ae428ef4fcd8 }`);
    expect(scripts(d.fix)).not.toContain(BR_DUAL);
  });

  it("a network's NAT element or its chains gone: its firewall is programmed again", () => {
    const nat = only(diagnose(fixtureState(), dropElement(cleanKernel(), 'snat4', '10.201.1.0/24 : 198.51.100.7')));
    expect(nat).toMatchObject({ kind: 'missing', object: `firewall of ${BR_SNAT}`, detail: 'missing snat4 10.201.1.0/24 : 198.51.100.7' });
    const chains = only(
      diagnose(
        fixtureState(),
        withNft(cleanKernel(), (t) => t.chains.delete('ingress-a16ea39fe89d')),
      ),
    );
    expect(chains).toMatchObject({ kind: 'missing', object: `firewall of ${BR_DUAL}`, detail: 'its chains are missing' });
    expect(scripts(chains.fix)).toContain('add chain inet mynet ingress-a16ea39fe89d');
  });

  it("a published port's element gone: that element is added again", () => {
    const d = only(diagnose(fixtureState(), dropElement(cleanKernel(), 'pub4any', 'tcp . 8443 : 10.201.1.2 . 443')));
    expect(d).toMatchObject({ kind: 'missing', object: 'port 8443/tcp', detail: 'published port of 7159bf12552a is not in pub4any' });
    expect(lines(d.fix)).toEqual([
      '# publish 8443/tcp',
      'nft -f - <<',
      'add element inet mynet pub4any { tcp . 8443 : 10.201.1.2 . 443 }',
      '>>',
    ]);
  });

  it('each family of a dual-stack port and a host-IP binding are checked on their own', () => {
    const v6 = only(diagnose(fixtureState(), dropElement(cleanKernel(), 'pub6any', 'udp . 5353 : fd00:201::10 . 53')));
    expect(v6).toMatchObject({ object: 'port 5353/udp', detail: 'published port of e4fefef2476d is not in pub6any' });
    expect(scripts(v6.fix)).toBe('add element inet mynet pub6any { udp . 5353 : fd00:201::10 . 53 }');
    const lo = only(diagnose(fixtureState(), dropElement(cleanKernel(), 'pub4', '127.0.0.1 . tcp . 8081 : 10.201.0.3 . 80')));
    expect(lo.object).toBe('port 127.0.0.1:8081/tcp');
    expect(scripts(lo.fix)).toBe('add element inet mynet pub4 { 127.0.0.1 . tcp . 8081 : 10.201.0.3 . 80 }');
  });

  it('a port bound to an IPv6 host address is named with brackets', () => {
    const s = fixtureState();
    const e = s.endpoints.get(E1);
    if (!e) throw new Error('fixture');
    s.apply([
      {
        op: 'endpoint.put',
        endpoint: { ...e, ports: [...e.ports, { proto: 'tcp', containerPort: 80, hostIp: '2001:db8::5', hostPort: 9090 }] },
      },
    ]);
    const d = only(diagnose(s, cleanKernel()));
    expect(d).toMatchObject({
      kind: 'missing',
      object: 'port [2001:db8::5]:9090/tcp',
      detail: 'published port of e4fefef2476d is not in pub6',
    });
    expect(scripts(d.fix)).toBe('add element inet mynet pub6 { 2001:db8::5 . tcp . 9090 : fd00:201::10 . 80 }');
  });

  it('the FORWARD jump gone (a firewall reload): the hook is ensured', () => {
    const save = fixtureText('iptables-save.txt').replace(/^-A FORWARD .*MYNET-FORWARD\n/m, '');
    const d = only(diagnose(fixtureState(), { ...cleanKernel(), hook: hookStatus(save, fixtureText('iptables-save-raw.txt')) }));
    expect(d).toMatchObject({ kind: 'missing', object: 'FORWARD hook', detail: 'iptables FORWARD does not jump to MYNET-FORWARD' });
    expect(lines(d.fix)).toEqual(['# ensure the FORWARD hook', 'forward-hook ensure']);
  });

  it('MYNET-FORWARD flushed but the jump kept: reported as a changed chain', () => {
    const save = fixtureText('iptables-save.txt').replace(/^-A MYNET-FORWARD .*\n/gm, '');
    const d = only(diagnose(fixtureState(), { ...cleanKernel(), hook: hookStatus(save, fixtureText('iptables-save-raw.txt')) }));
    expect(d.detail).toBe('the MYNET-FORWARD chain is not as mynet made it');
  });

  it('the 127/8 guard gone from the raw table (the filter part intact): the hook is ensured', () => {
    const raw = fixtureText('iptables-save-raw.txt').replace(/^-A PREROUTING -d 127.*\n/m, '');
    const d = only(diagnose(fixtureState(), { ...cleanKernel(), hook: hookStatus(fixtureText('iptables-save.txt'), raw) }));
    expect(d).toMatchObject({
      kind: 'missing',
      object: 'FORWARD hook',
      detail: "the 127/8 guard is missing from iptables' raw PREROUTING",
    });
    expect(lines(d.fix)).toEqual(['# ensure the FORWARD hook', 'forward-hook ensure']);
  });

  it('several things wrong at once: each is listed, with its own fix', () => {
    let k = withoutLink(cleanKernel(), VETH_E3);
    k = withLink(k, BR_DUAL, (l) => ({ ...l, up: false }));
    k = dropElement(k, 'pub4any', 'tcp . 8080 : 10.201.0.2 . 80');
    k = { ...k, hook: { ...k.hook, jump: false } };
    const ds = diagnose(fixtureState(), k);
    expect(ds.map((d) => `${d.kind} ${d.object}`).sort()).toEqual([
      `drift bridge ${BR_DUAL}`,
      'missing FORWARD hook',
      'missing port 8080/tcp',
      `missing veth ${VETH_E3}`,
    ]);
    expect(ds.every(safeToRepair)).toBe(true);
  });
});

describe('diagnose: orphans (removed only by `mynet doctor --fix`)', () => {
  it('a link in our group that no record explains', () => {
    const d = only(
      diagnose(
        fixtureState(),
        withLink(cleanKernel(), 'mn-orphan1', (l) => l),
      ),
    );
    expect(d).toMatchObject({ kind: 'orphan', object: 'link mn-orphan1' });
    expect(safeToRepair(d)).toBe(false);
    // An ownership-checked delete: a link that lost our mark meanwhile is not touched.
    expect(d.fix.map((s) => s.run)).toEqual([{ kind: 'link-del', name: 'mn-orphan1' }]);
  });

  it('a container-side veth still on the host is not an orphan (it belongs to an endpoint)', () => {
    expect(
      diagnose(
        fixtureState(),
        withLink(cleanKernel(), 'mnc7159bf12552a', (l) => ({ ...l, up: false })),
      ),
    ).toEqual([]);
  });

  it('a published-port element no endpoint holds: its key is deleted; into a stored network it is a leftover, elsewhere an orphan', () => {
    const into = only(
      diagnose(
        fixtureState(),
        withNft(cleanKernel(), (t) => t.elements.get('pub4any')?.push('tcp . 9999 : 10.201.0.9 . 80')),
      ),
    );
    expect(into).toMatchObject({
      kind: 'leftover',
      scope: 'ports',
      object: 'pub4any element tcp . 9999',
      detail: 'points into network a16ea39fe89d but no record publishes it',
    });
    expect(safeToRepair(into)).toBe(false);
    expect(scripts(into.fix)).toBe('delete element inet mynet pub4any { tcp . 9999 }');
    const elsewhere = only(
      diagnose(
        fixtureState(),
        withNft(cleanKernel(), (t) => t.elements.get('pub4any')?.push('tcp . 9999 : 172.31.0.9 . 80')),
      ),
    );
    expect(elsewhere).toMatchObject({ kind: 'orphan', object: 'pub4any element tcp . 9999' });
    expect(safeToRepair(elsewhere)).toBe(false);
  });

  it('an element that still exists but points elsewhere is a leftover, and the right one is missing', () => {
    const k = withNft(dropElement(cleanKernel(), 'pub4any', 'tcp . 8443 : 10.201.1.2 . 443'), (t) =>
      t.elements.get('pub4any')?.push('tcp . 8443 : 10.201.1.99 . 443'),
    );
    const ds = diagnose(fixtureState(), k);
    expect(ds.map((d) => `${d.kind} ${d.object}`).sort()).toEqual(['leftover pub4any element tcp . 8443', 'missing port 8443/tcp']);
  });

  it('the egress element of a network mynet no longer has', () => {
    const k = withNft(cleanKernel(), (t) => t.elements.get('egress')?.push('"mn-deadbeef0000" : jump egress-deadbeef0000'));
    const d = only(diagnose(fixtureState(), k));
    expect(d).toMatchObject({ kind: 'orphan', object: 'egress element "mn-deadbeef0000"' });
    expect(scripts(d.fix)).toBe('delete element inet mynet egress { "mn-deadbeef0000" }');
  });

  it('with no records at all, everything of ours in the kernel is an orphan and nothing is missing', () => {
    const ds = diagnose(new State(), cleanKernel());
    expect(ds.every((d) => d.kind === 'orphan')).toBe(true);
    expect(
      ds
        .filter((d) => d.object.startsWith('link '))
        .map((d) => d.object)
        .sort(),
    ).toEqual([...cleanKernel().links.keys()].map((n) => `link ${n}`).sort());
    // 3 bridges and 4 veths, 6 port elements, 3+3 policy elements.
    expect(ds).toHaveLength(19);
  });
});

describe('diagnose: never anything unmarked', () => {
  it('every object it names is a record of ours, a link of our group, or in our own table', () => {
    // A messy host: unmarked look-alikes cannot even appear in the snapshot (links are read by
    // group; see kernel-snapshot.test.ts), so everything listed comes from records or our marks.
    let k = withoutLink(cleanKernel(), BR_SNAT);
    k = withLink(k, 'mn-orphan2', (l) => l);
    k = withNft(k, (t) => {
      t.elements.get('pub6any')?.push('tcp . 1 : fd00::1 . 1');
      // Sets of subnets are shared: an unknown subnet is not ours to judge, so it is not listed.
      t.elements.get('subnets4')?.push('192.0.2.0/24');
    });
    const state = fixtureState();
    const ours = new Set<string>([
      ...[...state.networks.values()].flatMap((n) => [`bridge ${n.bridge}`, `firewall of ${n.bridge}`]),
      ...[...state.endpoints.values()].map((e) => `veth ${e.hostIf}`),
      ...[...k.links.keys()].map((n) => `link ${n}`),
      'pub6any element tcp . 1',
    ]);
    const ds = diagnose(state, k);
    // Exactly the three drifts made above (an empty list would make the loop below vacuous).
    expect(ds.map((d) => `${d.kind} ${d.object}`)).toEqual([
      `missing bridge ${BR_SNAT}`,
      'orphan link mn-orphan2',
      'orphan pub6any element tcp . 1',
    ]);
    for (const d of ds) expect(ours.has(d.object) || d.object.startsWith('port '), d.object).toBe(true);
    expect(ds.some((d) => d.object.includes('192.0.2.0'))).toBe(false);
  });
});
