/**
 * The state the cluster agent's parts share (agent.ts wires them): the options, the planes, the
 * queue of releases and withdrawals, the claims in flight, what was published, whether etcd
 * answers. Its own file so that claims.ts, publishing.ts, convergence.ts, membership.ts and
 * status.ts each read and write the one copy without importing agent.ts (no import circle).
 */
import type { Logger } from 'pino';
import type { ClusterStore, NetworkRef, NodeIdentity } from '../cluster/cluster-store.js';
import type { PrefixFollower } from '../cluster/follower.js';
import { keys } from '../cluster/keys.js';
import type { ClusterBinding, ClusterPolicyInput, EndpointRecord, StateView } from '../driver/state.js';
import { PluginError } from '../errors.js';
import type { Executor } from '../host/executor.js';
import { Backoff } from '../cluster/backoff.js';
import type { LostAddress } from './converge.js';
import type { DnsNames } from './dns-names.js';
import type { AddressMove, UnderlayNow } from './readdress.js';
import type { NetworkPlane } from './plane.js';
import type { RefusalReason } from './trust.js';
import type { WireGuardPort } from './wireguard/port.js';

export interface AgentOptions {
  readonly store: ClusterStore;
  /** The MTU of the underlay interface (the one holding the node address). */
  readonly underlayMtu: number;
  readonly exec: Executor;
  readonly read: (argv: readonly string[], log: Logger) => Promise<string>;
  readonly log: Logger;
  readonly state: () => StateView;
  /** The container name and aliases of a local endpoint, when Docker told us (dns-names.ts). */
  readonly nameOf?: (e: EndpointRecord) => DnsNames | undefined;
  readonly onRemoteChange?: () => void;
  readonly onLag?: (seconds: number) => void;
  /** An endpoint record of another host was not believed (multihost/trust.ts). */
  readonly onRefused?: (reason: RefusalReason) => void;
  readonly presenceTtlS?: number;
  readonly backoffMs?: { readonly first: number; readonly max: number };
  /** How long `--ip` of an address another host holds waits for its release (CLAIM_GRACE_MS). */
  readonly claimGraceMs?: number;
  /** Deletes a settled departure from the journal (plugin.ts); without it departures wait. */
  readonly departureSettled?: (cluster: string, log: Logger) => Promise<void>;
  /**
   * Whether a node's registered underlay address answers (host/underlay-probe.ts), asked by
   * `mynet cluster forget` (finding 4); without it (unit fakes) nothing is probed.
   */
  readonly underlayAnswers?: (address: string) => Promise<boolean>;
  /** Encrypted cluster networks (issue 24): whether this host can, and its tunnel address. */
  readonly wireguard?: WireGuardPort;
  /** This host's addresses now, asked by the reconcile loop (finding 9); without it nothing is asked. */
  readonly underlayNow?: () => Promise<UnderlayNow>;
  /** Where the node address came from: detected (the default) or MYNET_NODE_ADDRESS. */
  readonly addressSetting?: AddressMove['setting'];
  /**
   * What a cluster network's table must enforce changed (issue 25: its policies in etcd, or the
   * other hosts' endpoints); undefined: the network is gone here (Plugin.clusterPolicyChanged).
   */
  readonly policyChanged?: (networkId: string, input: ClusterPolicyInput | undefined) => void;
}

/** What an address claim needs of the stored definition. */
export const refOf = (c: ClusterBinding): NetworkRef => ({
  cluster: c.name,
  subnet: c.subnet,
  gateway: c.gateway,
  ...(c.subnet6 !== undefined && { subnet6: c.subnet6 }),
  ...(c.gateway6 !== undefined && { gateway6: c.gateway6 }),
});

