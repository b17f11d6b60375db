/**
 * Issue 22, finding 13: a watch storm on one cluster network. Record changes that arrive while
 * a batch is in the kernel wait as one batch (an endpoint's last change only), and a record
 * written again with the same entries costs no host command. On the old code every event was a
 * kernel batch of its own: each of the 200 MACs below was programmed, and each of the 500
 * rewrites ran its replace commands again.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterStore, EndpointChange } from '../../../src/cluster/cluster-store.js';
import type { EndpointRecord } from '../../../src/cluster/records.js';
import { NetworkPlane } from '../../../src/multihost/plane.js';
import { ownEndpoints } from '../../../src/multihost/trust.js';
import { renderOp } from '../../../src/plan/step.js';
import { RecordingExecutor } from '../../helpers/recording-executor.js';
import { hexId, silentLog as log } from '../support.js';

function world(): { plane: NetworkPlane; exec: RecordingExecutor; push: (changes: EndpointChange[]) => void; text: () => string } {
  let push: (changes: EndpointChange[]) => void = () => undefined;
  const store = {
    followEndpoints: (_c: string, o: { onChanges: (ch: EndpointChange[], how: { resync: boolean }) => void }) => {
      push = (ch) => o.onChanges(ch, { resync: false });
      return { current: 'synced', syncs: 1, stop: () => Promise.resolve() };
    },
    // The claims' copy not complete: no claim is asked (trust.ts), every record below is believed.
    followPrefix: () => ({ current: 'resyncing', mirror: new Map(), stop: () => Promise.resolve() }),
  } as unknown as ClusterStore;
  const exec = new RecordingExecutor();
  const binding = {
    name: 'blue',
    subnet: '10.77.0.0/16',
    gateway: '10.77.0.1',
    gatewayMac: '02:aa:bb:cc:dd:ee',
    vni: 5000,
    mtu: 1450,
    local: '198.18.0.1',
  };
  const plane = new NetworkPlane(hexId(0xb7), binding, {
    store,
    exec,
    read: () => Promise.resolve('[]'),
    log,
    self: 'host-a',
    selfUnderlay: '198.18.0.1',
    own: () => ownEndpoints([]),
  });
  plane.start();
  return { plane, exec, push: (ch) => push(ch), text: () => exec.calls.map((c) => renderOp(c.op)).join('\n') };
}

const rec = (o: Partial<EndpointRecord>): EndpointRecord => ({
  v: 1,
  cluster: 'blue',
  id: hexId(0xd1),
  node: 'host-c',
  underlay: '203.0.113.7',
  address: '10.77.5.5',
  mac: '02:42:0a:4d:05:05',
  updatedAt: new Date().toISOString(),
  ...o,
});

describe('a watch storm on one cluster network (issue 22, finding 13)', () => {
  it('200 MACs of one endpoint arriving while a batch is applied: only the last reaches the kernel', async () => {
    const { plane, exec, push, text } = world();
    push([{ type: 'put', endpoint: rec({ id: hexId(0xd9), address: '10.77.5.9', mac: '02:42:0a:4d:05:09' }) }]); // the first list
    await plane.idle();
    exec.calls.length = 0;
    push([{ type: 'put', endpoint: rec({ id: hexId(0xda), address: '10.77.5.10', mac: '02:42:0a:4d:05:0a' }) }]); // a batch under way
    for (let i = 0; i < 200; i++)
      push([{ type: 'put', endpoint: rec({ mac: `02:42:0a:4e:00:${(i & 0xff).toString(16).padStart(2, '0')}` }) }]);
    push([{ type: 'put', endpoint: rec({ mac: '02:42:0a:4d:05:05' }) }]);
    await plane.idle();
    const t = text();
    expect(t).toContain('02:42:0a:4d:05:0a');
    expect(t).toContain('bridge fdb replace 02:42:0a:4d:05:05');
    expect(t).not.toMatch(/02:42:0a:4e:00:/);
    await plane.stop();
  });

  it('500 rewrites of a record with the same entries (a new updatedAt, a new name) run no host command', async () => {
    const { plane, exec, push } = world();
    push([{ type: 'put', endpoint: rec({}) }]);
    await plane.idle();
    push([{ type: 'put', endpoint: rec({ id: hexId(0xd2), address: '10.77.5.6', mac: '02:42:0a:4d:05:06' }) }]);
    await plane.idle();
    exec.calls.length = 0;
    for (let i = 0; i < 500; i++) {
      push([{ type: 'put', endpoint: rec({ name: `web${i}`, updatedAt: new Date(Date.now() + i).toISOString() }) }]);
      if (i % 50 === 0) await plane.idle(); // some batches apart, some coalesced
    }
    await plane.idle();
    expect(exec.calls).toEqual([]);
    expect(plane.records.get(hexId(0xd1))?.name).toBe('web499'); // the names follow (DNS)
    // A real change after the storm still programs.
    push([{ type: 'put', endpoint: rec({ underlay: '203.0.113.8' }) }]);
    await plane.idle();
    expect(exec.calls.map((c) => renderOp(c.op)).join('\n')).toContain('dst 203.0.113.8');
    await plane.stop();
  });
});
