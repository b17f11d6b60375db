/**
 * Network policy decisions (issue 25) on the fake nft: applying, changing and removing policies
 * and endpoints brings the table to exactly what creating the network with its policies makes
 * (the incremental steps and the create agree), each step's undo puts the table back, a deleted
 * network takes its policies and their objects with it, the doctor sees a clean table and an
 * address left in a policy set; refusals change nothing.
 */
import { describe, expect, it } from 'vitest';
import { deleteEndpoint } from '../../../src/driver/endpoint.js';
import { deleteNetwork, networkSteps } from '../../../src/driver/network.js';
import { MAX_POLICIES, applyPolicies, removePolicy, resolveNetwork } from '../../../src/driver/policy.js';
import type { State } from '../../../src/driver/state.js';
import { nftDifferences } from '../../../src/doctor/nft.js';
import { applyAll, applyPlan, undoPlan } from '../../../src/host/executor.js';
import { parsePolicyText } from '../../../src/policy/document.js';
import { add, elementObj } from '../../../src/plan/nft-change.js';
import { TABLE, nftOp } from '../../../src/plan/nft.js';
import { checkChange, snapshotRecordProblem } from '../../../src/store/records.js';
import { DUAL, E1, E2, fixtureState } from '../doctor/fixture.js';
import { DB_FROM_WEB, NONE, base, fresh, labelled } from './policy-fixture.js';
import { FakeNftExecutor } from '../../helpers/fake-nft.js';
import { silentLog } from '../support.js';

/** The doctor's findings but the fixture's published ports (this test does not publish them). */
const differences = (s: State, t: Parameters<typeof nftDifferences>[1]): ReturnType<typeof nftDifferences> =>
  nftDifferences(s, t).filter((d) => d.scope !== 'ports');

