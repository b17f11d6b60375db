/** convergePlan: this host's records in etcd taken to what its journal says (pure). */
import { describe, expect, it } from 'vitest';
import type { AddressClaim, EndpointRecord } from '../../../src/cluster/records.js';
import { convergePlan, isEmptyPlan } from '../../../src/multihost/converge.js';

const self = { name: 'host-a', address: '198.18.0.1' };
const claim = (address: string, node = 'host-a'): AddressClaim => ({
  v: 1,
  cluster: 'blue',
  address,
  node,
  claimedAt: '2026-01-01T00:00:00.000Z',
});
const rec = (id: string, address: string, node = 'host-a', name?: string): EndpointRecord => ({
  v: 1,
  cluster: 'blue',
  id,
  node,
  underlay: node === 'host-a' ? '198.18.0.1' : '198.18.0.2',
  address,
  mac: `02:42:0a:4d:00:0${address.slice(-1)}`,
  ...(name !== undefined && { name }),
  updatedAt: '2026-01-01T00:00:00.000Z',
});
const local = (id: string, address: string, name?: string) => ({
  id,
  address,
  mac: `02:42:0a:4d:00:0${address.slice(-1)}`,
  ...(name !== undefined && { name }),
});

describe('convergePlan', () => {
  it('nothing to do when etcd holds exactly the journal', () => {
    const p = convergePlan(
      self,
      { addresses: new Set(['10.77.0.2']), endpoints: [local('aaaaaaaaaaaa', '10.77.0.2', 'web')] },
      { claims: [claim('10.77.0.2')], endpoints: [rec('aaaaaaaaaaaa', '10.77.0.2', 'host-a', 'web')] },
    );
    expect(isEmptyPlan(p)).toBe(true);
  });

  it('a record without the labels the journal has (written by a mynet before issue 25) is published again; the same labels are left', () => {
    const l = { ...local('aaaaaaaaaaaa', '10.77.0.2', 'web'), labels: { app: 'web' } };
    const etcd = (labels?: Record<string, string>) => ({
      claims: [claim('10.77.0.2')],
      endpoints: [{ ...rec('aaaaaaaaaaaa', '10.77.0.2', 'host-a', 'web'), ...(labels && { labels }) }],
    });
    expect(convergePlan(self, { addresses: new Set(['10.77.0.2']), endpoints: [l] }, etcd()).publish).toEqual([l]);
    expect(convergePlan(self, { addresses: new Set(['10.77.0.2']), endpoints: [l] }, etcd({ app: 'db' })).publish).toEqual([l]);
    expect(isEmptyPlan(convergePlan(self, { addresses: new Set(['10.77.0.2']), endpoints: [l] }, etcd({ app: 'web' })))).toBe(true);
  });

  it('etcd lost its data: everything is claimed and published again', () => {
    const p = convergePlan(
      self,
      { addresses: new Set(['10.77.0.2', '10.77.0.3']), endpoints: [local('aaaaaaaaaaaa', '10.77.0.2')] },
      { claims: [], endpoints: [] },
    );
    expect(p).toEqual({
      lost: [],
      withdraw: [],
      release: [],
      claim: ['10.77.0.2', '10.77.0.3'],
      publish: [local('aaaaaaaaaaaa', '10.77.0.2')],
    });
  });

  it("released and deleted while etcd was away (or a claim whose answer timed out): released and withdrawn; other hosts' records are not touched", () => {
    const p = convergePlan(
      self,
      { addresses: new Set(), endpoints: [] },
      {
        claims: [claim('10.77.0.2'), claim('10.77.0.9', 'host-b')],
        endpoints: [rec('aaaaaaaaaaaa', '10.77.0.2'), rec('bbbbbbbbbbbb', '10.77.0.9', 'host-b')],
      },
    );
    expect(p).toEqual({ lost: [], withdraw: ['aaaaaaaaaaaa'], release: ['10.77.0.2'], claim: [], publish: [] });
  });

  it('a record that differs (a new name from Docker, another underlay) is published again', () => {
    const p = convergePlan(
      self,
      { addresses: new Set(['10.77.0.2']), endpoints: [local('aaaaaaaaaaaa', '10.77.0.2', 'web')] },
      { claims: [claim('10.77.0.2')], endpoints: [rec('aaaaaaaaaaaa', '10.77.0.2')] },
    );
    expect(p.publish).toEqual([local('aaaaaaaaaaaa', '10.77.0.2', 'web')]);
    const moved = convergePlan(
      { ...self, address: '198.18.0.7' },
      { addresses: new Set(['10.77.0.2']), endpoints: [local('aaaaaaaaaaaa', '10.77.0.2')] },
      { claims: [claim('10.77.0.2')], endpoints: [rec('aaaaaaaaaaaa', '10.77.0.2')] },
    );
    expect(moved.publish).toHaveLength(1);
  });

  it('forgotten while away, its address claimed by another (finding 4): lost, not claimed, not published, its own record withdrawn', () => {
    const p = convergePlan(
      self,
      {
        addresses: new Set(['10.77.0.2', '10.77.0.3']),
        endpoints: [local('aaaaaaaaaaaa', '10.77.0.2'), local('cccccccccccc', '10.77.0.3')],
      },
      { claims: [claim('10.77.0.2', 'host-b')], endpoints: [rec('aaaaaaaaaaaa', '10.77.0.2')] },
    );
    expect(p).toEqual({
      lost: [{ address: '10.77.0.2', holder: 'host-b' }],
      withdraw: ['aaaaaaaaaaaa'],
      release: [],
      claim: ['10.77.0.3'],
      publish: [local('cccccccccccc', '10.77.0.3')],
    });
  });

  it('a claim gone (forgotten, nobody took it) is claimed again: not lost', () => {
    const p = convergePlan(
      self,
      { addresses: new Set(['10.77.0.2']), endpoints: [local('aaaaaaaaaaaa', '10.77.0.2')] },
      { claims: [], endpoints: [] },
    );
    expect(p.lost).toEqual([]);
    expect(p.claim).toEqual(['10.77.0.2']);
  });
});
