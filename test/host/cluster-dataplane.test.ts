/**
 * The cluster data plane on real kernels: two "hosts" as network namespaces on an underlay (a
 * bridge in a third namespace, 198.18.0.0/24 inside the namespaces only), each with a mynet-style
 * bridge and the VXLAN device from plan/vxlan.ts, a "container" namespace on each, and a real
 * etcd whose endpoint records each host follows (ClusterStore.followEndpoints) to program its
 * forwarding and neighbour entries, as the plugin will. A stranger namespace on the underlay
 * sends VXLAN with the network's VNI and is dropped by the guard from plan/vxlan-firewall.ts.
 * Everything is removed at the end (the namespaces take their links with them).
 */
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStore, type EndpointChange } from '../../src/cluster/cluster-store.js';
import { EtcdKv } from '../../src/cluster/etcd-kv.js';
import type { PrefixFollower } from '../../src/cluster/follower.js';
import type { NetworkDefinition } from '../../src/cluster/records.js';
import { applyPlan } from '../../src/host/executor.js';
import { bridgeSteps, macFromIPv4, vethSteps } from '../../src/plan/link.js';
import { containerVethName, defaultBridgeName, hostVethName } from '../../src/plan/link-names.js';
import { dropCounter, guardChain, guardCommands, guardTeardownCommands } from '../../src/plan/vxlan-firewall.js';
import { nftOp, nftTeardown } from '../../src/plan/nft.js';
import { parseFdb, parseNeigh, remoteEntrySteps, removeEntrySteps, vxlanDeviceSteps, vxlanName } from '../../src/plan/vxlan.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { createNetns, destroyCreated, dockerId, silentLog, type TestNetns } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';

const PING = ['busybox', 'ping'];

interface Host {
  readonly name: string;
  readonly underlay: string;
  readonly ns: TestNetns;
  readonly container: TestNetns;
  readonly networkId: string;
  readonly endpointId: string;
  readonly ip: string;
  readonly store: ClusterStore;
  follower?: PrefixFollower;
  /** Kernel programming is serialised per host, in the order the follower delivers changes. */
  queue: Promise<void>;
  errors: unknown[];
}

let etcd: TestEtcd;
let underlay: TestNetns;
let stranger: TestNetns;
let def: NetworkDefinition;
const hosts: Host[] = [];
const kvs: EtcdKv[] = [];
const CLUSTER = `dp${Date.now().toString(36)}`;