describe('network policy decisions', () => {
  it('refuses to store more than MAX_POLICIES policies, naming why; replacing one already stored is not counted twice', () => {
    const s = labelled();
    const many = parsePolicyText('policy', DB_FROM_WEB);
    const one = many[0];
    if (!one) throw new Error('no policy parsed');
    const named = (i: number) => ({ ...one, name: `p${i}` });
    s.apply(
      applyPolicies(
        s,
        Array.from({ length: MAX_POLICIES }, (_, i) => named(i)),
        NONE,
      ).changes,
    );
    expect(s.policies.size).toBe(MAX_POLICIES);
    expect(applyPolicies(s, [named(0)], NONE).response).toEqual({ applied: ['p0'] });
    expect(() => applyPolicies(s, [named(MAX_POLICIES)], NONE)).toThrow(/policy: 1025 policies would be stored, at most 1024/);
  });

  it('apply, endpoint gone, remove, network deleted: each step gives what a fresh create gives, and its undo the table before', async () => {
    const s = labelled();
    const exec = new FakeNftExecutor();
    await applyPlan(exec, [base, ...[...s.networks.values()].flatMap((n) => networkSteps(n))], silentLog);
    const untouched = exec.nft.dump(TABLE);
    const step = async (d: { plan: Parameters<typeof applyPlan>[1]; changes: Parameters<State['apply']>[0] }): Promise<void> => {
      const before = exec.nft.dump(TABLE);
      await applyPlan(exec, d.plan, silentLog);
      const after = exec.nft.dump(TABLE);
      await undoPlan(exec, d.plan, silentLog);
      expect(exec.nft.dump(TABLE)).toEqual(before);
      await applyPlan(exec, d.plan, silentLog);
      expect(exec.nft.dump(TABLE)).toEqual(after);
      s.apply(d.changes);
      expect(after).toEqual(await fresh(s));
      expect(differences(s, after)).toEqual([]);
    };

    const applied = applyPolicies(s, parsePolicyText('policy', DB_FROM_WEB), NONE);
    expect(applied.response).toEqual({ applied: ['db-from-web'] });
    await step(applied);
    const t = exec.nft.dump(TABLE);
    if (!t) throw new Error('no table after applying the policy');
    const chain = `policy-${DUAL.slice(0, 12)}`;
    expect(t.chains.has(chain)).toBe(true);
    // e1 (db) is protected; e2 (web) is the allowed source.
    const e1 = (s.endpoints.get(E1)?.address ?? '').split('/')[0] as string;
    const e2 = (s.endpoints.get(E2)?.address ?? '').split('/')[0] as string;
    expect(t.elements.get(`pp4-${DUAL.slice(0, 12)}`)).toEqual([e1]);
    expect([...t.elements].filter(([k, v]) => k.startsWith('pg4-') && v.includes(e2))).toHaveLength(1);

    // The same policy applied again changes nothing on the host.
    expect(applyPolicies(s, parsePolicyText('policy', DB_FROM_WEB), NONE).plan).toEqual([]);

    // The doctor: an address no record puts in a policy set is drift, and its repair takes it out.
    const pg = [...t.elements.keys()].find((k) => k.startsWith('pg4-')) as string;
    await applyPlan(exec, [{ what: 'by hand', run: nftOp([add(elementObj(pg, [{ key: '10.222.9.9' }]))]) }], silentLog);
    const found = differences(s, exec.nft.dump(TABLE));
    expect(found.map((d) => [d.kind, d.object])).toEqual([['drift', `firewall of ${s.networks.get(DUAL)?.bridge}`]]);
    await applyPlan(exec, found[0]?.fix ?? [], silentLog);
    expect(exec.nft.dump(TABLE)).toEqual(t);

    await step(deleteEndpoint(s, { NetworkID: DUAL, EndpointID: E2 }));
    await step(removePolicy(s, 'db-from-web'));
    expect(exec.nft.dump(TABLE)).toEqual(await fresh(s));
    expect(exec.nft.dump(TABLE)?.chains.has(chain)).toBe(false);

    // Applied again, then the network deleted: its policies go with it, objects and all.
    await step(applyPolicies(s, parsePolicyText('policy', DB_FROM_WEB), NONE));
    const gone = deleteNetwork(s, DUAL);
    expect(gone.changes).toContainEqual({ op: 'policy.delete', name: 'db-from-web' });
    await applyAll(exec, gone.plan, silentLog);
    s.apply(gone.changes);
    expect(s.policies.size).toBe(0);
    expect(exec.nft.dump(TABLE)).toEqual(await fresh(s));
    expect(untouched).not.toEqual(exec.nft.dump(TABLE));
  });

  it('refusals name the field and change nothing', () => {
    const s = labelled();
    const seq = JSON.stringify(s.toSnapshot());
    expect(() => applyPolicies(s, parsePolicyText('policy', DB_FROM_WEB.replace(DUAL.slice(0, 12), 'nosuchnet')), NONE)).toThrow(
      /network: no mynet network "nosuchnet"/,
    );
    expect(() => removePolicy(s, 'nope')).toThrow(/policy: no policy named "nope"/);
    expect(() => parsePolicyText('policy', DB_FROM_WEB.replace('tcp/5432', 'tcp/65536'))).toThrow(/policy.ingress\[0\].ports\[0\]/);
    expect(() => parsePolicyText('policy', DB_FROM_WEB.replace('app: db', 'app: "d b"'))).toThrow(/policy.select.app/);
    expect(() => parsePolicyText('policy', `${DB_FROM_WEB}colour: red\n`)).toThrow(/policy.colour: unknown field/);
    expect(() => parsePolicyText('policy', 'name: [')).toThrow(/policy: does not parse as YAML/);
    expect(() => parsePolicyText('policy', '{"name": ')).toThrow(/policy: does not parse as JSON/);
    expect(JSON.stringify(s.toSnapshot())).toBe(seq);
  });

  it('YAML and JSON files give the same policy; several YAML documents are several policies', () => {
    const json = JSON.stringify({
      name: 'db-from-web',
      network: DUAL.slice(0, 12),
      select: { app: 'db' },
      ingress: [{ from: [{ app: 'web' }], ports: ['tcp/5432'] }],
    });
    expect(parsePolicyText('policy', DB_FROM_WEB)).toEqual(parsePolicyText('policy', json));
    expect(parsePolicyText('policy', `${DB_FROM_WEB}---\n${DB_FROM_WEB.replace('db-from-web', 'other')}`).map((p) => p.name)).toEqual([
      'db-from-web',
      'other',
    ]);
  });

  it('a network is named by its id, a prefix of 12 or more, its Docker name or its cluster name; an ambiguous name is refused', () => {
    const s = fixtureState();
    expect(resolveNetwork(s, DUAL, NONE)).toBe(DUAL);
    expect(resolveNetwork(s, DUAL.slice(0, 12), NONE)).toBe(DUAL);
    expect(resolveNetwork(s, 'blue', new Map([[DUAL, 'blue']]))).toBe(DUAL);
    const ids = [...s.networks.keys()];
    expect(() => resolveNetwork(s, 'blue', new Map(ids.map((id) => [id, 'blue'])))).toThrow(/network: blue names \d mynet networks/);
    expect(() => resolveNetwork(s, 'blue', NONE)).toThrow(/network: no mynet network "blue"/);
  });

  it('stored policies are checked at load as a file is', () => {
    const s = labelled();
    const d = applyPolicies(s, parsePolicyText('policy', DB_FROM_WEB), NONE);
    const put = d.changes[0];
    expect(checkChange(JSON.parse(JSON.stringify(put)))).toEqual(put);
    s.apply(d.changes);
    expect(snapshotRecordProblem(JSON.parse(JSON.stringify(s.toSnapshot())) as ReturnType<State['toSnapshot']>)).toBeUndefined();
    const bad: unknown = JSON.parse(JSON.stringify(put).replace('"app":"db"', '"app":"d;b"'));
    expect(() => checkChange(bad)).toThrow(/policy.select.app/);
    expect(() => checkChange({ op: 'policy.put', policy: { ...(put as { policy: object }).policy, networkId: 'x' } })).toThrow(
      /policy.networkId/,
    );
  });
});
