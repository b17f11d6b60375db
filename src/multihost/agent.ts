/**
 * This host's part in the cluster (issue 17): what the orchestrator (plugin.ts) asks of etcd at
 * each of dockerd's calls, the data plane of every local cluster network (plane.ts), this host's
 * presence, and the convergence of its own records with its journal (converge.ts). With no
 * MYNET_ETCD_ENDPOINTS there is no agent and nothing here runs.
 *
 * The journal stays the truth about this host. A release or a withdrawal that etcd does not take
 * (it is down) is not lost: the journal no longer holds the address or endpoint, and the next
 * convergence (when a follower lists again after the outage) removes it from etcd. Every etcd
 * call is bounded (cluster/etcd-kv.ts, 3 s), so a dead etcd costs a request at most that long.
 *
 * ClusterAgent is the thin class that wires the agent's parts, each in its own file: the shared
 * state (agent-core.ts), address claims and releases (claims.ts), endpoint records and their
 * names (publishing.ts), convergence (convergence.ts), presence and membership (membership.ts),
 * the cluster networks and their planes (networks.ts), and status (status.ts).
 */
import type { Logger } from 'pino';
import type { ForgetOutcome, NetworkWanted, NodeIdentity } from '../cluster/cluster-store.js';
import type { ContainerInfo } from '../dns/records.js';
import type { ClusterBinding, EndpointRecord, NetworkRecord } from '../driver/state.js';
import { PluginError, messageOf } from '../errors.js';
import { AgentCore, type AgentOptions } from './agent-core.js';
import * as claims from './claims.js';
import * as convergence from './convergence.js';
import { Membership } from './membership.js';
import * as networks from './networks.js';
import type { NetworkPlane } from './plane.js';
import type { Difference } from '../doctor/difference.js';
import * as publishing from './publishing.js';
import { addressMove, moveChange, moveDifferences } from './readdress.js';
import * as policyWrites from './policy-writes.js';
import type { Policy } from '../policy/document.js';
import { type ClusterStatus, status } from './status.js';
import type { PeerStatus } from './wireguard/port.js';

export type { AgentOptions } from './agent-core.js';
export { CLAIM_GRACE_MS } from './claims.js';
export type { ClusterStatus, MemberStatus } from './status.js';

/** What the orchestrator asks of the cluster (plugin.ts); one implementation, this agent. */
export interface ClusterPort {
  defineNetwork(w: NetworkWanted, log: Logger): Promise<ClusterBinding>;
  /**
   * Claims `address` (`--ip`) or the first of `candidates` no host holds; answers the address.
   * Called outside the request lock: until `settled`, the address is not offered to another claim.
   */
  claim(c: ClusterBinding, address: string | undefined, candidates: () => Iterable<string>, log: Logger): Promise<string>;
  /** The claimed address is in the journal now, or given up: it leaves the claims in flight. */
  settled(c: ClusterBinding, address: string): void;
  /** Never fails: what etcd does not take now, the next convergence does. */
  release(c: ClusterBinding, address: string, log: Logger): Promise<void>;
  publish(c: ClusterBinding, e: EndpointRecord, log: Logger): Promise<void>;
  withdraw(c: ClusterBinding, endpointId: string, log: Logger): Promise<void>;
  networkUp(n: NetworkRecord): void;
  networkDown(networkId: string): Promise<void>;
  /** A departure is in the journal: settled now (on the queue, after the answer), not at the next sync. */
  departed(): void;
  /** Writes policies of cluster networks to etcd (issue 25), create-or-replace. */
  applyPolicies(items: readonly { cluster: string; policy: Policy }[], log: Logger): Promise<{ applied: string[] }>;
  /** Deletes a policy from etcd in every cluster network of this host's; answers those that held it. */
  removePolicy(name: string, log: Logger): Promise<string[]>;
  /** Publishes again, after the answer, the endpoints whose Docker names or labels changed since published. */
  namesChanged(): void;
}

export class ClusterAgent implements ClusterPort {
  readonly planes: Map<string, NetworkPlane>;
  private readonly a: AgentCore;
  private readonly membership: Membership;

  constructor(o: AgentOptions) {
    this.a = new AgentCore(o);
    this.planes = this.a.planes;
    this.membership = new Membership(this.a, () => this.scheduleConverge());
    o.wireguard?.onPeers(() => networks.peersChanged(this.a));
  }

  get node(): NodeIdentity {
    return this.a.node;
  }

  get etcdUp(): boolean {
    return this.a.reachable;
  }

  /** Presence and the planes of the stored cluster networks; never waits for etcd. */
  start(): void {
    for (const n of this.a.o.state().networks.values()) this.networkUp(n);
    this.membership.start();
  }

  /**
   * Whether a node's presence is in etcd (its lease alive). While the copy of the presences is not
   * complete (etcd away), every node counts as up: nothing is taken away because etcd went.
   */
  isUp(node: string): boolean {
    return this.a.isUp(node);
  }

