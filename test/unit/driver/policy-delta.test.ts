/**
 * An endpoint coming or going on a network with policies (issue 25's lifecycle cost): its step
 * adds and deletes only that endpoint's own set and map elements (no set flushed, no chain
 * rewritten: the old step refilled every set of the network, ~20 000 elements at 1 000
 * endpoints and 100 policies), and still brings the fake table to exactly what a fresh create
 * of the state makes; its undo puts the table back. An address another endpoint also holds takes
 * the whole comparison, with the same result.
 */
import { describe, expect, it } from 'vitest';
import { networkSteps } from '../../../src/driver/network.js';
import { applyPolicies, policyObjectsOf, policyStep } from '../../../src/driver/policy.js';
import type { Change, EndpointRecord, State } from '../../../src/driver/state.js';
import { applyPlan, undoPlan } from '../../../src/host/executor.js';
import { parsePolicyText } from '../../../src/policy/document.js';
import { TABLE } from '../../../src/plan/nft.js';
import type { NftCommand } from '../../../src/plan/nft-change.js';
import { DUAL, E1 } from '../doctor/fixture.js';
import { FakeNftExecutor } from '../../helpers/fake-nft.js';
import { silentLog } from '../support.js';
import { DB_FROM_WEB, NONE, base, fresh, labelled } from './policy-fixture.js';

/** Two more policies: z-any-db selects db too (drops stay counted under db-from-web, first by name), a-front from {tier: front}. */
const MORE = `${DB_FROM_WEB}---
name: z-any-db
network: ${DUAL.slice(0, 12)}
select: { app: db }
ingress: [ { from: [ { tier: front } ] } ]
---
name: a-front
network: ${DUAL.slice(0, 12)}
select: { tier: front }
ingress: [ { from: [ { app: web }, { app: db } ], ports: [ udp/53 ] } ]
`;

function endpoint(s: State, n: number, labels: Record<string, string>, v6 = false): EndpointRecord {
  const e1 = s.endpoints.get(E1);
  if (!e1) throw new Error('fixture: no e1');
  const id = `${String(n).padStart(2, '0')}${'c'.repeat(62)}`;
  const { addressV6: _v6, ...rest } = e1;
  return { ...rest, id, address: `10.201.0.${10 + n}/24`, ...(v6 ? { addressV6: `fd00:201::${10 + n}/64` } : {}), ports: [], labels };
}

const commandsOf = (plan: ReturnType<typeof policyStep>): NftCommand[] =>
  plan.flatMap((st) => (st.run.kind === 'nft' ? st.run.commands : []));

