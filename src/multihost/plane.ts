/**
 * One cluster network's data plane on this host: follows the network's endpoint records and
 * address claims in etcd (list, watch, re-list after any break: cluster/follower.ts) and keeps
 * the VXLAN device's forwarding and neighbour entries and the VXLAN guard's member set equal to
 * what etcd says about the other hosts. Changes are applied in the order etcd made them, one
 * batch at a time. After the first list and after every re-list the kernel's entries are read
 * and compared as a whole (a restart or a reconnect may have missed deletes), so what a host
 * holds never drifts from etcd for longer than one sync. Between syncs the doctor compares them
 * (doctor/vxlan-entries.ts, from `view`), with the reconciler's policies: this file has no
 * doctor of its own.
 *
 * Nothing is removed because etcd went away: the entries stay until etcd says otherwise, so
 * running containers keep talking across hosts with etcd down (issue 17).
 */
import type { Logger } from 'pino';
import type { ClusterStore, EndpointChange } from '../cluster/cluster-store.js';
import type { FollowerState, PrefixFollower } from '../cluster/follower.js';
import { type AddressClaim, type EndpointRecord, readRecord } from '../cluster/records.js';
import { keys } from '../cluster/keys.js';
import { type Cidr, parseCidr } from '../ip/cidr.js';
import type { ClusterBinding } from '../driver/state.js';
import { type Executor, applyAll } from '../host/executor.js';
import type { HostStep } from '../plan/step.js';
import { messageOf } from '../errors.js';
import {
  type ObservedEntries,
  type RemoteEntry,
  diffEntries,
  floodChangeSteps,
  parseFdb,
  parseFlood,
  parseNeigh,
  remoteEntrySteps,
  removeEntrySteps,
  repairSteps,
  vxlanName,
} from '../plan/vxlan.js';
import { guardCommands, guardFor, guardMemberCommands } from '../plan/vxlan-firewall.js';
import { nftOp } from '../plan/nft.js';
import { type OwnEndpoint, type OwnEndpoints, type RefusalReason, judgeRecord, mergeOwn } from './trust.js';
import type { DataPlaneView, PlaneKnowledge } from '../doctor/vxlan.js';
import { type Batch, CoalescingQueue } from './batch-queue.js';
import type { ClusterPolicyInput } from '../driver/state.js';
import { PolicyFollower } from './policies.js';

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
  /** This host's underlay address: no other node's record may send frames to it. */
  readonly selfUnderlay: string;
  /** This host's own endpoints on this network, from its state (trust.ts). */
  readonly own: () => OwnEndpoints;
  /**
   * Whether a node's presence is alive (AgentCore.isUp; every node while that copy is not
   * complete). A node whose lease expired leaves the VXLAN guard until it is back (finding 11).
   */
  readonly isUp?: (node: string) => boolean;
  /** A record was refused (trust.ts): counted by reason. */
  readonly onRefused?: (reason: RefusalReason) => void;
  /** Remote endpoints changed (names for DNS, metrics). */
  readonly onRemoteChange?: () => void;
  /** A sync completed after the first one: etcd is back, or it lost its data (converge own records). */
  readonly onResynced?: () => void;
  readonly onState?: (state: FollowerState, err?: Error) => void;
  /** Seconds from a record's write (its updatedAt) to its entries in the kernel. */
  readonly onLag?: (seconds: number) => void;
  readonly backoffMs?: { readonly first: number; readonly max: number };
  /**
   * The network's policies in etcd or the other hosts' endpoints changed (issue 25): what this
   * host's table must now enforce (Plugin.clusterPolicyChanged, under the request lock).
   */
  readonly onPolicy?: (input: ClusterPolicyInput) => void;
  /**
   * An encrypted network's (issue 24): where VXLAN for the member at an underlay address goes,
   * its WireGuard tunnel address; undefined while it is no believed peer (nothing is sent to it
   * then, and its VXLAN is not admitted). Without it (a plain network), the underlay address.
   */
  readonly via?: (underlay: string) => string | undefined;
}

