/**
 * The orchestrator. Every request that changes something runs under one lock:
 * decide (pure, driver/) → apply the host plan (host/executor.ts, rolls back on failure) →
 * commit the changes (store/) → apply them to the in-memory State → answer.
 * If the commit fails, the host plan is undone, so host and state never disagree for long; a
 * crash in between leaves either a leftover link of ours (removed at start or by the next create
 * of that name) or nothing. Start-up, the reconcile loop and the doctor are one reconciler
 * (doctor/reconcile.ts) with different policies; this file decides nothing of the host itself.
 */
import type { Logger } from 'pino';
import { messageOf } from './errors.js';
import { createEndpoint, deleteEndpoint, endpointOperInfo, join, leave } from './driver/endpoint.js';
import type { CreateEndpointRequest, JoinResponse } from './driver/endpoint.js';
import * as ipam from './driver/ipam.js';
import { bareAddress } from './rules/address.js';
import { isExact, parsePortMap, programExternalConnectivity, revokeExternalConnectivity } from './driver/ports.js';
import type { HostPorts, LinkOwner, PlannedDecision, Proto } from './decision.js';
import type { Decision } from './decision.js';
import { type CreateNetworkRequest, bridgeNameFor, createNetwork, deleteNetwork } from './driver/network.js';
import type { State } from './driver/state.js';
import { type Executor, applyAll, applyPlan, undoPlan } from './host/executor.js';
import type { Background } from './host/background.js';
import type { HostPlan } from './plan/step.js';
import type { StateStore } from './store/state-store.js';
import type { Difference } from './doctor/diagnose.js';
import { type Action, type Policy, reconcile } from './doctor/reconcile.js';
import { ensureHookStep } from './doctor/repairs.js';
import type { DataPlaneView } from './doctor/vxlan.js';
import type { KernelSnapshot } from './host/kernel-snapshot.js';
import type { MarkedLink } from './host/probe.js';
import { type ClusterBinding, type ClusterPolicyInput, type EndpointRecord, type NetworkRecord, type StateView } from './driver/state.js';
import { clusterRequest } from './driver/network.js';
import { PluginError } from './errors.js';
import { applyPolicies, clusterPolicies, clusterPolicyStep, removePolicy } from './driver/policy.js';
import type { Policy as NetworkPolicy } from './policy/document.js';
import type { ClusterPort } from './multihost/agent.js';
import { relabel } from './driver/container-labels.js';
import { LABELS_MAX, type Labels } from './rules/label.js';

export interface PluginDeps {
  readonly state: State;
  readonly store: StateStore;
  readonly exec: Executor;
  /** Whether a link name is free, ours, or someone else's. */
  readonly linkOwner: (name: string, log: Logger) => Promise<LinkOwner>;
  /** Links carrying our mark (both netdev groups) with their aliases, for the reconciler. */
  readonly ourLinks: (log: Logger) => Promise<MarkedLink[]>;
  readonly ipamEnv: () => ipam.IpamEnv;
  /** Listening sockets and the ephemeral range, read when ports are published (default: none in use). */
  readonly hostPorts?: (protos: readonly Proto[]) => Promise<HostPorts>;
  /**
   * The executor holds published ports with bound sockets (port-hold, host/port-holder.ts), so
   * a failed bind finds a process on an exact port: the listeners are read only for bindings
   * that choose a port (ranges, HostPort 0).
   */
  readonly holdsPorts?: boolean;
  readonly now?: () => Date;
  /** Reads what the kernel holds of ours (for the reconciler: start-up, the loop, the doctor). */
  readonly snapshot?: (log: Logger) => Promise<KernelSnapshot>;
  /** Told how many differences each doctor run found, by kind. */
  readonly onDifferences?: (found: readonly Difference[]) => void;
  /** Where steps marked `later` run after the answer; without it they run before answering. */
  readonly background?: Background;
  /** The cluster store (issue 17); undefined without MYNET_ETCD_ENDPOINTS: no cluster networks. */
  readonly cluster?: ClusterPort;
  /** What the cluster's data plane last knew, for the reconciler (multihost/plane.ts planeView). */
  readonly dataPlane?: () => Promise<DataPlaneView>;
  /** The underlay address the cluster runs with: a network made from another is made again from it (finding 9). */
  readonly underlay?: () => string;
  /**
   * What the cluster finds beyond the planes' views (multihost/agent.ts `findings`: notes it
   * cannot repair, the WireGuard peers' differences), reconciled with the rest by the same policy;
   * `repair`: the loop or `--fix` (not the start, which runs before the cluster follows etcd).
   */
  readonly clusterFindings?: (repair: boolean, log: Logger) => Promise<readonly Difference[]>;
}

