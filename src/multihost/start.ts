/**
 * Builds the cluster from the settings (composition for main.ts): no MYNET_ETCD_ENDPOINTS, no
 * cluster (undefined) and mynet stays host-local exactly as before. Bad settings stop the start
 * with the setting's name, as the other settings do. Nothing here waits for etcd: the client
 * connects lazily, presence and the followers retry in the background. The etcd client is loaded
 * only here, with settings: a host-local mynet never loads it (issue 26: ~250 ms of the start).
 */
import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { ClusterStore } from '../cluster/cluster-store.js';
import { messageOf } from '../errors.js';
import { sourceAddressTowards } from '../cluster/node-address.js';
import { loadNodeId } from '../cluster/node-id.js';
import { checkTls, parseClusterSettings, readTls } from '../cluster/settings.js';
import type { EndpointRecord, StateView } from '../driver/state.js';
import type { ExecaExecutor } from '../host/execa-executor.js';
import { UNDERLAY_MTU_MIN } from '../rules/mtu.js';
import { underlayAnswers } from '../host/underlay-probe.js';
import { type AgentOptions, ClusterAgent } from './agent.js';
import type { RefusalReason } from './trust.js';
import type { DnsNames } from './dns-names.js';
import { probeHost } from './wireguard/capability.js';
import { WireGuardLifecycle } from './wireguard/lifecycle.js';
import { parseWireGuardSettings, tunnelAddressFor } from './wireguard/settings.js';

export interface Cluster {
  readonly agent: ClusterAgent;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  readonly env: NodeJS.ProcessEnv;
  /** The state directory: this host's node id (cluster/node-id.ts) and the WireGuard private key (wireguard/keyfile.ts) are there, beside the journal. */
  readonly stateDir: string;
  readonly log: Logger;
  readonly exec: ExecaExecutor;
  readonly state: () => StateView;
  readonly nameOf: (e: EndpointRecord) => DnsNames | undefined;
  readonly onRemoteChange: () => void;
  readonly onLag: (seconds: number) => void;
  readonly onRefused: (reason: RefusalReason) => void;
  /** Deletes a settled departure from the journal (plugin.ts departureSettled). */
  readonly departureSettled: (cluster: string, log: Logger) => Promise<void>;
  /** A cluster network's policies or remote endpoints changed (plugin.ts clusterPolicyChanged). */
  readonly policyChanged?: AgentOptions['policyChanged'];
}

/** The interfaces of this host (its namespace) that hold `address`. */
export const interfacesHolding = (address: string): string[] =>
  Object.entries(networkInterfaces()).flatMap(([dev, addrs]) => (addrs?.some((a) => a.address === address) ? [dev] : []));

/** The MTU of the interface that holds `address` (the underlay); 1500 when none does. */
export function underlayMtu(
  address: string,
  log: Logger,
  readMtu = (dev: string): string => readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8'),
): number {
  for (const dev of interfacesHolding(address)) {
    const mtu = Number(readMtu(dev).trim());
    if (Number.isInteger(mtu) && mtu >= UNDERLAY_MTU_MIN) return mtu;
  }
  log.warn({ address }, 'cluster: no interface holds MYNET_NODE_ADDRESS; assuming an underlay MTU of 1500');
  return 1500;
}

export async function startCluster(o: StartClusterOptions): Promise<Cluster | undefined> {
  const settings = parseClusterSettings(o.env, hostname());
  if (!settings) return undefined;
  const read = readTls(settings);
  const tls = read && checkTls(read);
  const address = settings.nodeAddress ?? (await sourceAddressTowards(settings.endpoints[0] as string));
  const log = o.log.child({ cluster: true });
  // Before the etcd client exists: a damaged id file stops the start, as a damaged journal does.
  const nodeId = loadNodeId(o.stateDir);
  if (nodeId.made) log.info({ nodeId: nodeId.id }, "cluster: made this host's node id (kept in the state directory)");
  // The etcd client (etcd3, gRPC, protobuf: ~250 ms to load here) only for a cluster.
  const { EtcdKv } = await import('../cluster/etcd-kv.js');
  const kv = new EtcdKv({ endpoints: settings.endpoints, ...(tls && { tls }) });
  const store = new ClusterStore(kv, { name: settings.nodeName, address, id: nodeId.id });
  const wg = parseWireGuardSettings(o.env);
  const mtu = underlayMtu(address, log);
  // Over either underlay family: the tunnel addresses are IPv4 whatever it is (wireguard/settings.ts).
  const wireguard = new WireGuardLifecycle({
    settings: wg,
    // Probed at each encrypted create (a few stat calls): installing wireguard-go needs no restart.
    probe: () => probeHost(o.env),
    kv,
    exec: o.exec,
    command: (argv, l) => o.exec.command(argv, l),
    log: log.child({ wireguard: wg.iface }),
    node: { name: settings.nodeName, address },
    stateDir: o.stateDir,
    tunnelCidr: wg.address ?? tunnelAddressFor(address),
    underlayMtu: mtu,
  });
  const agent = new ClusterAgent({
    wireguard,
    store,
    underlayMtu: mtu,
    exec: o.exec,
    read: (argv, l) => o.exec.command(argv, l),
    log,
    state: o.state,
    nameOf: o.nameOf,
    onRemoteChange: o.onRemoteChange,
    onLag: o.onLag,
    onRefused: o.onRefused,
    departureSettled: o.departureSettled,
    ...(o.policyChanged && { policyChanged: o.policyChanged }),
    presenceTtlS: settings.presenceTtlS,
    underlayAnswers: (address) => underlayAnswers(address),
    // Finding 9: asked again by the reconcile loop; no route is carried into the report, not thrown.
    addressSetting: settings.nodeAddress === undefined ? 'detected' : 'MYNET_NODE_ADDRESS',
    underlayNow: async () => {
      const held = interfacesHolding(address).length > 0;
      try {
        return { source: await sourceAddressTowards(settings.endpoints[0] as string), held };
      } catch (err) {
        return { error: messageOf(err), held };
      }
    },
  });
  // Paths and names only: the settings object holds no key material (cluster/settings.ts).
  log.info(
    { endpoints: settings.endpoints, node: settings.nodeName, nodeId: nodeId.id, address, tls: settings.tls, wireguard: wg },
    'cluster: configured',
  );
  return {
    agent,
    async stop() {
      await agent.stop();
      o.exec.close();
      // The client's close waits for its channels; a hung one must not hold the shutdown.
      await Promise.race([kv.close(), new Promise((r) => setTimeout(r, 500).unref())]);
    },
  };
}