export class AgentCore {
  readonly planes = new Map<string, NetworkPlane>();
  stopped = false;
  reachable = false;
  lastError: string | undefined;
  convergeQueued = false;
  /** Endpoint names and labels last published (publishing.ts publishedKey): a change republishes only what changed. */
  readonly published = new Map<string, string>();
  /**
   * Releases and withdrawals run after the answer, one after another in the order they were
   * asked (a withdrawal before the release of its address): dockerd does not wait for etcd's two
   * round trips on every `docker rm`. Nothing is lost if one fails or the plugin dies first: the
   * journal no longer holds the address or endpoint, and the next convergence removes it.
   */
  ops: Promise<void> = Promise.resolve();
  /** Address keys with a release still queued: no claim of this host may take them before it ran. */
  readonly releasing = new Map<string, number>();
  /** Claims made and not yet in the journal (their requests run outside the lock): never offered twice. */
  readonly inFlight = new Set<string>();
  /**
   * Cluster networks whose definition in etcd is not the one this host built, by cluster name:
   * what differs, as the refusal said it (issue 22, finding 23). Set and cleared by each
   * convergence; shown by `mynet status` and the doctor, never repaired by itself (which of the
   * two is right is the operator's call: the hosts that built etcd's, or this one).
   */
  readonly definitionDiffers = new Map<string, string>();
  /**
   * Addresses this host's journal holds that another node's claim holds in etcd, by cluster name
   * (issue 22, finding 4: this host was forgotten while away and the address given again). Set by
   * each convergence; shown by `mynet status`, the doctor and mynet_cluster_addresses_lost.
   */
  readonly lost = new Map<string, readonly LostAddress[]>();
  /** The convergence running, if any (one at a time). */
  converging: Promise<void> = Promise.resolve();
  /** The presences of the nodes (nodes/ prefix), followed. */
  members: PrefixFollower | undefined;
  /** The claims of each cluster network, one after another (claim()). */
  readonly claimQueues = new Map<string, Promise<void>>();
  /** Convergences tried again while departures are owed and etcd does not take them. */
  readonly departureRetry: Backoff;
  departureTimer: NodeJS.Timeout | undefined;
  /**
   * Set while etcd has a live presence of this host's name with another node id (finding 5):
   * this host then claims, publishes, defines and converges nothing, so it takes nothing of that
   * node's; every cluster request fails with this error. Cleared when its presence is taken.
   */
  refused: PluginError | undefined;
  /**
   * Set while this host's underlay address no longer fits the one the plugin runs with (finding
   * 9); shown by `mynet status` and the doctor until a restart (or the address coming back).
   */
  moved: AddressMove | undefined;

  constructor(readonly o: AgentOptions) {
    this.departureRetry = new Backoff(o.backoffMs);
  }

  get node(): NodeIdentity {
    return this.o.store.node;
  }

  /** Throws the refusal of this host's identity, if any (before any cluster write). */
  identityAccepted(): void {
    if (this.refused) throw this.refused;
  }

  /** Calls etcd, keeping track of whether it answers (status, metrics). */
  async call<T>(p: Promise<T>): Promise<T> {
    try {
      const v = await p;
      this.reachable = true;
      this.lastError = undefined;
      return v;
    } catch (err) {
      if (err instanceof PluginError && err.code === 'CLUSTER_UNAVAILABLE') {
        this.reachable = false;
        this.lastError = err.message;
      }
      throw err;
    }
  }

  /**
   * Whether a node's presence is in etcd (its lease alive). While the copy of the presences is not
   * complete (etcd away), every node counts as up: nothing is taken away because etcd went.
   */
  isUp(node: string): boolean {
    const m = this.members;
    if (!m || m.current !== 'synced' || node === this.node.name) return true;
    return m.mirror.get(keys.node(node)) !== undefined;
  }

  later(fn: () => Promise<void>): void {
    this.ops = this.ops.then(fn);
  }

  planeOf(c: ClusterBinding): NetworkPlane | undefined {
    return [...this.planes.values()].find((p) => p.binding.name === c.name);
  }
}