/**
 * The cluster network a pool's addresses belong to (its subnet is the pool's), if any. A pool
 * with a SubPool (`--ip-range`) is bound too: the range is where this host picks, the claim in
 * etcd is of the subnet's address (issue 23).
 */
function clusterOfPool(state: StateView, poolId: string): ClusterBinding | undefined {
  const p = state.pools.get(poolId);
  if (!p) return undefined;
  // A dual-stack network's IPv6 addresses are claimed in etcd as its IPv4 ones.
  for (const n of state.networks.values())
    if ((p.record.family === 4 ? n.cluster?.subnet : n.cluster?.subnet6) === p.record.pool) return n.cluster;
  return undefined;
}

export interface DoctorResult {
  readonly difference: Difference;
  readonly repaired: boolean;
  readonly error?: string;
}

const NO_HOST_PORTS: HostPorts = { listening: () => [], ephemeral: [32768, 60999] };

/** Background steps allowed to wait at once before a request waits for them (see commit). */
const MAX_QUEUED = 16;

type AnyDecision<R> = PlannedDecision<R> | Decision<R>;

export class Plugin {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: PluginDeps) {}

  get state(): State {
    return this.deps.state;
  }

  /** Runs `fn` after every earlier call has finished (one writer at a time). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined); // the caller gets the error; the queue goes on
    return run;
  }

  /**
   * `teardown`: every step runs (executor applyAll) and the error names each that failed. Then
   * nothing is saved: the records stay, so dockerd's retry of the delete runs the whole teardown
   * again (every teardown step is idempotent: ownership-checked link deletes, nft scripts that
   * add before they delete) and so re-runs what failed. Until then the reconcile loop treats the
   * network as stored and makes what is missing again, which the retry then removes: host and
   * state never disagree about whether the network exists.
   */
  private async commit<R>(d: AnyDecision<R>, log: Logger, mode: 'plan' | 'teardown' = 'plan'): Promise<R> {
    const all: HostPlan = 'plan' in d ? d.plan : [];
    const bg = this.deps.background;
    const plan = bg ? all.filter((s) => !s.later) : all;
    // A link or address with a delete or flush still queued must not be touched before it ran;
    // and the queue stays short (a bridge takes 1024 ports, queued veths still count).
    if (bg?.touches(all)) await bg.idle();
    else if (bg) await bg.below(MAX_QUEUED);
    await (mode === 'teardown' ? applyAll : applyPlan)(this.deps.exec, plan, log);
    try {
      await this.deps.store.commit(d.changes, this.deps.state);
    } catch (err) {
      const undoFailures = await undoPlan(this.deps.exec, plan, log);
      log.error({ err, undoFailures }, 'saving state failed; host changes undone');
      throw err;
    }
    this.deps.state.apply(d.changes);
    if (bg && plan.length < all.length)
      bg.enqueue(
        all.filter((s) => s.later),
        log,
      );
    try {
      await this.deps.store.maybeCompact(this.deps.state);
    } catch (err) {
      // The journal already holds the change; a failed compaction only delays the snapshot.
      log.error({ err }, 'state compaction failed; the journal keeps the changes');
    }
    return d.response;
  }

  private decide<R>(
    log: Logger,
    fn: (s: State) => AnyDecision<R> | Promise<AnyDecision<R>>,
    mode: 'plan' | 'teardown' = 'plan',
  ): Promise<R> {
    return this.locked(async () => this.commit(await fn(this.deps.state), log, mode));
  }

  /** Runs `fn` under the request lock (the cluster agent's convergence with etcd). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.locked(fn);
  }

  private clusterPort(): ClusterPort {
    if (!this.deps.cluster)
      throw new PluginError(
        'CLUSTER_UNAVAILABLE',
        'option mynet.cluster: this mynet has no cluster store; set MYNET_ETCD_ENDPOINTS (and MYNET_NODE_NAME) on every host',
      );
    return this.deps.cluster;
  }

  // NetworkDriver
  async createNetwork(req: CreateNetworkRequest, log: Logger): Promise<Record<string, never>> {
    // A cluster network is checked here first, then defined (or found) in etcd, outside the
    // lock (finding 6): every host builds the recorded definition (subnet, gateway and its MAC,
    // VXLAN id, MTU). A definition left by a create that then fails is what any host's is: shared.
    const wanted = clusterRequest(this.deps.state, req);
    const binding = wanted ? await this.clusterPort().defineNetwork(wanted, log) : undefined;
    const r = await this.decide(log, async (s) => {
      const owner = await this.deps.linkOwner(bridgeNameFor(req), log);
      return createNetwork(s, req, owner, (this.deps.now?.() ?? new Date()).toISOString(), binding);
    });
    const n = this.deps.state.networks.get(req.NetworkID);
    if (n?.cluster) this.deps.cluster?.networkUp(n);
    return r;
  }
  deleteNetwork(req: { NetworkID: string }, log: Logger): Promise<Record<string, never>> {
    return this.locked(async () => {
      const n: NetworkRecord | undefined = this.deps.state.networks.get(req.NetworkID);
      const eps = n?.cluster ? [...this.deps.state.endpoints.values()].filter((e) => e.networkId === n.id) : [];
      // The follower stops first: a batch it ran after the teardown would put the guard back.
      if (n?.cluster) await this.deps.cluster?.networkDown(n.id);
      let r: Record<string, never>;
      try {
        r = await this.commit(deleteNetwork(this.deps.state, req.NetworkID), log, 'teardown');
      } catch (err) {
        // The network stays (dockerd retries the delete): keep following etcd meanwhile.
        if (n?.cluster) this.deps.cluster?.networkUp(n);
        throw err;
      }
      if (n?.cluster && this.deps.cluster) {
        for (const e of eps) await this.deps.cluster.withdraw(n.cluster, e.id, log);
        // The last host out removes the definition (finding 21): Docker's next create may follow at once.
        this.deps.cluster.departed();
      }
      return r;
    });
  }
  /**
   * A cluster network's endpoint is published in etcd after the host change and the save, outside
   * the lock (finding 6: a lossy etcd must not hold up local networks). If etcd does not take it,
   * the endpoint is taken back under the lock and the request fails, as if it had never been made;
   * a crash before the publish leaves it in the journal, and the convergence at start publishes it.
   */
  async createEndpoint(req: CreateEndpointRequest, log: Logger): Promise<{ Interface?: { MacAddress: string } }> {
    let made: { c: ClusterBinding; endpoint: EndpointRecord } | undefined;
    const r = await this.locked(async () => {
      const s = this.deps.state;
      const d = createEndpoint(s, req);
      const c = s.networks.get(req.NetworkID)?.cluster;
      const put = d.changes.find((x) => x.op === 'endpoint.put');
      const endpoint = put?.op === 'endpoint.put' ? put.endpoint : undefined;
      const answer = await this.commit(d, log);
      if (c && endpoint) made = { c, endpoint };
      return answer;
    });
    if (!made) return r;
    const { c, endpoint } = made;
    try {
      await this.clusterPort().publish(c, endpoint, log);
    } catch (err) {
      await this.locked(() =>
        this.commit(deleteEndpoint(this.deps.state, { NetworkID: req.NetworkID, EndpointID: req.EndpointID }), log, 'teardown'),
      ).catch((undoErr: unknown) => {
        // Left in the state: dockerd's rollback (DeleteEndpoint) or the reconcile loop removes it.
        log.error({ err: undoErr }, 'taking back an endpoint etcd did not take failed');
      });
      // A publish that timed out may still land in etcd: withdrawn too (queued, compare-and-delete).
      await this.clusterPort().withdraw(c, endpoint.id, log);
      throw err;
    }
    return r;
  }
  join(req: { NetworkID: string; EndpointID: string; SandboxKey?: string }, log: Logger): Promise<JoinResponse> {
    return this.decide(log, (s) => join(s, req));
  }
  leave(req: { NetworkID: string; EndpointID: string }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, (s) => leave(s, req));
  }
  deleteEndpoint(req: { NetworkID: string; EndpointID: string }, log: Logger): Promise<Record<string, never>> {
    return this.locked(async () => {
      // Teardown mode: a step that fails (its object gone in a way the executor cannot tell)
      // does not keep the others from running; the error names each failure.
      const r = await this.commit(deleteEndpoint(this.deps.state, req), log, 'teardown');
      const c = this.deps.state.networks.get(req.NetworkID)?.cluster;
      // Withdrawn even when the state had no such endpoint: a retry after a withdrawal etcd missed.
      if (c && this.deps.cluster) await this.deps.cluster.withdraw(c, req.EndpointID, log);
      return r;
    });
  }
  programExternalConnectivity(
    req: { NetworkID: string; EndpointID: string; Options?: Record<string, unknown> | null },
    log: Logger,
  ): Promise<Record<string, never>> {
    return this.decide(log, async (s) => {
      // The host's listeners are read only for the protocols this call publishes (most publish
      // none), and with held ports only for bindings that choose a port (the bind checks the rest).
      const held = this.deps.holdsPorts === true;
      const protos = [
        ...new Set(
          parsePortMap(req.Options)
            .filter((b) => !held || !isExact(b))
            .map((b) => b.proto),
        ),
      ];
      const host = protos.length > 0 && this.deps.hostPorts ? await this.deps.hostPorts(protos) : NO_HOST_PORTS;
      return programExternalConnectivity(s, req, host);
    });
  }
  revokeExternalConnectivity(req: { NetworkID: string; EndpointID: string }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, (s) => revokeExternalConnectivity(s, req));
  }
  endpointOperInfo(req: { NetworkID: string; EndpointID: string }): { Value: Record<string, unknown> } {
    return endpointOperInfo(this.deps.state, req);
  }

  // IpamDriver
  addressSpaces(): { LocalDefaultAddressSpace: string; GlobalDefaultAddressSpace: string } {
    return { LocalDefaultAddressSpace: ipam.LOCAL_SPACE, GlobalDefaultAddressSpace: ipam.GLOBAL_SPACE };
  }
  requestPool(req: ipam.RequestPoolRequest, log: Logger): Promise<{ PoolID: string; Pool: string; Data: Record<string, string> }> {
    return this.decide(log, (s) => ipam.requestPool(s, req, this.deps.ipamEnv()));
  }
  releasePool(req: { PoolID: string }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, (s) => ipam.releasePool(s, req.PoolID));
  }
  /**
   * On a cluster network's pool the address is claimed in etcd first (`--ip`: that one, else the
   * first the local order offers that no host holds), then taken in the journal. If the save
   * fails the claim is released again (or by the next convergence, if etcd is away too).
   */
  async requestAddress(req: ipam.RequestAddressRequest, log: Logger): Promise<{ Address: string; Data: Record<string, string> }> {
    const s = this.deps.state;
    const c = clusterOfPool(s, req.PoolID);
    if (!c || req.Options?.RequestAddressType === ipam.GATEWAY_TYPE) return this.decide(log, (st) => ipam.requestAddress(st, req));
    // The claim waits for etcd outside the lock: a slow or lossy etcd holds up no request of a
    // local network (issue 22, finding 6). The journal's take is decided under the lock, on the
    // state as it is then; only a failed save gives the claim back (a take refused because the
    // address is in use here keeps the claim: it is this host's, for the endpoint that uses it).
    ipam.requestAddress(s, req); // the request's own checks (pool, address form) before etcd is asked
    const cluster = this.clusterPort();
    const claimed = await cluster.claim(
      c,
      req.Address ? bareAddress(req.Address) : undefined,
      () => ipam.freeAddresses(this.deps.state, req.PoolID),
      log,
    );
    try {
      return await this.locked(async () => {
        const d = ipam.takeAddress(this.deps.state, req.PoolID, claimed, !req.Address);
        try {
          return await this.commit(d, log);
        } catch (err) {
          await cluster.release(c, claimed, log);
          throw err;
        }
      });
    } finally {
      cluster.settled(c, claimed);
    }
  }
  releaseAddress(req: { PoolID: string; Address: string }, log: Logger): Promise<Record<string, never>> {
    return this.locked(async () => {
      const s = this.deps.state;
      const c = clusterOfPool(s, req.PoolID);
      const r = await this.commit(ipam.releaseAddress(s, req), log);
      // etcd away: the journal holds the release and the next convergence applies it.
      if (c && this.deps.cluster) await this.deps.cluster.release(c, bareAddress(req.Address), log);
      return r;
    });
  }

  // Network policy (issue 25), from the admin socket: checked before the lock (parsePolicyText),
  // decided and committed under it like every change, so a refusal changes nothing.
  // A cluster network's go to etcd instead (outside the lock, finding 6), and come back to every
  // host through its plane (clusterPolicyChanged).
  async applyPolicies(policies: readonly NetworkPolicy[], names: ReadonlyMap<string, string>, log: Logger): Promise<{ applied: string[] }> {
    const cluster = clusterPolicies(this.deps.state, policies, names);
    if (cluster) return this.clusterPort().applyPolicies(cluster, log);
    return this.decide(log, (s) => applyPolicies(s, policies, names));
  }
  /** A local policy of that name, else the cluster networks' in etcd (idempotent: removed if none holds it). */
  async removePolicy(name: string, log: Logger): Promise<{ removed: string }> {
    const s = this.deps.state;
    if (!s.policies.has(name) && this.deps.cluster && [...s.networks.values()].some((n) => n.cluster)) {
      await this.deps.cluster.removePolicy(name, log);
      return { removed: name };
    }
    return this.decide(log, (st) => removePolicy(st, name));
  }

  /**
   * etcd's policies of a cluster network, or the other hosts' endpoints, changed (issue 25): the
   * table follows, under the lock as every change of it. A step that fails leaves the state's
   * copy at etcd's news all the same, so the reconcile loop repairs the table towards it.
   */
  clusterPolicyChanged(networkId: string, input: ClusterPolicyInput | undefined, log: Logger): Promise<void> {
    return this.locked(async () => {
      const s = this.deps.state;
      const n = s.networks.get(networkId);
      if (!n || !input) {
        s.clusterPolicy.delete(networkId);
        return;
      }
      const steps = clusterPolicyStep(s, n, input);
      s.clusterPolicy.set(networkId, input);
      try {
        await applyPlan(this.deps.exec, steps, log);
      } catch (err) {
        log.error({ err, network: networkId }, 'cluster: applying the network policy from etcd failed; the reconcile loop repairs it');
      }
    });
  }

  /**
   * The Docker API follow saw containers' `mynet.label.*` labels (issue 25; `seen`: endpoint id →
   * labels): records whose container labels changed are saved and their networks' policy objects
   * follow, under the lock as every change; a cluster network's records are published again
   * (they carry the labels), after it. Never on a request's path (the follow calls it). Answers
   * the endpoints changed; nothing to change, no lock.
   */
  async relabel(seen: ReadonlyMap<string, Labels>, log: Logger): Promise<readonly string[]> {
    if (relabel(this.deps.state, seen).changes.length === 0) return [];
    const r = await this.decide(log, (s) => relabel(s, seen));
    for (const [endpoint, keys] of r.cut)
      log.warn(
        { endpoint, keys },
        `policy: container labels left out: an endpoint carries at most ${LABELS_MAX} labels, driver options first`,
      );
    if (r.endpoints.length > 0) {
      log.info({ endpoints: r.endpoints }, 'policy: container labels learnt from Docker');
      this.deps.cluster?.namesChanged();
    }
    return r.endpoints;
  }

  /**
   * etcd holds nothing of this host's in a cluster network it left (multihost/departures.ts):
   * the departure leaves the journal. Under the lock, as every change of the journal.
   */
  departureSettled(cluster: string, log: Logger): Promise<void> {
    return this.decide(log, (s) => ({
      changes: s.departures.has(cluster) ? [{ op: 'departure.delete', cluster }] : [],
      response: undefined,
    }));
  }

  /**
   * At start: the reconciler with the start-up policy (doctor/reconcile.ts): what the records
   * say is made again (after a reboot the state remains but the links are gone), what exists is
   * left as it is, leftovers of a crash of a known record are removed, and links of networks
   * the state does not know are only reported (`mynet doctor --fix` removes them).
   */
  restore(log: Logger): Promise<void> {
    return this.locked(async () => {
      const results = await this.reconcileNow('start', log);
      const orphans = results.filter((r) => r.difference.kind === 'orphan').map((r) => r.difference.object);
      if (orphans.length)
        log.warn(
          { orphans },
          'objects of ours that the state does not know are left in place; `mynet doctor` lists them, `mynet doctor --fix` removes them',
        );
      const s = this.deps.state;
      log.info(
        {
          networks: s.networks.size,
          endpoints: s.endpoints.size,
          repaired: results.filter((r) => r.repaired).length,
          failed: results.filter((r) => r.error).length,
        },
        'state restored',
      );
    });
  }

  /**
   * Compares state with the kernel and repairs: 'none' only reports, 'safe' re-creates what is
   * missing or drifted, 'all' also removes what carries our mark and no record explains.
   */
  doctor(log: Logger, repair: 'none' | 'safe' | 'all'): Promise<DoctorResult[]> {
    if (!this.deps.snapshot) return Promise.reject(new Error('doctor: no kernel snapshot available'));
    return this.locked(() => this.reconcileNow(repair === 'none' ? 'report' : repair, log));
  }

  /** One reconciler run under the lock: observe, decide (pure), repair each on its own, commit. */
  private async reconcileNow(policy: Policy, log: Logger): Promise<DoctorResult[]> {
    const snapshot = this.deps.snapshot;
    if (!snapshot) throw new Error('reconcile: no kernel snapshot available');
    // A veth whose delete is queued would look like a leftover.
    await this.deps.background?.idle();
    const observed = {
      kernel: await snapshot(log),
      marked: await this.deps.ourLinks(log),
      ...(this.deps.dataPlane ? { plane: await this.deps.dataPlane() } : {}),
      ...(this.deps.underlay ? { underlay: this.deps.underlay() } : {}),
      ...(this.deps.clusterFindings ? { found: await this.deps.clusterFindings(policy === 'safe' || policy === 'all', log) } : {}),
    };
    const r = reconcile(this.deps.state, observed, policy);
    this.deps.onDifferences?.(r.found);
    const outcome = new Map<Difference, DoctorResult>(r.left.map((d) => [d, { difference: d, repaired: false }]));
    const changed: Action[] = [];
    for (const a of r.actions) {
      try {
        // One broken network must not keep the others (or the plugin) down; the result says which.
        await applyPlan(this.deps.exec, a.fix, log);
        for (const d of a.differences) outcome.set(d, { difference: d, repaired: true });
        if (a.changes.length) changed.push(a);
      } catch (err) {
        for (const d of a.differences) outcome.set(d, { difference: d, repaired: false, error: messageOf(err) });
      }
    }
    if (changed.length) {
      try {
        await this.commit({ changes: changed.flatMap((a) => a.changes), response: undefined }, log);
      } catch (err) {
        for (const d of changed.flatMap((a) => a.differences)) outcome.set(d, { difference: d, repaired: false, error: messageOf(err) });
      }
    }
    const out = r.found.map((d) => outcome.get(d) as DoctorResult);
    if (out.length)
      log.warn(
        {
          policy,
          differences: out.map((x) => ({
            kind: x.difference.kind,
            object: x.difference.object,
            detail: x.difference.detail,
            repaired: x.repaired,
          })),
        },
        'doctor found differences',
      );
    return out;
  }

  /** Resolves when requests so far and their background steps are done (shutdown, tests). */
  drain(): Promise<void> {
    return this.locked(async () => {
      await this.deps.background?.idle();
    });
  }

  /** Re-asserts the FORWARD hook (dockerd restarts and firewall reloads can remove it). */
  ensureHook(log: Logger): Promise<void> {
    return this.locked(async () => {
      if (this.deps.state.networks.size > 0) await applyPlan(this.deps.exec, [ensureHookStep()], log);
    });
  }
}
