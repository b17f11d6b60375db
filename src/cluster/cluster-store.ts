/**
 * The cluster's shared state in etcd, as the orchestrator will use it (docs/multihost-design.md):
 * network definitions, address claims, endpoint records, and the lists and follows of them.
 * Every call goes through Kv, so each is bounded in time (etcd-kv.ts) and fails with
 * CLUSTER_UNAVAILABLE when etcd does not answer. Conflicts are CONFLICT errors that show what
 * is recorded and who holds it. Address and endpoint records are never on a lease: a lost lease
 * must not free addresses that running containers use (flannel #29, #520).
 */
import { bareAddress } from '../rules/address.js';
import { PluginError, invalid } from '../errors.js';
import { parseIp } from '../ip/address.js';
import { contains, parseCidr } from '../ip/cidr.js';
import { PrefixFollower, type FollowerState } from './follower.js';
import { gatewayMacFor, subnetAndGateway, vniFor } from './identity.js';
import { checkClusterName, checkId } from '../rules/names.js';
import { VNI_MAX, VNI_MIN } from '../rules/vni.js';
import { putWhileClaimed } from './claim-guard.js';
import { type Left, MEMBERSHIP_TRIES, type MembersDeps, joinRecorded, leaveNetwork, memberValue } from './definition-members.js';
import { canonicalIp, keys } from './keys.js';
import { holderOf, ownedBy, staleOwn } from './owner.js';
import type { Kv, KvItem } from './kv.js';
import type { MirrorChange } from './mirror.js';
import {
  type AddressClaim,
  type EndpointRecord,
  type NetworkDefinition,
  type NodeRecord,
  type RecordOf,
  definitionShape,
  encodeRecord,
  readRecord,
} from './records.js';

export interface NodeIdentity {
  readonly name: string;
  readonly address: string;
  /** This host's node id (node-id.ts): who wrote a record; absent only in unit fakes. */
  readonly id?: string;
}

export interface NetworkWanted {
  readonly cluster: string;
  readonly subnet: string;
  /** `--gateway`; undefined: the subnet's first host address (deterministic on every host). */
  readonly gateway?: string;
  /** Dual stack (`--ipv6`): the one IPv6 subnet and its `--gateway` (undefined: its first host address). */
  readonly subnet6?: string;
  readonly gateway6?: string;
  /** `-o mynet.vni`; undefined: derived from the name, or whatever is recorded. */
  readonly vni?: number;
  /** This host's underlay MTU minus 50. A recorded smaller MTU is accepted; a larger one is not. */
  readonly mtu: number;
  /** `--internal`, `-o mynet.multicast=true`: every host must ask the same (absent: false). */
  readonly internal?: boolean;
  readonly multicast?: boolean;
  /** `-o mynet.encrypt`: must be what is recorded, both ways (a plain host must not join an encrypted network). */
  readonly encrypt?: 'wireguard';
}

/**
 * Whether a host's request and the recorded definition are two different networks: the subnet,
 * the gateway, the IPv6 subnet and gateway (or their absence), an asked-for VXLAN id, an MTU larger than recorded, `--internal`, multicast or
 * the encryption. A record without internal/multicast/encrypt (written before they existed) has none.
 * `--ip-range` is not compared: it is each host's own.
 */
export function definitionConflicts(recorded: NetworkDefinition, w: Omit<NetworkWanted, 'cluster'>): boolean {
  return (
    recorded.subnet !== w.subnet ||
    recorded.gateway !== w.gateway ||
    recorded.subnet6 !== w.subnet6 ||
    recorded.gateway6 !== w.gateway6 ||
    (w.vni !== undefined && recorded.vni !== w.vni) ||
    recorded.mtu > w.mtu ||
    (recorded.internal === true) !== (w.internal === true) ||
    (recorded.multicast === true) !== (w.multicast === true) ||
    recorded.encrypt !== w.encrypt
  );
}

/** What an address claim needs of a definition (a host's stored copy of it is enough). */
export type NetworkRef = Pick<NetworkDefinition, 'cluster' | 'subnet' | 'gateway' | 'subnet6' | 'gateway6'>;

export interface ForgetOutcome {
  readonly addresses: number;
  readonly endpoints: number;
  /** Its memberships of network definitions (finding 21): a forgotten node no longer keeps one. */
  readonly memberships: number;
}

