/**
 * The orchestrator. Every request that changes something runs under one lock:
 * decide (pure, driver/) → apply the host plan (host/executor.ts, rolls back on failure) →
 * commit the changes (store/) → apply them to the in-memory State → answer.
 * If the commit fails, the host plan is undone, so host and state never disagree for long; a
 * crash in between leaves either a leftover link of ours (removed at start or by the next create
 * of that name) or nothing.
 */
import type { Logger } from 'pino';
import { messageOf } from './errors.js';
import { createEndpoint, deleteEndpoint, endpointOperInfo, endpointSteps, join, leave } from './driver/endpoint.js';
import type { CreateEndpointRequest, JoinResponse } from './driver/endpoint.js';
import * as ipam from './driver/ipam.js';
import { isExact, parsePortMap, programExternalConnectivity, revokeExternalConnectivity } from './driver/ports.js';
import { portElements } from './plan/ports.js';
import type { HostPorts, LinkOwner, PlannedDecision, Proto } from './decision.js';
import type { Decision } from './decision.js';
import { TABLE, portElementsScript } from './plan/nft.js';
import { type CreateNetworkRequest, bridgeNameFor, createNetwork, deleteNetwork, networkSteps } from './driver/network.js';
import type { State } from './driver/state.js';
import { type Executor, applyPlan, undoPlan } from './host/executor.js';
import type { Background } from './host/background.js';
import type { HostPlan } from './plan/step.js';
import type { StateStore } from './store/state-store.js';
import { type Difference, diagnose, safeToRepair } from './doctor/diagnose.js';
import type { KernelSnapshot } from './host/kernel-snapshot.js';

export interface PluginDeps {
  readonly state: State;
  readonly store: StateStore;
  readonly exec: Executor;
  /** Whether a link name is free, ours, or someone else's. */
  readonly linkOwner: (name: string, log: Logger) => Promise<LinkOwner>;
  /** Names of links in our netdev group, for restore. */
  readonly ourLinks: (log: Logger) => Promise<string[]>;
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
  /** Reads what the kernel holds of ours (for the doctor). */
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

const PORT_MAPS = ['pub4', 'pub4any', 'pub6', 'pub6any'] as const;

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

