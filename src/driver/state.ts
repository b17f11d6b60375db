/**
 * What mynet remembers: networks, endpoints and IPAM pools. Decisions (driver/*.ts) read a State
 * and return a list of Changes; the orchestrator applies them here only after the host steps
 * succeeded and the changes were saved. Changes are small and idempotent (the journal in
 * store/file-store.ts replays them), and apply() is the only code that mutates what a State
 * journals. `clusterPolicy` is not journaled: it is etcd's copy of the cluster networks'
 * policies (issue 25), set under the request lock by Plugin.clusterPolicyChanged.
 */
import type { Labels } from '../rules/label.js';
import type { Policy } from '../policy/document.js';
import type { PolicyEndpoint } from '../policy/compile.js';
import { PluginError } from '../errors.js';
import { formatIp, parseIp } from '../ip/address.js';
import { IntervalSet, type Interval } from '../ip/interval-set.js';
import type { NetworkOptions } from '../protocol/options.js';

export interface SubnetRecord {
  /** Canonical CIDR, e.g. "10.1.0.0/24". */
  readonly pool: string;
  /** Gateway address with the pool's prefix length, e.g. "10.1.0.1/24", when dockerd gave one. */
  readonly gateway?: string;
}

/**
 * A cluster network's definition as etcd recorded it (issue 17), kept in the network record so
 * the host rebuilds its bridge and VXLAN device without etcd (after a reboot, with etcd down).
 */
export interface ClusterBinding {
  readonly name: string;
  /** Canonical IPv4 CIDR, as recorded. */
  readonly subnet: string;
  /** The anycast gateway: the same address and MAC on every host's bridge. */
  readonly gateway: string;
  readonly gatewayMac: string;
  /** Dual stack (issue 23): the recorded IPv6 subnet and anycast gateway; absent: IPv4 only. */
  readonly subnet6?: string;
  readonly gateway6?: string;
  readonly vni: number;
  /** The bridge's, the VXLAN device's and both veth ends' MTU (underlay minus VXLAN's overhead, rules/mtu.ts). */
  readonly mtu: number;
  /** This host's underlay address when the network was made (the VXLAN device's source). */
  readonly local: string;
  /** As recorded (issue 23): absent in bindings stored before, which had neither. */
  readonly internal?: true;
  /** Broadcast and multicast cross hosts: an all-zero forwarding entry per member host. */
  readonly multicast?: true;
  /** Through WireGuard (issue 24): the VXLAN device's source is then this host's tunnel address. */
  readonly encrypt?: 'wireguard';
  /** An encrypted network's: this host's WireGuard interface, the only way its VXLAN may come in (plan/vxlan-firewall.ts). */
  readonly tunnelIf?: string;
}

export interface NetworkRecord {
  readonly id: string;
  readonly bridge: string;
  readonly options: NetworkOptions;
  readonly ipv4: readonly SubnetRecord[];
  readonly ipv6: readonly SubnetRecord[];
  readonly createdAt: string;
  readonly cluster?: ClusterBinding;
}

/** The MTU of the network's bridge and veths: a cluster network's is its recorded one. */
export const mtuOf = (n: NetworkRecord): number => n.cluster?.mtu ?? n.options.mtu;

export interface PortBinding {
  readonly proto: 'tcp' | 'udp' | 'sctp';
  readonly containerPort: number;
  readonly hostIp: string;
  readonly hostPort: number;
}

export interface EndpointRecord {
  readonly id: string;
  readonly networkId: string;
  readonly hostIf: string;
  readonly containerIf: string;
  readonly mac: string;
  /** Container addresses with prefix length, as dockerd sent them ("10.1.0.2/24"). */
  readonly address?: string;
  readonly addressV6?: string;
  readonly sandboxKey?: string;
  /** Ports in force (set by ProgramExternalConnectivity, cleared by Revoke/Leave). */
  readonly ports: readonly PortBinding[];
  /** Its `mynet.label.*` driver options, for network policy (issue 25); absent when none. */
  readonly labels?: Labels;
  /**
   * Its container's `mynet.label.*` Docker labels, as the Engine API follow last saw them
   * (driver/container-labels.ts): none of a key `labels` has, and with them at most LABELS_MAX;
   * absent until seen, or when none. Policy reads both (rules/label.ts endpointLabels).
   */
  readonly containerLabels?: Labels;
}

