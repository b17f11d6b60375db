/**
 * Issue 23: a local endpoint's container name and `--network-alias` names travel in its etcd
 * record, and every other host's DNS answers them by bare name; withdrawn, or its host gone,
 * they are out of the answers. Two hosts on one in-memory etcd (test/helpers/cluster-host.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../src/cluster/keys.js';
import { type ContainerInfo, NameTable, reverseName } from '../../../src/dns/records.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { type DnsNames, namesKey, recordNames } from '../../../src/multihost/dns-names.js';
import { readRecord } from '../../../src/cluster/records.js';
import { convergePlan } from '../../../src/multihost/converge.js';
import { type ClusterHost, clusterHost } from '../../helpers/cluster-host.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const NET = hexId(0xb1);
const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

const host = (kv: MemoryKv, name: string, address: string, names?: Map<string, DnsNames>): ClusterHost => {
  const h = clusterHost(kv, name, address, { ...(names && { nameOf: (e) => names.get(e.id) }) });
  agents.push(h.agent);
  return h;
};

async function clusterNetwork(h: ClusterHost): Promise<string> {
  const pool = await h.plugin.requestPool({ Pool: '10.77.0.0/16' }, log);
  const gw = await h.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
  await h.plugin.createNetwork(
    {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue' } },
      IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: gw.Address }],
    },
    log,
  );
  return pool.PoolID;
}

// This host's own container of the network, as its Docker reports it (compose's network name).
const cliOn = (networkName: string): ContainerInfo => ({
  id: 'c-cli',
  name: 'mnt-nq-cli',
  networks: [{ networkId: NET, networkName, cluster: 'blue', ipv4: '10.77.0.200', aliases: [] }],
});
const ptrOn = (h: ClusterHost, ip: string): readonly string[] => {
  const r = new NameTable('mynet', [cliOn('proj_blue')], h.agent.remoteNames()).lookup(reverseName(ip) as string);
  return r.kind === 'answer' ? r.ptr : [];
};

const bareOn = (h: ClusterHost, q: string): string[] => {
  const r = new NameTable('mynet', h.agent.remoteNames()).lookup(q);
  return r.kind === 'answer' ? [...r.a].sort() : [];
};

describe('names of cluster endpoints across hosts', () => {
  it('recordNames: aliases lowercased, each once, sorted, not the name again, only DNS labels, at most 16', () => {
    expect(recordNames(undefined)).toEqual({});
    expect(recordNames({ name: 'Web', aliases: [] })).toEqual({ name: 'Web' });
    const many = Array.from({ length: 20 }, (_, i) => `a${String(i).padStart(2, '0')}`);
    const r = recordNames({ name: 'Web', aliases: ['web', 'API', 'api', 'has space', 'x.y', ...many] });
    expect(r.aliases?.[0]).toBe('a00');
    expect(r.aliases).toHaveLength(16);
    expect(r.aliases).not.toContain('web');
    expect(recordNames({ name: 'w', aliases: ['b', 'a'] })).toEqual({ name: 'w', aliases: ['a', 'b'] });
    expect(namesKey(recordNames({ name: 'w', aliases: ['b', 'a'] }))).toBe(namesKey({ name: 'w', aliases: ['a', 'b'] }));
    expect(namesKey({ name: 'w' })).not.toBe(namesKey({ name: 'w', aliases: ['a'] }));
  });

  it('recordNames: a name the other hosts would refuse does not travel, so the record is still accepted there', () => {
    const long = 'w'.repeat(300);
    expect(recordNames({ name: long, aliases: ['api'] })).toEqual({ aliases: ['api'] });
    expect(recordNames({ name: '-web', aliases: [] })).toEqual({});
    const rec = {
      v: 1 as const,
      cluster: 'blue',
      id: hexId(0xe1),
      node: 'a',
      underlay: '198.18.110.1',
      address: '10.77.0.2',
      mac: '02:42:0a:4d:00:02',
      updatedAt: '2026-12-07T00:00:00.000Z',
    };
    const key = `/mynet/v1/endpoints/blue/${hexId(0xe1)}`;
    expect(readRecord('endpoint', key, JSON.stringify({ ...rec, name: long })).ok).toBe(false);
    expect(readRecord('endpoint', key, JSON.stringify({ ...rec, ...recordNames({ name: long, aliases: ['api'] }) }))).toMatchObject({
      ok: true,
    });
  });

  it('convergence republishes an endpoint whose aliases changed', () => {
    const rec = {
      v: 1 as const,
      cluster: 'blue',
      id: 'e1',
      node: 'a',
      underlay: '198.18.110.1',
      address: '10.77.0.2',
      mac: '02:42:0a:4d:00:02',
      name: 'web',
      aliases: ['api'],
      updatedAt: 'now',
    };
    const self = { name: 'a', address: '198.18.110.1' };
    const same = { id: 'e1', address: '10.77.0.2', mac: rec.mac, name: 'web', aliases: ['api'] };
    expect(convergePlan(self, { addresses: new Set(), endpoints: [same] }, { claims: [], endpoints: [rec] }).publish).toEqual([]);
    expect(
      convergePlan(self, { addresses: new Set(), endpoints: [{ ...same, aliases: ['api', 'www'] }] }, { claims: [], endpoints: [rec] })
        .publish,
    ).toHaveLength(1);
  });

  it("host B answers host A's container by bare name, alias and PTR; renamed aliases follow; withdrawn, it is gone; A's lease gone, A's names are left out", async () => {
    const kv = new MemoryKv();
    const names = new Map<string, DnsNames>();
    const a = host(kv, 'host-a', '198.18.110.1', names);
    const b = host(kv, 'host-b', '198.18.110.2');
    const poolA = await clusterNetwork(a);
    await clusterNetwork(b);
    const ip = (await a.plugin.requestAddress({ PoolID: poolA }, log)).Address;
    const ep = hexId(0xa1);
    names.set(ep, { name: 'mnt-nq-web', aliases: ['api'] });
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: ep, Interface: { Address: ip } }, log);
    expect(JSON.parse(kv.data.get(keys.endpoint('blue', ep))?.value ?? '{}')).toMatchObject({ name: 'mnt-nq-web', aliases: ['api'] });
    await waitUntil('host B answers api', () => bareOn(b, 'api').length === 1, { ms: 2000 });
    expect(bareOn(b, 'mnt-nq-web')).toEqual(['10.77.0.2']);
    expect(bareOn(b, 'api.blue.mynet')).toEqual(['10.77.0.2']);
    // PTR: named as B's own container of the network is, under B's name of it.
    expect(ptrOn(b, '10.77.0.2')).toEqual(['mnt-nq-web.proj_blue.mynet']);

    // Docker reports another alias (a `network connect --alias` elsewhere, a compose rename).
    names.set(ep, { name: 'mnt-nq-web', aliases: ['api', 'www'] });
    a.agent.namesChanged();
    await waitUntil('host B answers www', () => bareOn(b, 'www').length === 1, { ms: 2000 });

    await a.plugin.deleteEndpoint({ NetworkID: NET, EndpointID: ep }, log);
    await waitUntil('host B forgets api', () => bareOn(b, 'api').length === 0, { ms: 2000 });
    expect(bareOn(b, 'mnt-nq-web')).toEqual([]);
    expect(ptrOn(b, '10.77.0.2')).toEqual([]);

    // A second endpoint, then host A stops (its presence is revoked): its names are left out.
    const ip2 = (await a.plugin.requestAddress({ PoolID: poolA }, log)).Address;
    const ep2 = hexId(0xa2);
    names.set(ep2, { name: 'mnt-nq-web2', aliases: [] });
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: ep2, Interface: { Address: ip2 } }, log);
    await waitUntil('host B answers web2', () => bareOn(b, 'mnt-nq-web2').length === 1, { ms: 2000 });
    await a.agent.stop();
    await waitUntil("host A's names left out on B", () => bareOn(b, 'mnt-nq-web2').length === 0, { ms: 2000 });
    // Its record stays in etcd (a lost lease frees nothing): only the answers leave it out.
    expect(kv.data.has(keys.endpoint('blue', ep2))).toBe(true);
  });
});