/** A claim or endpoint record of a node, at the revision read. */
export interface NodeRecordItem {
  readonly kind: 'address' | 'endpoint' | 'member';
  readonly key: string;
  readonly modRevision: number;
  /** An endpoint record's underlay address. */
  readonly underlay?: string;
}

export type ReleaseOutcome = 'released' | 'absent' | 'not-ours';
export type WithdrawOutcome = 'withdrawn' | 'absent' | 'not-ours';

export type EndpointChange =
  { readonly type: 'put'; readonly endpoint: EndpointRecord } | { readonly type: 'delete'; readonly endpoint: EndpointRecord };

export interface FollowEndpointsOptions {
  readonly onChanges: (changes: readonly EndpointChange[], how: { readonly resync: boolean }) => void;
  /** Records that failed validation (logged and counted by the caller, never used). */
  readonly onProblem?: (problem: string) => void;
  readonly onState?: (state: FollowerState, err?: Error) => void;
  readonly backoffMs?: { readonly first: number; readonly max: number };
}

export class ClusterStore {
  /**
   * What this store wrote last under each key (claims, endpoint records): a release or a
   * withdrawal is then one compare-and-delete on that exact value (it names this node and the
   * time of the write), without reading the record first. A key rewritten since (`mynet cluster
   * forget`, another host after etcd lost its data) fails the compare, and the read-then-delete
   * below decides as before. Bounded by this host's live claims and endpoints.
   */
  private readonly written = new Map<string, string>();

