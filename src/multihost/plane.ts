/**
 * One cluster network's data plane on this host: follows the network's endpoint records and
 * address claims in etcd (list, watch, re-list after any break: cluster/follower.ts) and keeps
 * the VXLAN device's forwarding and neighbour entries and the VXLAN guard's member set equal to
 * what etcd says about the other hosts. Changes are applied in the order etcd made them, one
 * batch at a time. After the first list and after every re-list the kernel's entries are read
 * and compared as a whole (a restart or a reconnect may have missed deletes), so what a host
 * holds never drifts from etcd for longer than one sync.
 *
 * Nothing is removed because etcd went away: the entries stay until etcd says otherwise, so
 * running containers keep talking across hosts with etcd down (issue 17).
 */
import type { Logger } from 'pino';
import type { ClusterStore, EndpointChange } from '../cluster/cluster-store.js';
import type { FollowerState, PrefixFollower } from '../cluster/follower.js';
import { type AddressClaim, type EndpointRecord, readRecord } from '../cluster/records.js';
import { keys } from '../cluster/keys.js';
import { parseIp } from '../ip/address.js';
import { type Cidr, contains, parseCidr } from '../ip/cidr.js';
import type { ClusterBinding } from '../driver/state.js';
import { type Executor, applyAll } from '../host/executor.js';
import type { HostStep } from '../plan/step.js';
import { type RemoteEntry, diffEntries, parseFdb, parseNeigh, remoteEntrySteps, removeEntrySteps, repairSteps, vxlanName } from '../plan/vxlan.js';
import { vxlanGuardScript } from '../plan/vxlan-firewall.js';
import type { DataPlaneView, PlaneKnowledge } from '../doctor/vxlan.js';

/**
 * The reconciler's view of every cluster network's data plane, by local network id, once each
 * plane has applied what it received (its queue writes only to the kernel, never waits for
 * etcd): a guard repaired from this view does not undo a member change already on its way.
 */
export async function planeView(planes: ReadonlyMap<string, NetworkPlane>): Promise<DataPlaneView> {
  await Promise.all([...planes.values()].map((p) => p.idle()));
  return new Map([...planes].map(([id, p]) => [id, p.view()]));
}

export interface PlaneDeps {
  readonly store: ClusterStore;
  readonly exec: Executor;
  /** Runs a read-only command and answers its output (bridge -j fdb, ip -j neigh). */
  readonly read: (argv: readonly string[], log: Logger) => Promise<string>;
  readonly log: Logger;
  readonly self: string;
  /** Remote endpoints changed (names for DNS, metrics). */
  readonly onRemoteChange?: () => void;
  /** A sync completed after the first one: etcd is back, or it lost its data (converge own records). */
  readonly onResynced?: () => void;
  readonly onState?: (state: FollowerState, err?: Error) => void;
  /** Seconds from a record's write (its updatedAt) to its entries in the kernel. */
  readonly onLag?: (seconds: number) => void;
  readonly backoffMs?: { readonly first: number; readonly max: number };
}

export interface EntryDifference {
  readonly object: string;
  readonly detail: string;
  /** false: the plane does not follow etcd right now, so nothing was compared (nor repaired). */
  readonly compared?: false;
}

const entryOf = (e: EndpointRecord): RemoteEntry => ({ address: e.address, mac: e.mac, underlay: e.underlay });

export class NetworkPlane {
  /** Every endpoint record of the cluster network, by endpoint id (this host's own included). */
  readonly records = new Map<string, EndpointRecord>();
  /** Remote endpoints per member's underlay address: the guard's members, kept as records change (no rescan per event). */
  private readonly members = new Map<string, number>();
  private endpoints: PrefixFollower | undefined;
  private claims: PrefixFollower | undefined;
  /** The member set the guard holds now ('' before the first batch). */
  private admitted = '';
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  /** The next batch is the first list: compared with the kernel as a whole. */
  private first = true;
  private readonly subnet: Cidr | undefined;
  /** The first list from etcd is in `records`: from then on they are the last known, etcd up or not. */
  private listed = false;

  constructor(
    readonly networkId: string,
    readonly binding: ClusterBinding,
    private readonly d: PlaneDeps,
  ) {
    const c = parseCidr(binding.subnet);
    this.subnet = c.ok ? c.cidr : undefined;
  }

