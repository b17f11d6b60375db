/**
 * Issue 25, a cluster network's policy across a plugin restart: its policies are etcd's, not the
 * journal's. Until the network's plane has read them, the doctor (the start's reconcile
 * included) keeps the policy the table holds instead of "repairing" it away, which opened the
 * network to every source until etcd answered; and the plane hands on no policy input before
 * its first list (an empty copy is not "no policies"). Both fail on the old code.
 */
import { describe, expect, it } from 'vitest';
import type { PrefixFollower } from '../../../src/cluster/follower.js';
import type { ClusterPolicyInput, State } from '../../../src/driver/state.js';
import { nftDifferences } from '../../../src/doctor/nft.js';
import { PolicyFollower } from '../../../src/multihost/policies.js';
import { parsePolicyText } from '../../../src/policy/document.js';
import { DUAL } from './fixture.js';
import { DB_FROM_WEB, fresh, labelled } from '../driver/policy-fixture.js';
import { silentLog } from '../support.js';

/** The fixture's DUAL network made a cluster network, etcd's policy for it known or not. */
function clusterState(known: boolean): State {
  const s = labelled();
  const n = s.networks.get(DUAL);
  if (!n) throw new Error('fixture: no DUAL');
  const cluster = {
    name: 'blue',
    subnet: n.ipv4[0]?.pool ?? '',
    gateway: '10.201.0.1',
    gatewayMac: '02:aa:bb:cc:dd:ee',
    vni: 5000,
    mtu: 1450,
    local: '198.18.0.1',
  };
  s.apply([{ op: 'network.put', network: { ...n, cluster } }]);
  if (known) s.clusterPolicy.set(DUAL, { policies: parsePolicyText('policy', DB_FROM_WEB), remote: [] });
  return s;
}

const firewall = (s: State, t: Parameters<typeof nftDifferences>[1]): string[] =>
  nftDifferences(s, t)
    .filter((d) => d.object.startsWith('firewall of'))
    .map((d) => `${d.kind} ${d.object}`);

describe("a cluster network's policy across a restart (issue 25)", () => {
  it("the doctor keeps the table's policy of a cluster network whose policies etcd has not given yet, and compares it once they are known", async () => {
    const before = await fresh(clusterState(true)); // the table as the plugin left it, db protected
    expect(before?.chains.has(`policy-${DUAL.slice(0, 12)}`)).toBe(true);
    expect(firewall(clusterState(true), before)).toEqual([]);
    // Restarted: the journal has the network, etcd's policies are not read yet.
    expect(firewall(clusterState(false), before)).toEqual([]);
    // Known, and etcd has no policy for it any more: the chain is a difference, repaired.
    const none = clusterState(false);
    none.clusterPolicy.set(DUAL, { policies: [], remote: [] });
    expect(firewall(none, before)).not.toEqual([]);
  });

  it('the plane hands on no policy input before its first list from etcd, and the listed copy after it', () => {
    const handed: ClusterPolicyInput[] = [];
    const f = new PolicyFollower(
      'blue',
      silentLog,
      () => [{ addresses: ['10.201.0.200'], labels: { app: 'web' } }],
      (i) => handed.push(i),
    );
    const mirror = new Map<string, string>();
    f.start({
      current: 'starting',
      mirror: { entries: () => mirror.entries() },
      stop: () => Promise.resolve(),
    } as unknown as PrefixFollower);
    f.changed(); // an endpoint change of the plane, before etcd's policies were listed
    expect(handed).toEqual([]);
    f.fromEtcd(); // the first list: no policy in etcd for this network
    expect(handed).toEqual([{ policies: [], remote: [{ addresses: ['10.201.0.200'], labels: { app: 'web' } }] }]);
  });
});
