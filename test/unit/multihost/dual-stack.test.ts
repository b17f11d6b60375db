/**
 * Issue 23 item 4: dual-stack cluster networks. Two hosts on one in-memory etcd: the IPv6 subnet
 * and gateway are recorded, IPv6 addresses are claimed in etcd as IPv4 ones, a record's IPv6
 * address meets every check its IPv4 one does before the other host programs a neighbour entry
 * for it, names answer AAAA across hosts, and the convergence keeps the IPv6 claims.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../src/cluster/keys.js';
import { type EndpointRecord, readRecord } from '../../../src/cluster/records.js';
import { parseCidr } from '../../../src/ip/cidr.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { judgeRecord, ownEndpoints, type TrustContext } from '../../../src/multihost/trust.js';
import { renderOp } from '../../../src/plan/step.js';
import { type ClusterHost, clusterHost } from '../../helpers/cluster-host.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import type { RecordingExecutor } from '../../helpers/recording-executor.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const NET = hexId(0xc6);
const V4 = '10.223.0.0/16';
const V6 = 'fd6c:6:1::/64';
const errorOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const planText = (r: RecordingExecutor): string => r.calls.map((c) => renderOp(c.op)).join('\n');
const until = (what: string, ok: () => boolean): Promise<number> => waitUntil(what, ok, { ms: 2000, every: 5 });

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});
function host(kv: MemoryKv, name: string, address: string): ClusterHost {
  const h = clusterHost(kv, name, address);
  agents.push(h.agent);
  return h;
}

/** `docker network create --ipv6 --subnet V4 --subnet V6 -o mynet.cluster=dual` (v6: false leaves the IPv6 side out). */
async function create(h: ClusterHost, v6 = true): Promise<{ pool4: string; pool6: string | undefined }> {
  const p4 = await h.plugin.requestPool({ Pool: V4 }, log);
  const g4 = await h.plugin.requestAddress({ PoolID: p4.PoolID, Options: GW }, log);
  const p6 = v6 ? await h.plugin.requestPool({ Pool: V6, V6: true }, log) : undefined;
  const g6 = p6 && (await h.plugin.requestAddress({ PoolID: p6.PoolID, Options: GW }, log));
  await h.plugin.createNetwork(
    {
      NetworkID: NET,
      Options: {
        'com.docker.network.generic': { 'mynet.cluster': 'dual' },
        ...(v6 && { 'com.docker.network.enable_ipv6': true }),
      },
      IPv4Data: [{ Pool: V4, Gateway: g4.Address }],
      ...(p6 && g6 && { IPv6Data: [{ Pool: V6, Gateway: g6.Address }] }),
    },
    log,
  );
  return { pool4: p4.PoolID, pool6: p6?.PoolID };
}

