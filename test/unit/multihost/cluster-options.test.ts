/**
 * Issue 23, items 2, 3, 5 and 6, through the orchestrator with the cluster agent (two "hosts"
 * on one in-memory etcd, kernel programming recorded): `--internal` and `-o mynet.multicast`
 * cluster networks, `--ip-range` per host, and the options a cluster network refuses by name.
 * The real thing: test/e2e/cluster-options.test.ts (two dockerds), test/host/cluster-flood.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../src/cluster/keys.js';
import { definitionConflicts } from '../../../src/cluster/cluster-store.js';
import type { NetworkDefinition } from '../../../src/cluster/records.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import type { NetworkRecord } from '../../../src/driver/state.js';
import { nftNetwork } from '../../../src/plan/nft-model.js';
import { renderOp } from '../../../src/plan/step.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import type { RecordingExecutor } from '../../helpers/recording-executor.js';
import { type ClusterHost, clusterHost } from '../../helpers/cluster-host.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';

const errorOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const GW = { RequestAddressType: 'com.docker.network.gateway' };
const NET = hexId(0xb1);
const planText = (r: RecordingExecutor): string => r.calls.map((c) => renderOp(c.op)).join('\n');
const until = (what: string, ok: () => boolean, ms = 2000): Promise<number> => waitUntil(what, ok, { ms, every: 5 });

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});
function host(kv: MemoryKv, name: string, address: string): ClusterHost {
  const h = clusterHost(kv, name, address);
  agents.push(h.agent);
  return h;
}

interface Make {
  readonly generic?: Record<string, string>;
  readonly internal?: boolean;
  readonly subPool?: string;
  readonly gateway?: string;
  readonly aux?: Record<string, string>;
}

/** dockerd's calls for `docker network create` of cluster network "blue" on one host. */
async function create(h: ClusterHost, m: Make = {}): Promise<string> {
  const pool = await h.plugin.requestPool({ Pool: '10.77.0.0/16', ...(m.subPool && { SubPool: m.subPool }) }, log);
  const gw = await h.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW, ...(m.gateway && { Address: m.gateway }) }, log);
  await h.plugin.createNetwork(
    {
      NetworkID: NET,
      Options: {
        'com.docker.network.generic': { 'mynet.cluster': 'blue', ...m.generic },
        ...(m.internal && { 'com.docker.network.internal': true }),
      },
      IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: gw.Address, ...(m.aux && { AuxAddresses: m.aux }) }],
    },
    log,
  );
  return pool.PoolID;
}

describe('options a cluster network refuses, by name, before etcd is asked (item 6)', () => {
  it.each([
    [
      'ICC off',
      { generic: { 'com.docker.network.bridge.enable_icc': 'false' } },
      /option com\.docker\.network\.bridge\.enable_icc: ICC off is not supported on cluster networks/,
    ],
    [
      'gateway mode routed',
      { generic: { 'com.docker.network.bridge.gateway_mode_ipv4': 'routed' } },
      /option com\.docker\.network\.bridge\.gateway_mode_ipv4: "routed" is not supported on cluster networks/,
    ],
    [
      'gateway mode nat-unprotected',
      { generic: { 'com.docker.network.bridge.gateway_mode_ipv4': 'nat-unprotected' } },
      /gateway_mode_ipv4: "nat-unprotected" is not supported on cluster networks/,
    ],
    ['mynet.dns false', { generic: { 'mynet.dns': 'false' } }, /option mynet\.dns: false is not supported on cluster networks/],
    [
      '--aux-address',
      { aux: { r: '10.77.0.9' } },
      /IPv4Data\[0\]\.AuxAddresses: --aux-address \(r\) is not supported on cluster networks: dockerd reserves those addresses on this host only/,
    ],
    ['a bad multicast value', { generic: { 'mynet.multicast': 'maybe' } }, /option mynet\.multicast: "maybe" is not a boolean/],
  ] as const)('%s', async (_what, m, why) => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    expect(errorOf(await create(a, m).catch((e: unknown) => e))).toMatch(why);
    expect([...kv.data.keys()].filter((k) => !k.startsWith(keys.nodes()))).toEqual([]);
    expect(a.exec.calls).toHaveLength(0);
  });

  it('mynet.multicast on a local network is refused: a local bridge carries broadcast already', async () => {
    const a = host(new MemoryKv(), 'host-a', '198.18.0.1');
    const pool = await a.plugin.requestPool({ Pool: '10.77.0.0/16' }, log);
    const gw = await a.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
    const err = await a.plugin
      .createNetwork(
        {
          NetworkID: NET,
          Options: { 'com.docker.network.generic': { 'mynet.multicast': 'true' } },
          IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: gw.Address }],
        },
        log,
      )
      .catch((e: unknown) => e);
    expect(errorOf(err)).toMatch(/option mynet\.multicast: is only for cluster networks/);
  });
});