/** Whether two records of one endpoint program the same kernel entries and guard members. */
const samePlane = (a: EndpointRecord, b: EndpointRecord): boolean =>
  a.mac === b.mac && a.address === b.address && a.address6 === b.address6 && a.node === b.node && a.underlay === b.underlay;

/** A record's addresses: its IPv4 one, and its IPv6 one on a dual-stack network. */
const addressesOf = (e: EndpointRecord): string[] => [e.address, ...(e.address6 !== undefined ? [e.address6] : [])];

export interface RefusedRecord {
  readonly record: EndpointRecord;
  readonly reason: RefusalReason;
  readonly detail: string;
}

export class NetworkPlane {
  /** Every endpoint record of the cluster network this host believes, by endpoint id (its own included). */
  readonly records = new Map<string, EndpointRecord>();
  /** Records that parse but that this host does not believe (trust.ts), by endpoint id: never programmed, listed by the doctor. */
  readonly refused = new Map<string, RefusedRecord>();
  /**
   * The records believed, as judged (ahead of `records`, which follows the kernel's queue), and
   * by MAC (one MAC, one endpoint: trust.ts).
   */
  private readonly believed = new Map<string, EndpointRecord>();
  private readonly byMac = new Map<string, EndpointRecord>();
  private readonly pendingOwn = new Map<string, OwnEndpoint>();
  /** Remote endpoints per member's underlay address: the guard's members, kept as records change (no rescan per event). */
  private readonly members = new Map<string, number>();
  /** The node each member's underlay address was last published by: whose presence admits it. */
  private readonly memberNode = new Map<string, string>();
  private endpoints: PrefixFollower | undefined;
  private claims: PrefixFollower | undefined;
  /** The network's policies in etcd (issue 25), with those refused. */
  readonly policies: PolicyFollower;
  /** The members the guard's set holds now; undefined until the whole guard is written (first batch, or after a failure). */
  private admitted: ReadonlySet<string> | undefined;
  /** The all-zero entry's destinations as last programmed (mynet.multicast; empty without it). */
  private flooded: readonly string[] = [];
  /** Record changes on their way to the kernel, coalesced (finding 13: a watch storm is one batch per apply). */
  private readonly queue = new CoalescingQueue<EndpointChange>(
    (ch) => ch.endpoint.id,
    (batch) => this.apply(batch),
    (err: unknown) => {
      this.d.log.error(
        { err, cluster: this.binding.name },
        'cluster: programming remote endpoints failed; the next sync or the doctor retries',
      );
    },
  );
  private stopped = false;
  /** The watches' cancels asked by `stop`, done (or failed: logged). */
  cancelled: Promise<void> = Promise.resolve();
  /** The next batch is the first list: compared with the kernel as a whole. */
  private first = true;
  private readonly subnet: Cidr | undefined;
  private readonly subnet6: Cidr | undefined;
  /** The first list from etcd is in `records`: from then on they are the last known, etcd up or not. */
  private listed = false;

  constructor(
    readonly networkId: string,
    readonly binding: ClusterBinding,
    private readonly d: PlaneDeps,
  ) {
    const c = parseCidr(binding.subnet);
    this.subnet = c.ok ? c.cidr : undefined;
    const c6 = binding.subnet6 !== undefined ? parseCidr(binding.subnet6) : undefined;
    this.subnet6 = c6?.ok ? c6.cidr : undefined;
    this.policies = new PolicyFollower(binding.name, d.log, () => this.remote(), d.onPolicy);
  }