  private async commit<R>(d: AnyDecision<R>, log: Logger): Promise<R> {
    const all: HostPlan = 'plan' in d ? d.plan : [];
    const bg = this.deps.background;
    const plan = bg ? all.filter((s) => !s.later) : all;
    // A link or address with a delete or flush still queued must not be touched before it ran;
    // and the queue stays short (a bridge takes 1024 ports, queued veths still count).
    if (bg?.touches(all)) await bg.idle();
    else if (bg) await bg.below(MAX_QUEUED);
    await applyPlan(this.deps.exec, plan, log);
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

  private decide<R>(log: Logger, fn: (s: State) => AnyDecision<R> | Promise<AnyDecision<R>>): Promise<R> {
    return this.locked(async () => this.commit(await fn(this.deps.state), log));
  }

  // NetworkDriver
  createNetwork(req: CreateNetworkRequest, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, async (s) => {
      const owner = await this.deps.linkOwner(bridgeNameFor(req), log);
      return createNetwork(s, req, owner, (this.deps.now?.() ?? new Date()).toISOString());
    });
  }
  deleteNetwork(req: { NetworkID: string }, log: Logger): Promise<Record<string, never>> {
    return this.decide(log, (s) => deleteNetwork(s, req.NetworkID));
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
   * At start: re-create the bridges and host-side veths of stored networks and endpoints that
   * are missing (after a reboot the state remains but the links are gone), leave existing ones
   * as they are, and remove links that carry our mark but belong to nothing we know.
   */
  restore(log: Logger): Promise<void> {
    return this.locked(async () => {
      await this.deps.background?.idle();
      const s = this.deps.state;
      const present = new Set(await this.deps.ourLinks(log));
      const known = new Set<string>();
      const plan: HostPlan[] = [];
      for (const n of s.networks.values()) {
        known.add(n.bridge);
        if (!present.has(n.bridge)) plan.push(networkSteps(n));
      }
      for (const e of s.endpoints.values()) {
        const n = s.networks.get(e.networkId);
        known.add(e.hostIf).add(e.containerIf);
        if (!n) {
          log.warn({ endpointId: e.id.slice(0, 12) }, 'stored endpoint has no network; dropping it');
          await this.deps.store.commit([{ op: 'endpoint.delete', id: e.id }], s);
          s.apply([{ op: 'endpoint.delete', id: e.id }]);
          continue;
        }
        // A host veth without its bridge was re-created above together with the bridge.
        if (!present.has(e.hostIf)) plan.push(endpointSteps(n, e));
        // A veth that outlived its bridge was detached by the kernel: put it on the re-created one.
        else if (!present.has(n.bridge)) {
          plan.push([{ what: `re-attach veth ${e.hostIf} to ${n.bridge}`, run: { kind: 'ip', args: ['link', 'set', 'dev', e.hostIf, 'master', n.bridge] } }]);
        }
      }
      for (const name of present) {
        if (!known.has(name)) plan.push([{ what: `remove orphan link ${name}`, run: { kind: 'link-del', name } }]);
      }
      if (s.networks.size > 0) {
        // Published ports exactly as stored: a crash between the kernel change and the save can
        // leave an element the state never saw (it would block that host port for good) or
        // lose one it did. One transaction: no moment without the stored ports.
        const els = [...s.endpoints.values()].flatMap((e) => portElements(e, e.ports));
        const script = [...PORT_MAPS.map((m) => `flush map ${TABLE} ${m}`), ...(els.length ? [portElementsScript('add', els)] : [])].join('\n');
        plan.push([{ what: 'published ports exactly as stored', run: { kind: 'nft', script } }]);
        plan.push([{ what: 'ensure the FORWARD hook', run: { kind: 'forward-hook', action: 'ensure' } }]);
      }
      for (const p of plan) {
        try {
          await applyPlan(this.deps.exec, p, log);
        } catch (err) {
          // One broken network must not keep the others (or the plugin) down; the doctor reports it.
          log.error({ err: messageOf(err) }, 'restore step failed');
        }
      }
      log.info({ networks: s.networks.size, endpoints: s.endpoints.size, repaired: plan.length }, 'state restored');
    });
  }

  /**
   * Compares state with the kernel and repairs: 'none' only reports, 'safe' re-creates what is
   * missing or drifted, 'all' also removes orphans that carry our mark.
   */
  doctor(log: Logger, repair: 'none' | 'safe' | 'all'): Promise<DoctorResult[]> {
    const snapshot = this.deps.snapshot;
    if (!snapshot) return Promise.reject(new Error('doctor: no kernel snapshot available'));
    return this.locked(async () => {
      // A veth whose delete is queued would look like an orphan.
      await this.deps.background?.idle();
      const found = diagnose(this.deps.state, await snapshot(log));
      this.deps.onDifferences?.(found);
      const out: DoctorResult[] = [];
      for (const d of found) {
        if (repair === 'none' || (repair === 'safe' && !safeToRepair(d))) {
          out.push({ difference: d, repaired: false });
          continue;
        }
        try {
          await applyPlan(this.deps.exec, d.fix, log);
          out.push({ difference: d, repaired: true });
        } catch (err) {
          out.push({ difference: d, repaired: false, error: messageOf(err) });
        }
      }
      if (found.length) log.warn({ differences: out.map((r) => ({ kind: r.difference.kind, object: r.difference.object, detail: r.difference.detail, repaired: r.repaired })) }, 'doctor found differences');
      return out;
    });
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
      if (this.deps.state.networks.size > 0) await this.deps.exec.run({ kind: 'forward-hook', action: 'ensure' }, log);
    });
  }
}
