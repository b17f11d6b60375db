/**
 * An endpoint's own elements in its network's policy sets and counter maps (policy-nft.ts
 * names them), and the one nft transaction that moves them from one endpoint state to another.
 * An endpoint coming or going changes no rule (the rules depend on the policies alone), so this
 * is the whole of a lifecycle's policy change: a few elements added and deleted, instead of
 * every set of the network emptied and refilled (~20 000 elements at 1 000 endpoints and 100
 * policies, docs/benchmarks/policy.md). One transaction, so still no moment an allowed flow is cut.
 */
import { parseIp } from '../ip/address.js';
import type { Membership } from '../policy/compile.js';
import { type NftCommand, add, counterObj, setObj } from './nft-change.js';
import { addElements, destroyElements } from './nft-render.js';
import type { NftElement, NftSet } from './nft-rule.js';
import { counterMap, groupSet, policyCounter, protectedSet } from './policy-nft.js';

/** The elements that `addresses` (bare, of one endpoint) hold in network `networkId`'s policy objects. */
export function endpointPolicyElements(networkId: string, addresses: readonly string[], m: Membership): NftElement[] {
  const out: NftElement[] = [];
  for (const a of addresses) {
    const family = parseIp(a)?.family;
    // compileNetwork keeps such a text out of every set too (policy-nft.ts ofFamily).
    if (family === undefined) continue;
    const tag = family === 4 ? '4' : '6';
    for (const g of m.groups) out.push({ set: groupSet(networkId, tag, g), key: a });
    if (m.protectedBy !== undefined) {
      out.push({ set: protectedSet(networkId, tag), key: a });
      out.push({ set: counterMap(networkId, tag), key: a, value: `"${policyCounter(networkId, m.protectedBy)}"` });
    }
  }
  return out;
}

const keyOf = (e: NftElement): string => `${e.set} ${e.key} ${e.value ?? ''}`;

/** How a set or map of these elements is declared (policy-model.ts gives the same declarations). */
function declaration(e: NftElement): NftSet {
  const type = e.key.includes(':') ? 'ipv6_addr' : 'ipv4_addr';
  return e.value === undefined
    ? { name: e.set, kind: 'set', type, interval: false }
    : { name: e.set, kind: 'map', type: `${type} : counter`, interval: false };
}

/**
 * From the elements `before` to `after`: those only `before` has deleted first (a map element
 * whose counter changes is deleted, then added with the new one), then those only `after` has
 * added. The sets, maps and counters they touch are declared first (a no-op where they exist, as
 * the full update does), so a table a user emptied by hand does not fail the endpoint; the doctor
 * refills the rest. Its undo is the same function the other way round.
 */
export function policyElementCommands(before: readonly NftElement[], after: readonly NftElement[]): NftCommand[] {
  const had = new Set(before.map(keyOf));
  const has = new Set(after.map(keyOf));
  const gone = before.filter((e) => !has.has(keyOf(e)));
  const come = after.filter((e) => !had.has(keyOf(e)));
  if (gone.length === 0 && come.length === 0) return [];
  const sets = new Map([...gone, ...come].map((e) => [e.set, declaration(e)]));
  const counters = new Set(come.flatMap((e) => (e.value === undefined ? [] : [e.value.slice(1, -1)])));
  return [
    ...[...counters].map((c) => add(counterObj(c))),
    ...[...sets.values()].map((s) => add(setObj(s))),
    ...destroyElements(gone),
    ...addElements(come),
  ];
}
