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
import type { KernelSnapshot } from './host/kernel-snapshot.js';
import type { MarkedLink } from './host/probe.js';

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
    if (bg && plan.length < all.length) bg.enqueue(all.filter((s) => s.later), log);
    try {
      await this.deps.store.maybeCompact(this.deps.state);
    } catch (err) {
      // The journal already holds the change; a failed compaction only delays the snapshot.
      log.error({ err }, 'state compaction failed; the journal keeps the changes');
    }
    return d.response;
  }

  private decide<R>(log: Logger, fn: (s: State) => AnyDecision<R> | Promise<AnyDecision<R>>, mode: 'plan' | 'teardown' = 'plan'): Promise<R> {
    return this.locked(async () => this.commit(await fn(this.deps.state), log, mode));
  }

  // NetworkDriver
  createNetwork(req: CreateNetworkRequest, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, async (s) => {
      const owner = await this.deps.linkOwner(bridgeNameFor(req), log);
      return createNetwork(s, req, owner, (this.deps.now?.() ?? new Date()).toISOString());
    });
  }
  deleteNetwork(req: { NetworkID: string }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, (s) => deleteNetwork(s, req.NetworkID), 'teardown');
  }
  createEndpoint(req: CreateEndpointRequest, log: Logger): Promise<{ Interface?: { MacAddress: string } }> {
    return this.decide(log, (s) => createEndpoint(s, req));
  }
  join(req: { NetworkID: string; EndpointID: string; SandboxKey?: string }, log: Logger): Promise<JoinResponse> {
    return this.decide(log, (s) => join(s, req));
  }
  leave(req: { NetworkID: string; EndpointID: string }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, (s) => leave(s, req));
  }
  deleteEndpoint(req: { NetworkID: string; EndpointID: string }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, (s) => deleteEndpoint(s, req));
  }
  programExternalConnectivity(req: { NetworkID: string; EndpointID: string; Options?: Record<string, unknown> | null }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, async (s) => {
      // The host's listeners are read only for the protocols this call publishes (most publish
      // none), and with held ports only for bindings that choose a port (the bind checks the rest).
      const held = this.deps.holdsPorts === true;
      const protos = [...new Set(parsePortMap(req.Options).filter((b) => !held || !isExact(b)).map((b) => b.proto))];
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
  requestAddress(req: ipam.RequestAddressRequest, log: Logger): Promise<{ Address: string; Data: Record<string, string> }> {
    return this.decide(log, (s) => ipam.requestAddress(s, req));
  }
  releaseAddress(req: { PoolID: string; Address: string }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, (s) => ipam.releaseAddress(s, req));
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
      if (orphans.length) log.warn({ orphans }, 'objects of ours that the state does not know are left in place; `mynet doctor` lists them, `mynet doctor --fix` removes them');
      const s = this.deps.state;
      log.info({ networks: s.networks.size, endpoints: s.endpoints.size, repaired: results.filter((r) => r.repaired).length, failed: results.filter((r) => r.error).length }, 'state restored');
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
    const observed = { kernel: await snapshot(log), marked: await this.deps.ourLinks(log) };
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
    if (out.length) log.warn({ policy, differences: out.map((x) => ({ kind: x.difference.kind, object: x.difference.object, detail: x.difference.detail, repaired: x.repaired })) }, 'doctor found differences');
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
