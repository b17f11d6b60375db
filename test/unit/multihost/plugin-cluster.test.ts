/**
 * The orchestrator with the cluster agent, two "hosts" on one in-memory etcd (MemoryKv), kernel
 * programming recorded: the calls dockerd makes for a cluster network on each host, and what
 * etcd and each host's data plane end up with. The real kernel and etcd: test/host/cluster-*.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../src/cluster/keys.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { renderOp } from '../../../src/plan/step.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import type { RecordingExecutor } from '../../helpers/recording-executor.js';
import { type ClusterHost, clusterHost } from '../../helpers/cluster-host.js';
import { testPlugin } from '../../helpers/test-plugin.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';

const errorOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const bare = (a: string): string => a.split('/')[0] ?? a;

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const NET = hexId(0xb1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Host = ClusterHost;

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

function host(kv: MemoryKv, name: string, address: string, claimGraceMs = 50): Host {
  const h = clusterHost(kv, name, address, { claimGraceMs });
  agents.push(h.agent);
  return h;
}

async function createClusterNetwork(h: Host, opts: Record<string, string> = {}): Promise<string> {
  const pool = await h.plugin.requestPool({ Pool: '10.77.0.0/16' }, log);
  const gw = await h.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
  await h.plugin.createNetwork(
    {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue', ...opts } },
      IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: gw.Address }],
    },
    log,
  );
  return pool.PoolID;
}

const until = (what: string, ok: () => boolean, ms = 2000): Promise<number> => waitUntil(what, ok, { ms, every: 5 });

const planText = (r: RecordingExecutor): string => r.calls.map((c) => renderOp(c.op)).join('\n');

describe('cluster networks through the orchestrator', () => {
  it("both hosts build the recorded definition; addresses never collide; endpoints reach the other host's data plane", async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2');
    const poolA = await createClusterNetwork(a);
    const poolB = await createClusterNetwork(b);
    const text = planText(a.exec);
    // The anycast gateway MAC on the bridge, MTU 1450 on bridge and VXLAN, learning off, ARP proxy on.
    expect(text).toMatch(/ip link add name mn-[0-9a-f]{12} mtu 1450 address 02:[0-9a-f:]{14} group \d+ type bridge/);
    expect(text).toMatch(/type vxlan id \d+ local 198\.18\.0\.1 dstport 4789 nolearning proxy/);
    expect(text).toContain('vxlan-in-');
    expect(a.plugin.state.networks.get(NET)?.cluster).toEqual(
      b.plugin.state.networks.get(NET)?.cluster && { ...b.plugin.state.networks.get(NET)?.cluster, local: '198.18.0.1' },
    );

    const ipA = (await a.plugin.requestAddress({ PoolID: poolA }, log)).Address;
    const ipB = (await b.plugin.requestAddress({ PoolID: poolB }, log)).Address;
    expect(ipA).toBe('10.77.0.2/16');
    expect(ipB).toBe('10.77.0.3/16');
    // --ip held by the other host: refused naming it; the same on this host is the local conflict.
    expect(errorOf(await b.plugin.requestAddress({ PoolID: poolB, Address: '10.77.0.2' }, log).catch((e: unknown) => e))).toMatch(
      /10\.77\.0\.2 of cluster network "blue" is held by node host-a/,
    );
    const epA = hexId(0xa1);
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: epA, Interface: { Address: ipA } }, log);
    expect(kv.data.get(keys.endpoint('blue', epA))?.value).toContain('"node":"host-a"');
    await until("host B programs host A's endpoint", () => planText(b.plane).includes('bridge fdb replace 02:42:0a:4d:00:02 dev mnx'));
    expect(planText(b.plane)).toContain('dst 198.18.0.1 self permanent');
    expect(planText(b.plane)).toMatch(/ip neigh replace 10\.77\.0\.2 lladdr 02:42:0a:4d:00:02 dev mnx[0-9a-f]{12} nud permanent/);
    expect(planText(b.plane)).toMatch(/add element inet mynet vxpeers-[0-9a-f]{12} \{ 198\.18\.0\.1 \}/);
    // Host A does not program its own endpoint.
    expect(planText(a.plane)).not.toContain('02:42:0a:4d:00:02');

    await a.plugin.deleteEndpoint({ NetworkID: NET, EndpointID: epA }, log);
    await a.plugin.releaseAddress({ PoolID: poolA, Address: bare(ipA) }, log);
    // Withdrawal and release run after the answers, in that order.
    await a.agent.idle();
    expect(kv.data.has(keys.endpoint('blue', epA))).toBe(false);
    expect(kv.data.has(keys.address('blue', '10.77.0.2'))).toBe(false);
    await until('host B removes it', () => planText(b.plane).includes('bridge fdb del 02:42:0a:4d:00:02 dev mnx'));
  });

  it('a host whose definition differs is refused with the recorded one', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2');
    await createClusterNetwork(a);
    const pool = await b.plugin.requestPool({ Pool: '10.78.0.0/16' }, log);
    const gw = await b.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
    const err = await b.plugin
      .createNetwork(
        {
          NetworkID: NET,
          Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue' } },
          IPv4Data: [{ Pool: '10.78.0.0/16', Gateway: gw.Address }],
        },
        log,
      )
      .catch((e: unknown) => e);
    expect(errorOf(err)).toMatch(/already defined by node host-a as subnet 10\.77\.0\.0\/16, gateway 10\.77\.0\.1/);
    expect(b.plugin.state.networks.size).toBe(0);
    expect(b.exec.calls).toHaveLength(0);
  });

  it("a cluster network needs mynet's IPAM and one IPv4 subnet", async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const err = await a.plugin
      .createNetwork(
        {
          NetworkID: NET,
          Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue' } },
          IPv4Data: [{ Pool: '10.79.0.0/16', Gateway: '10.79.0.1/16' }],
        },
        log,
      )
      .catch((e: unknown) => e);
    expect(errorOf(err)).toMatch(/IPv4Data\[0\]\.Pool: .*--ipam-driver mynet/);
    expect([...kv.data.keys()].filter((k) => !k.startsWith(keys.nodes()))).toEqual([]);
  });

  it('etcd down: a new address fails with CLUSTER_UNAVAILABLE; a release is applied when etcd is back', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    const ip = (await a.plugin.requestAddress({ PoolID: pool }, log)).Address;
    await a.agent.idle();
    kv.down = true;
    kv.breakWatches();
    const err = await a.plugin.requestAddress({ PoolID: pool }, log).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('CLUSTER_UNAVAILABLE');
    // The release is answered (dockerd only logs release errors) and kept by the journal.
    await a.plugin.releaseAddress({ PoolID: pool, Address: bare(ip) }, log);
    await a.agent.idle();
    expect(kv.data.has(keys.address('blue', '10.77.0.2'))).toBe(true);
    kv.down = false;
    await until('the release reaches etcd', () => !kv.data.has(keys.address('blue', '10.77.0.2')), 3000);
  });

  it('etcd lost its data: the host republishes its definition, claims and endpoints from its journal', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    const ip = (await a.plugin.requestAddress({ PoolID: pool }, log)).Address;
    const ep = hexId(0xa2);
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: ep, Interface: { Address: ip } }, log);
    kv.data.clear();
    kv.breakWatches();
    await until(
      'republished',
      () => kv.data.has(keys.endpoint('blue', ep)) && kv.data.has(keys.address('blue', '10.77.0.2')) && kv.data.has(keys.network('blue')),
      3000,
    );
  });

  it("status lists the members; forget refuses a present node and removes a gone one's records", async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2');
    const poolB = await createClusterNetwork(b);
    await createClusterNetwork(a);
    const ip = (await b.plugin.requestAddress({ PoolID: poolB }, log)).Address;
    await b.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(0xb2), Interface: { Address: ip } }, log);
    await until("host A follows B's endpoint", () => a.agent.remoteEndpoints() === 1);
    await until('both present', () => [...kv.data.keys()].filter((k) => k.startsWith(keys.nodes())).length === 2);
    const st = await a.agent.status();
    expect(st.members).toEqual([
      { name: 'host-a', address: '198.18.0.1', up: true, endpoints: 0 },
      { name: 'host-b', address: '198.18.0.2', up: true, endpoints: 1 },
    ]);
    await expect(a.agent.forget('host-b')).rejects.toThrow(/host-b is present in the cluster/);
    await expect(a.agent.forget('host-a')).rejects.toThrow(/is this host/);
    // host B dies: its presence goes (here: removed as its lease would expire), its records stay.
    await b.agent.stop();
    kv.data.delete(keys.node('host-b'));
    expect((await a.agent.status()).members.find((m) => m.name === 'host-b')).toMatchObject({ up: false, endpoints: 1 });
    expect(kv.data.has(keys.address('blue', '10.77.0.2'))).toBe(true);
    expect(await a.agent.forget('host-b')).toEqual({ addresses: 1, endpoints: 1, memberships: 1 });
    expect(kv.data.has(keys.address('blue', '10.77.0.2'))).toBe(false);
    await until("host A drops B's endpoint", () => a.agent.remoteEndpoints() === 0);
  });

  it.each([
    [
      'two subnets',
      { IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: '10.77.0.1/16' }, { Pool: '10.78.0.0/16' }] },
      /IPv4Data: a cluster network .* needs exactly one IPv4 subnet \(--subnet\), got 2/,
    ],
    [
      'IPv6 only (--ipv4=false, issue 23: not yet)',
      {
        Options: { 'com.docker.network.enable_ipv6': true, 'com.docker.network.generic': { 'mynet.cluster': 'blue' } },
        IPv4Data: [],
        IPv6Data: [{ Pool: 'fd6c:62::/64' }],
      },
      /IPv4Data: a cluster network .* needs exactly one IPv4 subnet \(--subnet\), got 0: IPv6-only cluster networks \(--ipv4=false\) are not supported yet; add an IPv4 --subnet/,
    ],
    [
      'a bad cluster name',
      { Options: { 'com.docker.network.generic': { 'mynet.cluster': '../x' } } },
      /option mynet\.cluster: "\.\.\/x" is not a cluster name/,
    ],
    [
      'a VXLAN id below 4096',
      { Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue', 'mynet.vni': '42' } } },
      /option mynet\.vni: "42" is not a whole number from 4096 to 16777215/,
    ],
    [
      'mynet.vni without a cluster',
      { Options: { 'com.docker.network.generic': { 'mynet.vni': '5000' } } },
      /option mynet\.vni: is only for cluster networks/,
    ],
  ])('refused before etcd is asked: %s', async (_what, over, why) => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await a.plugin.requestPool({ Pool: '10.77.0.0/16' }, log);
    const gw = await a.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
    const req = {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue' } },
      IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: gw.Address }],
      ...over,
    };
    expect(errorOf(await a.plugin.createNetwork(req, log).catch((e: unknown) => e))).toMatch(why);
    expect([...kv.data.keys()].filter((k) => !k.startsWith(keys.nodes()))).toEqual([]);
    expect(a.exec.calls).toHaveLength(0);
  });

  it('a second local network in the same cluster network is refused; without etcd settings a cluster network is refused', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    await createClusterNetwork(a);
    const pool = await a.plugin.requestPool({ Pool: '10.88.0.0/16' }, log);
    const gw = await a.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
    const other = {
      NetworkID: hexId(0xb9),
      Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue' } },
      IPv4Data: [{ Pool: '10.88.0.0/16', Gateway: gw.Address }],
    };
    expect(errorOf(await a.plugin.createNetwork(other, log).catch((e: unknown) => e))).toMatch(
      /this host already has network 00b100b100b1 in cluster network "blue"/,
    );
    const plain = testPlugin();
    const p2 = await plain.plugin.requestPool({ Pool: '10.77.0.0/16' }, log);
    const g2 = await plain.plugin.requestAddress({ PoolID: p2.PoolID, Options: GW }, log);
    const err = await plain.plugin
      .createNetwork(
        {
          NetworkID: NET,
          Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue' } },
          IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: g2.Address }],
        },
        log,
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
    expect(errorOf(err)).toMatch(/set MYNET_ETCD_ENDPOINTS/);
  });

  it('an endpoint record outside the network (hand-written, hostile) is neither programmed nor named', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    await createClusterNetwork(a);
    await a.agent.idle();
    const bad = {
      v: 1,
      cluster: 'blue',
      id: hexId(0xee),
      node: 'host-x',
      underlay: '198.18.0.66',
      address: '203.0.113.9',
      mac: '02:42:cb:00:71:09',
      name: 'evil',
      updatedAt: new Date().toISOString(),
    };
    await kv.put(keys.endpoint('blue', bad.id), JSON.stringify(bad));
    const good = { ...bad, id: hexId(0xef), address: '10.77.0.66', mac: '02:42:0a:4d:00:42', name: 'fine' };
    // A real host's record: its node is present and holds the address's claim.
    await kv.put(
      keys.node('host-x'),
      JSON.stringify({ v: 1, name: 'host-x', address: '198.18.0.66', startedAt: new Date().toISOString() }),
    );
    await kv.put(
      keys.address('blue', '10.77.0.66'),
      JSON.stringify({ v: 1, cluster: 'blue', address: '10.77.0.66', node: 'host-x', claimedAt: new Date().toISOString() }),
    );
    await kv.put(keys.endpoint('blue', good.id), JSON.stringify(good));
    await until('the good one is programmed', () => planText(a.plane).includes('02:42:0a:4d:00:42'));
    expect(planText(a.plane)).not.toContain('203.0.113.9');
    expect(a.agent.remoteNames().map((c) => c.name)).toEqual(['fine']);
  });

  it('`docker rm` on one host, then --ip of that address on another at once: the claim waits for the release on its way; a held address is refused after the grace', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const b = host(kv, 'host-b', '198.18.0.2', 1000);
    const poolA = await createClusterNetwork(a);
    const poolB = await createClusterNetwork(b);
    await a.agent.idle();
    const ip = bare((await a.plugin.requestAddress({ PoolID: poolA }, log)).Address);
    // Host A answers the release at once; etcd takes 120 ms to have it.
    const del = kv.deleteIfValue.bind(kv);
    kv.deleteIfValue = async (k, v) => {
      await sleep(120);
      return del(k, v);
    };
    await a.plugin.releaseAddress({ PoolID: poolA, Address: ip }, log);
    expect(kv.data.has(keys.address('blue', ip))).toBe(true);
    expect(bare((await b.plugin.requestAddress({ PoolID: poolB, Address: ip }, log)).Address)).toBe(ip);
    expect(JSON.parse(kv.data.get(keys.address('blue', ip))?.value ?? '{}')).toMatchObject({ node: 'host-b' });
    // Held for real (host B keeps it): refused, naming the holder, once the grace is over.
    const t0 = Date.now();
    const err = await a.plugin.requestAddress({ PoolID: poolA, Address: ip }, log).catch((e: unknown) => e);
    expect(errorOf(err)).toMatch(new RegExp(`${ip.replace(/\./g, '\\.')} of cluster network "blue" is held by node host-b`));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
  });

  it('a release still queued is not overtaken: --ip of that address waits for it, an automatic claim skips it', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    await a.agent.idle();
    const ip = bare((await a.plugin.requestAddress({ PoolID: pool }, log)).Address);
    // etcd answers slowly: the release is queued behind a slow call.
    const slow = kv.deleteIfValue.bind(kv);
    const order: string[] = [];
    kv.deleteIfValue = async (k, v) => {
      await sleep(30);
      order.push(`release ${k.split('/').pop() ?? ''}`);
      return slow(k, v);
    };
    await a.plugin.releaseAddress({ PoolID: pool, Address: ip }, log);
    const again = bare((await a.plugin.requestAddress({ PoolID: pool, Address: ip }, log)).Address);
    order.push(`claimed ${again}`);
    expect(order).toEqual([`release ${ip}`, `claimed ${ip}`]);
    await a.agent.idle();
    expect(JSON.parse(kv.data.get(keys.address('blue', ip))?.value ?? '{}')).toMatchObject({ node: 'host-a' });
  });

  it('saving fails after the endpoint was published (a full disk): the record is withdrawn, the host change undone', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    const ip = (await a.plugin.requestAddress({ PoolID: pool }, log)).Address;
    a.store.failNext = true;
    const ep = hexId(0xa7);
    await expect(a.plugin.createEndpoint({ NetworkID: NET, EndpointID: ep, Interface: { Address: ip } }, log)).rejects.toThrow(
      /injected store failure/,
    );
    await a.agent.idle();
    expect(kv.data.has(keys.endpoint('blue', ep))).toBe(false);
    expect(a.plugin.state.endpoints.has(ep)).toBe(false);
    // The veth is made and then deleted again (the undo of its create).
    expect(
      planText(a.exec)
        .split('\n')
        .filter((l) => l.includes('mnh00a700a700a7'))
        .pop(),
    ).toMatch(/^ip link del mnh00a700a700a7 .*if ours/);
  });

  it('convergence reads the followed copies once they are complete: no list of the network from etcd', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    const ip = (await a.plugin.requestAddress({ PoolID: pool }, log)).Address;
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(0xa8), Interface: { Address: ip } }, log);
    await a.agent.idle();
    await until('both copies followed', () => a.agent.planes.get(NET)?.followed() !== undefined);
    kv.calls.length = 0;
    await a.plugin.exclusive(() => a.agent.converge());
    expect(kv.calls.filter((c) => c.startsWith('list'))).toEqual([]);
  });
});

describe('etcd trouble never touches local networks (issue 22, finding 6)', () => {
  it("while etcd answers nothing, a cluster network's address and endpoint wait; a local network is made, addressed and given an endpoint meanwhile", async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    let answer = (): void => undefined;
    kv.stall = new Promise((r) => (answer = r));
    const order: string[] = [];
    // A cluster request: its claim waits for etcd.
    const clusterIp = a.plugin.requestAddress({ PoolID: pool }, log).then((r) => (order.push('cluster address'), r));
    // A local network's whole lifecycle meanwhile, through the same plugin.
    const lp = await a.plugin.requestPool({ Pool: '10.99.0.0/24' }, log);
    const lgw = await a.plugin.requestAddress({ PoolID: lp.PoolID, Options: GW }, log);
    await a.plugin.createNetwork({ NetworkID: hexId(0x11), Options: {}, IPv4Data: [{ Pool: '10.99.0.0/24', Gateway: lgw.Address }] }, log);
    const lip = await a.plugin.requestAddress({ PoolID: lp.PoolID }, log);
    await a.plugin.createEndpoint({ NetworkID: hexId(0x11), EndpointID: hexId(0x12), Interface: { Address: lip.Address } }, log);
    order.push('local lifecycle');
    // A cluster endpoint's publish waits too, and holds up nothing either.
    kv.stall = undefined;
    answer();
    const ip = (await clusterIp).Address;
    let answerPublish = (): void => undefined;
    kv.stall = new Promise((r) => (answerPublish = r));
    const ep = a.plugin
      .createEndpoint({ NetworkID: NET, EndpointID: hexId(0xe1), Interface: { Address: ip } }, log)
      .then(() => order.push('cluster endpoint'));
    await a.plugin.deleteEndpoint({ NetworkID: hexId(0x11), EndpointID: hexId(0x12) }, log);
    order.push('local delete');
    kv.stall = undefined;
    answerPublish();
    await ep;
    expect(order).toEqual(['local lifecycle', 'cluster address', 'local delete', 'cluster endpoint']);
    expect(kv.data.has(keys.endpoint('blue', hexId(0xe1)))).toBe(true);
  });

  it('two automatic addresses claimed at once on one host are two addresses (the claims in flight are not offered twice)', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    const got = await Promise.all([1, 2, 3, 4].map(() => a.plugin.requestAddress({ PoolID: pool }, log)));
    expect(new Set(got.map((g) => g.Address)).size).toBe(4);
    await a.agent.idle();
    const claims = [...kv.data.keys()].filter((k) => k.startsWith(keys.addresses('blue')));
    expect(claims).toHaveLength(4);
  });

  it('etcd refuses the publish: the endpoint is taken back (host plan undone, not in the state) and the request fails', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    const ip = (await a.plugin.requestAddress({ PoolID: pool }, log)).Address;
    kv.down = true;
    const err = await a.plugin
      .createEndpoint({ NetworkID: NET, EndpointID: hexId(0xe2), Interface: { Address: ip } }, log)
      .catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('CLUSTER_UNAVAILABLE');
    expect(a.plugin.state.endpoints.has(hexId(0xe2))).toBe(false);
    expect(planText(a.exec)).toMatch(/link del mnh00e200e200e2|link set mnh00e200e200e2 .*group 28015/);
  });
});

describe('convergence and claims made outside the lock', () => {
  it('an address claimed but not yet in the journal is not released by a convergence that runs in between; once given up, it is', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    await createClusterNetwork(a);
    const c = [...a.plugin.state.networks.values()][0]?.cluster;
    if (!c) throw new Error('no cluster binding');
    const ip = await a.agent.claim(c, undefined, () => ['10.77.0.9'], log);
    expect(ip).toBe('10.77.0.9');
    await a.plugin.exclusive(() => a.agent.converge());
    expect(kv.data.has(keys.address('blue', '10.77.0.9'))).toBe(true);
    a.agent.settled(c, ip);
    await a.plugin.exclusive(() => a.agent.converge());
    expect(kv.data.has(keys.address('blue', '10.77.0.9'))).toBe(false);
  });
});

describe("one network's trouble stays its own (issue 22, finding 12)", () => {
  it('an unreadable definition of one cluster network in etcd: the other network of the host still converges (its lost record republished)', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    const p2 = await a.plugin.requestPool({ Pool: '10.88.0.0/16' }, log);
    const g2 = await a.plugin.requestAddress({ PoolID: p2.PoolID, Options: GW }, log);
    await a.plugin.createNetwork(
      {
        NetworkID: hexId(0xb7),
        Options: { 'com.docker.network.generic': { 'mynet.cluster': 'red' } },
        IPv4Data: [{ Pool: '10.88.0.0/16', Gateway: g2.Address }],
      },
      log,
    );
    const ip1 = (await a.plugin.requestAddress({ PoolID: pool }, log)).Address;
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(0xe5), Interface: { Address: ip1 } }, log);
    const ip2 = (await a.plugin.requestAddress({ PoolID: p2.PoolID }, log)).Address;
    await a.plugin.createEndpoint({ NetworkID: hexId(0xb7), EndpointID: hexId(0xe6), Interface: { Address: ip2 } }, log);
    // blue's definition is junk now ("blue" comes first in the host's networks), and red lost its endpoint record.
    kv.external(keys.network('blue'), '{"v":1,"junk":true}');
    kv.external(keys.endpoint('red', hexId(0xe6)), undefined);
    const err = await a.plugin.exclusive(() => a.agent.converge()).catch((e: unknown) => e);
    expect(errorOf(err)).toMatch(/networks\/blue/);
    expect(kv.data.has(keys.endpoint('red', hexId(0xe6)))).toBe(true);
  });
});

describe('convergence without the request lock (issue 22, finding 6)', () => {
  it('a convergence waiting for a stalled etcd holds up no request of a local network; when etcd answers it finishes its writes', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.0.1');
    const pool = await createClusterNetwork(a);
    const ip = (await a.plugin.requestAddress({ PoolID: pool }, log)).Address;
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(0xe7), Interface: { Address: ip } }, log);
    kv.external(keys.endpoint('blue', hexId(0xe7)), undefined); // etcd lost it: the convergence republishes it
    let answer = (): void => undefined;
    kv.stall = new Promise((r) => (answer = r));
    const before = kv.calls.length;
    a.agent.scheduleConverge();
    await waitUntil('the convergence waits for etcd', () =>
      kv.calls.slice(before).some((c) => c.startsWith('create /mynet/v1/networks/blue')),
    );
    const lp = await a.plugin.requestPool({ Pool: '10.98.0.0/24' }, log);
    const lgw = await a.plugin.requestAddress({ PoolID: lp.PoolID, Options: GW }, log);
    await a.plugin.createNetwork({ NetworkID: hexId(0x21), Options: {}, IPv4Data: [{ Pool: '10.98.0.0/24', Gateway: lgw.Address }] }, log);
    await a.plugin.deleteNetwork({ NetworkID: hexId(0x21) }, log);
    expect(kv.data.has(keys.endpoint('blue', hexId(0xe7)))).toBe(false); // still waiting
    kv.stall = undefined;
    answer();
    await waitUntil('the lost record republished', () => kv.data.has(keys.endpoint('blue', hexId(0xe7))));
  });
});
