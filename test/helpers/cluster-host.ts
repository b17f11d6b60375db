/**
 * One "host" of a cluster for the unit tier: the orchestrator with a cluster agent on an
 * in-memory etcd (MemoryKv), its kernel programming recorded. Several on one MemoryKv make a
 * cluster; the real kernel and etcd are the host tier's (test/host/cluster-*).
 */
import { ClusterStore } from '../../src/cluster/cluster-store.js';
import { type AgentOptions, ClusterAgent } from '../../src/multihost/agent.js';
import type { Plugin } from '../../src/plugin.js';
import type { WireGuardPort } from '../../src/multihost/wireguard/port.js';
import type { MemoryStore } from '../../src/store/memory-store.js';
import { silentLog as log } from '../unit/support.js';
import type { MemoryKv } from './memory-kv.js';
import { RecordingExecutor } from './recording-executor.js';
import { testPlugin } from './test-plugin.js';

export interface ClusterHost {
  readonly plugin: Plugin;
  readonly agent: ClusterAgent;
  /** The data plane's kernel programming (VXLAN entries, guard). */
  readonly plane: RecordingExecutor;
  /** The orchestrator's plans. */
  readonly exec: RecordingExecutor;
  readonly store: MemoryStore;
}

export interface ClusterHostOptions {
  readonly claimGraceMs?: number;
  readonly underlayMtu?: number;
  /** Refused records, by reason (the metric's source). */
  readonly refused?: Map<string, number>;
  /** The names Docker would report of a local endpoint (main.ts feeds them from the Docker API). */
  readonly nameOf?: AgentOptions['nameOf'];
  /** Encrypted networks (issue 24): what this host can do. */
  readonly wireguard?: WireGuardPort;
  /** `mynet cluster forget`'s probe of a node's underlay (finding 4). */
  readonly underlayAnswers?: AgentOptions['underlayAnswers'];
}

/** A started host; the caller stops `agent` (afterEach). */
export function clusterHost(kv: MemoryKv, name: string, address: string, o: ClusterHostOptions = {}): ClusterHost {
  const plane = new RecordingExecutor();
  const ref: { plugin?: Plugin } = {};
  const agent = new ClusterAgent({
    store: new ClusterStore(kv, { name, address }),
    underlayMtu: o.underlayMtu ?? 1500,
    exec: plane,
    read: () => Promise.resolve('[]'),
    log,
    state: () => (ref.plugin as Plugin).state,
    presenceTtlS: 5,
    backoffMs: { first: 10, max: 50 },
    claimGraceMs: o.claimGraceMs ?? 50,
    ...(o.nameOf && { nameOf: o.nameOf }),
    ...(o.wireguard && { wireguard: o.wireguard }),
    ...(o.underlayAnswers && { underlayAnswers: o.underlayAnswers }),
    ...(o.refused && { onRefused: (reason: string) => o.refused?.set(reason, (o.refused.get(reason) ?? 0) + 1) }),
    // As main.ts wires it: a settled departure leaves the journal (finding 7, 21).
    departureSettled: (cluster, l) => (ref.plugin as Plugin).departureSettled(cluster, l),
    // As main.ts wires it: the plane's policy news go through the orchestrator's lock.
    policyChanged: (id, input) => void ref.plugin?.clusterPolicyChanged(id, input, log),
  });
  const t = testPlugin({ cluster: agent });
  ref.plugin = t.plugin;
  agent.start();
  return { plugin: t.plugin, agent, plane, exec: t.exec, store: t.store };
}

/** `docker network create -d mynet --ipam-driver mynet -o mynet.cluster=…` on one host: answers the pool's id. */
export async function clusterNetwork(h: ClusterHost, o: { network: string; pool: string; cluster: string }): Promise<string> {
  const pool = await h.plugin.requestPool({ Pool: o.pool }, log);
  const gw = await h.plugin.requestAddress({ PoolID: pool.PoolID, Options: { RequestAddressType: 'com.docker.network.gateway' } }, log);
  await h.plugin.createNetwork(
    {
      NetworkID: o.network,
      Options: { 'com.docker.network.generic': { 'mynet.cluster': o.cluster } },
      IPv4Data: [{ Pool: o.pool, Gateway: gw.Address }],
    },
    log,
  );
  return pool.PoolID;
}