describe('dual-stack cluster networks (issue 23 item 4)', () => {
  it('IPv6 addresses are claimed in etcd, published, believed and programmed on the other host, named (AAAA), kept by the convergence and released', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.195.1');
    const b = host(kv, 'host-b', '198.18.195.2');
    const pa = await create(a);
    const pb = await create(b);
    const def = kv.data.get(keys.network('dual'))?.value ?? '';
    expect(JSON.parse(def)).toMatchObject({ subnet: V4, gateway: '10.223.0.1', subnet6: V6, gateway6: 'fd6c:6:1::1' });
    expect(b.plugin.state.networks.get(NET)?.cluster).toMatchObject({ subnet6: V6, gateway6: 'fd6c:6:1::1' });
    // The anycast gateway in IPv6 too: the same address on both hosts' bridges, whose MAC is the gateway MAC.
    expect(planText(b.exec)).toMatch(/ip addr add fd6c:6:1::1\/64 dev mn-[0-9a-f]{12} nodad/);

    const ip4 = (await a.plugin.requestAddress({ PoolID: pa.pool4 }, log)).Address;
    const ip6 = (await a.plugin.requestAddress({ PoolID: pa.pool6 as string }, log)).Address;
    expect(ip6).toBe('fd6c:6:1::2/64');
    expect(kv.data.get(keys.address('dual', 'fd6c:6:1::2'))?.value).toContain('"node":"host-a"');
    // B's automatic IPv6 address skips A's claim; B's --ip of it is refused naming A.
    expect((await b.plugin.requestAddress({ PoolID: pb.pool6 as string }, log)).Address).toBe('fd6c:6:1::3/64');
    expect(
      errorOf(await b.plugin.requestAddress({ PoolID: pb.pool6 as string, Address: 'fd6c:6:1::2' }, log).catch((e: unknown) => e)),
    ).toMatch(/fd6c:6:1::2 of cluster network "dual" is held by node host-a/);

    const ep = hexId(0xa6);
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: ep, Interface: { Address: ip4, AddressIPv6: ip6 } }, log);
    expect(JSON.parse(kv.data.get(keys.endpoint('dual', ep))?.value ?? '{}')).toMatchObject({
      address: '10.223.0.2',
      address6: 'fd6c:6:1::2',
    });
    await until('host B answers NDP for it', () => /ip neigh replace fd6c:6:1::2 lladdr \S+ dev mnx/.test(planText(b.plane)));
    expect(planText(b.plane)).toMatch(/ip neigh replace 10\.223\.0\.2 lladdr/);
    // The convergence keeps the IPv6 claim (the journal holds it) and republishes nothing.
    await a.agent.converge();
    expect(kv.data.has(keys.address('dual', 'fd6c:6:1::2'))).toBe(true);

    await a.plugin.deleteEndpoint({ NetworkID: NET, EndpointID: ep }, log);
    await a.plugin.releaseAddress({ PoolID: pa.pool6 as string, Address: 'fd6c:6:1::2' }, log);
    await a.agent.idle();
    expect(kv.data.has(keys.address('dual', 'fd6c:6:1::2'))).toBe(false);
    await until('host B stops answering for it', () => /ip neigh del fd6c:6:1::2 dev mnx/.test(planText(b.plane)));
  });

  it('a named container answers AAAA on the other host', async () => {
    const kv = new MemoryKv();
    const a = clusterHost(kv, 'host-a', '198.18.195.1', { nameOf: () => ({ name: 'web', aliases: ['api'] }) });
    agents.push(a.agent);
    const b = host(kv, 'host-b', '198.18.195.2');
    const pa = await create(a);
    await create(b);
    const ip4 = (await a.plugin.requestAddress({ PoolID: pa.pool4 }, log)).Address;
    const ip6 = (await a.plugin.requestAddress({ PoolID: pa.pool6 as string }, log)).Address;
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(0xa7), Interface: { Address: ip4, AddressIPv6: ip6 } }, log);
    await until('host B knows web', () => b.agent.remoteNames().length === 1);
    expect(b.agent.remoteNames()[0]?.networks[0]).toMatchObject({ ipv4: '10.223.0.2', ipv6: 'fd6c:6:1::2', aliases: ['api'] });
  });

  it('a host asking for the other kind (IPv4 only against dual stack) is refused with the recorded definition', async () => {
    const kv = new MemoryKv();
    await create(host(kv, 'host-a', '198.18.195.1'));
    const b = host(kv, 'host-b', '198.18.195.2');
    expect(errorOf(await create(b, false).catch((e: unknown) => e))).toMatch(
      /IPv6 subnet fd6c:6:1::\/64, gateway fd6c:6:1::1.*Create it as recorded: --subnet 10\.223\.0\.0\/16 --gateway 10\.223\.0\.1 --ipv6 --subnet fd6c:6:1::\/64/,
    );
    expect(b.plugin.state.networks.size).toBe(0);
  });

  it.each([
    ['an IPv6 subnet without --ipv6', { IPv6Data: [{ Pool: V6 }] }, /IPv6Data: an IPv6 subnet needs --ipv6/],
    [
      "an IPv6 subnet not of mynet's IPAM",
      {
        Options: { 'com.docker.network.generic': { 'mynet.cluster': 'dual' }, 'com.docker.network.enable_ipv6': true },
        IPv6Data: [{ Pool: V6 }],
      },
      /IPv6Data\[0\]\.Pool: a cluster network's addresses are claimed across hosts by mynet's IPAM/,
    ],
    [
      '--ipv6 with no IPv6 subnet',
      { Options: { 'com.docker.network.generic': { 'mynet.cluster': 'dual' }, 'com.docker.network.enable_ipv6': true } },
      /IPv6Data: a dual-stack cluster network .* needs exactly one IPv6 subnet \(--subnet\), got 0/,
    ],
  ])('refused before etcd is asked: %s', async (_what, over, why) => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.195.1');
    const p4 = await a.plugin.requestPool({ Pool: V4 }, log);
    const g4 = await a.plugin.requestAddress({ PoolID: p4.PoolID, Options: GW }, log);
    const req = {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': { 'mynet.cluster': 'dual' } },
      IPv4Data: [{ Pool: V4, Gateway: g4.Address }],
      ...over,
    };
    expect(errorOf(await a.plugin.createNetwork(req, log).catch((e: unknown) => e))).toMatch(why);
    expect([...kv.data.keys()].filter((k) => !k.startsWith(keys.nodes()))).toEqual([]);
  });
});

