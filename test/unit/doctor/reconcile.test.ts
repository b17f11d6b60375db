/**
 * The reconciler's policies on the fixture's state and kernel: what start-up repairs, removes
 * and leaves, against what the loop ('safe') and `mynet doctor --fix` ('all') do with the same
 * differences. Links of networks the state does not know are never removed at start.
 */
import { describe, expect, it } from 'vitest';
import { type Observed, type Policy, reconcile } from '../../../src/doctor/reconcile.js';
import { State } from '../../../src/driver/state.js';
import type { KernelSnapshot } from '../../../src/host/kernel-snapshot.js';
import type { MarkedLink } from '../../../src/host/probe.js';
import { renderOp, renderPlan } from '../../../src/plan/step.js';
import { BR_DUAL, DUAL, VETH_E1, VETH_E3, cleanKernel, dropElement, fixtureState, withNft, withoutLink } from './fixture.js';

const dual = DUAL.slice(0, 12);
/** Crash leftovers of the fixture's known state, and links of a network it does not know. */
const LEFTOVERS: MarkedLink[] = [
  { name: 'mnh00000000dead', retired: true },
  { name: 'mnh0000000beef1', retired: false, alias: `mynet net:${dual} ep:0000000beef1` },
  { name: 'mnc0000000beef1', retired: false },
];
const UNKNOWN: MarkedLink[] = [
  { name: 'mn-00000000abcd', retired: false, alias: 'mynet net:00000000abcd' },
  { name: 'mnh0000000abce0', retired: false, alias: 'mynet net:00000000abcd ep:0000000abce0' },
  { name: 'mnc0000000abce0', retired: false },
];

const observed = (kernel: KernelSnapshot, marked: readonly MarkedLink[] = [...LEFTOVERS, ...UNKNOWN]): Observed => ({ kernel, marked });
/** "kind object" of every difference a policy repairs, in order. */
const repaired = (p: Policy, o: Observed, s = fixtureState()): string[] =>
  reconcile(s, o, p).actions.flatMap((a) => a.differences.map((d) => `${d.kind} ${d.object}`));

describe('reconcile: leftovers and orphans', () => {
  it('classifies a retired veth and a veth of a known network for an unknown endpoint (and its peer) as leftovers, the rest as orphans', () => {
    const r = reconcile(fixtureState(), observed(cleanKernel()), 'report');
    expect(r.found.map((d) => `${d.kind} ${d.object}`)).toEqual([
      ...LEFTOVERS.map((l) => `leftover link ${l.name}`),
      ...UNKNOWN.map((l) => `orphan link ${l.name}`),
    ]);
    expect(r.actions).toEqual([]);
  });

  it('start removes the leftovers only; the loop removes nothing; --fix removes both', () => {
    const o = observed(cleanKernel());
    expect(repaired('start', o)).toEqual(LEFTOVERS.map((l) => `leftover link ${l.name}`));
    expect(repaired('safe', o)).toEqual([]);
    expect(repaired('all', o)).toEqual(
      [...LEFTOVERS, ...UNKNOWN].map(
        (l) => `${l.name.startsWith('mnh00000000dead') || LEFTOVERS.includes(l) ? 'leftover' : 'orphan'} link ${l.name}`,
      ),
    );
  });

  it('a lost state: every link and element of ours is an orphan and start removes none of them', () => {
    const k = cleanKernel();
    const marked = [...k.links.keys()].map((name): MarkedLink => ({ name, retired: false }));
    const r = reconcile(new State(), observed(k, marked), 'start');
    expect(r.found.filter((d) => d.object.startsWith('link ')).length).toBe(k.links.size);
    expect(r.found.some((d) => d.object.startsWith('pub4any element '))).toBe(true);
    expect(r.found.every((d) => d.kind === 'orphan')).toBe(true);
    expect(r.actions).toEqual([]);
  });

  it('a name a record holds is never a leftover, whatever group or alias it has', () => {
    const r = reconcile(
      fixtureState(),
      observed(cleanKernel(), [
        { name: VETH_E1, retired: true },
        { name: BR_DUAL, retired: false, alias: 'mynet net:000000000000' },
      ]),
      'all',
    );
    expect(r.found).toEqual([]);
  });
});

describe('reconcile: start-up', () => {
  it('missing links are made again (the veth that survived its bridge re-attached by the one attach step)', () => {
    const k = withoutLink(withoutLink(cleanKernel(), BR_DUAL), VETH_E3);
    const plan = reconcile(fixtureState(), observed(k, []), 'start')
      .actions.map((a) => renderPlan(a.fix))
      .join('\n');
    expect(plan).toContain(`# attach ${VETH_E1} to ${BR_DUAL}`);
    expect(plan).toMatch(new RegExp(`ip link add name ${VETH_E3} `));
  });

  it('port repairs (a missing element, a leftover into a stored network) run as one transaction, the leftover out first; an element into an unknown network stays', () => {
    const k = withNft(dropElement(cleanKernel(), 'pub4any', 'tcp . 8443 : 10.201.1.2 . 443'), (t) =>
      t.elements.get('pub4any')?.push('tcp . 9999 : 10.201.0.9 . 80', 'tcp . 7777 : 172.31.9.9 . 80'),
    );
    const r = reconcile(fixtureState(), observed(k, []), 'start');
    expect(r.actions).toHaveLength(1);
    const a = r.actions[0];
    expect(a?.differences.map((d) => `${d.kind} ${d.object}`)).toEqual(['leftover pub4any element tcp . 9999', 'missing port 8443/tcp']);
    expect(a?.fix.map((s) => renderOp(s.run))).toEqual([
      'nft -f - <<\ndelete element inet mynet pub4any { tcp . 9999 }\nadd element inet mynet pub4any { tcp . 8443 : 10.201.1.2 . 443 }\n>>',
    ]);
    expect(r.left.map((d) => `${d.kind} ${d.object}`)).toEqual(['orphan pub4any element tcp . 7777']);
    // The loop re-adds the missing one and removes nothing.
    expect(repaired('safe', observed(k, []))).toEqual(['missing port 8443/tcp']);
  });

  it('an endpoint whose network is not stored is dropped by a state change, with no host step', () => {
    const s = new State();
    s.apply([
      {
        op: 'endpoint.put',
        endpoint: {
          id: 'e'.repeat(64),
          networkId: 'f'.repeat(64),
          hostIf: 'mnheeeeeeeeeeee',
          containerIf: 'mnceeeeeeeeeeee',
          mac: '02:00:00:00:00:05',
          ports: [],
        },
      },
    ]);
    const r = reconcile(s, observed(cleanKernel(), []), 'start');
    const stale = r.actions.find((a) => a.differences.some((d) => d.kind === 'stale'));
    expect(stale?.fix).toEqual([]);
    expect(stale?.changes).toEqual([{ op: 'endpoint.delete', id: 'e'.repeat(64) }]);
  });
});