  /**
   * Leaves the cluster, each step bounded (a shutdown has 8 s in all, main.ts): queued releases
   * get a second (the journal has them for the next start anyway), the watches a second, the
   * presence lease's revoke 1.5 s (else it expires by itself within its TTL).
   */
  async stop(): Promise<void> {
    const a = this.a;
    a.stopped = true;
    a.convergeQueued = true; // none scheduled from here on
    this.membership.stopRetrying();
    clearTimeout(a.departureTimer);
    const within = async (what: string, p: Promise<unknown>, ms: number): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
      const r = await Promise.race([
        p.then(
          () => 'done' as const,
          (err: unknown) => a.o.log.warn({ err: messageOf(err) }, `cluster: ${what} failed at shutdown`),
        ),
        late,
      ]);
      clearTimeout(timer);
      if (r === 'late') a.o.log.warn({ ms }, `cluster: ${what} did not finish at shutdown; going on`);
    };
    await within('queued releases', a.ops, 1000);
    await within(
      'stopping the watches',
      Promise.all([...[...a.planes.values()].map((p) => p.stop().then(() => p.cancelled)), a.members?.stop()]),
      1000,
    );
    a.planes.clear();
    if (a.o.wireguard) await within('stopping the WireGuard peers watch', a.o.wireguard.stop(), 1000);
    const presence = this.membership.takePresence();
    if (presence) await within('revoking the presence lease (it expires by itself)', presence.stop(), 1500);
  }

  defineNetwork(w: NetworkWanted, log: Logger): Promise<ClusterBinding> {
    return networks.defineNetwork(this.a, w, log);
  }

  /** One claim at a time per cluster network (claims.ts). */
  claim(c: ClusterBinding, address: string | undefined, candidates: () => Iterable<string>, log: Logger): Promise<string> {
    return claims.claim(this.a, c, address, candidates, log);
  }

  settled(c: ClusterBinding, address: string): void {
    claims.settled(this.a, c, address);
  }

  release(c: ClusterBinding, address: string, log: Logger): Promise<void> {
    return claims.release(this.a, c, address, log);
  }

  publish(c: ClusterBinding, e: EndpointRecord, log: Logger): Promise<void> {
    return publishing.publish(this.a, c, e, log);
  }

  withdraw(c: ClusterBinding, endpointId: string, log: Logger): Promise<void> {
    return publishing.withdraw(this.a, c, endpointId, log);
  }

  networkUp(n: NetworkRecord): void {
    networks.networkUp(this.a, n, () => this.scheduleConverge());
  }

  applyPolicies(items: readonly { cluster: string; policy: Policy }[], log: Logger): Promise<{ applied: string[] }> {
    return policyWrites.applyPolicies(this.a, items, log);
  }

  removePolicy(name: string, log: Logger): Promise<string[]> {
    return policyWrites.removePolicy(this.a, name, log);
  }

  networkDown(networkId: string): Promise<void> {
    return networks.networkDown(this.a, networkId);
  }

  /** One convergence at a time, and at most one waiting: they all read the latest journal (convergence.ts). */
  departed(): void {
    this.scheduleConverge();
  }

  scheduleConverge(): void {
    convergence.scheduleConverge(
      this.a,
      () => this.converge(),
      () => this.scheduleConverge(),
    );
  }

  /** Takes this host's records in etcd to what its journal says (convergence.ts). */
  converge(): Promise<void> {
    return convergence.converge(this.a);
  }

  /** Docker's names changed: republish the endpoints whose name is new (publishing.ts). */
  namesChanged(): void {
    publishing.namesChanged(this.a, (c, e, log) => this.publish(c, e, log));
  }

  /** Remote endpoints as the DNS zone serves them: `<name>.<cluster>.<zone>`. */
  remoteNames(): ContainerInfo[] {
    return networks.remoteNames(this.a, (node) => this.isUp(node));
  }

  /** Addresses held here and claimed by another node (finding 4). */
  lostAddresses(): number {
    return networks.lostAddresses(this.a);
  }

  remoteEndpoints(): number {
    return networks.remoteEndpoints(this.a);
  }

  status(): Promise<ClusterStatus> {
    return status(this.a);
  }

  /** `mynet cluster forget <node>`: only a node that is not present, and never this one. */
  forget(node: string): Promise<ForgetOutcome> {
    return this.membership.forget(node);
  }

  /**
   * What the reconciler is told beyond the planes' views (Plugin.reconcileNow): whether this
   * host's underlay address still fits (finding 9), each network's notes and the WireGuard peers'
   * differences. A run that repairs (`repair`: the loop, `--fix`) also takes this host's records
   * in etcd back to its journal.
   */
  async findings(repair: boolean, log: Logger): Promise<Difference[]> {
    if (repair) this.scheduleConverge();
    await this.checkAddress(log);
    return [...moveDifferences(this.a.moved), ...(await networks.findings(this.a))];
  }

  /** Asks the host's addresses again (readdress.ts); logs once per change of what it finds. */
  async checkAddress(log: Logger): Promise<void> {
    const ask = this.a.o.underlayNow;
    if (!ask) return;
    const m = addressMove(this.a.node.address, this.a.o.addressSetting ?? 'detected', await ask());
    const change = moveChange(this.a.moved, m);
    this.a.moved = m;
    if (change) log[change.level]({ running: this.a.node.address, now: m?.now }, change.message);
  }

  /** `mynet cluster rotate-key`: a new WireGuard key pair for this host, republished. */
  rotateKey(): Promise<{ readonly publicKey: string }> {
    const wg = this.a.o.wireguard;
    if (!wg) return Promise.reject(new PluginError('INVALID_REQUEST', 'wireguard: this mynet was started without WireGuard support'));
    return wg.rotate();
  }

  /** This host's WireGuard peers now (metrics); none while no encrypted network is up. */
  async wireguardPeers(): Promise<readonly PeerStatus[]> {
    return (await this.a.o.wireguard?.status())?.peers ?? [];
  }

  /** Resolves when every plane has applied what it received. */
  async idle(): Promise<void> {
    await this.a.ops;
    await Promise.all([...this.a.planes.values()].map((p) => p.idle()));
  }
}
