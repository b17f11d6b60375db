/**
 * The table's changes, built from the model (nft-model.ts) as typed commands (nft-change.ts;
 * nft-text.ts writes them). Every change is idempotent: chains are added then flushed and
 * refilled, elements are destroyed (added, then deleted), so a change can run twice and a
 * teardown works on whatever is left. Each change is one transaction: all or nothing.
 */
import {
  BASE_CHAINS,
  BASE_SETS,
  RETIRED_CHAINS,
  type NftChain,
  type NftElement,
  type NftNetwork,
  networkLeftovers,
  networkObjects,
} from './nft-model.js';
import { type NftCommand, add, chainObj, del, destroy, elementObj, flush, ruleObj, setObj, tableObj } from './nft-change.js';
import { policyDeclareCommands, policyDestroyCommands, policyModel } from './policy-model.js';
import type { PolicyObjects } from './policy-nft.js';

/** A chain made to hold exactly its rules: added, flushed, refilled. */
export function chainCommands(c: NftChain): NftCommand[] {
  const chain = chainObj(c.name, c.hook);
  return [add(chain), flush(chainObj(c.name)), ...c.rules.map((r) => add(ruleObj(c.name, r)))];
}

function bySet(els: readonly NftElement[]): Map<string, NftElement[]> {
  const out = new Map<string, NftElement[]>();
  for (const e of els) {
    const list = out.get(e.set);
    if (list) list.push(e);
    else out.set(e.set, [e]);
  }
  return out;
}

const items = (list: readonly NftElement[]): { key: string; value?: string }[] =>
  list.map((e) => (e.value === undefined ? { key: e.key } : { key: e.key, value: e.value }));

/** One `add element` per set, in the order the sets first appear. */
export const addElements = (els: readonly NftElement[]): NftCommand[] =>
  [...bySet(els)].map(([set, list]) => add(elementObj(set, items(list))));

/**
 * Declares the base maps and sets of these names (a no-op for those that exist as declared):
 * a teardown that destroys an element must not fail because someone deleted the map by hand.
 * The map comes back empty, as the doctor wants it while any network is stored.
 */
export const declareSets = (names: Iterable<string>): NftCommand[] => {
  const wanted = new Set(names);
  return BASE_SETS.filter((s) => wanted.has(s.name)).map((s) => add(setObj(s)));
};

/** Removes the elements whether or not they (or their base map) are there. */
export const destroyElements = (els: readonly NftElement[]): NftCommand[] => [
  ...declareSets(els.map((e) => e.set)),
  ...[...bySet(els)].map(([set, list]) => destroy(elementObj(set, items(list)))),
];

export const TABLE_COMMENT = 'owned by mynet; do not edit';

/** The table, its maps and base chains. Safe to apply before every network change. */
export function baseCommands(): NftCommand[] {
  return [
    add(tableObj(TABLE_COMMENT)),
    ...BASE_SETS.map((s) => add(setObj(s))),
    // A base chain cannot change its priority in place: a retired one is removed.
    ...RETIRED_CHAINS.flatMap((c) => [add(chainObj(c)), flush(chainObj(c)), del(chainObj(c))]),
    ...BASE_CHAINS.flatMap(chainCommands),
  ];
}

/** Chains and elements of one network (the base is not part of it: see baseCommands). */
export function networkCommands(n: NftNetwork): NftCommand[] {
  const o = networkObjects(n);
  return [...policyDeclareCommands(o), ...o.chains.flatMap(chainCommands), ...addElements(o.elements)];
}

/**
 * A network's policy from `before` to `after` (an endpoint, a label or a policy changed) in one
 * transaction: counters and sets declared and refilled, the chain flushed and refilled, and last
 * what only `before` had. nft applies it all or nothing, so no packet meets a half-written chain
 * and a flow allowed before and after is never cut (established flows pass the base chain's
 * conntrack rule anyway). Counters are declared, never reset: drop counts survive an update.
 * Its undo is the same function the other way round.
 */
export function policyUpdateCommands(after: PolicyObjects, before?: PolicyObjects): NftCommand[] {
  const a = policyModel(after);
  return [
    ...policyDeclareCommands(a),
    ...addElements(a.elements),
    ...chainCommands(a.chain),
    ...(before ? policyDestroyCommands(policyModel(before), a) : []),
  ];
}

/** Removes one network's chains and elements; works on whatever part of them is left. */
export function networkTeardownCommands(n: NftNetwork): NftCommand[] {
  const o = networkObjects(n);
  const seen = new Set<string>();
  // The model's elements, then any NAT element an older rendering may have left.
  const els = [...o.elements, ...networkLeftovers(n)].filter((e) => {
    const k = `${e.set} ${e.key}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  const own = new Set(o.sets.map((x) => x.name));
  return [
    // Make the chains exist and empty them, drop the elements that jump to them, then delete them.
    ...o.chains.flatMap((c) => [add(chainObj(c.name)), flush(chainObj(c.name))]),
    // The network's own sets go whole, with their elements, once no rule refers to them.
    ...destroyElements(els.filter((e) => !own.has(e.set))),
    ...o.chains.map((c) => del(chainObj(c.name))),
    ...policyDestroyCommands(o),
  ];
}

/** Removes the whole table (when the last network goes). */
export const tableTeardownCommands = (): NftCommand[] => [destroy(tableObj())];