export interface PoolRecord {
  readonly id: string;
  readonly space: string;
  readonly pool: string;
  readonly subPool?: string;
  readonly family: 4 | 6;
  readonly options: Readonly<Record<string, string>>;
}

export interface PoolState {
  readonly record: PoolRecord;
  readonly taken: IntervalSet;
  /** Last address handed out automatically: the next search starts after it (serial allocation, like Docker's IPAM). */
  cursor: bigint | undefined;
}

/**
 * A cluster network this host left while etcd may not have heard of it (issue 22, finding 7):
 * its address claims and endpoint records in etcd are this host's to remove when etcd answers.
 * Kept in the journal in the same line as the network's delete, so no crash or restart between
 * the answer to DeleteNetwork and etcd's return loses it; deleted once etcd holds nothing of
 * this host's in that cluster (multihost/departures.ts), or when the network is made here again.
 */
export interface DepartureRecord {
  readonly cluster: string;
  readonly subnet: string;
}

/**
 * A network policy (issue 25) as stored: the user's document and the network it resolved to
 * when it was applied (its `network` may be a Docker name, an id or a cluster name; the id is
 * what the table is keyed by). Deleted with its network, in the same journal line.
 */
export interface PolicyRecord extends Policy {
  readonly networkId: string;
}

/**
 * What etcd says of a cluster network's policies (issue 25), as this host's plane last read it:
 * the policies that check (their `network` is the cluster's name) and the other hosts' believed
 * endpoints with their record labels, the sources a policy's `from` may match. This host's own
 * endpoints come from the state, as on a local network.
 */
export interface ClusterPolicyInput {
  readonly policies: readonly Policy[];
  readonly remote: readonly PolicyEndpoint[];
}

export type Change =
  | { readonly op: 'network.put'; readonly network: NetworkRecord }
  | { readonly op: 'network.delete'; readonly id: string }
  | { readonly op: 'endpoint.put'; readonly endpoint: EndpointRecord }
  | { readonly op: 'endpoint.delete'; readonly id: string }
  | { readonly op: 'pool.put'; readonly pool: PoolRecord }
  | { readonly op: 'pool.delete'; readonly id: string }
  | { readonly op: 'address.take'; readonly pool: string; readonly address: string; readonly cursor?: boolean }
  | { readonly op: 'address.free'; readonly pool: string; readonly address: string }
  | { readonly op: 'departure.put'; readonly departure: DepartureRecord }
  | { readonly op: 'departure.delete'; readonly cluster: string }
  | { readonly op: 'policy.put'; readonly policy: PolicyRecord }
  | { readonly op: 'policy.delete'; readonly name: string };

/** Read-only view given to decisions. */
export interface StateView {
  readonly networks: ReadonlyMap<string, NetworkRecord>;
  readonly endpoints: ReadonlyMap<string, EndpointRecord>;
  readonly pools: ReadonlyMap<string, Readonly<PoolState>>;
  /** Cluster networks left whose records etcd may still hold, by cluster name. */
  readonly departures: ReadonlyMap<string, DepartureRecord>;
  /** Network policies by name (issue 25). */
  readonly policies: ReadonlyMap<string, PolicyRecord>;
  /** Cluster networks' policies and remote endpoints as etcd says, by network id (absent in fakes: none). */
  readonly clusterPolicy?: ReadonlyMap<string, ClusterPolicyInput>;
}

export interface Snapshot {
  readonly version: 1;
  readonly seq: number;
  readonly networks: readonly NetworkRecord[];
  readonly endpoints: readonly EndpointRecord[];
  readonly pools: ReadonlyArray<PoolRecord & { readonly taken: ReadonlyArray<readonly [string, string]>; readonly cursor?: string }>;
  /** Absent in the snapshots of a mynet before departures: none. */
  readonly departures?: readonly DepartureRecord[];
  /** Absent in the snapshots of a mynet before policies, and when there are none. */
  readonly policies?: readonly PolicyRecord[];
}

const addrValue = (text: string): bigint => {
  const a = parseIp(text);
  if (!a) throw new PluginError('STATE_CORRUPT', `invalid address "${text}" in state`);
  return a.value;
};

