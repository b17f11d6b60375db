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
 */
import type { Logger } from 'pino';
import { type ClusterStore, type ForgetOutcome, type NetworkWanted } from '../cluster/cluster-store.js';
import type { PrefixFollower } from '../cluster/follower.js';
import { NodePresence } from '../cluster/presence.js';
import type { AddressClaim, NodeRecord } from '../cluster/records.js';
import { clusterMtu, encryptedClusterMtu } from '../rules/mtu.js';
import { keys } from '../cluster/keys.js';
import type { ContainerInfo } from '../dns/records.js';
import type { ClusterBinding, EndpointRecord, NetworkRecord, StateView } from '../driver/state.js';
import { PluginError, messageOf } from '../errors.js';
import { formatIp, parseIp } from '../ip/address.js';
import type { Executor } from '../host/executor.js';
import { bareAddress } from '../rules/address.js';
import { type ConvergePlan, convergePlan, isEmptyPlan, type LocalEndpoint } from './converge.js';
import { type EntryDifference, NetworkPlane } from './plane.js';
import { type RefusalReason, ownEndpoints } from './trust.js';
import { type DnsNames, namesKey, recordNames } from './dns-names.js';
import { settleDepartures } from './departures.js';
import { Backoff, RateLimitedWarning } from '../cluster/backoff.js';
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
  /** Encrypted cluster networks (issue 24): whether this host can, and its tunnel address. */
  readonly wireguard?: WireGuardPort;
}

/**
 * How long a claim of one address (`--ip`) that another host holds keeps trying before it is
 * refused. That host answers dockerd's ReleaseAddress before etcd has the release (the agent's
 * queue), so for a few milliseconds after `docker rm` there the claim is still in etcd; `docker
 * run --ip` of it here right then must not fail. A real conflict is refused this much later,
 * after a handful of compare-and-creates; the orchestrator claims outside its request lock, so
 * the wait holds up no other request (issue 22, finding 6).
 */
export const CLAIM_GRACE_MS = 1000;

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
}

export interface MemberStatus {
  readonly name: string;
  readonly address: string;
  readonly up: boolean | undefined;
  readonly endpoints: number;
}

export interface ClusterStatus {
  readonly node: string;
  readonly address: string;
  readonly etcd: 'up' | 'down';
  readonly etcdError?: string;
  readonly networks: readonly { readonly cluster: string; readonly network: string; readonly synced: boolean; readonly remote: number }[];
  readonly members: readonly MemberStatus[];
}

/** What an address claim needs of the stored definition. */
const refOf = (c: ClusterBinding): { cluster: string; subnet: string; gateway: string } => ({
  cluster: c.name,
  subnet: c.subnet,
  gateway: c.gateway,
});

