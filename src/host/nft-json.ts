/**
 * Reads `nft -j list table inet mynet` (nftables 1.0.6, JSON schema 1) into typed values the
 * doctor compares with the model (plan/nft-model.ts): base chains' hooks, each chain's rules by
 * the fingerprint each carries as its comment, set and map declarations, and elements in nft's
 * own text form, so that they compare with the model's directly:
 *
 *   "mn-x"                         → `"mn-x"` (names are quoted in sets of type ifname)
 *   {"prefix":{"addr","len"}}      → `10.1.0.0/24`
 *   {"range":[a,b]}                → `a-b`
 *   {"concat":["tcp",8080]}        → `tcp . 8080`
 *   {"jump":{"target":"c"}}        → `jump c`
 *   [key, value] (a map element)   → `key : value`
 *   ["10.1.0.2","pc-x"] (counter)  → `10.1.0.2 : "pc-x"` (nft -j prints a counter's name bare,
 *                                    its text form and the model quote it)
 *
 * What this captured JSON looks like is in test/fixtures/kernel/nft-table.json.
 */
import type { NftHook } from '../plan/nft-model.js';

export interface NftSetInfo {
  readonly kind: 'set' | 'map';
  /** As the model writes it: "ipv4_addr . inet_service : ipv4_addr . inet_service". */
  readonly type: string;
  readonly interval: boolean;
}

export interface NftTable {
  readonly chains: ReadonlySet<string>;
  /** Base chains' hooks. */
  readonly hooks: ReadonlyMap<string, NftHook & { readonly policy: string }>;
  /** Each chain's rules, in order, by their comment (mynet writes its fingerprint there; '' when none). */
  readonly rules: ReadonlyMap<string, readonly string[]>;
  readonly sets: ReadonlyMap<string, NftSetInfo>;
  /** Elements of each map or set, as nft prints them ("tcp . 8080 : 10.1.0.2 . 80"). */
  readonly elements: ReadonlyMap<string, readonly string[]>;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const isObj = (j: Json | undefined): j is Obj => typeof j === 'object' && j !== null && !Array.isArray(j);

/** One value of an element (key or data) as nft prints it. */
function atom(j: Json, quote: boolean): string {
  if (typeof j === 'string') return quote ? `"${j}"` : j;
  if (typeof j === 'number') return String(j);
  if (isObj(j)) {
    const prefix = j.prefix;
    if (isObj(prefix)) return `${atom(prefix.addr ?? '', false)}/${atom(prefix.len ?? 0, false)}`;
    if (Array.isArray(j.range)) return j.range.map((x) => atom(x, quote)).join('-');
    if (Array.isArray(j.concat)) return j.concat.map((x) => atom(x, false)).join(' . ');
    // An element with a timeout or comment comes wrapped: {"elem": {"val": ...}}.
    if (isObj(j.elem)) return atom(j.elem.val ?? null, quote);
    for (const verdict of ['jump', 'goto'] as const) {
      const v = j[verdict];
      if (isObj(v)) return `${verdict} ${atom(v.target ?? '', false)}`;
    }
    const keys = Object.keys(j);
    if (keys.length === 1 && j[keys[0] as string] === null) return keys[0] as string; // accept, drop, ...
  }
  throw new Error(`nft -j: an element value mynet does not know: ${JSON.stringify(j)}`);
}

/** A string field of nft's JSON ('' when absent or not a string). */
const str = (j: Json | undefined): string => (typeof j === 'string' ? j : typeof j === 'number' ? String(j) : '');
const typeText = (t: Json | undefined): string => (Array.isArray(t) ? t.map(str).join(' . ') : str(t));

function element(e: Json, quoteKey: boolean, quoteValue: boolean): string {
  if (Array.isArray(e) && e.length === 2) return `${atom(e[0] as Json, quoteKey)} : ${atom(e[1] as Json, quoteValue)}`;
  return atom(e, quoteKey);
}

/** Parses what `nft -j list table …` prints. */
export function parseNftTable(json: string): NftTable {
  const doc = JSON.parse(json) as { nftables?: Json[] };
  const chains = new Set<string>();
  const hooks = new Map<string, NftHook & { policy: string }>();
  const rules = new Map<string, string[]>();
  const sets = new Map<string, NftSetInfo>();
  const elements = new Map<string, string[]>();
  for (const item of doc.nftables ?? []) {
    if (!isObj(item)) continue;
    const { chain, rule, set, map } = item;
    if (isObj(chain)) {
      const name = str(chain.name);
      chains.add(name);
      if (!rules.has(name)) rules.set(name, []);
      if (chain.hook !== undefined) {
        hooks.set(name, {
          type: str(chain.type) as NftHook['type'],
          hook: str(chain.hook) as NftHook['hook'],
          prio: Number(chain.prio),
          policy: str(chain.policy),
        });
      }
    } else if (isObj(rule)) {
      const name = str(rule.chain);
      const list = rules.get(name) ?? [];
      list.push(typeof rule.comment === 'string' ? rule.comment : '');
      rules.set(name, list);
    } else {
      const s = isObj(set) ? set : isObj(map) ? map : undefined;
      if (!s) continue;
      const name = str(s.name);
      const keyType = typeText(s.type);
      const flags = Array.isArray(s.flags) ? s.flags : [];
      sets.set(name, {
        kind: isObj(set) ? 'set' : 'map',
        type: isObj(map) ? `${keyType} : ${typeText(s.map)}` : keyType,
        interval: flags.includes('interval'),
      });
      elements.set(
        name,
        (Array.isArray(s.elem) ? s.elem : []).map((e) => element(e, keyType === 'ifname', isObj(map) && s.map === 'counter')),
      );
    }
  }
  return { chains, hooks, rules, sets, elements };
}

/** Named counters' packet counts from `nft -j list counters table …`: name → packets. */
export function parseNftCounters(json: string): Map<string, number> {
  const doc = JSON.parse(json) as { nftables?: Json[] };
  const out = new Map<string, number>();
  for (const item of doc.nftables ?? []) {
    const c = isObj(item) ? item.counter : undefined;
    if (isObj(c) && typeof c.name === 'string' && typeof c.packets === 'number') out.set(c.name, c.packets);
  }
  return out;
}