/** Host B's endpoint record on the dual-stack network, as B writes it. */
const EP: EndpointRecord = {
  v: 1,
  cluster: 'dual',
  id: 'bb'.repeat(32),
  node: 'host-b',
  underlay: '198.18.195.2',
  address: '10.223.0.3',
  address6: 'fd6c:6:1::3',
  mac: '02:42:0a:df:00:03',
  updatedAt: '2026-12-07T00:00:00.000Z',
};

describe('judgeRecord: a record IPv6 address meets the checks of its IPv4 one', () => {
  const s4 = parseCidr(V4);
  const s6 = parseCidr(V6);
  const claims = new Map([
    ['10.223.0.3', 'host-b'],
    ['fd6c:6:1::3', 'host-b'],
    ['fd6c:6:1::9', 'host-c'],
  ]);
  const ctx = (o: Partial<TrustContext> = {}): TrustContext => ({
    self: 'host-a',
    selfUnderlay: '198.18.195.1',
    subnet: s4.ok ? s4.cidr : undefined,
    gateway: '10.223.0.1',
    subnet6: s6.ok ? s6.cidr : undefined,
    gateway6: 'fd6c:6:1::1',
    gatewayMac: '02:aa:bb:cc:dd:ee',
    own: ownEndpoints([{ id: 'aa'.repeat(32), address: '10.223.0.2', address6: 'fd6c:6:1::2', mac: '02:42:0a:df:00:02' }]),
    claimHolder: (x) => claims.get(x),
    macHolder: () => undefined,
    ...o,
  });
  const rec = (o: Partial<EndpointRecord> = {}): EndpointRecord => ({ ...EP, ...o });

  it.each([
    ['claimed by its node', {}, {}, undefined],
    ['on an IPv4-only network', {}, { subnet6: undefined, gateway6: undefined }, 'outside-network'],
    ['outside the IPv6 subnet', { address6: 'fd6c:6:2::3' }, {}, 'outside-network'],
    ['the IPv6 gateway', { address6: 'fd6c:6:1::1' }, {}, 'gateway'],
    ["this host's endpoint's", { address6: 'fd6c:6:1::2' }, {}, 'own-address'],
    ['unclaimed', { address6: 'fd6c:6:1::4' }, {}, 'unclaimed'],
    ['claimed by another node', { address6: 'fd6c:6:1::9' }, {}, 'claimed-by-other'],
  ])('its IPv6 address %s', (_what, r: Partial<EndpointRecord>, c: Partial<TrustContext>, reason) => {
    const j = judgeRecord(rec(r), ctx(c));
    expect(j.ok ? undefined : j.reason).toBe(reason);
  });
});

describe('dual-stack records read from etcd', () => {
  const net = {
    v: 1,
    cluster: 'dual',
    subnet: V4,
    gateway: '10.223.0.1',
    gatewayMac: '02:aa:bb:cc:dd:ee',
    subnet6: V6,
    gateway6: 'fd6c:6:1::1',
    vni: 5000,
    mtu: 1450,
    createdBy: 'host-a',
    createdAt: '2026-12-07T00:00:00.000Z',
  };
  const ep = EP;
  const problem = (kind: 'network' | 'endpoint' | 'address', key: string, r: object): string | undefined => {
    const c = readRecord(kind, key, JSON.stringify(r));
    return c.ok ? undefined : c.problem;
  };
  it('a dual-stack definition, an endpoint with address6 and an IPv6 claim are read', () => {
    expect(problem('network', keys.network('dual'), net)).toBeUndefined();
    expect(problem('endpoint', keys.endpoint('dual', ep.id), ep)).toBeUndefined();
    const claim = { v: 1, cluster: 'dual', address: 'fd6c:6:1::3', node: 'host-b', claimedAt: ep.updatedAt };
    expect(problem('address', keys.address('dual', 'fd6c:6:1::3'), claim)).toBeUndefined();
  });
  it.each([
    ['network', { ...net, gateway6: undefined }, /subnet6 and \/gateway6 come together/],
    ['network', { ...net, gateway6: 'fd6c:6:2::1' }, /\/gateway6 fd6c:6:2::1 is not a host address of fd6c:6:1::\/64/],
    ['network', { ...net, subnet6: 'fd6c:6:1::1/64' }, /\/subnet6 must be a canonical IPv6 CIDR/],
    ['endpoint', { ...ep, address6: 'ff02::1' }, /\/address6 is a multicast address, not a host's/],
    ['endpoint', { ...ep, address6: '10.223.0.4' }, /\/address6 must be an IPv6 address/],
  ] as const)('refused: %s %j', (kind, r, why) => {
    const key = kind === 'network' ? keys.network('dual') : keys.endpoint('dual', ep.id);
    expect(problem(kind, key, r)).toMatch(why);
  });
});