export class ClusterAgent implements ClusterPort {
  readonly planes = new Map<string, NetworkPlane>();
  private presence: NodePresence | undefined;
  private presenceTimer: NodeJS.Timeout | undefined;
  private presenceRetryMs = 500;
  private stopped = false;
  private reachable = false;
  private lastError: string | undefined;
  private convergeQueued = false;
  /** Endpoint names last published (namesKey), so a names change republishes only what changed. */
  private readonly published = new Map<string, string>();
  /**
   * Releases and withdrawals run after the answer, one after another in the order they were
   * asked (a withdrawal before the release of its address): dockerd does not wait for etcd's two
   * round trips on every `docker rm`. Nothing is lost if one fails or the plugin dies first: the
   * journal no longer holds the address or endpoint, and the next convergence removes it.
   */
  private ops: Promise<void> = Promise.resolve();
  /** Address keys with a release still queued: no claim of this host may take them before it ran. */
  private readonly releasing = new Map<string, number>();
  /** Claims made and not yet in the journal (their requests run outside the lock): never offered twice. */
  private readonly inFlight = new Set<string>();
  /** The convergence running, if any (one at a time). */
  private converging: Promise<void> = Promise.resolve();
  /** The presences of the nodes (nodes/ prefix), followed. */
  private members: PrefixFollower | undefined;
  /** The claims of each cluster network, one after another (claim()). */
  private readonly claimQueues = new Map<string, Promise<void>>();
  /** Convergences tried again while departures are owed and etcd does not take them. */
  private readonly departureRetry: Backoff;
  private departureTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: AgentOptions) {
    this.departureRetry = new Backoff(o.backoffMs);
  }

  get node(): { name: string; address: string } {
    return this.o.store.node;
  }

  get etcdUp(): boolean {
    return this.reachable;
  }

  /** Calls etcd, keeping track of whether it answers (status, metrics). */
  private async call<T>(p: Promise<T>): Promise<T> {
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

  /** Presence and the planes of the stored cluster networks; never waits for etcd. */
  start(): void {
    for (const n of this.o.state().networks.values()) this.networkUp(n);
    this.startPresence();
    // Who is present: a host whose lease expired has its names left out of DNS until it is back.
    this.members = this.o.store.followPrefix(keys.nodes(), this.o.backoffMs, () => this.o.onRemoteChange?.());
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

  private startPresence(): void {
    if (this.stopped) return;
    // One warning a minute while the lease stays lost (finding 18), however often it is tried.
    const lost = new RateLimitedWarning((f, m) => this.o.log.warn(f, m));
    const p = new NodePresence(this.o.store.kv, this.o.store.node, {
      ...(this.o.presenceTtlS !== undefined && { ttlS: this.o.presenceTtlS }),
      onLost: (err) => void lost.warnNow({ err: err.message }, 'cluster: presence lease lost; granting a new one when etcd answers'),
      onRestored: () => {
        lost.reset();
        this.o.log.info('cluster: presence restored');
        this.scheduleConverge(); // etcd is back: what it missed meanwhile (departures too)
      },
    });
    this.call(p.start()).then(
      () => {
        if (this.stopped) {
          void p.stop().catch(() => undefined);
          return;
        }
        this.presence = p;
        this.presenceRetryMs = 500;
        this.o.log.info({ node: this.node }, 'cluster: present in etcd');
        this.scheduleConverge();
      },
      (err: unknown) => {
        // Backing off to 30 s: an etcd away for hours must not write a warning every second.
        this.presenceRetryMs = Math.min(30_000, this.presenceRetryMs * 2);
        this.o.log.warn({ err: messageOf(err), retryMs: this.presenceRetryMs }, 'cluster: cannot register presence yet; retrying');
        this.presenceTimer = setTimeout(() => this.startPresence(), this.presenceRetryMs);
      },
    );
  }

  /**
   * Leaves the cluster, each step bounded (a shutdown has 8 s in all, main.ts): queued releases
   * get a second (the journal has them for the next start anyway), the watches a second, the
   * presence lease's revoke 1.5 s (else it expires by itself within its TTL).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.convergeQueued = true; // none scheduled from here on
    clearTimeout(this.presenceTimer);
    clearTimeout(this.departureTimer);
    const within = async (what: string, p: Promise<unknown>, ms: number): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
      const r = await Promise.race([
        p.then(
          () => 'done' as const,
          (err: unknown) => this.o.log.warn({ err: messageOf(err) }, `cluster: ${what} failed at shutdown`),
        ),
        late,
      ]);
      clearTimeout(timer);
      if (r === 'late') this.o.log.warn({ ms }, `cluster: ${what} did not finish at shutdown; going on`);
    };
    await within('queued releases', this.ops, 1000);
    await within('stopping the watches', Promise.all([...[...this.planes.values()].map((p) => p.stop()), this.members?.stop()]), 1000);
    this.planes.clear();
    const presence = this.presence;
    this.presence = undefined;
    if (presence) await within('revoking the presence lease (it expires by itself)', presence.stop(), 1500);
  }

  async defineNetwork(w: NetworkWanted, log: Logger): Promise<ClusterBinding> {
    // A host that cannot encrypt is refused before it writes anything (issue 24).
    const wg = w.encrypt
      ? (this.o.wireguard?.ability() ?? {
          ok: false as const,
          refusal: 'option mynet.encrypt: this mynet was started without WireGuard support',
        })
      : undefined;
    if (wg && !wg.ok) throw new PluginError('INVALID_REQUEST', wg.refusal);
    const mtu = Math.min(w.mtu, w.encrypt ? encryptedClusterMtu(this.o.underlayMtu) : clusterMtu(this.o.underlayMtu));
    const def = await this.call(this.o.store.defineNetwork({ ...w, mtu }));
    log.info({ cluster: def.cluster, vni: def.vni, createdBy: def.createdBy, encrypt: def.encrypt ?? 'none' }, 'cluster: network defined');
    // An encrypted network's VXLAN runs between tunnel addresses, inside WireGuard.
    const local = def.encrypt && this.o.wireguard ? this.o.wireguard.tunnelAddress : this.node.address;
    return {
      name: def.cluster,
      subnet: def.subnet,
      gateway: def.gateway,
      gatewayMac: def.gatewayMac,
      vni: def.vni,
      mtu: def.mtu,
      local,
      ...(def.internal && { internal: true }),
      ...(def.multicast && { multicast: true }),
      ...(def.encrypt && { encrypt: def.encrypt }),
    };
  }

  /**
   * One claim at a time per cluster network (never across networks, never under the request
   * lock): a claim that this node already holds succeeds again in etcd, so two made at once could
   * both be answered the same address; one after the other, the second skips the first's.
   */
  claim(c: ClusterBinding, address: string | undefined, candidates: () => Iterable<string>, log: Logger): Promise<string> {
    const run = (this.claimQueues.get(c.name) ?? Promise.resolve()).then(() => this.claimNow(c, address, candidates, log));
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.claimQueues.set(c.name, tail);
    void tail.then(() => {
      if (this.claimQueues.get(c.name) === tail) this.claimQueues.delete(c.name);
    });
    return run;
  }

  private async claimNow(c: ClusterBinding, address: string | undefined, candidates: () => Iterable<string>, log: Logger): Promise<string> {
    const ref = refOf(c);
    // A queued release of the same address would delete the claim made now: it runs first.
    if (address !== undefined && this.releasing.has(keys.address(c.name, bareAddress(address)))) await this.ops;
    const mirror = this.planeOf(c)?.claimKnown();
    if (!mirror && this.releasing.size > 0) await this.ops;
    const known = mirror && ((key: string): boolean => this.releasing.has(key) || mirror(key));
    // A claim of this node's is idempotent in etcd: one in flight for another request would be
    // answered again. Automatic addresses skip them; a `--ip` of one is refused at the journal.
    const free = function* (this: ClusterAgent): Iterable<string> {
      for (const a of candidates()) if (!this.inFlight.has(keys.address(c.name, a))) yield a;
    }.bind(this);
    const claim =
      address !== undefined ? await this.claimExact(ref, address, log) : await this.call(this.o.store.claimAny(ref, free(), 16, known));
    this.inFlight.add(keys.address(c.name, claim.address));
    log.debug({ cluster: c.name, address: claim.address }, 'cluster: address claimed');
    return claim.address;
  }

  /** One address: held by another host, tried again for up to CLAIM_GRACE_MS (a release on its way). */
  private async claimExact(ref: ReturnType<typeof refOf>, address: string, log: Logger): Promise<AddressClaim> {
    const end = Date.now() + (this.o.claimGraceMs ?? CLAIM_GRACE_MS);
    for (let wait = 25; ; wait *= 2) {
      try {
        return await this.call(this.o.store.claimAddress(ref, address));
      } catch (err) {
        const left = end - Date.now();
        if (!(err instanceof PluginError && err.code === 'CONFLICT') || left <= 0) throw err;
        log.debug(
          { cluster: ref.cluster, address, retryMs: Math.min(wait, left) },
          'cluster: address held by another host; trying again (its release may be on its way)',
        );
        await new Promise((r) => setTimeout(r, Math.min(wait, left)));
      }
    }
  }

  settled(c: ClusterBinding, address: string): void {
    this.inFlight.delete(keys.address(c.name, bareAddress(address)));
  }

  release(c: ClusterBinding, address: string, log: Logger): Promise<void> {
    const key = keys.address(c.name, bareAddress(address));
    this.releasing.set(key, (this.releasing.get(key) ?? 0) + 1);
    this.later(async () => {
      try {
        await this.call(this.o.store.releaseAddress(c.name, bareAddress(address)));
      } catch (err) {
        log.warn(
          { err: messageOf(err), cluster: c.name, address },
          'cluster: release not in etcd yet; the journal keeps it and it is applied when etcd answers',
        );
      } finally {
        const n = (this.releasing.get(key) ?? 1) - 1;
        if (n > 0) this.releasing.set(key, n);
        else this.releasing.delete(key);
      }
    });
    return Promise.resolve();
  }

  private later(fn: () => Promise<void>): void {
    this.ops = this.ops.then(fn);
  }

  async publish(c: ClusterBinding, e: EndpointRecord, log: Logger): Promise<void> {
    if (!e.address)
      throw new PluginError('INVALID_REQUEST', `Interface.Address: an endpoint of cluster network "${c.name}" needs an IPv4 address`);
    const names = recordNames(this.o.nameOf?.(e));
    const plane = this.planeOf(c);
    plane?.ownEndpointAdded(e.id, bareAddress(e.address), e.mac);
    try {
      await this.call(this.o.store.publishEndpoint({ cluster: c.name, id: e.id, address: bareAddress(e.address), mac: e.mac, ...names }));
    } catch (err) {
      plane?.ownEndpointRemoved(e.id); // the request fails and is rolled back: no endpoint of ours
      throw err;
    }
    this.published.set(e.id, namesKey(names));
    log.debug({ cluster: c.name, endpoint: e.id }, 'cluster: endpoint published');
  }

  withdraw(c: ClusterBinding, endpointId: string, log: Logger): Promise<void> {
    this.published.delete(endpointId);
    this.planeOf(c)?.ownEndpointRemoved(endpointId);
    this.later(async () => {
      try {
        await this.call(this.o.store.withdrawEndpoint(c.name, endpointId));
      } catch (err) {
        log.warn(
          { err: messageOf(err), cluster: c.name, endpoint: endpointId },
          'cluster: withdrawal not in etcd yet; applied when etcd answers',
        );
      }
    });
    return Promise.resolve();
  }

  networkUp(n: NetworkRecord): void {
    if (!n.cluster || this.planes.has(n.id) || this.stopped) return;
    const plane = new NetworkPlane(n.id, n.cluster, {
      store: this.o.store,
      exec: this.o.exec,
      read: this.o.read,
      log: this.o.log.child({ network: n.id.slice(0, 12), cluster: n.cluster.name }),
      self: this.node.name,
      selfUnderlay: this.node.address,
      own: () =>
        ownEndpoints(
          [...this.o.state().endpoints.values()]
            .filter((e) => e.networkId === n.id)
            .map((e) => ({ id: e.id, ...(e.address !== undefined && { address: bareAddress(e.address) }), mac: e.mac })),
        ),
      ...(this.o.onRefused && { onRefused: this.o.onRefused }),
      onRemoteChange: () => this.o.onRemoteChange?.(),
      onResynced: () => this.scheduleConverge(),
      onState: (s) => {
        if (s === 'synced') {
          this.reachable = true;
          this.scheduleConverge();
        } else if (s === 'resyncing') this.reachable = false;
      },
      ...(this.o.onLag && { onLag: this.o.onLag }),
      ...(this.o.backoffMs && { backoffMs: this.o.backoffMs }),
    });
    this.planes.set(n.id, plane);
    plane.start();
  }

  async networkDown(networkId: string): Promise<void> {
    const p = this.planes.get(networkId);
    this.planes.delete(networkId);
    await p?.stop();
    this.o.onRemoteChange?.();
  }

  private planeOf(c: ClusterBinding): NetworkPlane | undefined {
    return [...this.planes.values()].find((p) => p.binding.name === c.name);
  }

  /** One convergence at a time, and at most one waiting: they all read the latest journal. */
  scheduleConverge(): void {
    if (this.convergeQueued || this.stopped) return;
    this.convergeQueued = true;
    setTimeout(() => {
      this.convergeQueued = false;
      // Not under the request lock (finding 6): each write checks the journal again right before
      // it is made, and runs on the queue of releases and withdrawals, in order with them.
      this.converging = this.converging
        .then(() => this.converge())
        .then(
          () => this.departureRetry.reset(),
          (err: unknown) => {
            this.o.log.warn({ err: messageOf(err) }, 'cluster: convergence with etcd failed; retrying at the next sync');
            // Departures have no follower whose resync would bring the next try: a timer does.
            if (this.o.state().departures.size === 0 || this.stopped) return;
            clearTimeout(this.departureTimer);
            this.departureTimer = setTimeout(() => this.scheduleConverge(), this.departureRetry.next());
          },
        );
    }, 50);
  }

  /**
   * Takes this host's records in etcd to what its journal says (converge.ts). Without the request
   * lock: the plan is decided on the state as it is (a synchronous read), and its writes check it
   * again (convergeWrites).
   * Each network on its own: one that fails (an unreadable record, a refused write) is logged
   * and the others still converge (issue 22, finding 12); the first failure is thrown at the end.
   */
  async converge(): Promise<void> {
    await this.ops;
    const state = this.o.state();
    const failures: unknown[] = [];
    for (const n of state.networks.values()) {
      const c = n.cluster;
      // At shutdown the rest waits for the next start (it converges from the journal then).
      if (!c || this.stopped) continue;
      const log = this.o.log.child({ network: n.id.slice(0, 12), cluster: c.name });
      try {
        await this.convergeNetwork(state, n, c, log);
      } catch (err) {
        log.warn({ err: messageOf(err) }, "cluster: this network's records did not converge with its journal; the others go on");
        failures.push(err);
      }
    }
    const settled = this.o.departureSettled;
    if (settled && state.departures.size > 0 && !this.stopped) {
      // On the queue of releases and withdrawals, in order with them (finding 7).
      const run = this.ops.then(() =>
        settleDepartures({ store: this.o.store, call: (p) => this.call(p), state: this.o.state, settled, log: this.o.log }),
      );
      this.ops = run.then(
        () => undefined,
        () => undefined,
      );
      await run.catch((err: unknown) => failures.push(err));
    }
    if (failures.length > 0) throw failures[0];
  }

  private async convergeNetwork(state: StateView, n: NetworkRecord, c: ClusterBinding, log: Logger): Promise<void> {
    // etcd restored empty: the definition comes back from this host's copy.
    await this.call(
      this.o.store.defineNetwork({
        cluster: c.name,
        subnet: c.subnet,
        gateway: c.gateway,
        vni: c.vni,
        mtu: c.mtu,
        ...(c.encrypt && { encrypt: c.encrypt }),
      }),
    ).catch((err: unknown) => {
      if (!(err instanceof PluginError && err.code === 'CONFLICT')) throw err;
      log.error({ err: err.message }, 'cluster: etcd holds another definition of this network than this host built');
    });
    const local = this.localOf(state, n, c);
    // The followed copies when they are complete (the reconcile loop converges every minute:
    // listing the whole network from etcd each time would cost every host ~0.5 KiB per endpoint).
    // A copy a moment behind this host's own last write only adds an idempotent call.
    const etcd =
      this.planes.get(n.id)?.followed() ??
      (await (async () => {
        const [claims, endpoints] = await Promise.all([
          this.call(this.o.store.listClaims(c.name)),
          this.call(this.o.store.listEndpoints(c.name)),
        ]);
        return { claims, endpoints };
      })());
    const plan = convergePlan(this.node, local, etcd);
    if (isEmptyPlan(plan)) return;
    log.info(
      { withdraw: plan.withdraw.length, release: plan.release.length, claim: plan.claim.length, publish: plan.publish.length },
      "cluster: converging this host's records with its journal",
    );
    const run = this.ops.then(() => this.convergeWrites(c, plan, log));
    this.ops = run.catch(() => undefined); // the queue goes on; the failure is this convergence's, thrown below
    await run;
  }

  /**
   * The plan's etcd writes, each only if the journal still says so right before it (requests
   * run meanwhile: the plan was decided without the request lock).
   */
  private async convergeWrites(c: ClusterBinding, plan: ConvergePlan, log: Logger): Promise<void> {
    const state = this.o.state();
    for (const id of plan.withdraw) if (!state.endpoints.has(id)) await this.call(this.o.store.withdrawEndpoint(c.name, id));
    for (const a of plan.release) {
      // A claim under way (requests claim outside the lock) is in etcd before it is in the
      // journal: while one runs on this network, or this address is in flight, it is not released.
      if (this.holds(state, c, a) || this.claimQueues.has(c.name) || this.inFlight.has(keys.address(c.name, a))) continue;
      await this.call(this.o.store.releaseAddress(c.name, a));
    }
    for (const a of plan.claim) {
      if (!this.holds(state, c, a)) continue;
      try {
        await this.call(this.o.store.claimAddress(refOf(c), a));
      } catch (err) {
        if (!(err instanceof PluginError && err.code === 'CONFLICT')) throw err;
        // Two hosts use one address: only an operator can say which container keeps it.
        log.error({ err: err.message, address: a }, 'cluster: an address this host uses is claimed by another host in etcd');
      }
    }
    for (const e of plan.publish) {
      if (!state.endpoints.has(e.id)) continue;
      const names = { ...(e.name !== undefined && { name: e.name }), ...(e.aliases !== undefined && { aliases: e.aliases }) };
      await this.call(this.o.store.publishEndpoint({ cluster: c.name, id: e.id, address: e.address, mac: e.mac, ...names }));
      this.published.set(e.id, namesKey(names));
    }
  }

  /** Whether the journal holds `address` in the cluster network's pool now. */
  private holds(state: StateView, c: ClusterBinding, address: string): boolean {
    const a = parseIp(address);
    if (!a) return false;
    for (const p of state.pools.values()) if (p.record.family === 4 && p.record.pool === c.subnet && p.taken.has(a.value)) return true;
    return false;
  }

  private localOf(state: StateView, n: NetworkRecord, c: ClusterBinding): { addresses: Set<string>; endpoints: LocalEndpoint[] } {
    const addresses = new Set<string>();
    for (const p of state.pools.values()) {
      if (p.record.family !== 4 || p.record.pool !== c.subnet) continue;
      for (const [a, b] of p.taken.intervals()) for (let v = a; v <= b; v++) addresses.add(formatIp({ family: 4, value: v }));
    }
    addresses.delete(c.gateway);
    const endpoints: LocalEndpoint[] = [];
    for (const e of state.endpoints.values()) {
      if (e.networkId !== n.id || !e.address) continue;
      endpoints.push({ id: e.id, address: bareAddress(e.address), mac: e.mac, ...recordNames(this.o.nameOf?.(e)) });
    }
    return { addresses, endpoints };
  }

  /**
   * Docker's names changed: republish the endpoints whose name is new (for DNS on the other
   * hosts), only if the endpoint still exists when the put runs (a withdrawn endpoint must not
   * come back). On the queue of releases and withdrawals, not under the request lock (finding
   * 6): a withdrawal asked after this is queued behind it. One put per renamed endpoint.
   */
  namesChanged(): void {
    const stale = (): EndpointRecord[] => {
      const state = this.o.state();
      return [...state.endpoints.values()].filter(
        (e) =>
          state.networks.get(e.networkId)?.cluster &&
          this.published.has(e.id) &&
          this.published.get(e.id) !== namesKey(recordNames(this.o.nameOf?.(e))),
      );
    };
    if (stale().length === 0) return;
    this.later(async () => {
      const state = this.o.state();
      try {
        for (const e of stale()) {
          const c = state.networks.get(e.networkId)?.cluster;
          if (c) await this.publish(c, e, this.o.log);
        }
      } catch (err) {
        this.o.log.warn({ err: messageOf(err) }, 'cluster: a new container name is not in etcd yet; the next convergence publishes it');
      }
    });
  }

  /** Remote endpoints as the DNS zone serves them: `<name>.<cluster>.<zone>`. */
  remoteNames(): ContainerInfo[] {
    const out: ContainerInfo[] = [];
    for (const p of this.planes.values()) {
      for (const e of p.records.values()) {
        // A dead host's containers answer nothing (issue 23): a name resolves only where it can be reached.
        if (e.name === undefined || !this.isUp(e.node)) continue;
        out.push({
          id: `cluster:${e.id}`,
          name: e.name,
          networks: [
            {
              networkId: `cluster:${p.binding.name}`,
              networkName: p.binding.name,
              cluster: p.binding.name,
              ipv4: e.address,
              aliases: e.aliases ?? [],
            },
          ],
        });
      }
    }
    return out;
  }

  remoteEndpoints(): number {
    let n = 0;
    for (const p of this.planes.values()) n += p.remoteCount();
    return n;
  }

  async status(): Promise<ClusterStatus> {
    let nodes: NodeRecord[] | undefined;
    try {
      nodes = await this.call(this.o.store.listNodes());
    } catch {
      nodes = undefined; // etcd down: members from the followed records, up unknown
    }
    const counts = new Map<string, { address: string; n: number }>();
    for (const p of this.planes.values()) {
      for (const e of p.records.values()) {
        const c = counts.get(e.node) ?? { address: e.underlay, n: 0 };
        c.n++;
        counts.set(e.node, c);
      }
    }
    const names = new Set([...counts.keys(), ...(nodes ?? []).map((x) => x.name), this.node.name]);
    const members = [...names].sort().map((name): MemberStatus => {
      const present = nodes?.find((x) => x.name === name);
      return {
        name,
        address: present?.address ?? counts.get(name)?.address ?? (name === this.node.name ? this.node.address : '?'),
        up: nodes ? present !== undefined : undefined,
        endpoints: counts.get(name)?.n ?? 0,
      };
    });
    const networks = [...this.planes.values()].map((p) => ({
      cluster: p.binding.name,
      network: p.networkId.slice(0, 12),
      synced: p.synced,
      remote: p.remoteCount(),
    }));
    return {
      node: this.node.name,
      address: this.node.address,
      etcd: this.reachable ? 'up' : 'down',
      ...(this.lastError && { etcdError: this.lastError }),
      networks,
      members,
    };
  }

  /** `mynet cluster forget <node>`: only a node that is not present, and never this one. */
  async forget(node: string): Promise<ForgetOutcome> {
    if (node === this.node.name) throw new PluginError('CONFLICT', `node: ${node} is this host; it cannot forget itself`);
    const nodes = await this.call(this.o.store.listNodes());
    if (nodes.some((x) => x.name === node))
      throw new PluginError(
        'CONFLICT',
        `node: ${node} is present in the cluster (its lease is alive); stop it first, or wait for its lease to expire`,
      );
    return this.call(this.o.store.forgetNode(node));
  }

  /** The doctor's part: forwarding and neighbour entries against etcd's records, per network. */
  async doctor(repair: boolean, log: Logger): Promise<EntryDifference[]> {
    // The reconcile loop's repair run also takes this host's records back to its journal.
    if (repair) this.scheduleConverge();
    const out: EntryDifference[] = [];
    for (const p of this.planes.values()) {
      if (!p.synced) {
        out.push({
          object: `${p.device}`,
          detail: 'not compared: the endpoint records of etcd are not followed right now (etcd unreachable?)',
          compared: false,
        });
        continue;
      }
      out.push(...(await p.doctor(repair, log)));
    }
    return out;
  }

  /** Resolves when every plane has applied what it received. */
  async idle(): Promise<void> {
    await this.ops;
    await Promise.all([...this.planes.values()].map((p) => p.idle()));
  }
}
