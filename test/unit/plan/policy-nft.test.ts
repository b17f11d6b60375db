/**
 * Policies in the nft table, golden-tested: the compiled matrix of policy/compile.test.ts rendered
 * as nft text, and the promise that endpoints change elements only, never rules.
 */
import { describe, expect, it } from 'vitest';
import { compileNetwork, type PolicyEndpoint } from '../../../src/policy/compile.js';
import { parsePolicy, type Policy } from '../../../src/policy/document.js';
import { policyObjects, renderPolicyObjects } from '../../../src/plan/policy-nft.js';

const NET = '5f3a9c0e2b7d41a8a6c3e0f1b2d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5';
const ep = (addresses: string[], labels: Record<string, string>): PolicyEndpoint => ({ addresses, labels });
const endpoints = [
  ep(['10.9.0.10', 'fd00:9::10'], { app: 'db' }),
  ep(['10.9.0.3', 'fd00:9::3'], { app: 'web' }),
  ep(['10.9.0.5'], { app: 'batch' }),
];
const pol = (name: string, select: Record<string, string>, ingress: unknown[]): Policy =>
  parsePolicy(name, { name, network: 'blue', select, ingress });
const policies = [
  pol('db-from-web', { app: 'db' }, [{ from: [{ app: 'web' }], ports: ['tcp/5432', 'udp/6000-6010'] }]),
  pol('batch-open', { app: 'batch' }, [{}]),
];

describe('policies in the nft table', () => {
  it('renders the golden objects', async () => {
    await expect(`${renderPolicyObjects(policyObjects(NET, compileNetwork(policies, endpoints)))}\n`).toMatchFileSnapshot(
      '../../golden/policy-nft.txt',
    );
  });

  it('an endpoint coming or going changes elements only: the rules are the same', () => {
    const before = policyObjects(NET, compileNetwork(policies, endpoints));
    const after = policyObjects(
      NET,
      compileNetwork(policies, [...endpoints, ep(['10.9.0.11'], { app: 'db' }), ep(['10.9.0.12'], { app: 'web' })]),
    );
    expect(after.rules).toEqual(before.rules);
    expect(after.sets.map((s) => s.name)).toEqual(before.sets.map((s) => s.name));
    expect(after.sets.find((s) => s.name.startsWith('pp4-'))?.elements).toContain('10.9.0.11');
    // Down to no endpoint a policy selects (and none it lets in): still the same rules.
    const none = policyObjects(
      NET,
      compileNetwork(
        policies,
        endpoints.filter((e) => e.labels.app === 'batch'),
      ),
    );
    expect(none.rules).toEqual(before.rules);
    expect(policyObjects(NET, compileNetwork(policies, [])).rules).toEqual(before.rules);
  });

  it('counts drops per policy under a counter name of fixed shape, whatever the policy name', () => {
    const o = policyObjects(NET, compileNetwork([pol('a.very_long-name.of-a-policy', { app: 'db' }, [])], endpoints));
    expect([...o.counters.keys()]).toEqual([expect.stringMatching(/^pc-5f3a9c0e2b7d-[0-9a-f]{12}$/)]);
    expect([...o.counters.values()]).toEqual(['a.very_long-name.of-a-policy']);
  });
});
