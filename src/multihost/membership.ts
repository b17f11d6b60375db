/**
 * This host's membership of the cluster: its presence lease in etcd (granted again with a
 * back-off while etcd is away), the followed presences of the other nodes (AgentCore.isUp), and
 * `mynet cluster forget` of a node that left. Its own file because presence has its own timers
 * and retry, apart from the claims and records.
 */
import type { ForgetOutcome } from '../cluster/cluster-store.js';
import { keys } from '../cluster/keys.js';
import { NodePresence } from '../cluster/presence.js';
import { RateLimitedWarning } from '../cluster/backoff.js';
import { PluginError, messageOf } from '../errors.js';
import { forgetRefusal, probeTargets } from './forget-check.js';
import type { AgentCore } from './agent-core.js';

export class Membership {
  private presence: NodePresence | undefined;
  private presenceTimer: NodeJS.Timeout | undefined;
  private presenceRetryMs = 500;

  /** `scheduleConverge` is the agent's (ClusterAgent.scheduleConverge). */
  constructor(
    private readonly a: AgentCore,
    private readonly scheduleConverge: () => void,
  ) {}

  /** Presence and the followed presences of the nodes; never waits for etcd. */
  start(): void {
    this.startPresence();
    // Who is present: a host whose lease expired has its names left out of DNS and its underlay
    // out of every network's VXLAN guard until it is back (finding 11).
    this.a.members = this.a.o.store.followPrefix(keys.nodes(), this.a.o.backoffMs, () => {
      for (const p of this.a.planes.values()) p.presenceChanged();
      this.a.o.onRemoteChange?.();
    });
  }

  private startPresence(): void {
    if (this.a.stopped) return;
    // One warning a minute while the lease stays lost (finding 18), however often it is tried.
    const lost = new RateLimitedWarning((f, m) => this.a.o.log.warn(f, m));
    const p = new NodePresence(this.a.o.store.kv, this.a.o.store.node, {
      ...(this.a.o.presenceTtlS !== undefined && { ttlS: this.a.o.presenceTtlS }),
      onLost: (err) => void lost.warnNow({ err: err.message }, 'cluster: presence lease lost; granting a new one when etcd answers'),
      onRestored: () => {
        lost.reset();
        this.a.o.log.info('cluster: presence restored');
        this.scheduleConverge(); // etcd is back: what it missed meanwhile (departures too)
      },
    });
    this.a.call(p.start()).then(
      () => {
        if (this.a.stopped) {
          void p.stop().catch(() => undefined);
          return;
        }
        this.presence = p;
        this.presenceRetryMs = 500;
        if (this.a.refused)
          this.a.o.log.warn({ node: this.a.node }, 'cluster: the other node of this name left; this host takes its place');
        this.a.refused = undefined;
        this.a.o.log.info({ node: this.a.node }, 'cluster: present in etcd');
        this.scheduleConverge();
      },
      (err: unknown) => {
        // Backing off to 30 s: an etcd away for hours must not write a warning every second.
        this.presenceRetryMs = Math.min(30_000, this.presenceRetryMs * 2);
        if (err instanceof PluginError && err.code === 'CONFLICT') {
          // Another host has this name (finding 5): refused, loudly, until it leaves.
          if (!this.a.refused) this.a.o.log.error({ err: err.message }, 'cluster: this host is refused: its node name is taken');
          this.a.refused = err;
        } else this.a.o.log.warn({ err: messageOf(err), retryMs: this.presenceRetryMs }, 'cluster: cannot register presence yet; retrying');
        this.presenceTimer = setTimeout(() => this.startPresence(), this.presenceRetryMs);
      },
    );
  }

  /** At shutdown: no presence is tried again. */
  stopRetrying(): void {
    clearTimeout(this.presenceTimer);
  }

  /** At shutdown: the presence held, if any, handed over for its revoke (and forgotten here). */
  takePresence(): NodePresence | undefined {
    const presence = this.presence;
    this.presence = undefined;
    return presence;
  }

  /**
   * `mynet cluster forget <node>`: only a node that shows no sign of life (forget-check.ts): not
   * present, no record written while checked, no answer on its underlay; never this one.
   */
  async forget(node: string): Promise<ForgetOutcome> {
    const self = { name: this.a.node.name, address: this.a.node.address };
    const refuse = (why: string | undefined): void => {
      if (why !== undefined) throw new PluginError('CONFLICT', why);
    };
    const none = { node, self, present: false, before: [], after: [], probed: [] };
    refuse(forgetRefusal(none));
    const present = async (): Promise<boolean> => (await this.a.call(this.a.o.store.listNodes())).some((x) => x.name === node);
    refuse(forgetRefusal({ ...none, present: await present() }));
    const before = await this.a.call(this.a.o.store.recordsOfNode(node));
    const probe = this.a.o.underlayAnswers;
    const targets = probeTargets(
      before.flatMap((r) => (r.underlay !== undefined ? [r.underlay] : [])),
      self.address,
    );
    const probed = probe ? await Promise.all(targets.map(async (address) => ({ address, answers: await probe(address) }))) : [];
    // Read again after the probes: a node writing meanwhile is alive, and so is one present again.
    const [after, back] = await Promise.all([this.a.call(this.a.o.store.recordsOfNode(node)), present()]);
    refuse(forgetRefusal({ node, self, present: back, before, after, probed }));
    this.a.o.log.warn({ node, probed }, 'cluster: forgetting a node: its claims and records leave etcd');
    // Deleted at the revisions checked: one the node rewrites after the check stays.
    return this.a.call(this.a.o.store.forgetRecords(before));
  }
}
