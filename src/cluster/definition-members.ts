/**
 * Which hosts have a cluster network, and the removal of its definition by the last one out
 * (issue 22, finding 21). Docker's overlay network exists until it is removed, and removal is
 * refused while a container anywhere uses it; here each host keeps a membership of the
 * definition (members/<cluster>/<node>, never on a lease: a lost lease must not remove a network
 * in use), written at its CreateNetwork and deleted when its departure is settled. The host that
 * leaves last deletes the definition and its VXLAN id too.
 *
 * Every join and every leave is one transaction on the definition's revision that also rewrites
 * it (the same bytes, a new revision). So a removal decided on "no other member" fails if a host
 * joined after the read, and a join decided on "the definition is there" fails if it was removed
 * meanwhile (it then makes a new one): a racing create sees the definition or makes its own,
 * never half of each. Two hosts leaving at once cannot both see the other still there.
 */
import { PluginError } from '../errors.js';
import { keys } from './keys.js';
import type { Kv, KvItem, KvWrite } from './kv.js';
import { ownedBy, type NodeSelf } from './owner.js';
import { type MemberRecord, type NetworkDefinition, encodeRecord, readRecord } from './records.js';

/** Transactions tried before a call gives up (each failure is another host's write in between). */
export const MEMBERSHIP_TRIES = 8;

export type LeaveOutcome =
  /** This host was the last member: the definition, its VXLAN id and the memberships are gone. */
  | { readonly kind: 'removed' }
  /** Other hosts still have the network (their names), or other nodes' claims or records are still in it. */
  | { readonly kind: 'kept'; readonly by: readonly string[] }
  /** A definition written before memberships (or one that does not parse): kept, as it always was. */
  | { readonly kind: 'untracked' }
  | { readonly kind: 'absent' };

export interface Left {
  readonly outcome: LeaveOutcome;
  /** Memberships that failed their check (a stranger's write): never counted as members, removed with the definition. */
  readonly refused: readonly string[];
}

export interface MembersDeps {
  readonly kv: Kv;
  readonly node: NodeSelf;
  readonly stamp: () => string;
}

const at = (it: KvItem | undefined, key: string) => ({ key, modRevision: it?.modRevision ?? 0 });
const gone = (items: readonly KvItem[]): KvWrite[] => items.map((i) => ({ key: i.key }));

export function memberValue(d: MembersDeps, cluster: string): { key: string; value: string } {
  const key = keys.member(cluster, d.node.name);
  const rec: MemberRecord = {
    v: 1,
    cluster,
    node: d.node.name,
    ...(d.node.id !== undefined && { nodeId: d.node.id }),
    joinedAt: d.stamp(),
  };
  return { key, value: encodeRecord('member', key, rec) };
}

const isMine = (d: MembersDeps, it: KvItem | undefined): boolean => {
  const c = it && readRecord('member', it.key, it.value);
  return c?.ok === true && ownedBy(c.record, d.node) && c.record.node === d.node.name;
};

/**
 * This host joins a definition that is there (`netItem`, read with `memItem`, this host's
 * membership key). True when it is a member now; false when either changed meanwhile.
 */
export async function joinRecorded(
  d: MembersDeps,
  recorded: NetworkDefinition,
  netItem: KvItem,
  memItem: KvItem | undefined,
): Promise<boolean> {
  // A definition without memberships keeps its old meaning (finding 21's upgrade): nothing recorded.
  if (recorded.members !== true || isMine(d, memItem)) return true;
  const m = memberValue(d, recorded.cluster);
  return d.kv.writeIfAt([at(netItem, netItem.key), at(memItem, m.key)], [{ key: netItem.key, value: netItem.value }, m]);
}

/** What this host leaves behind in the cluster network, read at one moment. */
async function readLeave(d: MembersDeps, cluster: string) {
  const [netItem, members] = await Promise.all([d.kv.get(keys.network(cluster)), d.kv.list(keys.members(cluster))]);
  const mine: KvItem[] = [];
  const others: string[] = [];
  const bad: KvItem[] = [];
  const refused: string[] = [];
  for (const it of members.items) {
    const c = readRecord('member', it.key, it.value);
    if (!c.ok) {
      bad.push(it);
      refused.push(c.problem);
    } else if (ownedBy(c.record, d.node)) mine.push(it);
    else others.push(c.record.node);
  }
  return { netItem, mine, others, bad, refused };
}

/** Other nodes' claims and endpoint records in the cluster: a host of a mynet before memberships still has it. */
async function recordHolders(d: MembersDeps, cluster: string): Promise<string[]> {
  const holders = new Set<string>();
  for (const [kind, prefix] of [
    ['address', keys.addresses(cluster)],
    ['endpoint', keys.endpoints(cluster)],
  ] as const) {
    for (const it of (await d.kv.list(prefix)).items) {
      const c = readRecord(kind, it.key, it.value);
      if (c.ok && !ownedBy(c.record, d.node)) holders.add(c.record.node);
    }
  }
  return [...holders].sort();
}

/**
 * This host no longer has the cluster network (its departure, after its claims and records are
 * gone): its memberships leave, and if no other host has the network, the definition and its
 * VXLAN id leave with them, in one transaction on what was read.
 */
export async function leaveNetwork(d: MembersDeps, cluster: string): Promise<Left> {
  for (let tries = 0; tries < MEMBERSHIP_TRIES; tries++) {
    const { netItem, mine, others, bad, refused } = await readLeave(d, cluster);
    const netKey = keys.network(cluster);
    const def = netItem && readRecord('network', netKey, netItem.value);
    if (!netItem || !def?.ok || def.record.members !== true) {
      // Nothing to decide for the definition: only this host's memberships go (on the definition's revision).
      const done = mine.length === 0 || (await d.kv.writeIfAt([at(netItem, netKey), ...mine.map((i) => at(i, i.key))], gone(mine)));
      if (done) return { outcome: { kind: netItem ? 'untracked' : 'absent' }, refused };
      continue;
    }
    const held = others.length > 0 ? others : await recordHolders(d, cluster);
    const mineAt = mine.map((i) => at(i, i.key));
    if (held.length > 0) {
      // Rewritten with the same bytes: a host leaving at the same time reads again and sees this one gone.
      if (await d.kv.writeIfAt([at(netItem, netKey), ...mineAt], [{ key: netKey, value: netItem.value }, ...gone(mine)]))
        return { outcome: { kind: 'kept', by: held }, refused };
      continue;
    }
    const vniKey = keys.vni(def.record.vni);
    const vniItem = await d.kv.get(vniKey);
    const vni = vniItem && readRecord('vni', vniKey, vniItem.value);
    // The VXLAN id goes only if it is this cluster's (another's, written by hand, is not ours to remove).
    const ownVni = vni?.ok === true && vni.record.cluster === cluster ? [vniItem as KvItem] : [];
    const removed = await d.kv.writeIfAt(
      [at(netItem, netKey), ...mineAt, ...bad.map((i) => at(i, i.key)), ...ownVni.map((i) => at(i, i.key))],
      [{ key: netKey }, ...gone(ownVni), ...gone(mine), ...gone(bad)],
    );
    if (removed) return { outcome: { kind: 'removed' }, refused };
  }
  throw new PluginError(
    'CLUSTER_UNAVAILABLE',
    `cluster: network "${cluster}": its definition or memberships changed at each of ${MEMBERSHIP_TRIES} tries; leaving again later`,
  );
}
