/**
 * Issue 22, findings 5 and 15 (unit side of test/host/cluster-identity.test.ts): the node id file,
 * who owns a record, and the presence of a name already in etcd.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../../src/cluster/cluster-store.js';
import { keys } from '../../../src/cluster/keys.js';
import { loadNodeId } from '../../../src/cluster/node-id.js';
import { ownedBy, staleOwn } from '../../../src/cluster/owner.js';
import { presenceOfAnother } from '../../../src/cluster/presence.js';
import { convergePlan } from '../../../src/multihost/converge.js';
import { MemoryKv } from '../../helpers/memory-kv.js';

const ID_A = 'a'.repeat(32);
const ID_B = 'b'.repeat(32);
const dirs: string[] = [];
const dir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'mnt-mntr-id-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the node id file', () => {
  it('is made once (0600) and read back the same at every start', () => {
    const d = dir();
    const first = loadNodeId(d);
    expect(first.made).toBe(true);
    expect(first.id).toMatch(/^[0-9a-f]{32}$/);
    expect(statSync(join(d, 'node-id')).mode & 0o777).toBe(0o600);
    expect(loadNodeId(d)).toEqual({ id: first.id, made: false });
  });

  it('lost: a new one is made; corrupt: the start stops naming the file, and the file is kept', () => {
    const d = dir();
    const first = loadNodeId(d).id;
    rmSync(join(d, 'node-id'));
    expect(loadNodeId(d).id).not.toBe(first);
    writeFileSync(join(d, 'node-id'), 'not an id\n');
    expect(() => loadNodeId(d)).toThrow(/node-id: is not a node id \(32 lowercase hex digits\); restore it, or delete it/);
    expect(readFileSync(join(d, 'node-id'), 'utf8')).toBe('not an id\n');
  });
});

describe('ownership: ids are identity, names are labels', () => {
  it("a record with an id is its id's, whatever its name; one without is held by name (written before ids)", () => {
    expect(ownedBy({ node: 'h', nodeId: ID_A }, { name: 'h', id: ID_B })).toBe(false);
    expect(ownedBy({ node: 'old', nodeId: ID_A }, { name: 'new', id: ID_A })).toBe(true);
    expect(ownedBy({ node: 'h' }, { name: 'h', id: ID_A })).toBe(true);
    expect(ownedBy({ node: 'g' }, { name: 'h', id: ID_A })).toBe(false);
    expect(staleOwn({ node: 'old', nodeId: ID_A }, { name: 'new', id: ID_A })).toBe(true);
    expect(staleOwn({ node: 'h' }, { name: 'h', id: ID_A })).toBe(true);
    expect(staleOwn({ node: 'h', nodeId: ID_A }, { name: 'h', id: ID_A })).toBe(false);
  });

  it("a host of the same name with another id cannot claim, release or withdraw the other's; a renamed host moves its claim", async () => {
    const kv = new MemoryKv();
    const net = { cluster: 'blue', subnet: '10.77.0.0/16', gateway: '10.77.0.1' };
    const b = new ClusterStore(kv, { name: 'h', address: '198.18.0.2', id: ID_B });
    const dup = new ClusterStore(kv, { name: 'h', address: '198.18.0.3', id: ID_A });
    await b.claimAddress(net, '10.77.0.5');
    await b.publishEndpoint({ cluster: 'blue', id: 'e'.repeat(64), address: '10.77.0.5', mac: '02:42:0a:4d:00:05' });
    await expect(dup.claimAddress(net, '10.77.0.5')).rejects.toThrow(/held by node h \(id bbbbbbbb\)/);
    expect(await dup.releaseAddress('blue', '10.77.0.5')).toBe('not-ours');
    expect(await dup.withdrawEndpoint('blue', 'e'.repeat(64))).toBe('not-ours');
    const renamed = new ClusterStore(kv, { name: 'h2', address: '198.18.0.2', id: ID_B });
    expect(await renamed.claimAddress(net, '10.77.0.5')).toMatchObject({ node: 'h2', nodeId: ID_B });
    expect(JSON.parse(kv.data.get(keys.address('blue', '10.77.0.5'))?.value ?? '{}')).toMatchObject({ node: 'h2', nodeId: ID_B });
  });

  it('convergence: the same name with another id releases and withdraws nothing; a stale own claim is claimed again, not released', () => {
    const self = { name: 'h', address: '198.18.0.3', id: ID_A };
    const theirs = { v: 1 as const, cluster: 'blue', node: 'h', nodeId: ID_B, claimedAt: new Date(0).toISOString() };
    const rec = {
      ...theirs,
      id: 'e'.repeat(64),
      underlay: '198.18.0.2',
      address: '10.77.0.5',
      mac: '02:42:0a:4d:00:05',
      updatedAt: theirs.claimedAt,
    };
    const plan = convergePlan(
      self,
      { addresses: new Set(), endpoints: [] },
      { claims: [{ ...theirs, address: '10.77.0.5' }], endpoints: [rec] },
    );
    expect(plan).toEqual({ lost: [], withdraw: [], release: [], claim: [], publish: [] });
    const legacy = { v: 1 as const, cluster: 'blue', node: 'h', address: '10.77.0.6', claimedAt: theirs.claimedAt };
    const up = convergePlan(self, { addresses: new Set(['10.77.0.6']), endpoints: [] }, { claims: [legacy], endpoints: [] });
    expect(up).toEqual({ lost: [], withdraw: [], release: [], claim: ['10.77.0.6'], publish: [] });
  });
});

describe('a presence of this name already in etcd', () => {
  const mine = { v: 1 as const, name: 'h', id: ID_A, address: '198.18.0.3', startedAt: new Date(0).toISOString() };
  it("is this host's own (taken over) with its id, or without ids at its address; another id is refused naming the setting", () => {
    expect(presenceOfAnother({ ...mine, address: '198.18.0.9' }, mine)).toBeUndefined();
    expect(presenceOfAnother({ ...mine, id: undefined }, { ...mine, id: undefined })).toBeUndefined();
    expect(presenceOfAnother({ ...mine, id: ID_B }, mine)).toMatch(
      /^MYNET_NODE_NAME: node "h" is already present in the cluster as node id bbbbbbbb… at 198.18.0.3/,
    );
    const legacy = { v: 1 as const, name: 'h', address: '198.18.0.2', startedAt: mine.startedAt };
    expect(presenceOfAnother(legacy, mine)).toMatch(/already present in the cluster at 198.18.0.2/);
  });
});
