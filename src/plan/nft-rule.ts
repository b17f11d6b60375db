/**
 * The model's object types (nft-model.ts re-exports them), and a rule of mynet's table with its fingerprint (a hash of its text, written as its comment):
 * nft prints a rule back in its own words, but the comment as written, so the doctor compares
 * rules by fingerprint. Its own module so that the model (nft-model.ts) and the policy part
 * (policy-model.ts) make rules the same way without importing each other.
 */
import { createHash } from 'node:crypto';

export interface NftHook {
  readonly type: 'filter' | 'nat';
  readonly hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  /** Numeric priority, as `nft -j` prints it. */
  readonly prio: number;
}

export interface NftRule {
  /** The rule as `nft -f` takes it, without its comment. */
  readonly text: string;
  /** Its fingerprint, written as its comment. */
  readonly id: string;
}

export interface NftChain {
  readonly name: string;
  /** Base chains only (policy accept, always). */
  readonly hook?: NftHook;
  readonly rules: readonly NftRule[];
}

export interface NftSet {
  readonly name: string;
  readonly kind: 'set' | 'map';
  /** As `nft -f` takes it: "ipv4_addr . inet_service" or "ifname : verdict". */
  readonly type: string;
  readonly interval: boolean;
}

/**
 * One element of a set or map, in nft's own text (what `nft list` prints, which `nft -f` also
 * takes): `"mn-x"` for a name, `10.1.0.0/24`, `tcp . 8080`, `jump egress-…`. Addresses are in
 * canonical form (RFC 5952), as nft prints them back.
 */
export interface NftElement {
  readonly set: string;
  readonly key: string;
  readonly value?: string;
}

const fingerprint = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);
export const rule = (text: string): NftRule => ({ text, id: fingerprint(text) });
export const chain = (name: string, rules: readonly string[], hook?: NftHook): NftChain => ({
  name,
  rules: rules.map(rule),
  ...(hook ? { hook } : {}),
});