describe('an endpoint change on a network with policies', () => {
  it('adds and deletes only its own elements, one transaction, and the table equals a fresh create; undo restores', async () => {
    const s = labelled();
    const exec = new FakeNftExecutor();
    await applyPlan(exec, [base, ...[...s.networks.values()].flatMap((n) => networkSteps(n, policyObjectsOf(s, n.id)))], silentLog);
    const applied = applyPolicies(s, parsePolicyText('policy', MORE), NONE);
    await applyPlan(exec, applied.plan, silentLog);
    s.apply(applied.changes);
    const net = s.networks.get(DUAL);

    const change = async (changes: Change[], wantElements: number): Promise<void> => {
      const plan = policyStep(s, net, changes);
      const cmds = commandsOf(plan);
      expect(cmds.filter((c) => c.verb === 'flush' || c.object.obj === 'chain' || c.object.obj === 'rule')).toEqual([]);
      expect(cmds.flatMap((c) => (c.object.obj === 'element' ? c.object.items : []))).toHaveLength(wantElements);
      const before = exec.nft.dump(TABLE);
      await applyPlan(exec, plan, silentLog);
      const after = exec.nft.dump(TABLE);
      await undoPlan(exec, plan, silentLog);
      expect(exec.nft.dump(TABLE)).toEqual(before);
      await applyPlan(exec, plan, silentLog);
      s.apply(changes);
      expect(after).toEqual(await fresh(s));
    };

    const db2 = endpoint(s, 1, { app: 'db', tier: 'front' }, true);
    // In each family: the groups {app: db}, {tier: front} and {app: web}|{app: db}, the protected set and the counter map (a-front's counter).
    await change([{ op: 'endpoint.put', endpoint: db2 }], 10);
    // Joined: the same record again changes nothing on the host.
    expect(policyStep(s, net, [{ op: 'endpoint.put', endpoint: { ...db2, sandboxKey: '/var/run/docker/netns/x' } }])).toEqual([]);
    const web2 = endpoint(s, 2, { app: 'web' });
    // Only a source: the groups {app: web} and {app: web}|{app: db}, protected by nothing.
    await change([{ op: 'endpoint.put', endpoint: web2 }], 2);
    const nobody = endpoint(s, 3, { app: 'batch' });
    expect(policyStep(s, net, [{ op: 'endpoint.put', endpoint: nobody }])).toEqual([]);
    await change([{ op: 'endpoint.delete', id: db2.id }], 10);
    await change([{ op: 'endpoint.delete', id: web2.id }], 2);
  });

  it('an address another endpoint holds too leaves the decision to the whole comparison, which keeps its elements', async () => {
    const s = labelled();
    const applied = applyPolicies(s, parsePolicyText('policy', MORE), NONE);
    s.apply(applied.changes);
    const net = s.networks.get(DUAL);
    const e1 = s.endpoints.get(E1);
    if (!e1) throw new Error('fixture: no e1');
    // A second endpoint with e1's address (a record no IPAM would make): the sets are refilled as a fresh create fills them.
    const twin: EndpointRecord = { ...endpoint(s, 4, { app: 'web' }), address: e1.address ?? '' };
    const exec = new FakeNftExecutor();
    await applyPlan(exec, [base, ...[...s.networks.values()].flatMap((n) => networkSteps(n, policyObjectsOf(s, n.id)))], silentLog);
    const put: Change[] = [{ op: 'endpoint.put', endpoint: twin }];
    const plan = policyStep(s, net, put);
    expect(commandsOf(plan).some((c) => c.verb === 'flush')).toBe(true);
    await applyPlan(exec, plan, silentLog);
    s.apply(put);
    expect(exec.nft.dump(TABLE)).toEqual(await fresh(s));
  });

  it("on a cluster network: etcd's policies count and the other hosts' endpoints are sources; the table equals a fresh create, and a remote endpoint's address takes the whole comparison", async () => {
    const s = labelled();
    const policies = parsePolicyText('policy', MORE).map((p) => ({ ...p }));
    // As Plugin.clusterPolicyChanged sets it: the policies from etcd, a remote web and a remote db.
    s.clusterPolicy.set(DUAL, {
      policies,
      remote: [
        { addresses: ['10.201.0.200'], labels: { app: 'web' } },
        { addresses: ['10.201.0.201'], labels: { app: 'db' } },
      ],
    });
    const exec = new FakeNftExecutor();
    await applyPlan(exec, [base, ...[...s.networks.values()].flatMap((n) => networkSteps(n, policyObjectsOf(s, n.id)))], silentLog);
    const net = s.networks.get(DUAL);
    const db2 = endpoint(s, 5, { app: 'db' });
    const put: Change[] = [{ op: 'endpoint.put', endpoint: db2 }];
    const plan = policyStep(s, net, put);
    expect(plan.length, "a local db is protected by etcd's policy").toBeGreaterThan(0);
    expect(commandsOf(plan).some((c) => c.verb === 'flush')).toBe(false);
    await applyPlan(exec, plan, silentLog);
    s.apply(put);
    expect(exec.nft.dump(TABLE)).toEqual(await fresh(s));
    // A local endpoint given a remote endpoint's address (a record no IPAM would make), then removed:
    // the remote one's element must stay (the quick path alone would delete it with the twin's).
    const twin = { ...endpoint(s, 6, { app: 'web' }), address: '10.201.0.200/24' };
    for (const c of [
      { op: 'endpoint.put', endpoint: twin },
      { op: 'endpoint.delete', id: twin.id },
    ] as Change[]) {
      await applyPlan(exec, policyStep(s, net, [c]), silentLog);
      s.apply([c]);
      expect(exec.nft.dump(TABLE)).toEqual(await fresh(s));
    }
  });
});