export class State implements StateView {
  readonly networks = new Map<string, NetworkRecord>();
  readonly endpoints = new Map<string, EndpointRecord>();
  readonly pools = new Map<string, PoolState>();
  readonly departures = new Map<string, DepartureRecord>();
  readonly policies = new Map<string, PolicyRecord>();
  readonly clusterPolicy = new Map<string, ClusterPolicyInput>();
  /** Sequence number of the last change set applied (the journal's position). */
  seq = 0;

  apply(changes: readonly Change[]): void {
    for (const c of changes) {
      switch (c.op) {
        case 'network.put':
          this.networks.set(c.network.id, c.network);
          break;
        case 'network.delete':
          this.networks.delete(c.id);
          break;
        case 'endpoint.put':
          this.endpoints.set(c.endpoint.id, c.endpoint);
          break;
        case 'endpoint.delete':
          this.endpoints.delete(c.id);
          break;
        case 'pool.put': {
          const old = this.pools.get(c.pool.id);
          this.pools.set(c.pool.id, { record: c.pool, taken: old?.taken ?? new IntervalSet(), cursor: old?.cursor });
          break;
        }
        case 'pool.delete':
          this.pools.delete(c.id);
          break;
        case 'address.take': {
          const p = this.pools.get(c.pool);
          if (!p) break; // the pool went away in the same batch or earlier: nothing to record
          const v = addrValue(c.address);
          p.taken.add(v);
          if (c.cursor) p.cursor = v;
          break;
        }
        case 'address.free':
          this.pools.get(c.pool)?.taken.delete(addrValue(c.address));
          break;
        case 'departure.put':
          this.departures.set(c.departure.cluster, c.departure);
          break;
        case 'departure.delete':
          this.departures.delete(c.cluster);
          break;
        case 'policy.put':
          this.policies.set(c.policy.name, c.policy);
          break;
        case 'policy.delete':
          this.policies.delete(c.name);
          break;
      }
    }
  }

  toSnapshot(): Snapshot {
    const fmt = (p: PoolState): Snapshot['pools'][number] => {
      const family = p.record.family;
      const text = (v: bigint): string => formatAddr(family, v);
      return {
        ...p.record,
        taken: p.taken.intervals().map(([a, b]: Interval) => [text(a), text(b)] as const),
        ...(p.cursor !== undefined ? { cursor: text(p.cursor) } : {}),
      };
    };
    return {
      version: 1,
      seq: this.seq,
      networks: [...this.networks.values()],
      endpoints: [...this.endpoints.values()],
      pools: [...this.pools.values()].map(fmt),
      ...(this.departures.size > 0 && { departures: [...this.departures.values()] }),
      ...(this.policies.size > 0 && { policies: [...this.policies.values()] }),
    };
  }

  static fromSnapshot(s: Snapshot): State {
    const st = new State();
    st.seq = s.seq;
    for (const n of s.networks) st.networks.set(n.id, n);
    for (const e of s.endpoints) st.endpoints.set(e.id, e);
    for (const d of s.departures ?? []) st.departures.set(d.cluster, d);
    for (const p of s.policies ?? []) st.policies.set(p.name, p);
    for (const p of s.pools) {
      const { taken, cursor, ...record } = p;
      st.pools.set(p.id, {
        record,
        taken: IntervalSet.from(taken.map(([a, b]) => [addrValue(a), addrValue(b)] as const)),
        cursor: cursor === undefined ? undefined : addrValue(cursor),
      });
    }
    return st;
  }
}

const formatAddr = (family: 4 | 6, value: bigint): string => formatIp({ family, value });

export function networkOf(state: StateView, id: string): NetworkRecord {
  const n = state.networks.get(id);
  if (!n) throw new PluginError('NETWORK_NOT_FOUND', `NetworkID: no mynet network ${id.slice(0, 12)}`);
  return n;
}

export function endpointOf(state: StateView, id: string): EndpointRecord {
  const e = state.endpoints.get(id);
  if (!e) throw new PluginError('ENDPOINT_NOT_FOUND', `EndpointID: no mynet endpoint ${id.slice(0, 12)}`);
  return e;
}