  constructor(
    readonly kv: Kv,
    readonly node: NodeIdentity,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private stamp(): string {
    return this.now().toISOString();
  }

  async getNetwork(cluster: string): Promise<NetworkDefinition | undefined> {
    const it = await this.kv.get(keys.network(cluster));
    return it && this.checked('network', it);
  }

  /**
   * Records the network's definition if it is the first, else checks it against the recorded
   * one. Answers the recorded definition (what every host must build).
   */
  async defineNetwork(w: NetworkWanted): Promise<NetworkDefinition> {
    const cluster = checkClusterName('mynet.cluster', w.cluster);
    const { subnet, gateway } = subnetAndGateway(w.subnet, w.gateway);
    const v6 = w.subnet6 !== undefined ? subnetAndGateway(w.subnet6, w.gateway6, 6) : undefined;
    const dual = v6 && { subnet6: v6.subnet, gateway6: v6.gateway };
    const vni = w.vni ?? vniFor(cluster);
    const flags = {
      ...(w.internal === true && { internal: true as const }),
      ...(w.multicast === true && { multicast: true as const }),
      ...(w.encrypt && { encrypt: w.encrypt }),
    };
    const def: NetworkDefinition = {
      v: 1,
      cluster,
      subnet,
      gateway,
      gatewayMac: gatewayMacFor(cluster),
      ...dual,
      vni,
      mtu: w.mtu,
      ...flags,
      members: true,
      createdBy: this.node.name,
      createdAt: this.stamp(),
    };
    const netKey = keys.network(cluster);
    const vniKey = keys.vni(vni);
    const d = this.members();
    for (let tries = 0; tries < MEMBERSHIP_TRIES; tries++) {
      const member = memberValue(d, cluster);
      const r = await this.kv.createAll([
        { key: netKey, value: encodeRecord('network', netKey, def) },
        { key: vniKey, value: encodeRecord('vni', vniKey, { v: 1, cluster }) },
        member,
      ]);
      if (r.created) return def;
      const [netItem, vniItem, memItem] = r.existing;
      if (netItem) {
        const recorded = this.checked('network', netItem);
        if (definitionConflicts(recorded, { ...w, subnet, gateway, subnet6: dual?.subnet6, gateway6: dual?.gateway6 })) {
          throw new PluginError(
            'CONFLICT',
            `mynet.cluster: cluster network "${cluster}" is already defined by node ${recorded.createdBy} as ${definitionShape(recorded)}; this host asked for ${definitionShape({ subnet, gateway, ...dual, vni: w.vni ?? recorded.vni, mtu: w.mtu, ...flags })}. Create it as recorded: --subnet ${recorded.subnet} --gateway ${recorded.gateway}${recorded.subnet6 ? ` --ipv6 --subnet ${recorded.subnet6} --gateway ${recorded.gateway6 ?? '?'}` : ''}${recorded.internal ? ' --internal' : ''}${recorded.multicast ? ' -o mynet.multicast=true' : ''}${recorded.encrypt ? ` -o mynet.encrypt=${recorded.encrypt}` : ''} (a --ip-range of its own is fine; the MTU must fit this host's underlay)`,
          );
        }
        if (await joinRecorded(d, recorded, netItem, memItem)) return recorded;
        continue;
      }
      const holder = vniItem ? this.checked('vni', vniItem).cluster : undefined;
      if (holder !== undefined && holder !== cluster)
        throw new PluginError(
          'CONFLICT',
          `mynet.vni: VXLAN id ${vni} is already used by cluster network "${holder}"; choose another with -o mynet.vni=<${VNI_MIN}-${VNI_MAX}>`,
        );
      // No definition, but this cluster's VXLAN id or this host's membership left behind (an
      // operator's delete of the definition): made anew over them, at the revisions read.
      const made = await this.kv.writeIfAt(
        [
          { key: netKey, modRevision: 0 },
          { key: vniKey, modRevision: vniItem?.modRevision ?? 0 },
          { key: member.key, modRevision: memItem?.modRevision ?? 0 },
        ],
        [
          { key: netKey, value: encodeRecord('network', netKey, def) },
          { key: vniKey, value: encodeRecord('vni', vniKey, { v: 1, cluster }) },
          member,
        ],
      );
      if (made) return def;
    }
    throw new PluginError(
      'CLUSTER_UNAVAILABLE',
      `mynet.cluster: cluster network "${cluster}": its definition changed at each of ${MEMBERSHIP_TRIES} tries; try again`,
    );
  }

  /**
   * This host's DeleteNetwork, once its claims and records are gone (multihost/departures.ts):
   * its membership leaves, and the definition with it when no other host has the network.
   */
  leaveNetwork(cluster: string): Promise<Left> {
    return leaveNetwork(this.members(), checkClusterName('cluster', cluster));
  }

  private members(): MembersDeps {
    return { kv: this.kv, node: this.node, stamp: () => this.stamp() };
  }

  /** Claims one address for this node. Claiming again an address this node holds succeeds (a retried request). */
  async claimAddress(def: NetworkRef, address: string): Promise<AddressClaim> {
    const ip = this.checkInSubnet(def, address);
    const claim: AddressClaim = {
      v: 1,
      cluster: def.cluster,
      address: ip,
      node: this.node.name,
      ...(this.node.id !== undefined && { nodeId: this.node.id }),
      claimedAt: this.stamp(),
    };
    const key = keys.address(def.cluster, ip);
    const value = encodeRecord('address', key, claim);
    const r = await this.kv.createAll([{ key, value }]);
    if (r.created) {
      this.written.set(key, value);
      return claim;
    }
    const held = r.existing[0];
    if (!held) return this.claimAddress(def, address); // released between the compare and the read: try again
    const c = this.checked('address', held);
    // Ours under an old name or without the id (a rename, an upgrade): moved to how this host
    // writes it now, on the revision read, so a forget meanwhile is not undone.
    if (staleOwn(c, this.node)) {
      if (await this.kv.putIfAt(key, value, held.modRevision)) {
        this.written.set(key, value);
        return claim;
      }
      return this.claimAddress(def, address);
    }
    if (ownedBy(c, this.node)) {
      this.written.set(key, held.value);
      return c;
    }
    throw new PluginError(
      'CONFLICT',
      `Address: ${ip} of cluster network "${def.cluster}" is held by node ${holderOf(c)} (since ${c.claimedAt})`,
    );
  }

  /**
   * Claims the first candidate no host holds. Candidates come from the local IPAM's order; the
   * claimed set is read once so a busy network costs one list, not one transaction per address.
   */
  async claimAny(def: NetworkRef, candidates: Iterable<string>, maxTries = 16, known?: (key: string) => boolean): Promise<AddressClaim> {
    // `known`: a followed copy of the claims (multihost/), so a busy network costs no list at all.
    const taken = known ? { has: known } : new Set((await this.kv.list(keys.addresses(def.cluster))).items.map((i) => i.key));
    let tries = 0;
    for (const cand of candidates) {
      const ip = this.checkInSubnet(def, cand);
      if (taken.has(keys.address(def.cluster, ip))) continue;
      if (++tries > maxTries) break;
      try {
        return await this.claimAddress(def, ip);
      } catch (err) {
        // Another host took it since the list: go on with the next one.
        if (!(err instanceof PluginError && err.code === 'CONFLICT')) throw err;
      }
    }
    throw new PluginError(
      'POOL_EXHAUSTED',
      `Pool: no free address left in cluster network "${def.cluster}" (${def.subnet}) after ${Math.min(tries, maxTries)} contested tries`,
    );
  }

  /** Releases this node's claim; another node's claim is left alone ('not-ours'). */
  async releaseAddress(cluster: string, address: string): Promise<ReleaseOutcome> {
    const key = keys.address(cluster, address);
    if (await this.deleteWritten(key)) return 'released';
    for (;;) {
      const it = await this.kv.get(key);
      if (!it) return 'absent';
      const c = readRecord('address', key, it.value);
      // A record that does not parse is nobody's we can prove: leave it to `mynet cluster forget`.
      if (!c.ok || !ownedBy(c.record, this.node)) return 'not-ours';
      if (await this.kv.deleteIfAt(key, it.modRevision)) return 'released';
    }
  }

  async listClaims(cluster: string): Promise<AddressClaim[]> {
    return this.listOf('address', keys.addresses(cluster));
  }

  /** Publishes (or republishes) an endpoint of this node whose addresses it claims. Never on a lease. */
  async publishEndpoint(
    e: Pick<EndpointRecord, 'cluster' | 'id' | 'address' | 'address6' | 'mac' | 'name' | 'aliases' | 'labels'>,
  ): Promise<EndpointRecord> {
    const rec: EndpointRecord = {
      v: 1,
      cluster: checkClusterName('cluster', e.cluster),
      id: checkId('EndpointID', e.id),
      node: this.node.name,
      ...(this.node.id !== undefined && { nodeId: this.node.id }),
      underlay: this.node.address,
      address: canonicalIp('Address', e.address),
      ...(e.address6 !== undefined && { address6: canonicalIp('AddressIPv6', e.address6) }),
      mac: e.mac.toLowerCase(),
      ...(e.name !== undefined && { name: e.name }),
      ...(e.aliases !== undefined && e.aliases.length > 0 && { aliases: e.aliases }),
      ...(e.labels !== undefined && Object.keys(e.labels).length > 0 && { labels: e.labels }),
      updatedAt: this.stamp(),
    };
    const key = keys.endpoint(rec.cluster, rec.id);
    const value = encodeRecord('endpoint', key, rec);
    // Only while its addresses are this node's in etcd (finding 4): else ClaimNotOursError.
    const addresses = rec.address6 === undefined ? [rec.address] : [rec.address, rec.address6];
    await putWhileClaimed({ kv: this.kv, node: this.node, written: this.written }, rec.cluster, addresses, key, value);
    this.written.set(key, value);
    return rec;
  }

  /** One compare-and-delete on the value this store wrote under the key, if it did. */
  private async deleteWritten(key: string): Promise<boolean> {
    const value = this.written.get(key);
    if (value === undefined) return false;
    this.written.delete(key);
    return this.kv.deleteIfValue(key, value);
  }

  /** Withdraws this node's endpoint record; another node's is left alone. */
  async withdrawEndpoint(cluster: string, id: string): Promise<WithdrawOutcome> {
    const key = keys.endpoint(cluster, id);
    if (await this.deleteWritten(key)) return 'withdrawn';
    for (;;) {
      const it = await this.kv.get(key);
      if (!it) return 'absent';
      const c = readRecord('endpoint', key, it.value);
      if (!c.ok || !ownedBy(c.record, this.node)) return 'not-ours';
      if (await this.kv.deleteIfAt(key, it.modRevision)) return 'withdrawn';
    }
  }

  async listEndpoints(cluster: string): Promise<EndpointRecord[]> {
    return this.listOf('endpoint', keys.endpoints(cluster));
  }

  /**
   * A node's address claims, endpoint records and memberships in every cluster network, by name, at the
   * revision read (what `mynet cluster forget` checks and then removes), with the underlay
   * address each endpoint record names.
   */
  async recordsOfNode(node: string): Promise<NodeRecordItem[]> {
    const nets = await this.listOf('network', keys.networks());
    const out: NodeRecordItem[] = [];
    for (const n of nets) {
      for (const [kind, prefix] of [
        ['address', keys.addresses(n.cluster)],
        ['endpoint', keys.endpoints(n.cluster)],
        ['member', keys.members(n.cluster)],
      ] as const) {
        for (const it of (await this.kv.list(prefix)).items) {
          const c = readRecord(kind, it.key, it.value);
          if (!c.ok || c.record.node !== node) continue;
          out.push({ kind, key: it.key, modRevision: it.modRevision, ...('underlay' in c.record && { underlay: c.record.underlay }) });
        }
      }
    }
    return out;
  }

  /**
   * `mynet cluster forget <node>`: removes those of a gone host's claims and records that are
   * still at the revision they were read at (a compare-and-delete: one rewritten since stays).
   */
  async forgetRecords(items: readonly NodeRecordItem[]): Promise<ForgetOutcome> {
    const n = { address: 0, endpoint: 0, member: 0 };
    for (const it of items) if (await this.kv.deleteIfAt(it.key, it.modRevision)) n[it.kind]++;
    return { addresses: n.address, endpoints: n.endpoint, memberships: n.member };
  }

  async listNodes(): Promise<NodeRecord[]> {
    return this.listOf('node', keys.nodes());
  }

  /**
   * Follows a cluster network's endpoints (list, watch, re-list after any break). The caller
   * programs the data plane from the changes (plan/vxlan.ts) and skips this node's own.
   */
  followEndpoints(cluster: string, o: FollowEndpointsOptions): PrefixFollower {
    const parse = (key: string, value: string): EndpointRecord | undefined => {
      const c = readRecord('endpoint', key, value);
      if (c.ok) return c.record;
      o.onProblem?.(c.problem);
      return undefined;
    };
    const f = new PrefixFollower({
      kv: this.kv,
      prefix: keys.endpoints(cluster),
      ...(o.onState && { onState: o.onState }),
      ...(o.backoffMs && { backoffMs: o.backoffMs }),
      onChanges: (changes: readonly MirrorChange[], how) => {
        const out: EndpointChange[] = [];
        for (const ch of changes) {
          if (ch.type === 'put') {
            const rec = parse(ch.key, ch.value);
            if (rec) out.push({ type: 'put', endpoint: rec });
            else if (ch.previous !== undefined) {
              // A good record replaced by a bad one: its entries must go, as for a delete.
              const old = parse(ch.key, ch.previous);
              if (old) out.push({ type: 'delete', endpoint: old });
            }
          } else {
            const old = parse(ch.key, ch.previous);
            if (old) out.push({ type: 'delete', endpoint: old });
          }
        }
        // The follower calls only with changes, or for a (re-)list: a list with nothing in it
        // still tells the consumer what etcd holds (nothing), so it is passed on too.
        o.onChanges(out, { resync: how.resync });
      },
    });
    f.start();
    return f;
  }

  /** A followed copy of a prefix (the claims of a network), for lookups without a request. */
  followPrefix(
    prefix: string,
    backoffMs?: { readonly first: number; readonly max: number },
    onChanges: (changes: readonly MirrorChange[]) => void = () => undefined,
  ): PrefixFollower {
    const f = new PrefixFollower({ kv: this.kv, prefix, onChanges, ...(backoffMs && { backoffMs }) });
    f.start();
    return f;
  }

  /** An address of the network's subnet of its family (a dual-stack network claims in both), never a gateway. */
  private checkInSubnet(def: NetworkRef, address: string): string {
    const ip = canonicalIp('Address', bareAddress(address));
    const a = parseIp(ip);
    const subnet = a?.family === 6 ? def.subnet6 : def.subnet;
    const c = parseCidr(subnet ?? '');
    if (!a || !c.ok || !contains(c.cidr, a))
      throw invalid('Address', `${ip} is not in cluster network "${def.cluster}" (${subnet ?? `${def.subnet}, no IPv6`})`);
    if (ip === def.gateway || ip === def.gateway6)
      throw new PluginError('CONFLICT', `Address: ${ip} is the gateway of cluster network "${def.cluster}" (the same on every host)`);
    return ip;
  }

  /** A record this call depends on: one that does not fit stops the call (it would be guessed at otherwise). */
  private checked<K extends keyof RecordOf>(kind: K, it: KvItem): RecordOf[K] {
    const c = readRecord(kind, it.key, it.value);
    if (!c.ok) throw new PluginError('STATE_CORRUPT', `cluster: etcd holds a record mynet cannot use: ${c.problem}`);
    return c.record;
  }

  /** Lists skip records that do not fit (followEndpoints reports them). */
  private async listOf<K extends keyof RecordOf>(kind: K, prefix: string): Promise<RecordOf[K][]> {
    const l = await this.kv.list(prefix);
    return l.items.flatMap((i) => {
      const c = readRecord(kind, i.key, i.value);
      return c.ok ? [c.record] : [];
    });
  }
}
