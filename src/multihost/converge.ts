/**
 * What this host must change in etcd so that its own records there match its journal (pure):
 * at start, after a reconnect and after etcd lost its data. The journal is the truth about this
 * host: an address it holds and etcd lacks is claimed again, an endpoint it has is published
 * again (flannel #610: a restarted etcd must not make running containers unreachable), and a
 * claim or endpoint of this host that the journal no longer has (released or deleted while etcd
 * was away, or a claim whose answer timed out) is released or withdrawn. Withdrawals come
 * before releases, so no other host can claim an address while this host's old endpoint record
 * still points at it. An address the journal holds whose claim names another node is lost
 * (issue 22, finding 4: this host was forgotten while away and the address given again): it is
 * not claimed, its endpoint is not published and this host's record of it is withdrawn, so no
 * other host sends that address's traffic here; only an operator can say which container keeps it.
 */
import { type NodeSelf, holderOf, ownedBy, staleOwn } from '../cluster/owner.js';
import type { AddressClaim, EndpointRecord } from '../cluster/records.js';
import type { Labels } from '../rules/label.js';

export interface LocalEndpoint {
  readonly id: string;
  /** IPv4 without prefix length. */
  readonly address: string;
  /** IPv6 without prefix length, on a dual-stack network. */
  readonly address6?: string;
  readonly mac: string;
  readonly name?: string;
  readonly aliases?: readonly string[];
  /** Its `mynet.label.*` labels (issue 25), absent when it has none. */
  readonly labels?: Labels;
}

/** An address this host's journal holds that another node's claim holds in etcd. */
export interface LostAddress {
  readonly address: string;
  /** The claim's holder as holderOf (owner.ts) shows it. */
  readonly holder: string;
}

export interface ConvergePlan {
  readonly lost: readonly LostAddress[];
  readonly withdraw: readonly string[];
  readonly release: readonly string[];
  readonly claim: readonly string[];
  readonly publish: readonly LocalEndpoint[];
}

export function convergePlan(
  self: NodeSelf & { readonly address: string },
  local: { readonly addresses: ReadonlySet<string>; readonly endpoints: readonly LocalEndpoint[] },
  etcd: { readonly claims: readonly AddressClaim[]; readonly endpoints: readonly EndpointRecord[] },
): ConvergePlan {
  // Owned by id (owner.ts): a host of the same name with another id is not this one. A claim of
  // ours under an old name (a rename) or without the id (an upgrade) is claimed again: moved.
  const ownClaims = new Set(etcd.claims.filter((c) => ownedBy(c, self) && !staleOwn(c, self)).map((c) => c.address));
  const heldClaims = new Set(etcd.claims.filter((c) => ownedBy(c, self)).map((c) => c.address));
  const ownRecords = new Map(etcd.endpoints.filter((e) => ownedBy(e, self)).map((e) => [e.id, e]));
  const localIds = new Set(local.endpoints.map((e) => e.id));
  const same = (l: LocalEndpoint, r: EndpointRecord): boolean =>
    !staleOwn(r, self) &&
    r.address === l.address &&
    r.address6 === l.address6 &&
    r.mac === l.mac &&
    r.underlay === self.address &&
    r.name === l.name &&
    (r.aliases ?? []).join() === (l.aliases ?? []).join() &&
    // A record an older mynet wrote lacks the labels: published again, so policies see them.
    JSON.stringify(r.labels ?? {}) === JSON.stringify(l.labels ?? {});
  const lost = etcd.claims
    .filter((c) => local.addresses.has(c.address) && !ownedBy(c, self))
    .map((c) => ({ address: c.address, holder: holderOf(c) }))
    .sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0));
  const lostSet = new Set(lost.map((l) => l.address));
  const usesLost = (l: LocalEndpoint): boolean => lostSet.has(l.address) || (l.address6 !== undefined && lostSet.has(l.address6));
  const unpublished = new Set(local.endpoints.filter(usesLost).map((l) => l.id));
  return {
    lost,
    withdraw: [...ownRecords.keys()].filter((id) => !localIds.has(id) || unpublished.has(id)).sort(),
    release: [...heldClaims].filter((a) => !local.addresses.has(a)).sort(),
    claim: [...local.addresses].filter((a) => !ownClaims.has(a) && !lostSet.has(a)).sort(),
    publish: local.endpoints.filter((l) => {
      if (unpublished.has(l.id)) return false;
      const r = ownRecords.get(l.id);
      return !r || !same(l, r);
    }),
  };
}

export const isEmptyPlan = (p: ConvergePlan): boolean => p.withdraw.length + p.release.length + p.claim.length + p.publish.length === 0;
