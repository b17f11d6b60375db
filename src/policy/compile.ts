/**
 * From policies and the endpoints of one network (this host's and other hosts', with their
 * labels) to what the firewall must hold: for each policy, the addresses it protects and, per
 * ingress rule, the source addresses and ports it lets in. Pure, so it is golden-tested as data;
 * the nft rendering reads only this.
 *
 * Sizes grow linearly: each endpoint is in the sets of the selectors it matches, never in a
 * source × destination product (1 000 endpoints and 100 policies stay ~100 rules and at most
 * 1 000 × (selectors matched) elements).
 */
import { createHash } from 'node:crypto';
import { parseIp, type IpAddr } from '../ip/address.js';
import { matches, type Labels } from '../rules/label.js';
import type { PortSpec, Policy } from './document.js';

export interface PolicyEndpoint {
  /** Bare addresses (v4 and v6) of the endpoint on this network. */
  readonly addresses: readonly string[];
  readonly labels: Labels;
}

export interface CompiledRule {
  /** The group of source addresses let in; absent: from anywhere, outside the network included (the rule has no `from`). */
  readonly sources?: string;
  /** 'all': every port and protocol. */
  readonly ports: readonly PortSpec[] | 'all';
}

export interface CompiledPolicy {
  readonly name: string;
  /** The group of addresses it protects. */
  readonly selected: string;
  readonly rules: readonly CompiledRule[];
}

export interface CompiledNetwork {
  /** Every protected address, with the policy its drops are counted under (the first by name that selects it). */
  readonly protectedBy: ReadonlyMap<string, string>;
  /**
   * Address groups by id: one per distinct selector list, shared by every policy and rule that
   * uses it (each becomes one nft set), so "from every web" in 100 policies is one set.
   */
  readonly groups: ReadonlyMap<string, readonly string[]>;
  /** Policies by name, those selecting nothing yet included. */
  readonly policies: readonly CompiledPolicy[];
}

/** A group's id: a hash of its selectors in a canonical form (keys sorted, entries sorted). */
export function groupId(selectors: readonly Labels[]): string {
  const canon = [
    ...new Set(selectors.map((sel) => JSON.stringify(Object.entries(sel).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))),
  ].sort();
  return createHash('sha256').update(JSON.stringify(canon)).digest('hex').slice(0, 12);
}

/** v4 before v6, then by value: the order nft prints a set's elements in. */
const compareIp = (a: IpAddr, b: IpAddr): number => a.family - b.family || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);

/** Each endpoint's addresses in set order, computed once per compilation (a rule's sources can be every endpoint). */
function inOrder(
  endpoints: readonly PolicyEndpoint[],
): { readonly labels: PolicyEndpoint['labels']; readonly rank: readonly number[] }[] & { addresses: readonly string[] } {
  const all = [...new Set(endpoints.flatMap((e) => e.addresses))].map((s) => ({ s, ip: parseIp(s) }));
  all.sort((x, y) => (x.ip && y.ip ? compareIp(x.ip, y.ip) : x.s < y.s ? -1 : x.s > y.s ? 1 : 0));
  const rank = new Map(all.map((x, i) => [x.s, i]));
  const out = endpoints.map((e) => ({ labels: e.labels, rank: e.addresses.map((a) => rank.get(a) ?? 0) }));
  return Object.assign(out, { addresses: all.map((x) => x.s) });
}

type Ranked = ReturnType<typeof inOrder>;

/** The addresses of the endpoints `selector` matches, in set order. */
function addressesOf(eps: Ranked, selectors: readonly Labels[]): string[] {
  const ranks = new Set<number>();
  for (const e of eps) if (selectors.some((sel) => matches(sel, e.labels))) for (const r of e.rank) ranks.add(r);
  return [...ranks].sort((a, b) => a - b).map((r) => eps.addresses[r] as string);
}

/** Policies in the order protection is decided (the first by name that selects an address counts its drops). */
const byName = (policies: readonly Policy[]): Policy[] => [...policies].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** `policies` are those of this network (already resolved to it); `endpoints` all of its endpoints. */
export function compileNetwork(policies: readonly Policy[], endpoints: readonly PolicyEndpoint[]): CompiledNetwork {
  const protectedBy = new Map<string, string>();
  const groups = new Map<string, readonly string[]>();
  const out: CompiledPolicy[] = [];
  const eps = inOrder(endpoints);
  const group = (selectors: readonly Labels[]): string => {
    const id = groupId(selectors);
    if (!groups.has(id)) groups.set(id, addressesOf(eps, selectors));
    return id;
  };
  for (const p of byName(policies)) {
    const selected = group([p.select]);
    // Kept when it selects nothing yet: the rules then depend on the policies only, and an
    // endpoint coming or going changes set elements, never rules (plan/policy-nft.ts).
    for (const a of groups.get(selected) ?? []) if (!protectedBy.has(a)) protectedBy.set(a, p.name);
    const rules = p.ingress.map((r): CompiledRule => ({
      // As NetworkPolicy: an absent or empty `from` (or `ports`) matches every source (or port).
      ...(r.from === undefined || r.from.length === 0 ? {} : { sources: group(r.from) }),
      ports: r.ports === undefined || r.ports.length === 0 ? 'all' : r.ports,
    }));
    out.push({ name: p.name, selected, rules });
  }
  return { protectedBy, groups, policies: out };
}

/** Where one endpoint's addresses stand in its network's compilation: the groups they are in, and the policy counting their drops. */
export interface Membership {
  /** Ids of the groups (compileNetwork's `groups`) whose selectors match the endpoint's labels. */
  readonly groups: ReadonlySet<string>;
  /** The first policy by name that selects it; absent when none does. */
  readonly protectedBy?: string;
}

/**
 * One endpoint's part of compileNetwork, read from the policies alone (O(policies), not
 * O(endpoints × policies)): an endpoint coming or going changes only its own addresses' set
 * elements, so this is all a lifecycle needs. Agrees with compileNetwork for an address no other
 * endpoint of the network holds (test/unit/policy/membership.test.ts).
 */
export function membershipOf(policies: readonly Policy[], labels: Labels): Membership {
  const groups = new Set<string>();
  let protectedBy: string | undefined;
  const join = (selectors: readonly Labels[]): void => {
    if (selectors.some((sel) => matches(sel, labels))) groups.add(groupId(selectors));
  };
  for (const p of byName(policies)) {
    if (protectedBy === undefined && matches(p.select, labels)) protectedBy = p.name;
    join([p.select]);
    for (const r of p.ingress) if (r.from !== undefined && r.from.length > 0) join(r.from);
  }
  return { groups, ...(protectedBy === undefined ? {} : { protectedBy }) };
}