describe('--internal cluster networks (item 2)', () => {
  it('recorded in the definition; both hosts build an internal network: no forwarding, no gateway for the containers, the internal drop', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2');
    await create(a, { internal: true });
    expect(JSON.parse(kv.data.get(keys.network('blue'))?.value ?? '{}')).toMatchObject({ internal: true });
    // Before issue 23 this was refused ("cluster networks cannot be internal yet").
    await create(b, { internal: true });
    for (const h of [a, b]) {
      expect(h.plugin.state.networks.get(NET)?.cluster?.internal).toBe(true);
      const text = planText(h.exec);
      expect(text).toMatch(/type vxlan id \d+ local/);
      expect(text).not.toMatch(/ip_forward/);
      // The local --internal policy, as is (plan/nft-model.ts): containers' traffic stays on the bridge, VXLAN port included.
      expect(nftNetwork(h.plugin.state.networks.get(NET) as NetworkRecord)).toMatchObject({
        internal: true,
        v4: { masquerade: false, directAccess: false },
      });
    }
    const ip = (await a.plugin.requestAddress({ PoolID: [...a.plugin.state.pools.keys()][0] as string }, log)).Address;
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(0xa1), Interface: { Address: ip } }, log);
    const joined = await a.plugin.join({ NetworkID: NET, EndpointID: hexId(0xa1), SandboxKey: '/var/run/docker/netns/x' }, log);
    expect(joined).toMatchObject({ DisableGatewayService: true });
    expect(joined).not.toHaveProperty('Gateway');
  });

  it('a host that asks for the other kind is refused with the recorded definition, both ways', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    await create(a, { internal: true });
    const b = host(kv, 'host-b', '198.18.0.2');
    expect(errorOf(await create(b).catch((e: unknown) => e))).toMatch(
      /already defined by node host-a as subnet 10\.77\.0\.0\/16, gateway 10\.77\.0\.1, vni \d+, mtu 1450, internal, multicast off; this host asked for .*not internal/,
    );
    const kv2 = new MemoryKv();
    await create(host(kv2, 'host-a', '198.18.0.1'));
    expect(errorOf(await create(host(kv2, 'host-b', '198.18.0.2'), { internal: true }).catch((e: unknown) => e))).toMatch(
      /as .*not internal, multicast off; this host asked for .*, internal, multicast off/,
    );
  });
});

describe('records written before issue 23', () => {
  const old: NetworkDefinition = {
    v: 1,
    cluster: 'blue',
    subnet: '10.77.0.0/16',
    gateway: '10.77.0.1',
    gatewayMac: '02:00:00:00:00:01',
    vni: 5000,
    mtu: 1450,
    createdBy: 'old',
    createdAt: '2026-01-01T00:00:00.000Z',
  };

  it('a definition without internal and multicast is a network with neither; a range is never compared', () => {
    const w = { subnet: old.subnet, gateway: old.gateway, mtu: 1450 };
    expect(definitionConflicts(old, w)).toBe(false);
    expect(definitionConflicts(old, { ...w, internal: false, multicast: false })).toBe(false);
    expect(definitionConflicts(old, { ...w, internal: true })).toBe(true);
    expect(definitionConflicts(old, { ...w, multicast: true })).toBe(true);
    expect(definitionConflicts({ ...old, multicast: true }, { ...w, multicast: true })).toBe(false);
    expect(definitionConflicts(old, { ...w, gateway: '10.77.0.2' })).toBe(true);
  });

  // `members` (finding 21) is new: readers check only the fields they know, so older hosts read it as before.
  it("a plain network's record is written as before (no internal or multicast field), so older hosts read it unchanged", async () => {
    const kv = new MemoryKv();
    await create(host(kv, 'host-a', '198.18.0.1'));
    const bytes = kv.data.get(keys.network('blue'))?.value ?? '';
    expect(Object.keys(JSON.parse(bytes) as object).sort()).toEqual([
      'cluster',
      'createdAt',
      'createdBy',
      'gateway',
      'gatewayMac',
      'members',
      'mtu',
      'subnet',
      'v',
      'vni',
    ]);
  });
});

