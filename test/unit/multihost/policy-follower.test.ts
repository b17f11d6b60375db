/**
 * Issue 25: a cluster network's policy follower reads its copy of etcd again on every batch of
 * remote endpoint changes; each policy value is checked once, not again per batch (up to 1024
 * values of 64 KiB). A changed value is checked again.
 */
import { describe, expect, it, vi } from 'vitest';
import type { PrefixFollower } from '../../../src/cluster/follower.js';
import * as records from '../../../src/cluster/policy-records.js';
import { keys } from '../../../src/cluster/keys.js';
import type { ClusterPolicyInput } from '../../../src/driver/state.js';
import { PolicyFollower } from '../../../src/multihost/policies.js';
import { silentLog } from '../support.js';

vi.mock('../../../src/cluster/policy-records.js', async (real) => {
  const actual = await real<typeof records>();
  return { ...actual, readPolicyRecord: vi.fn(actual.readPolicyRecord) };
});

const value = (ports: string): string =>
  JSON.stringify({ name: 'db-from-web', network: 'blue', select: { app: 'db' }, ingress: [{ from: [{ app: 'web' }], ports: [ports] }] });

describe('PolicyFollower', () => {
  it('checks each value once across batches of remote changes, and a changed value again', () => {
    const key = keys.policy('blue', 'db-from-web');
    const mirror = new Map([[key, value('tcp/5432')]]);
    let remote: ClusterPolicyInput['remote'] = [];
    const handed: ClusterPolicyInput[] = [];
    const f = new PolicyFollower(
      'blue',
      silentLog,
      () => remote,
      (i) => handed.push(i),
    );
    f.start({
      mirror: { entries: () => [...mirror].map(([k, v]) => ({ key: k, value: v })) },
      stop: () => Promise.resolve(),
    } as unknown as PrefixFollower);
    const read = vi.mocked(records.readPolicyRecord);
    read.mockClear();
    // The first list (the follower hands on nothing before it): the one check of the value.
    f.fromEtcd();
    for (let i = 0; i < 50; i++) {
      remote = [{ addresses: [`10.77.0.${10 + i}`], labels: { app: 'web' } }];
      f.changed();
    }
    expect(read).toHaveBeenCalledTimes(1);
    expect(handed).toHaveLength(51);
    expect(handed.at(-1)?.policies.map((p) => p.name)).toEqual(['db-from-web']);
    mirror.set(key, value('tcp/5433'));
    f.changed();
    expect(read).toHaveBeenCalledTimes(2);
    expect(JSON.stringify(handed.at(-1)?.policies)).toContain('5433');
  });
});