  /** The other hosts' believed endpoints, as policy sources: their addresses and record labels. */
  private remote(): ClusterPolicyInput['remote'] {
    return [...this.records.values()].flatMap((e) =>
      e.node === this.d.self ? [] : [{ addresses: addressesOf(e), labels: e.labels ?? {} }],
    );
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
      onProblem: (problem) =>
        log.warn({ problem, cluster: this.binding.name }, 'cluster: an endpoint record in etcd does not fit and is ignored'),
      onState: (s, err) => {
        if (s === 'resyncing')
          log.warn({ cluster: this.binding.name, err: err?.message }, 'cluster: endpoint watch broken; listing again when etcd answers');
        if (s === 'synced' && (this.endpoints?.syncs ?? 0) > 1) this.d.onResynced?.();
        this.d.onState?.(s, err);
      },
      ...(this.d.backoffMs && { backoffMs: this.d.backoffMs }),
    });
    // The claims are followed too, so choosing a free address costs one transaction, not a list.
    // A changed claim may change what a record is believed: judge again the records of its address.
    this.claims = this.d.store.followPrefix(keys.addresses(this.binding.name), this.d.backoffMs, (changes) =>
      this.claimsChanged(changes.map((c) => c.key)),
    );
    // A re-list after a break is a whole copy again (cluster/mirror.ts): the policies are read from it as a whole.
    this.policies.start(this.d.store.followPrefix(keys.policies(this.binding.name), this.d.backoffMs, () => this.policies.fromEtcd()));
  }

  /** Whether a claim key is held, from the followed copy; undefined when the copy is not complete. */
  claimKnown(): ((key: string) => boolean) | undefined {
    const c = this.claims;
    if (!c || c.current !== 'synced') return undefined;
    return (key) => c.mirror.get(key) !== undefined;
  }

  /**
   * Stops following: nothing received from here on is applied. Resolves when what was being
   * applied is in the kernel; the cancels of the two watches (an etcd round trip each, bounded
   * at 3 s) are not waited for, because DeleteNetwork calls this under the request lock and a
   * stopped etcd held every request of every network 4-8 s behind them (issue 22, finding 6).
   * A follower ignores its watch's events once stopped, so a late cancel changes nothing here;
   * `cancelled` resolves when both are done (the shutdown waits for it, bounded).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelled = Promise.all([this.endpoints?.stop(), this.claims?.stop(), this.policies.stop()]).then(
      () => undefined,
      (err: unknown) => this.d.log.warn({ err: messageOf(err), cluster: this.binding.name }, 'cluster: cancelling a watch failed'),
    );
    await this.queue.idle();
  }

  /** Resolves when the changes received so far are in the kernel. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** The entries the kernel should hold: every endpoint of another host (encrypted: of a believed peer). */
  desired(): RemoteEntry[] {
    return [...this.records.values()].flatMap((e) => {
      const r = e.node === this.d.self ? undefined : this.entryOf(e);
      return r ? [r] : [];
    });
  }

  private entryOf(e: EndpointRecord): RemoteEntry | undefined {
    const to = this.d.via ? this.d.via(e.underlay) : e.underlay;
    return to === undefined
      ? undefined
      : { address: e.address, ...(e.address6 !== undefined && { address6: e.address6 }), mac: e.mac, underlay: to };
  }

  /** Where the member hosts' VXLAN comes from and goes to: their underlay addresses, or their tunnel addresses. */
  private memberAddresses(): string[] {
    const via = this.d.via;
    if (!via) return [...this.members.keys()];
    return [...new Set([...this.members.keys()].flatMap((u) => via(u) ?? []))];
  }

  /**
   * The entries and the guard compared with the kernel as a whole again: an encrypted
   * network's peers changed (a tunnel address learnt or gone), which no record change says.
   */
  resync(): void {
    if (!this.stopped && this.listed) this.enqueue([], true, false);
  }

  /**
   * Where the all-zero entry floods: every member host (the guard's members, kept by the same
   * record changes) with mynet.multicast on, none without it.
   */
  desiredFlood(): string[] {
    return this.binding.multicast ? this.memberAddresses().sort() : [];
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
    if (e.node !== this.d.self) {
      this.members.set(e.underlay, (this.members.get(e.underlay) ?? 0) + 1);
      this.memberNode.set(e.underlay, e.node);
    }
  }

  /** The members the guard admits: those whose node is present (a dead host's frames are dropped until it is back). */
  private admittedPeers(): Set<string> {
    const up = this.d.isUp;
    const alive = [...this.members.keys()].filter((u) => !up || up(this.memberNode.get(u) ?? ''));
    // Encrypted: the guard admits the live peers' tunnel addresses, not their underlay ones.
    const via = this.d.via;
    return new Set(via ? alive.flatMap((u) => via(u) ?? []) : alive);
  }

  /** A node's presence came or went: the guard follows (an empty batch: members by element). */
  presenceChanged(): void {
    if (!this.stopped && this.listed) this.enqueue([], false, false);
  }

  private drop(id: string): void {
    const old = this.records.get(id);
    if (!old) return;
    this.records.delete(id);
    if (old.node === this.d.self) return;
    const n = (this.members.get(old.underlay) ?? 1) - 1;
    if (n > 0) this.members.set(old.underlay, n);
    else {
      this.members.delete(old.underlay);
      this.memberNode.delete(old.underlay);
    }
  }

  /**
   * The guard for the members known now (their underlay addresses): whole after a sync from
   * scratch, else only the members that joined or left as elements (issue 22, finding 13: a
   * watch storm rewrote the whole guard per event).
   */
  private guardStep(whole: boolean): { step?: HostStep; admitted: ReadonlySet<string> } {
    const peers = this.admittedPeers();
    const before = this.admitted;
    if (whole || !before) {
      return {
        admitted: peers,
        step: {
          what: `admit VXLAN from ${peers.size} member(s) on ${this.device}`,
          run: nftOp(guardCommands(guardFor(this.networkId, this.binding, [...peers]))),
        },
      };
    }
    const joined = [...peers].filter((p) => !before.has(p));
    const left = [...before].filter((p) => !peers.has(p));
    if (joined.length + left.length === 0) return { admitted: peers };
    return {
      admitted: peers,
      step: {
        what: `VXLAN members of ${this.device}: ${joined.length} joined, ${left.length} left`,
        run: nftOp(guardMemberCommands(this.networkId, joined, left)),
      },
    };
  }

  /** Who holds an address's claim, from the followed copy; undefined while the copy is not complete. */
  private claimHolder(): ((address: string) => string | undefined) | undefined {
    const c = this.claims;
    if (!c || c.current !== 'synced') return undefined;
    return (address) => {
      const it = c.mirror.get(keys.address(this.binding.name, address));
      const r = it && readRecord('address', it.key, it.value);
      return r && r.ok ? r.record.node : undefined;
    };
  }

  /**
   * Turns the puts of records this host does not believe into deletes (what they replaced goes),
   * and remembers them as refused. Judged against this host's endpoints as they are now.
   */
  private judge(changes: readonly EndpointChange[]): EndpointChange[] {
    const ctx = {
      self: this.d.self,
      selfUnderlay: this.d.selfUnderlay,
      subnet: this.subnet,
      gateway: this.binding.gateway,
      subnet6: this.subnet6,
      gateway6: this.binding.gateway6,
      gatewayMac: this.binding.gatewayMac,
      own: this.ownNow(),
      claimHolder: this.claimHolder(),
      macHolder: (mac: string) => {
        const e = this.byMac.get(mac);
        return e && e.node !== this.d.self ? e : undefined;
      },
    };
    const freed: string[] = [];
    const unbelieve = (id: string): void => {
      const old = this.believed.get(id);
      if (!old) return;
      this.believed.delete(id);
      if (this.byMac.get(old.mac)?.id === id) {
        this.byMac.delete(old.mac);
        freed.push(old.mac);
      }
    };
    const out = changes.map((ch): EndpointChange => {
      const id = ch.endpoint.id;
      if (ch.type === 'delete') {
        this.refused.delete(id);
        unbelieve(id);
        return ch;
      }
      const j = judgeRecord(ch.endpoint, ctx);
      if (j.ok) {
        this.refused.delete(id);
        unbelieve(id);
        this.believed.set(id, ch.endpoint);
        this.byMac.set(ch.endpoint.mac, ch.endpoint);
        return ch;
      }
      unbelieve(id);
      const before = this.refused.get(id);
      this.refused.set(id, { record: ch.endpoint, reason: j.reason, detail: j.detail });
      // 'unclaimed' is also what a real record looks like while its claim's watch event is on
      // its way: listed by the doctor, not counted or logged (the claim judges it again).
      if (j.reason !== 'unclaimed' && (before?.reason !== j.reason || before.record.updatedAt !== ch.endpoint.updatedAt)) {
        this.d.onRefused?.(j.reason);
        this.d.log.warn(
          { cluster: this.binding.name, endpoint: id, node: ch.endpoint.node, reason: j.reason, detail: j.detail },
          'cluster: an endpoint record in etcd is not believed; ignored',
        );
      }
      return { type: 'delete', endpoint: ch.endpoint };
    });
    // A MAC given up: the records refused for holding it are judged again (the next one may have it).
    const waiting = [...this.refused.values()].filter((r) => r.reason === 'mac-taken' && freed.includes(r.record.mac)).map((r) => r.record);
    if (waiting.length > 0)
      queueMicrotask(() =>
        this.enqueue(
          waiting.map((endpoint) => ({ type: 'put', endpoint })),
          false,
          false,
        ),
      );
    return out;
  }

  /** Claims changed: the records of those addresses, believed or refused, are judged again. */
  private claimsChanged(keysChanged: readonly string[]): void {
    if (this.stopped || !this.endpoints) return;
    const prefix = keys.addresses(this.binding.name);
    const addresses = new Set(keysChanged.map((k) => k.slice(prefix.length)));
    const again = [...this.believed.values(), ...[...this.refused.values()].map((r) => r.record)].filter((e) =>
      addressesOf(e).some((x) => addresses.has(x)),
    );
    if (again.length > 0)
      this.enqueue(
        again.map((endpoint) => ({ type: 'put', endpoint })),
        false,
        false,
      );
  }

  /**
   * An endpoint of this host's took `address` and `mac`: another node's record of either is no
   * longer believed (its neighbour entry would answer this host's own containers' ARP).
   */
  ownEndpointAdded(id: string, address: string | undefined, mac: string, address6?: string): void {
    if (this.stopped) return;
    // Until the orchestrator commits it, the state does not have it: judged as this host's meanwhile.
    this.pendingOwn.set(id, { id, ...(address !== undefined && { address }), ...(address6 !== undefined && { address6 }), mac });
    const mine = (x: string): boolean => x === address || x === address6;
    const hit = [...this.believed.values()].filter((e) => e.node !== this.d.self && (addressesOf(e).some(mine) || e.mac === mac));
    if (hit.length > 0)
      this.enqueue(
        hit.map((endpoint) => ({ type: 'put', endpoint })),
        false,
        false,
      );
  }

  /** An endpoint of this host's is gone (withdrawn, or its create rolled back). */
  ownEndpointRemoved(id: string): void {
    this.pendingOwn.delete(id);
  }

  /** This host's endpoints: the state's, and those published before the state has them. */
  private ownNow(): OwnEndpoints {
    if (this.pendingOwn.size === 0) return this.d.own();
    const base = this.d.own();
    for (const id of this.pendingOwn.keys()) if (base.ids.has(id)) this.pendingOwn.delete(id);
    return this.pendingOwn.size === 0 ? base : mergeOwn(base, this.pendingOwn.values());
  }

  /** `fromWatch`: the changes are etcd's news (their lag is measured), not a judgement again. */
  private enqueue(changes: readonly EndpointChange[], whole: boolean, fromWatch = true): void {
    if (fromWatch) this.first = false;
    // A record not believed counts as absent: a put of one deletes what it replaced.
    this.queue.push(this.judge(changes), whole, fromWatch);
  }

  private async apply(batch: Batch<EndpointChange>): Promise<void> {
    if (this.stopped) return;
    const { changes, whole } = batch;
    if (batch.folded > 0) this.d.log.debug({ cluster: this.binding.name, folded: batch.folded }, 'cluster: record changes coalesced');
    const touched = new Map<string, EndpointRecord | undefined>(); // mac → the record that held it before
    for (const ch of changes) {
      const old = this.records.get(ch.endpoint.id);
      // A record written again with what the kernel already has (a new updatedAt, a name or an
      // alias changed): nothing to program (a storm of such writes costs no host command).
      if (ch.type === 'put' && old && samePlane(old, ch.endpoint)) {
        this.put(ch.endpoint);
        continue;
      }
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
      const held = new Set<string>(); // addresses a remote record holds now, after these changes
      for (const e of this.records.values()) {
        if (touched.has(e.mac)) byMac.set(e.mac, e);
        if (e.node !== this.d.self) for (const x of addressesOf(e)) held.add(x);
      }
      steps = [];
      for (const [mac, before] of touched) {
        const now = byMac.get(mac);
        const entry = now && now.node !== this.d.self ? this.entryOf(now) : undefined;
        if (entry) steps.push(...remoteEntrySteps(this.networkId, entry));
        else if (before && before.node !== this.d.self) steps.push(...removeEntrySteps(this.networkId, before, (x) => held.has(x)));
      }
    }
    // The flood entries follow the members as the guard does (a whole sync compared them with the kernel already).
    const flood = this.desiredFlood();
    if (!whole) steps.push(...floodChangeSteps(this.networkId, this.flooded, flood));
    const guard = this.guardStep(whole);
    if (guard.step) steps.push(guard.step);
    // After a failure the set's members are not known: the next batch writes the whole guard;
    // `flooded` stays as it was, so the next batch writes the flood entries again.
    this.admitted = undefined;
    await applyAll(this.d.exec, steps, log);
    this.admitted = guard.admitted;
    this.flooded = flood;
    const now = Date.now();
    if (!whole)
      for (const ch of batch.watched) if (ch.type === 'put') this.d.onLag?.(Math.max(0, (now - Date.parse(ch.endpoint.updatedAt)) / 1000));
    if (changes.length > 0) {
      this.d.onRemoteChange?.();
      // A remote endpoint came, went or changed labels: the policy sources follow (unchanged: nothing).
      this.policies.changed();
    }
  }

  /** Reads the device's entries and answers the steps to the desired ones. */
  private async repairAll(log: Logger): Promise<HostStep[]> {
    const observed = await this.observe(log);
    return repairSteps(this.networkId, diffEntries(this.desired(), observed, this.desiredFlood()));
  }

  private async observe(log: Logger): Promise<ObservedEntries & { flood: ReadonlySet<string> }> {
    const dev = this.device;
    const [fdb, neigh] = await Promise.all([
      this.d.read(['bridge', '-j', 'fdb', 'show', 'dev', dev], log),
      this.d.read(['ip', '-j', 'neigh', 'show', 'dev', dev], log),
    ]);
    return { fdb: parseFdb(fdb), neigh: parseNeigh(neigh), flood: parseFlood(fdb) };
  }

  /**
   * What the reconciler needs of this network (doctor/vxlan.ts, doctor/vxlan-entries.ts): the
   * guard's members, the remote and flood entries as last received from etcd (kept while etcd is
   * unreachable), whether it follows etcd now, and the records and policies it refused; nothing
   * but "not following" before the first list.
   */
  view(): PlaneKnowledge {
    if (!this.listed) return { following: false };
    return {
      members: [...this.admittedPeers()].sort(),
      entries: this.desired(),
      flood: this.desiredFlood(),
      following: this.synced,
      refused: [...this.refused.values()].map((r) => ({ id: r.record.id, node: r.record.node, reason: r.reason, detail: r.detail })),
      refusedPolicies: [...this.policies.refused],
    };
  }
}