describe('mynet.multicast (item 5)', () => {
  const flood = (dst: string): RegExp =>
    new RegExp(`bridge fdb append 00:00:00:00:00:00 dev mnx[0-9a-f]{12} dst ${dst.replace(/\./g, '\\.')} self permanent`);

  it('one all-zero forwarding entry per member host, added and removed with its endpoints', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2');
    const poolA = await create(a, { generic: { 'mynet.multicast': 'true' } });
    await create(b, { generic: { 'mynet.multicast': 'true' } });
    expect(b.plugin.state.networks.get(NET)?.cluster?.multicast).toBe(true);
    const ep = async (id: number): Promise<void> => {
      const ip = (await a.plugin.requestAddress({ PoolID: poolA }, log)).Address;
      await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(id), Interface: { Address: ip } }, log);
    };
    await ep(0xa1);
    await until('host B floods to host A', () => flood('198.18.0.1').test(planText(b.plane)));
    // A second endpoint of the same host adds no second flood destination.
    await ep(0xa2);
    await until('host B programs the second endpoint', () => planText(b.plane).includes('02:42:0a:4d:00:03'));
    expect(planText(b.plane).match(new RegExp(flood('198.18.0.1').source, 'g'))).toHaveLength(1);
    expect(planText(a.plane)).not.toMatch(/00:00:00:00:00:00/); // no member but itself
    await a.plugin.deleteEndpoint({ NetworkID: NET, EndpointID: hexId(0xa1) }, log);
    await new Promise((r) => setTimeout(r, 50));
    expect(planText(b.plane)).not.toMatch(/fdb del 00:00:00:00:00:00/); // A is still a member
    await a.plugin.deleteEndpoint({ NetworkID: NET, EndpointID: hexId(0xa2) }, log);
    await until('host B stops flooding to host A', () =>
      /bridge fdb del 00:00:00:00:00:00 dev mnx[0-9a-f]{12} dst 198\.18\.0\.1 self/.test(planText(b.plane)),
    );
  });

  it('off by default: no all-zero entry at all; a host that disagrees is refused', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2');
    const poolA = await create(a);
    await create(b);
    const ip = (await a.plugin.requestAddress({ PoolID: poolA }, log)).Address;
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(0xa1), Interface: { Address: ip } }, log);
    await until("host B programs host A's endpoint", () => planText(b.plane).includes('bridge fdb replace 02:42:0a:4d:00:02'));
    expect(planText(b.plane)).not.toMatch(/00:00:00:00:00:00/);
    const c = host(kv, 'host-c', '198.18.0.3');
    expect(errorOf(await create(c, { generic: { 'mynet.multicast': 'true' } }).catch((e: unknown) => e))).toMatch(
      /multicast off; this host asked for .*multicast on/,
    );
  });
});

describe('--ip-range on cluster networks (item 3)', () => {
  it('each host gives addresses from its own range; claims in etcd keep them apart; --ip anywhere in the subnet', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2');
    const poolA = await create(a, { subPool: '10.77.1.0/24', gateway: '10.77.0.1' });
    const poolB = await create(b, { subPool: '10.77.2.0/24', gateway: '10.77.0.1' });
    const ipA = (await a.plugin.requestAddress({ PoolID: poolA }, log)).Address;
    const ipB = (await b.plugin.requestAddress({ PoolID: poolB }, log)).Address;
    expect(ipA).toMatch(/^10\.77\.1\.\d+\/16$/);
    expect(ipB).toMatch(/^10\.77\.2\.\d+\/16$/);
    // Before issue 23 the pool with a SubPool was not bound to the cluster: nothing was claimed.
    expect(kv.data.has(keys.address('blue', ipA.split('/')[0] as string))).toBe(true);
    expect(kv.data.has(keys.address('blue', ipB.split('/')[0] as string))).toBe(true);
    // --ip outside this host's range: given and claimed; the other host's address: refused naming it.
    expect((await b.plugin.requestAddress({ PoolID: poolB, Address: '10.77.1.200' }, log)).Address).toBe('10.77.1.200/16');
    expect(JSON.parse(kv.data.get(keys.address('blue', '10.77.1.200'))?.value ?? '{}')).toMatchObject({ node: 'host-b' });
    expect(errorOf(await b.plugin.requestAddress({ PoolID: poolB, Address: ipA.split('/')[0] }, log).catch((e: unknown) => e))).toMatch(
      /is held by node host-a/,
    );
  });

  it('the same range on both hosts: no address twice', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2');
    const poolA = await create(a, { subPool: '10.77.3.128/25' });
    const poolB = await create(b, { subPool: '10.77.3.128/25' });
    const got = new Set<string>();
    for (let i = 0; i < 3; i++) {
      for (const [h, p] of [
        [a, poolA],
        [b, poolB],
      ] as const)
        got.add((await h.plugin.requestAddress({ PoolID: p }, log)).Address);
    }
    expect(got.size).toBe(6);
    for (const ip of got) expect(ip).toMatch(/^10\.77\.3\.(12[89]|1[3-9]\d|2[0-5]\d)\/16$/);
  });

  it("a different gateway (each host's range gave its own) is refused naming --gateway", async () => {
    const kv = new MemoryKv();
    await create(host(kv, 'host-a', '198.18.0.1'), { subPool: '10.77.1.0/24' });
    const err = await create(host(kv, 'host-b', '198.18.0.2'), { subPool: '10.77.2.0/24' }).catch((e: unknown) => e);
    expect(errorOf(err)).toMatch(/gateway 10\.77\.1\.0/);
  });
});