  get device(): string {
    return vxlanName(this.networkId);
  }

  get synced(): boolean {
    return this.endpoints?.current === 'synced';
  }

  start(): void {
    const log = this.d.log;
    this.endpoints = this.d.store.followEndpoints(this.binding.name, {
      onChanges: (changes, how) => this.enqueue(changes, how.resync || this.first),
      onProblem: (problem) => log.warn({ problem, cluster: this.binding.name }, 'cluster: an endpoint record in etcd does not fit and is ignored'),
      onState: (s, err) => {
        if (s === 'resyncing') log.warn({ cluster: this.binding.name, err: err?.message }, 'cluster: endpoint watch broken; listing again when etcd answers');
        if (s === 'synced' && (this.endpoints?.syncs ?? 0) > 1) this.d.onResynced?.();
        this.d.onState?.(s, err);
      },
      ...(this.d.backoffMs && { backoffMs: this.d.backoffMs }),
    });
    // The claims are followed too, so choosing a free address costs one transaction, not a list.
    this.claims = this.d.store.followPrefix(keys.addresses(this.binding.name), this.d.backoffMs);
  }

  /** Whether a claim key is held, from the followed copy; undefined when the copy is not complete. */
  claimKnown(): ((key: string) => boolean) | undefined {
    const c = this.claims;
    if (!c || c.current !== 'synced') return undefined;
    return (key) => c.mirror.get(key) !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.endpoints?.stop(), this.claims?.stop()]);
    await this.queue;
  }

  /** Resolves when the changes received so far are in the kernel. */
  idle(): Promise<void> {
    return this.queue;
  }

  /** The entries the kernel should hold: every endpoint of another host. */
  desired(): RemoteEntry[] {
    return [...this.records.values()].filter((e) => e.node !== this.d.self).map(entryOf);
  }

  remoteCount(): number {
    let n = 0;
    for (const c of this.members.values()) n += c;
    return n;
  }

  /** The followed copies of the network's claims and endpoint records, when both are complete. */
  followed(): { claims: AddressClaim[]; endpoints: EndpointRecord[] } | undefined {
    const c = this.claims;
    if (!this.synced || !c || c.current !== 'synced') return undefined;
    const claims = [...c.mirror.entries()].flatMap((it) => {
      const r = readRecord('address', it.key, it.value);
      return r.ok ? [r.record] : [];
    });
    return { claims, endpoints: [...this.records.values()] };
  }

  private put(e: EndpointRecord): void {
    this.drop(e.id);
    this.records.set(e.id, e);
    if (e.node !== this.d.self) this.members.set(e.underlay, (this.members.get(e.underlay) ?? 0) + 1);
  }

  private drop(id: string): void {
    const old = this.records.get(id);
    if (!old) return;
    this.records.delete(id);
    if (old.node === this.d.self) return;
    const n = (this.members.get(old.underlay) ?? 1) - 1;
    if (n > 0) this.members.set(old.underlay, n);
    else this.members.delete(old.underlay);
  }

  /** The guard's script for the members known now (their underlay addresses). */
  private guardStep(): { step: HostStep; admitted: string } {
    const peers = [...this.members.keys()].sort();
    return {
      admitted: peers.join(','),
      step: { what: `admit VXLAN from ${peers.length} member(s) on ${this.device}`, run: { kind: 'nft', script: vxlanGuardScript({ networkId: this.networkId, vni: this.binding.vni, peers }) } },
    };
  }

  /** A record whose address is outside the network (a hand-written or hostile one) is not programmed, nor named. */
  private fits(e: EndpointRecord): boolean {
    const a = parseIp(e.address);
    if (a && this.subnet && contains(this.subnet, a) && e.address !== this.binding.gateway) return true;
    this.d.log.warn({ cluster: this.binding.name, endpoint: e.id, address: e.address, node: e.node }, 'cluster: an endpoint record in etcd has an address outside the network (or its gateway); ignored');
    return false;
  }

  private enqueue(changes: readonly EndpointChange[], whole: boolean): void {
    this.first = false;
    // A record that does not fit counts as absent: a put of one deletes what it replaced.
    changes = changes.map((ch) => (ch.type === 'put' && !this.fits(ch.endpoint) ? { type: 'delete', endpoint: ch.endpoint } : ch));
    this.queue = this.queue.then(() => this.apply(changes, whole)).catch((err: unknown) => {
      this.d.log.error({ err, cluster: this.binding.name }, 'cluster: programming remote endpoints failed; the next sync or the doctor retries');
    });
  }

  private async apply(changes: readonly EndpointChange[], whole: boolean): Promise<void> {
    if (this.stopped) return;
    const touched = new Map<string, EndpointRecord | undefined>(); // mac → the record that held it before
    for (const ch of changes) {
      const old = this.records.get(ch.endpoint.id);
      if (old) touched.set(old.mac, touched.get(old.mac) ?? old);
      if (ch.type === 'put') this.put(ch.endpoint);
      else this.drop(ch.endpoint.id);
      if (!touched.has(ch.endpoint.mac)) touched.set(ch.endpoint.mac, undefined);
    }
    this.listed = true;
    const log = this.d.log;
    let steps: HostStep[];
    if (whole) {
      steps = await this.repairAll(log);
    } else {
      // Per touched MAC, the record that now holds it decides (an address moved between hosts
      // in one batch, a delete that comes after the same address's new owner put).
      const byMac = new Map<string, EndpointRecord>();
      for (const e of this.records.values()) if (touched.has(e.mac)) byMac.set(e.mac, e);
      steps = [];
      for (const [mac, before] of touched) {
        const now = byMac.get(mac);
        if (now && now.node !== this.d.self) steps.push(...remoteEntrySteps(this.networkId, entryOf(now)));
        else if (before && before.node !== this.d.self) steps.push(...removeEntrySteps(this.networkId, before));
      }
    }
    const guard = this.guardStep();
    if (guard.admitted !== this.admitted || whole) steps.push(guard.step);
    // A failure leaves `admitted` as it was, so the next batch writes the guard again.
    await applyAll(this.d.exec, steps, log);
    this.admitted = guard.admitted;
    const now = Date.now();
    if (!whole) for (const ch of changes) if (ch.type === 'put') this.d.onLag?.(Math.max(0, (now - Date.parse(ch.endpoint.updatedAt)) / 1000));
    if (changes.length > 0) this.d.onRemoteChange?.();
  }

  /** Reads the device's entries and answers the steps to the desired ones. */
  private async repairAll(log: Logger): Promise<HostStep[]> {
    const observed = await this.observe(log);
    return repairSteps(this.networkId, diffEntries(this.desired(), observed));
  }

  async observe(log: Logger): Promise<{ fdb: Map<string, string>; neigh: Map<string, string> }> {
    const dev = this.device;
    const [fdb, neigh] = await Promise.all([this.d.read(['bridge', '-j', 'fdb', 'show', 'dev', dev], log), this.d.read(['ip', '-j', 'neigh', 'show', 'dev', dev], log)]);
    return { fdb: parseFdb(fdb), neigh: parseNeigh(neigh) };
  }

  /** The doctor's view: entries that differ from etcd's records, and (with `repair`) repaired. */
  async doctor(repair: boolean, log: Logger): Promise<EntryDifference[]> {
    await this.queue;
    const d = diffEntries(this.desired(), await this.observe(log));
    const out: EntryDifference[] = [
      ...d.program.map((e) => ({ object: `${this.device} entry ${e.address}`, detail: `missing or wrong: etcd says ${e.mac} on host ${e.underlay}` })),
      ...d.removeFdb.map((m) => ({ object: `${this.device} fdb ${m}`, detail: 'no endpoint in etcd has this MAC' })),
      ...d.removeNeigh.map((a) => ({ object: `${this.device} neighbour ${a}`, detail: 'no endpoint in etcd has this address' })),
    ];
    if (repair && out.length > 0) await applyAll(this.d.exec, repairSteps(this.networkId, d), log);
    return out;
  }

  /**
   * What the reconciler needs of this network (doctor/vxlan.ts): the guard's members and the
   * remote entries as last received from etcd, kept while etcd is unreachable; nothing before
   * the first list.
   */
  view(): PlaneKnowledge {
    return this.listed ? { members: [...this.members.keys()].sort(), entries: this.desired() } : {};
  }
}
