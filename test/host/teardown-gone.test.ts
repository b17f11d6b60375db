/**
 * Teardown of what is already gone (issue 22, finding 24), in a real kernel: a host with two
 * local networks (one endpoint publishing ports) and a cluster network (its VXLAN device, guard
 * chain and set, a forwarding and a neighbour entry for a second host's endpoint), then one
 * kind of object deleted by hand, then the calls dockerd makes to remove everything. Every call
 * succeeds, the state is empty, and the namespace's links, addresses, iptables and nft ruleset
 * are what they were before the first network: nothing of ours left, nothing of others removed.
 * The second host is a plugin with a recording executor (no kernel) on the same in-memory etcd.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../src/cluster/cluster-store.js';
import { ClusterAgent } from '../../src/multihost/agent.js';
import { egressChain, ingressChain } from '../../src/plan/nft-model.js';
import type { Plugin } from '../../src/plugin.js';
import { vxlanName } from '../../src/plan/vxlan.js';
import { dropCounter, guardChain, peerSet } from '../../src/plan/vxlan-firewall.js';
import type { Executor } from '../../src/host/executor.js';
import { MemoryKv } from '../helpers/memory-kv.js';
import { type TestNetns, createNetns, destroyCreated, dockerId } from '../helpers/netns.js';
import { RecordingExecutor } from '../helpers/recording-executor.js';
import { testPlugin } from '../helpers/test-plugin.js';
import {
  type CreatedNetwork,
  buildPlugin,
  createEndpoint,
  createNetwork,
  hostLikeFilter,
  ipOf,
  log,
  publish,
  removeEndpoint,
} from './plugin-fixture.js';

const CLUSTER = 'mnt-gone';
const GW = { RequestAddressType: 'com.docker.network.gateway' };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const agents: ClusterAgent[] = [];

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await destroyCreated();
});

function agentFor(
  kv: MemoryKv,
  name: string,
  address: string,
  exec: Executor,
  read: (argv: readonly string[]) => Promise<string>,
  plugin: () => Plugin,
): ClusterAgent {
  const a = new ClusterAgent({
    store: new ClusterStore(kv, { name, address }),
    underlayMtu: 1500,
    exec,
    read,
    log,
    state: () => plugin().state,
    backoffMs: { first: 10, max: 50 },
  });
  agents.push(a);
  return a;
}

async function clusterNetwork(plugin: Plugin, id: string): Promise<CreatedNetwork> {
  const p = await plugin.requestPool({ Pool: '10.78.0.0/16' }, log);
  const g = await plugin.requestAddress({ PoolID: p.PoolID, Options: GW }, log);
  const request = {
    NetworkID: id,
    Options: { 'com.docker.network.generic': { 'mynet.cluster': CLUSTER } },
    IPv4Data: [{ Pool: '10.78.0.0/16', Gateway: g.Address }],
  };
  await plugin.createNetwork(request, log);
  return { id, request, gateway4: g.Address, pool4: p.Pool, poolId4: p.PoolID };
}

async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await ok()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface World {
  readonly ns: TestNetns;
  readonly plugin: Plugin;
  readonly a: CreatedNetwork;
  readonly b: CreatedNetwork;
  readonly c: CreatedNetwork;
}

type Break = (w: World) => Promise<void>;

const CASES: [string, Break][] = [
  ["mynet's whole nft table", (w) => w.ns.run(['nft', 'delete', 'table', 'inet', 'mynet']).then(() => undefined)],
  [
    "a network's chains and their rules",
    async (w) => {
      await w.ns.run(['nft', 'delete', 'element', 'inet', 'mynet', 'egress', `{ "mn-${w.a.id.slice(0, 12)}" }`]);
      await w.ns.run(['nft', 'delete', 'chain', 'inet', 'mynet', egressChain(w.a.id)]);
      await w.ns.run(['nft', 'flush', 'chain', 'inet', 'mynet', ingressChain(w.a.id)]);
    },
  ],
  [
    "the published ports' maps (rules that use them flushed first)",
    async (w) => {
      for (const c of ['prerouting', 'output']) await w.ns.run(['nft', 'flush', 'chain', 'inet', 'mynet', c]);
      for (const m of ['pub4any', 'pub6any']) await w.ns.run(['nft', 'delete', 'map', 'inet', 'mynet', m]);
    },
  ],
  [
    'veths, bridges and the VXLAN device',
    async (w) => {
      for (const l of (await w.ns.run(['ip', '-o', 'link', 'show', 'group', '28014']))
        .split('\n')
        .flatMap((x) => /^\d+: ([^:@]+)/.exec(x)?.[1] ?? [])) {
        await w.ns.run(['ip', 'link', 'del', 'dev', l]).catch(() => undefined); // a veth's peer goes with it
      }
    },
  ],
  [
    "the VXLAN guard's chain, set and counter, and the forwarding and neighbour entries",
    async (w) => {
      const dev = vxlanName(w.c.id);
      for (const x of [
        ['chain', guardChain(w.c.id)],
        ['set', peerSet(w.c.id)],
        ['counter', dropCounter(w.c.id)],
      ])
        await w.ns.run(['nft', 'delete', x[0] as string, 'inet', 'mynet', x[1] as string]);
      await w.ns.run(['ip', 'neigh', 'flush', 'dev', dev]);
      for (const line of (await w.ns.run(['bridge', 'fdb', 'show', 'dev', dev])).split('\n').filter((l) => l.includes(' dst '))) {
        await w.ns.run(['bridge', 'fdb', 'del', line.split(' ')[0] as string, 'dev', dev, 'self']);
      }
    },
  ],
];

describe('teardown of what is already gone', () => {
  it.each(CASES)('%s deleted by hand: DeleteEndpoint and DeleteNetwork succeed and leave nothing behind', async (_what, breakIt) => {
    const ns = await createNetns({ prefix: 'mnt-gone-' });
    await hostLikeFilter(ns);
    const before = await ns.dump();
    const kv = new MemoryKv();
    const ref: { plugin?: Plugin; other?: Plugin } = {};
    const agent = agentFor(
      kv,
      'mnt-gone-1',
      '198.18.60.1',
      ns.exec,
      (argv) => ns.run(argv),
      () => ref.plugin as Plugin,
    );
    ref.plugin = buildPlugin(ns, { cluster: agent });
    const plugin = ref.plugin;
    agent.start();
    const otherAgent = agentFor(
      kv,
      'mnt-gone-2',
      '198.18.60.2',
      new RecordingExecutor(),
      () => Promise.resolve('[]'),
      () => ref.other as Plugin,
    );
    ref.other = testPlugin({ cluster: otherAgent }).plugin;
    otherAgent.start();

    const a = await createNetwork(plugin, { v6Pool: 'fd00:78::/64' });
    const b = await createNetwork(plugin);
    const cid = dockerId();
    const c = await clusterNetwork(plugin, cid);
    const a1 = await createEndpoint(plugin, a, { addressV6: 'fd00:78::11/64' });
    await publish(plugin, a1, [{ Proto: 6, Port: 80, HostIP: '', HostPort: 18080 }]);
    const c1 = await createEndpoint(plugin, c);
    // The other host's endpoint on the cluster network: this host forwards to it.
    const oc = await clusterNetwork(ref.other, cid);
    const o1 = await createEndpoint(ref.other, oc, { join: false });
    await until("the other host's endpoint is programmed", async () =>
      (await ns.run(['bridge', 'fdb', 'show', 'dev', vxlanName(cid)])).includes('dst 198.18.60.2'),
    );
    await until('the guard admits the other host', async () =>
      (await ns.run(['nft', 'list', 'set', 'inet', 'mynet', peerSet(cid)])).includes('198.18.60.2'),
    );

    await breakIt({ ns, plugin, a, b, c });

    await removeEndpoint(plugin, a, a1);
    await removeEndpoint(plugin, c, c1);
    for (const n of [a, c, b]) {
      await plugin.deleteNetwork({ NetworkID: n.id }, log);
      await plugin.releaseAddress({ PoolID: n.poolId4, Address: ipOf(n.gateway4) }, log);
    }
    for (const id of [...plugin.state.pools.keys()]) await plugin.releasePool({ PoolID: id }, log);
    expect(plugin.state.networks.size).toBe(0);
    expect(plugin.state.endpoints.size).toBe(0);
    await agent.stop();
    expect(await ns.dump()).toEqual(before);
    void o1;
  });
});
