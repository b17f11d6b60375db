/**
 * What policies compile to, as data, over a matrix of selectors (one key, two keys, none, no
 * match), sources (labels, several entries, anywhere, empty list) and ports (one, range, none,
 * empty list), pinned in test/golden/policy-matrix.txt; one endpoint's membership (what a
 * lifecycle changes) agrees with the whole compilation over the same matrix.
 */
import { describe, expect, it } from 'vitest';
import { compileNetwork, groupId, membershipOf, type CompiledNetwork, type PolicyEndpoint } from '../../../src/policy/compile.js';
import { formatPortSpec, parsePolicy, type Policy } from '../../../src/policy/document.js';

const ep = (addresses: string[], labels: Record<string, string>): PolicyEndpoint => ({ addresses, labels });
const endpoints = [
  ep(['10.9.0.10', 'fd00:9::10'], { app: 'db', tier: 'back' }),
  ep(['10.9.0.2'], { app: 'db', tier: 'front' }),
  ep(['10.9.0.3'], { app: 'web' }),
  ep(['10.9.0.4'], { app: 'web', team: 'a' }),
  ep(['10.9.0.5'], { app: 'batch' }),
  ep(['10.9.0.6'], {}),
];
const pol = (name: string, select: Record<string, string>, ingress: unknown[]): Policy =>
  parsePolicy(name, { name, network: 'blue', select, ingress });

function render(c: CompiledNetwork): string {
  const lines = [`protected: ${[...c.protectedBy].map(([a, p]) => `${a}<-${p}`).join(' ')}`];
  const g = (id: string): string => (c.groups.get(id) ?? ['(missing group)']).join(' ') || '(no one)';
  for (const p of c.policies) {
    lines.push(`policy ${p.name} selects ${g(p.selected)}`);
    for (const r of p.rules)
      lines.push(
        `  from ${r.sources === undefined ? 'anywhere' : g(r.sources)} ports ${r.ports === 'all' ? 'all' : r.ports.map(formatPortSpec).join(' ')}`,
      );
  }
  lines.push(`groups: ${c.groups.size}`);
  return lines.join('\n');
}

const cases: Record<string, Policy[]> = {
  'one key, one source, one port': [pol('db-from-web', { app: 'db' }, [{ from: [{ app: 'web' }], ports: ['tcp/5432'] }])],
  'two keys (AND)': [pol('back-db', { app: 'db', tier: 'back' }, [{ from: [{ app: 'web', team: 'a' }] }])],
  'several from entries (OR), a range': [
    pol('db', { app: 'db' }, [{ from: [{ app: 'web' }, { app: 'batch' }], ports: ['tcp/5432', 'udp/6000-6010'] }]),
  ],
  'from anywhere, every port': [pol('open-db', { app: 'db' }, [{}])],
  'empty lists mean anywhere and every port': [pol('open-db', { app: 'db' }, [{ from: [], ports: [] }])],
  'a source selector matching no one': [pol('db', { app: 'db' }, [{ from: [{ app: 'nobody' }] }])],
  'no rules: the selected accept nothing': [pol('deny-db', { app: 'db' }, [])],
  'selects no endpoint yet: kept, protecting no one': [pol('ghost', { app: 'ghost' }, [{}])],
  'empty selector: every endpoint': [pol('all', {}, [{ from: [{ app: 'web' }] }])],
  'two policies on one endpoint add up; drops count under the first by name': [
    pol('z-web', { app: 'db' }, [{ from: [{ app: 'web' }] }]),
    pol('a-batch', { app: 'db', tier: 'back' }, [{ from: [{ app: 'batch' }], ports: ['tcp/1-1024'] }]),
  ],
};

describe('policy compilation', () => {
  it('matches the golden matrix', async () => {
    const text = Object.entries(cases)
      .map(([title, ps]) => `## ${title}\n${render(compileNetwork(ps, endpoints))}`)
      .join('\n\n');
    await expect(`${text}\n`).toMatchFileSnapshot('../../golden/policy-matrix.txt');
  });

  it('grows linearly: 1 000 endpoints and 100 policies give 100 policies and no source × destination product', () => {
    const many = Array.from({ length: 1000 }, (_, i) => ep([`10.8.${i >> 8}.${i & 255}`], { app: `a${i % 100}`, all: 'y' }));
    const ps = Array.from({ length: 100 }, (_, i) =>
      pol(`p${String(i).padStart(3, '0')}`, { app: `a${i}` }, [{ from: [{ all: 'y' }], ports: ['tcp/80'] }]),
    );
    const c = compileNetwork(ps, many);
    expect(c.policies).toHaveLength(100);
    expect(c.protectedBy.size).toBe(1000);
    expect(c.policies.every((p) => c.groups.get(p.selected)?.length === 10)).toBe(true);
    // "from every endpoint" is one group for all 100 policies: 100 + 1 groups, 2 000 addresses in all.
    expect(c.groups.size).toBe(101);
    expect([...c.groups.values()].reduce((n, g) => n + g.length, 0)).toBe(2000);
  });

  it("one endpoint's membership is its part of the whole compilation, on every case of the matrix", () => {
    const all = Object.values(cases).flat();
    for (const ps of [...Object.values(cases), all])
      for (const e of endpoints) {
        const c = compileNetwork(ps, endpoints);
        const a = e.addresses[0] as string;
        const groups = new Set([...c.groups].filter(([, addrs]) => addrs.includes(a)).map(([id]) => id));
        const by = c.protectedBy.get(a);
        expect(membershipOf(ps, e.labels)).toEqual({ groups, ...(by === undefined ? {} : { protectedBy: by }) });
      }
  });

  it('names a group by its selectors, not their order', () => {
    expect(groupId([{ a: '1', b: '2' }, { c: '3' }])).toBe(groupId([{ c: '3' }, { b: '2', a: '1' }]));
    expect(groupId([{ a: '1' }])).not.toBe(groupId([{ a: '2' }]));
    expect(groupId([{ a: '1' }])).toMatch(/^[0-9a-f]{12}$/);
  });
});
