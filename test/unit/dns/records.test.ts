import { describe, expect, it } from 'vitest';
import { NameTable, reverseName } from '../../../src/dns/records.js';
import { containerInfo } from '../../../src/dns/sync.js';

// The shape dockerd 20.10 returns from GET /containers/{id}/json (trimmed to what we read).
const inspect = {
  Id: '4f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c',
  Name: '/web',
  State: { Running: true },
  NetworkSettings: {
    Networks: {
      front: { NetworkID: 'aaaa', IPAddress: '10.1.0.2', GlobalIPv6Address: 'fd00::2', Aliases: ['4f2b1c0d9e8a', 'www', 'api'] },
      bridge: { NetworkID: 'bbbb', IPAddress: '172.17.0.2', GlobalIPv6Address: '', Aliases: null },
    },
  },
};

describe('names from Engine API payloads', () => {
  it('keeps only our networks and drops the short-id alias', () => {
    const c = containerInfo(inspect, (id) => id === 'aaaa');
    expect(c).toEqual({
      id: inspect.Id,
      name: 'web',
      networks: [{ networkId: 'aaaa', networkName: 'front', ipv4: '10.1.0.2', ipv6: 'fd00::2', aliases: ['www', 'api'] }],
    });
  });

  it('answers <container>.<network>, <alias>.<network> and <container> in the zone', () => {
    const t = new NameTable('mynet', [containerInfo(inspect, (id) => id === 'aaaa')]);
    expect(t.lookup('web.front.mynet')).toEqual({ kind: 'answer', a: ['10.1.0.2'], aaaa: ['fd00::2'], ptr: [] });
    expect(t.lookup('api.front.mynet')).toMatchObject({ kind: 'answer', a: ['10.1.0.2'] });
    expect(t.lookup('web.mynet')).toMatchObject({ kind: 'answer', a: ['10.1.0.2'] });
    expect(t.lookup('web.bridge.mynet')).toEqual({ kind: 'nxdomain' });
    expect(t.lookup(reverseName('10.1.0.2') as string)).toEqual({ kind: 'answer', a: [], aaaa: [], ptr: ['web.front.mynet'] });
  });

  it('a name shared by replicas returns all their addresses; names that are no DNS label are left out', () => {
    const t = new NameTable('mynet', [
      { id: '1', name: 'proj_web_1', networks: [{ networkId: 'n', networkName: 'proj_default', ipv4: '10.2.0.2', aliases: ['web'] }] },
      { id: '2', name: 'proj_web_2', networks: [{ networkId: 'n', networkName: 'proj_default', ipv4: '10.2.0.3', aliases: ['web'] }] },
      { id: '3', name: 'dotted.name', networks: [{ networkId: 'n', networkName: 'proj_default', ipv4: '10.2.0.4', aliases: [] }] },
    ]);
    expect(t.lookup('web.proj_default.mynet')).toMatchObject({ kind: 'answer', a: ['10.2.0.2', '10.2.0.3'] });
    expect(t.lookup('dotted.name.proj_default.mynet')).toEqual({ kind: 'nxdomain' });
  });

  it('uses the configured zone', () => {
    const t = new NameTable('containers.internal', [containerInfo(inspect, () => true)]);
    expect(t.lookup('web.front.containers.internal')).toMatchObject({ kind: 'answer' });
    expect(t.lookup('web.front.mynet')).toEqual({ kind: 'refused' });
  });
});