const until = (what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<number> => waitUntil(what, ok, { ms, every: 25 });

/** A namespace with IPv6 off, so no neighbour discovery disturbs the packet counts below. */
async function quietNetns(): Promise<TestNetns> {
  const ns = await createNetns();
  await ns.run(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  return ns;
}

/** A veth from the underlay bridge into `ns`, with its underlay address. */
async function plug(ns: TestNetns, tag: string, address: string): Promise<void> {
  await underlay.run(['ip', 'link', 'add', `mntu${tag}`, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', ns.name]);
  await underlay.run(['ip', 'link', 'set', `mntu${tag}`, 'master', 'mntul', 'up']);
  await ns.run(['ip', 'addr', 'add', `${address}/24`, 'dev', 'ul0']);
  await ns.run(['ip', 'link', 'set', 'ul0', 'up']);
}

async function makeHost(n: number): Promise<Host> {
  const ns = await quietNetns();
  const container = await quietNetns();
  const underlayIp = `198.18.0.${n}`;
  await plug(ns, String(n), underlayIp);
  const networkId = dockerId();
  const endpointId = dockerId();
  const ip = `10.77.0.${n + 1}`;
  const bridge = defaultBridgeName(networkId);
  const kv = new EtcdKv({ endpoints: [etcd.endpoint] });
  kvs.push(kv);
  const store = new ClusterStore(kv, { name: `host-${n}`, address: underlayIp });
  def = await store.defineNetwork({ cluster: CLUSTER, subnet: '10.77.0.0/24', mtu: 1450 });
  // The bridge as mynet makes it, at the recorded MTU, with the anycast gateway. (Its MAC is
  // set to the recorded gateway MAC here; the integration gives BridgeSpec a mac field.)
  await applyPlan(ns.exec, bridgeSteps({ networkId, name: bridge, mtu: def.mtu, addresses: [`${def.gateway}/24`] }), silentLog);
  await ns.run(['ip', 'link', 'set', 'dev', bridge, 'address', def.gatewayMac]);
  await applyPlan(
    ns.exec,
    vxlanDeviceSteps({ networkId, cluster: CLUSTER, vni: def.vni, bridge, local: underlayIp, mtu: def.mtu }),
    silentLog,
  );
  const mac = macFromIPv4(`${ip}/24`);
  await applyPlan(
    ns.exec,
    vethSteps({
      networkId,
      endpointId,
      bridge,
      hostIf: hostVethName(endpointId),
      containerIf: containerVethName(endpointId),
      mtu: def.mtu,
      mac,
    }),
    silentLog,
  );
  // What dockerd does with the container end: into the sandbox, renamed, addressed.
  await ns.run(['ip', 'link', 'set', 'dev', containerVethName(endpointId), 'netns', container.name]);
  await container.run(['ip', 'link', 'set', 'dev', containerVethName(endpointId), 'name', 'eth0']);
  await container.run(['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await container.run(['ip', 'link', 'set', 'eth0', 'up']);
  await container.run(['ip', 'route', 'add', 'default', 'via', def.gateway]);
  return { name: `host-${n}`, underlay: underlayIp, ns, container, networkId, endpointId, ip, store, queue: Promise.resolve(), errors: [] };
}

/** The follower's changes, programmed into this host's kernel (its own endpoints skipped). */
function follow(h: Host): void {
  const program = (cs: readonly EndpointChange[]): void => {
    for (const c of cs) {
      if (c.endpoint.node === h.name) continue;
      const plan = c.type === 'put' ? remoteEntrySteps(h.networkId, c.endpoint) : removeEntrySteps(h.networkId, c.endpoint);
      h.queue = h.queue.then(() => applyPlan(h.ns.exec, plan, silentLog)).catch((err: unknown) => void h.errors.push(err));
    }
  };
  h.follower = h.store.followEndpoints(CLUSTER, { onChanges: program, backoffMs: { first: 100, max: 500 } });
}

/** Claimed first, as a host does: a record is published only with its address claimed (claim-guard.ts). */
const publish = async (h: Host): Promise<unknown> => {
  await h.store.claimAddress(def, h.ip);
  return h.store.publishEndpoint({ cluster: CLUSTER, id: h.endpointId, address: h.ip, mac: macFromIPv4(`${h.ip}/24`), name: `c${h.name}` });
};
const pings = (from: Host, to: string, count = 1): Promise<boolean> =>
  from.container.succeeds([...PING, '-c', String(count), '-W', '1', to]);
/** Packets from the stranger's address that reached the container, by a counter inside it. */
const STRANGER_IP = '10.77.0.250';
const fromStranger = async (ns: TestNetns): Promise<number> => {
  const out = await ns.run(['nft', 'list', 'chain', 'inet', 'mnt', 'in']);
  return Number(/counter packets (\d+)/.exec(out)?.[1] ?? NaN);
};
const entriesOf = async (h: Host): Promise<{ fdb: Map<string, string>; neigh: Map<string, string> }> => ({
  fdb: parseFdb(await h.ns.run(['bridge', '-j', 'fdb', 'show', 'dev', vxlanName(h.networkId)])),
  neigh: parseNeigh(await h.ns.run(['ip', '-j', 'neigh', 'show', 'dev', vxlanName(h.networkId)])),
});

beforeAll(async () => {
  etcd = await startEtcd();
  underlay = await quietNetns();
  await underlay.run(['ip', 'link', 'add', 'mntul', 'type', 'bridge']);
  await underlay.run(['ip', 'link', 'set', 'mntul', 'up']);
  hosts.push(await makeHost(1), await makeHost(2));
  stranger = await quietNetns();
  await plug(stranger, '9', '198.18.0.9');
  // Each host accepts VXLAN with the network's VNI from the other host only.
  for (const h of hosts)
    await applyPlan(
      h.ns.exec,
      [
        {
          what: 'vxlan guard',
          run: nftOp(guardCommands({ networkId: h.networkId, vni: def.vni, peers: hosts.filter((o) => o !== h).map((o) => o.underlay) })),
        },
      ],
      silentLog,
    );
});

afterAll(async () => {
  for (const h of hosts) await h.follower?.stop();
  for (const k of kvs) await k.close();
  for (const h of hosts) h.ns.exec.close();
  await destroyCreated();
  await etcd?.destroy();
});

describe('cluster data plane between two namespaced hosts', () => {
  it('devices as planned: VXLAN with learning off, proxy on, port 4789, MTU 1450 on bridge, VXLAN and both veth ends; no flood entry', async () => {
    const [a] = hosts as [Host, Host];
    const [vx] = JSON.parse(await a.ns.run(['ip', '-j', '-d', 'link', 'show', 'dev', vxlanName(a.networkId)])) as {
      mtu: number;
      group: string;
      master: string;
      linkinfo: { info_kind: string; info_data: { id: number; port: number; learning: boolean; proxy: boolean; local: string } };
    }[];
    expect(vx?.linkinfo.info_kind).toBe('vxlan');
    expect(vx?.linkinfo.info_data).toMatchObject({ id: def.vni, port: 4789, learning: false, proxy: true, local: '198.18.0.1' });
    expect(vx).toMatchObject({ mtu: 1450, group: '28014', master: defaultBridgeName(a.networkId) });
    const [br] = JSON.parse(await a.ns.run(['ip', '-j', 'link', 'show', 'dev', defaultBridgeName(a.networkId)])) as {
      mtu: number;
      address: string;
    }[];
    expect(br).toMatchObject({ mtu: 1450, address: def.gatewayMac });
    const [hv] = JSON.parse(await a.ns.run(['ip', '-j', 'link', 'show', 'dev', hostVethName(a.endpointId)])) as { mtu: number }[];
    const [cv] = JSON.parse(await a.container.run(['ip', '-j', 'link', 'show', 'dev', 'eth0'])) as { mtu: number }[];
    expect([hv?.mtu, cv?.mtu]).toEqual([1450, 1450]);
    expect((await entriesOf(a)).fdb.size).toBe(0);
  });

  it('no records, no traffic; records published and followed: cross-host ping and TCP; a peer withdrawn: traffic stops', async () => {
    const [a, b] = hosts as [Host, Host];
    expect(await pings(a, b.ip)).toBe(false);
    for (const h of hosts) follow(h);
    for (const h of hosts) await h.follower?.synced();
    const t0 = performance.now();
    await Promise.all(hosts.map(publish));
    await until('entries on both hosts', async () => (await entriesOf(a)).fdb.size === 1 && (await entriesOf(b)).fdb.size === 1);
    const convergeMs = performance.now() - t0;
    expect(await entriesOf(a)).toEqual({
      fdb: new Map([[macFromIPv4(`${b.ip}/24`), b.underlay]]),
      neigh: new Map([[b.ip, macFromIPv4(`${b.ip}/24`)]]),
    });
    expect(await pings(a, b.ip, 3)).toBe(true);
    expect(await pings(b, a.ip, 3)).toBe(true);
    // Both containers reach the anycast gateway, each on its own host.
    expect(await pings(a, def.gateway)).toBe(true);
    expect(await pings(b, def.gateway)).toBe(true);
    // TCP: a line from a's container to a listener in b's.
    const server: ResultPromise = execa('ip', ['netns', 'exec', b.container.name, 'timeout', '10', 'busybox', 'nc', '-l', '-p', '7777'], {
      reject: false,
    });
    await until('the listener', () => b.container.run(['busybox', 'netstat', '-ltn']).then((o) => o.includes(':7777')));
    await execa('ip', ['netns', 'exec', a.container.name, 'sh', '-c', `echo hello-over-vxlan | timeout 5 busybox nc ${b.ip} 7777`]);
    expect((await server).stdout).toContain('hello-over-vxlan');
    // b withdraws its endpoint: a's follower removes its entries, traffic stops.
    expect(await b.store.withdrawEndpoint(CLUSTER, b.endpointId)).toBe('withdrawn');
    await until("a to drop b's entries", async () => (await entriesOf(a)).fdb.size === 0);
    expect((await entriesOf(a)).neigh.size).toBe(0);
    expect(await pings(a, b.ip)).toBe(false);
    // Back again.
    await publish(b);
    await until("b's entries again", async () => (await entriesOf(a)).fdb.size === 1);
    expect(await pings(a, b.ip)).toBe(true);
    expect(hosts.flatMap((h) => h.errors)).toEqual([]);
    console.log(`[figure] publish on both hosts -> entries programmed on both: ${convergeMs.toFixed(1)} ms`);
  });

  it("VXLAN with the network's VNI from a stranger is dropped by the guard (and reaches the container without it)", async () => {
    const [a] = hosts as [Host, Host];
    // The stranger's own VXLAN device with the same VNI, aimed at a's container.
    const aMac = macFromIPv4(`${a.ip}/24`);
    await stranger.run([
      'ip',
      'link',
      'add',
      'mntvx',
      'type',
      'vxlan',
      'id',
      String(def.vni),
      'local',
      '198.18.0.9',
      'dstport',
      '4789',
      'nolearning',
    ]);
    await stranger.run(['ip', 'addr', 'add', `${STRANGER_IP}/24`, 'dev', 'mntvx']);
    await a.container.exec.command(
      ['nft', '-f', '-'],
      silentLog,
      `add table inet mnt\nadd chain inet mnt in { type filter hook input priority 0; }\nadd rule inet mnt in ip saddr ${STRANGER_IP} counter`,
    );
    await stranger.run(['ip', 'link', 'set', 'mntvx', 'up']);
    await stranger.run(['ip', 'neigh', 'replace', a.ip, 'lladdr', aMac, 'dev', 'mntvx', 'nud', 'permanent']);
    await stranger.run(['bridge', 'fdb', 'append', aMac, 'dev', 'mntvx', 'dst', a.underlay, 'self', 'permanent']);
    const send = (): Promise<boolean> => stranger.succeeds([...PING, '-c', '5', '-i', '0.2', '-W', '1', a.ip]);
    // Without the guard the stranger's frames reach a's container (its replies cannot return:
    // no entry for the stranger), which is why the guard must exist.
    await applyPlan(a.ns.exec, [{ what: 'drop the guard', run: nftTeardown(guardTeardownCommands(a.networkId)) }], silentLog);
    let before = await fromStranger(a.container);
    await send();
    expect(await fromStranger(a.container)).toBe(before + 5);
    // With the guard: nothing arrives, and the guard's counter shows the drops.
    const b = hosts[1] as Host;
    await applyPlan(
      a.ns.exec,
      [{ what: 'vxlan guard', run: nftOp(guardCommands({ networkId: a.networkId, vni: def.vni, peers: [b.underlay] })) }],
      silentLog,
    );
    before = await fromStranger(a.container);
    await send();
    expect(await fromStranger(a.container)).toBe(before);
    const rules = await a.ns.run(['nft', 'list', 'chain', 'inet', 'mynet', guardChain(a.networkId)]);
    expect(rules).toContain(`counter name "${dropCounter(a.networkId)}" drop`);
    const dropped = await a.ns.run(['nft', 'list', 'counter', 'inet', 'mynet', dropCounter(a.networkId)]);
    expect(Number(/packets (\d+)/.exec(dropped)?.[1])).toBeGreaterThanOrEqual(5);
    // The member still gets through.
    expect(await pings(a, b.ip)).toBe(true);
  });
});

describe('cleanup', () => {
  it('made nothing in the root namespace (every link of the test lives in its namespaces)', async () => {
    const links = (await execa('ip', ['-o', 'link', 'show'])).stdout;
    expect(links).not.toMatch(/mntu|mntul|mnx|mntvx/);
  });
});
