/**
 * Issue 25 on cluster networks, two in-memory hosts on one MemoryKv: a policy applied on one host
 * goes to etcd and every host follows it (with the other hosts' endpoints and their record labels
 * as sources); a value in etcd that does not check is refused on both and never compiled; `rm` on
 * the other host removes it everywhere; the per-network bound is kept in etcd.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../src/cluster/keys.js';
import { putPolicies, readPolicyRecord } from '../../../src/cluster/policy-records.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { policyObjectsOf } from '../../../src/driver/policy.js';
import { parsePolicyText } from '../../../src/policy/document.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { type ClusterHost, clusterHost, clusterNetwork } from '../../helpers/cluster-host.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';
import { clusterFindings } from '../../helpers/cluster-findings.js';

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

const POLICY = `name: db-from-web
network: blue
select: { app: db }
ingress:
  - from: [ { app: web } ]
    ports: [ tcp/5432 ]
`;

async function labelled(h: ClusterHost, network: string, pool: string, id: string, app: string): Promise<string> {
  const ip = await h.plugin.requestAddress({ PoolID: pool }, log);
  await h.plugin.createEndpoint(
    { NetworkID: network, EndpointID: id, Interface: { Address: ip.Address }, Options: { 'mynet.label.app': app } },
    log,
  );
  return ip.Address.split('/')[0] as string;
}

/** The policy objects' sets a host's table must hold for the network, as text (undefined: no policy). */
const objectsOf = (h: ClusterHost, network: string): string | undefined => {
  const o = policyObjectsOf(h.plugin.state, network);
  return o && JSON.stringify(o.sets);
};

describe('network policy on a cluster network (issue 25)', () => {
  it('travels in etcd, is followed by every host with remote labels as sources, refuses bad values, and is removed from any host', async () => {
    const kv = new MemoryKv();
    const a = clusterHost(kv, 'host-a', '198.18.0.1');
    const b = clusterHost(kv, 'host-b', '198.18.0.2');
    agents.push(a.agent, b.agent);
    const [na, nb] = [hexId(0xa1), hexId(0xb1)];
    const pa = await clusterNetwork(a, { network: na, pool: '10.77.0.0/16', cluster: 'blue' });
    const pb = await clusterNetwork(b, { network: nb, pool: '10.77.0.0/16', cluster: 'blue' });
    const db = await labelled(a, na, pa, hexId(0xa2), 'db');
    const web = await labelled(b, nb, pb, hexId(0xb2), 'web');
    // The labels travel in the endpoint record.
    const rec = JSON.parse((await kv.get(keys.endpoint('blue', hexId(0xb2))))?.value ?? '{}') as { labels?: unknown };
    expect(rec.labels).toEqual({ app: 'web' });

    // Applied on A: one key in etcd, the checked document with the cluster's name.
    expect(await a.plugin.applyPolicies(parsePolicyText('policy', POLICY), new Map(), log)).toEqual({ applied: ['db-from-web'] });
    const it0 = await kv.get(keys.policy('blue', 'db-from-web'));
    expect(it0 && readPolicyRecord(it0.key, it0.value)).toMatchObject({ ok: true, record: { name: 'db-from-web', network: 'blue' } });
    // A protects db and lets in web, B's endpoint, by its record's labels; B compiles the same policy (it selects nothing there).
    await waitUntil("A enforces the policy with B's web as a source", () => {
      const o = objectsOf(a, na) ?? '';
      return o.includes(`"${db}"`) && o.includes(`"${web}"`);
    });
    await waitUntil('B follows the policy', () => b.plugin.state.clusterPolicy.get(nb)?.policies.length === 1);
    expect(a.exec.calls.map((c) => JSON.stringify(c.op)).join('\n')).toContain(web);

    // A value that does not check: refused on both hosts, never compiled.
    await kv.put(keys.policy('blue', 'bad'), JSON.stringify({ name: 'bad', network: 'blue', select: {}, ingress: [], bogus: 1 }));
    for (const [h, n] of [
      [a, na],
      [b, nb],
    ] as const) {
      await waitUntil('the bad policy refused', () => h.agent.planes.get(n)?.policies.refused.size === 1);
      expect([...(h.agent.planes.get(n)?.policies.refused.values() ?? [])][0]).toMatch(/policy\.bogus: unknown field/);
      expect(h.plugin.state.clusterPolicy.get(n)?.policies.map((p) => p.name)).toEqual(['db-from-web']);
    }
    expect((await clusterFindings(a.agent, log)).map((d) => d.detail).join('\n')).toMatch(/refused, not enforced: .*bogus/);

    // The bound per network is kept in etcd (the bad value takes a key too).
    await expect(putPolicies(kv, 'blue', parsePolicyText('policy', POLICY.replace('db-from-web', 'more')), 2)).rejects.toThrow(
      /would hold 3 policies, at most 2/,
    );
    // A file mixing a cluster network's policies and a local network's is refused as a whole.
    await expect(
      a.plugin.applyPolicies(
        parsePolicyText('policy', `${POLICY}---\n${POLICY.replace('blue', 'nope').replace('db-from-web', 'x')}`),
        new Map(),
        log,
      ),
    ).rejects.toThrow(/no mynet network "nope"/);

    // Removed from B (not where it was applied): gone from etcd and from A's table; idempotent.
    expect(await b.plugin.removePolicy('db-from-web', log)).toEqual({ removed: 'db-from-web' });
    expect(await kv.get(keys.policy('blue', 'db-from-web'))).toBeUndefined();
    await waitUntil('A no longer enforces it', () => policyObjectsOf(a.plugin.state, na) === undefined);
    expect(await b.plugin.removePolicy('db-from-web', log)).toEqual({ removed: 'db-from-web' });
  });
});
