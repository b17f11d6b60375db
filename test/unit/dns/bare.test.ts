/**
 * Issue 23: bare names (and aliases) of cluster networks, as mynet's DNS answers the lookups
 * dockerd's embedded DNS forwards (src/dns/bare.ts, records.ts). Pure.
 */
import { describe, expect, it } from 'vitest';
import { BareNames, rotate } from '../../../src/dns/bare.js';
import { type ContainerInfo, NameTable } from '../../../src/dns/records.js';

const local = (name: string, ip: string, o: { net?: string; cluster?: string; aliases?: string[] } = {}): ContainerInfo => ({
  id: `l-${name}-${ip}`,
  name,
  networks: [
    {
      networkId: 'n1',
      networkName: o.net ?? 'blue',
      ipv4: ip,
      aliases: o.aliases ?? [],
      ...(o.cluster !== undefined && { cluster: o.cluster }),
    },
  ],
});
// As the cluster agent reports another host's endpoint (multihost/agent.ts remoteNames).
const remote = (name: string, ip: string, cluster: string, aliases: string[] = []): ContainerInfo => ({
  id: `cluster:${name}-${ip}`,
  name,
  networks: [{ networkId: `cluster:${cluster}`, networkName: cluster, cluster, ipv4: ip, aliases }],
});

describe('bare names of cluster networks', () => {
  it('a container and each of its aliases answer by bare name, one label, case-insensitive, with a final dot or not', () => {
    const t = new NameTable('mynet', [remote('web', '10.77.0.2', 'blue', ['api', 'www'])]);
    for (const q of ['web', 'web.', 'API', 'www.']) expect(t.lookup(q), q).toEqual({ kind: 'answer', a: ['10.77.0.2'], aaaa: [], ptr: [] });
    // <name>.<cluster>.<zone> keeps working, for the aliases too.
    expect(t.lookup('api.blue.mynet')).toMatchObject({ kind: 'answer', a: ['10.77.0.2'] });
    expect(t.lookup('web.blue.mynet')).toMatchObject({ kind: 'answer', a: ['10.77.0.2'] });
  });

  it('a name held on several hosts answers every address, each answer starting one further on', () => {
    const t = new NameTable('mynet', [
      remote('a-api', '10.77.0.9', 'blue', ['api']),
      local('b-api', '10.77.0.3', { cluster: 'blue', aliases: ['api'] }),
      remote('c-api', '10.77.0.12', 'blue', ['api']),
    ]);
    const firsts = [0, 1, 2, 3].map((turn) => {
      const r = t.lookup('api', turn);
      if (r.kind !== 'answer') throw new Error(r.kind);
      expect([...r.a].sort()).toEqual(['10.77.0.12', '10.77.0.3', '10.77.0.9']);
      return r.a[0];
    });
    expect(new Set(firsts.slice(0, 3)).size).toBe(3);
    expect(firsts[3]).toBe(firsts[0]);
    expect(t.lookup('api.blue.mynet', 1)).toMatchObject({ kind: 'answer' });
  });

  it("refused, so that the host's next nameserver answers: unknown names, names held on two cluster networks, host-local networks' names", () => {
    const t = new NameTable('mynet', [
      remote('web', '10.77.0.2', 'blue'),
      remote('web', '10.88.0.2', 'red'),
      local('db', '10.99.0.5'), // a host-local network: dockerd alone decides who sees it
      remote('cache', '10.77.0.4', 'blue'),
    ]);
    expect(t.lookup('web')).toEqual({ kind: 'refused' });
    expect(t.lookup('db')).toEqual({ kind: 'refused' });
    expect(t.lookup('nothere')).toEqual({ kind: 'refused' });
    expect(t.lookup('localhost')).toEqual({ kind: 'refused' });
    // Each cluster's own name still tells them apart.
    expect(t.lookup('web.blue.mynet')).toMatchObject({ a: ['10.77.0.2'] });
    expect(t.lookup('web.red.mynet')).toMatchObject({ a: ['10.88.0.2'] });
    expect(t.lookup('cache')).toMatchObject({ kind: 'answer', a: ['10.77.0.4'] });
    // The zone apex is no bare name.
    expect(t.lookup('mynet')).toEqual({ kind: 'answer', a: [], aaaa: [], ptr: [] });
  });

  it("a local container of a cluster network whose Docker name differs (compose: <project>_blue) is under the cluster's name too", () => {
    const t = new NameTable('mynet', [
      local('proj-web-1', '10.77.0.5', { net: 'proj_blue', cluster: 'blue', aliases: ['web'] }),
      remote('web2', '10.77.0.6', 'blue', ['web']),
    ]);
    expect(t.lookup('web.blue.mynet')).toMatchObject({ kind: 'answer' });
    const r = t.lookup('web.blue.mynet');
    expect(r.kind === 'answer' ? [...r.a].sort() : r.kind).toEqual(['10.77.0.5', '10.77.0.6']);
    expect(t.lookup('web.proj_blue.mynet')).toMatchObject({ a: ['10.77.0.5'] });
    expect(t.lookup('proj-web-1')).toMatchObject({ a: ['10.77.0.5'] });
  });

  it('BareNames: names that are no DNS label are left out; dotted names are not bare', () => {
    const b = new BareNames();
    b.add('Web', 'blue', '10.77.0.2', 'fd00::2');
    b.add('bad name', 'blue', '10.77.0.3', undefined);
    expect(b.lookup('WEB.')).toEqual({ kind: 'answer', cluster: 'blue', a: ['10.77.0.2'], aaaa: ['fd00::2'] });
    expect(b.lookup('bad name')).toEqual({ kind: 'refused', why: 'not a bare name' });
    expect(b.lookup('web.blue')).toEqual({ kind: 'refused', why: 'not a bare name' });
  });

  it('rotate: every element, first one moved on by the turn', () => {
    expect(rotate([1, 2, 3], 0)).toEqual([1, 2, 3]);
    expect(rotate([1, 2, 3], 1)).toEqual([2, 3, 1]);
    expect(rotate([1, 2, 3], 5)).toEqual([3, 1, 2]);
    expect(rotate([1], 7)).toEqual([1]);
    expect(rotate([], 7)).toEqual([]);
  });
});
