/**
 * A network's policy objects (policy-nft.ts) as parts of the table's model (nft-model.ts): the
 * policy chain, its sets and counter maps, its named counters and their elements. The network's
 * create, teardown and doctor read them from `networkObjects`, and every later change (an
 * endpoint, a label, a policy) is nft-render.ts `policyUpdateCommands`: one transaction.
 */
import type { NftChain, NftElement, NftSet } from './nft-rule.js';
import { type NftCommand, add, counterObj, destroy, flush, setObj } from './nft-change.js';
import { chain } from './nft-rule.js';
import { type PolicyObjects, policyObjects } from './policy-nft.js';

export interface PolicyModel {
  readonly chain: NftChain;
  readonly sets: readonly NftSet[];
  readonly counters: readonly string[];
  readonly elements: readonly NftElement[];
}

/** A network no policy names: its chain returns for every address (the sets are empty). */
export const NO_POLICY = (networkId: string): PolicyObjects =>
  policyObjects(networkId, { protectedBy: new Map(), groups: new Map(), policies: [] });

export function policyModel(o: PolicyObjects): PolicyModel {
  return {
    chain: chain(o.chain, o.rules),
    sets: [
      ...o.sets.map((s): NftSet => ({ name: s.name, kind: 'set', type: s.type, interval: false })),
      ...o.maps.map((m): NftSet => ({ name: m.name, kind: 'map', type: `${m.type} : counter`, interval: false })),
    ],
    counters: [...o.counters.keys()],
    elements: [
      ...o.sets.flatMap((s) => s.elements.map((key): NftElement => ({ set: s.name, key }))),
      ...o.maps.flatMap((m) => m.elements.map(([key, c]): NftElement => ({ set: m.name, key, value: `"${c}"` }))),
    ],
  };
}

/** What of a network's objects is declared by itself (not by a rule or element). */
type Owned = Pick<PolicyModel, 'sets' | 'counters'>;

/** Counters and sets declared (sets emptied, so they hold exactly the model's elements). */
export const policyDeclareCommands = (m: Owned): NftCommand[] => [
  ...m.counters.map((c) => add(counterObj(c))),
  ...m.sets.flatMap((s) => [add(setObj(s)), flush(setObj(s))]),
];

/** Its sets, maps and counters removed whether or not they are there (after the chain that used them). */
export const policyDestroyCommands = (m: Owned, keep?: Owned): NftCommand[] => {
  const sets = new Set(keep?.sets.map((s) => s.name));
  const counters = new Set(keep?.counters);
  return [
    ...m.sets.filter((s) => !sets.has(s.name)).map((s) => destroy(setObj(s))),
    ...m.counters.filter((c) => !counters.has(c)).map((c) => destroy(counterObj(c))),
  ];
};
