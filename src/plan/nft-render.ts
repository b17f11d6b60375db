/**
 * The `nft -f -` scripts, rendered from the model (nft-model.ts). Every script is idempotent:
 * chains are added then flushed and refilled, elements are added before they are deleted (nft
 * 1.0.6 has no `destroy`), so a script can run twice and a teardown works on whatever is left.
 * Each script is one transaction: all or nothing.
 */
import {
  BASE_CHAINS, BASE_SETS, RETIRED_CHAINS, TABLE,
  type NftChain, type NftElement, type NftNetwork, type NftSet, networkLeftovers, networkObjects,
} from './nft-model.js';

const ruleLine = (c: NftChain, r: NftChain['rules'][number]): string => `add rule ${TABLE} ${c.name} ${r.text} comment "${r.id}"`;

export function chainLines(c: NftChain): string[] {
  const spec = c.hook ? ` { type ${c.hook.type} hook ${c.hook.hook} priority ${c.hook.prio}; policy accept; }` : '';
  return [`add chain ${TABLE} ${c.name}${spec}`, `flush chain ${TABLE} ${c.name}`, ...c.rules.map((r) => ruleLine(c, r))];
}

const setLine = (s: NftSet): string =>
  `add ${s.kind} ${TABLE} ${s.name} { type ${s.type};${s.interval ? ' flags interval;' : ''} }`;

const elementText = (e: NftElement): string => (e.value === undefined ? e.key : `${e.key} : ${e.value}`);

function bySet(els: readonly NftElement[]): Map<string, NftElement[]> {
  const out = new Map<string, NftElement[]>();
  for (const e of els) {
    const list = out.get(e.set);
    if (list) list.push(e);
    else out.set(e.set, [e]);
  }
  return out;
}

/** `add element` lines, one per set, in the order the sets first appear. */
export const addElementLines = (els: readonly NftElement[]): string[] =>
  [...bySet(els)].map(([set, list]) => `add element ${TABLE} ${set} { ${list.map(elementText).join(', ')} }`);

/**
 * Declares the base maps and sets of these names (a no-op for those that exist as declared):
 * a teardown that adds an element before deleting it must not fail because someone deleted
 * the map by hand. The map comes back empty, as the doctor wants it while any network is stored.
 */
export const declareSetLines = (names: Iterable<string>): string[] => {
  const wanted = new Set(names);
  return BASE_SETS.filter((s) => wanted.has(s.name)).map(setLine);
};

/** Add-then-delete lines: removes the elements whether or not they (or their map) are there. */
export const deleteElementLines = (els: readonly NftElement[]): string[] =>
  [...declareSetLines(els.map((e) => e.set)), ...[...bySet(els)].flatMap(([set, list]) => [
    `add element ${TABLE} ${set} { ${list.map(elementText).join(', ')} }`,
    `delete element ${TABLE} ${set} { ${list.map((e) => e.key).join(', ')} }`,
  ])];

/** The table, its maps and base chains. Safe to apply before every network change. */
export function baseScript(): string {
  return [
    `add table ${TABLE} { comment "owned by mynet; do not edit"; }`,
    ...BASE_SETS.map(setLine),
    // A base chain cannot change its priority in place: a retired one is removed.
    ...RETIRED_CHAINS.flatMap((c) => [`add chain ${TABLE} ${c}`, `flush chain ${TABLE} ${c}`, `delete chain ${TABLE} ${c}`]),
    ...BASE_CHAINS.flatMap(chainLines),
  ].join('\n');
}

/** Chains and elements of one network. */
export function networkScript(n: NftNetwork): string {
  const o = networkObjects(n);
  return [...o.chains.flatMap(chainLines), ...addElementLines(o.elements)].join('\n');
}

/** Removes one network's chains and elements; works on whatever part of them is left. */
export function networkTeardownScript(n: NftNetwork): string {
  const o = networkObjects(n);
  const seen = new Set<string>();
  // The model's elements, then any NAT element an older rendering may have left.
  const els = [...o.elements, ...networkLeftovers(n)].filter((e) => {
    const k = `${e.set} ${e.key}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  return [
    // Make the chains exist and empty them, drop the elements that jump to them, then delete them.
    ...o.chains.flatMap((c) => [`add chain ${TABLE} ${c.name}`, `flush chain ${TABLE} ${c.name}`]),
    ...deleteElementLines(els),
    ...o.chains.map((c) => `delete chain ${TABLE} ${c.name}`),
  ].join('\n');
}

/** Removes the whole table (when the last network goes). */
export const tableTeardownScript = (): string => [`add table ${TABLE}`, `delete table ${TABLE}`].join('\n');
