/**
 * `mynet cluster status`: this node, whether etcd answers, each cluster network's plane, and the
 * members (present in etcd, or known from the followed records when etcd is away). Its own file
 * because it only reads what the other parts keep; the admin socket and the CLI import its types
 * through agent.ts.
 */
import type { NodeRecord } from '../cluster/records.js';
import { messageOf } from '../errors.js';
import type { AgentCore } from './agent-core.js';
import type { LostAddress } from './converge.js';
import { type AddressMove, moveStatus } from './readdress.js';
import type { PeerStatus } from './wireguard/port.js';

export interface MemberStatus {
  readonly name: string;
  readonly address: string;
  readonly up: boolean | undefined;
  readonly endpoints: number;
}

export interface ClusterStatus {
  readonly node: string;
  /** This host's node id (cluster/node-id.ts). */
  readonly nodeId?: string;
  /** Why this host makes no cluster change (its name is another node's: finding 5). */
  readonly refused?: string;
  readonly address: string;
  /** This host's underlay address is no longer the one the plugin runs with (finding 9): a restart moves it. */
  readonly addressMoved?: AddressMove & { readonly restart: string };
  readonly etcd: 'up' | 'down';
  readonly etcdError?: string;
  readonly networks: readonly {
    readonly cluster: string;
    readonly network: string;
    readonly synced: boolean;
    readonly remote: number;
    /** etcd's definition is not the one this host built: what differs (finding 23). */
    readonly definitionDiffers?: string;
    /** Addresses held here that another node's claim holds in etcd (finding 4: forgotten while away). */
    readonly lost?: readonly LostAddress[];
    /** Policies in etcd that do not check (issue 25): ignored, with why. */
    readonly refusedPolicies?: readonly string[];
  }[];
  readonly members: readonly MemberStatus[];
  /** This host's WireGuard (issue 24), while an encrypted network is up. */
  readonly wireguard?: { readonly iface: string; readonly peers: readonly PeerStatus[] };
}

export async function status(a: AgentCore): Promise<ClusterStatus> {
  let nodes: NodeRecord[] | undefined;
  try {
    nodes = await a.call(a.o.store.listNodes());
  } catch {
    nodes = undefined; // etcd down: members from the followed records, up unknown
  }
  const counts = new Map<string, { address: string; n: number }>();
  for (const p of a.planes.values()) {
    for (const e of p.records.values()) {
      const c = counts.get(e.node) ?? { address: e.underlay, n: 0 };
      c.n++;
      counts.set(e.node, c);
    }
  }
  const names = new Set([...counts.keys(), ...(nodes ?? []).map((x) => x.name), a.node.name]);
  const members = [...names].sort().map((name): MemberStatus => {
    const present = nodes?.find((x) => x.name === name);
    return {
      name,
      address: present?.address ?? counts.get(name)?.address ?? (name === a.node.name ? a.node.address : '?'),
      up: nodes ? present !== undefined : undefined,
      endpoints: counts.get(name)?.n ?? 0,
    };
  });
  const networks = [...a.planes.values()].map((p) => ({
    cluster: p.binding.name,
    network: p.networkId.slice(0, 12),
    synced: p.synced,
    remote: p.remoteCount(),
    ...(a.definitionDiffers.has(p.binding.name) && { definitionDiffers: a.definitionDiffers.get(p.binding.name) }),
    ...(a.lost.has(p.binding.name) && { lost: a.lost.get(p.binding.name) }),
    ...(p.policies.refused.size > 0 && { refusedPolicies: [...p.policies.refused.values()] }),
  }));
  const wireguard = await a.o.wireguard?.status().catch((err: unknown) => {
    // Status shows what it can: the rest of it does not wait on wg.
    a.o.log.warn({ err: messageOf(err) }, 'wireguard: reading the peers for status failed');
    return undefined;
  });
  return {
    node: a.node.name,
    ...(a.node.id !== undefined && { nodeId: a.node.id }),
    ...(a.refused && { refused: a.refused.message }),
    address: a.node.address,
    ...(a.moved && { addressMoved: moveStatus(a.moved) }),
    etcd: a.reachable ? 'up' : 'down',
    ...(a.lastError && { etcdError: a.lastError }),
    networks,
    members,
    ...(wireguard && { wireguard }),
  };
}
