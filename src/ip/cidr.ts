/** CIDR prefixes over ip/address.ts: parse, canonical form, containment, overlap, subnetting. */
import { type Family, type IpAddr, bitsOf, formatIp, parseIp } from './address.js';

export interface Cidr {
  readonly family: Family;
  /** The network address (host bits zero). */
  readonly base: bigint;
  readonly prefix: number;
}

export type CidrParse = { ok: true; cidr: Cidr; addr: IpAddr } | { ok: false; why: string };

/**
 * Parses "addr/len". `addr` keeps the address as written (for "10.0.0.1/24" forms such as
 * dockerd's Gateway), `cidr` is the masked network.
 */
export function parseCidr(s: string): CidrParse {
  if (typeof s !== 'string') return { ok: false, why: 'not a string' };
  const slash = s.indexOf('/');
  if (slash < 0) return { ok: false, why: `"${s}" has no prefix length` };
  const addr = parseIp(s.slice(0, slash));
  if (!addr) return { ok: false, why: `"${s}" is not a valid IP address with prefix length` };
  const lenText = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return { ok: false, why: `"${s}" has an invalid prefix length` };
  const prefix = Number(lenText);
  if (prefix > bitsOf(addr.family)) return { ok: false, why: `"${s}" has a prefix length over ${bitsOf(addr.family)}` };
  return { ok: true, addr, cidr: { family: addr.family, base: addr.value & mask(addr.family, prefix), prefix } };
}

export function mask(family: Family, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefix))) & all;
}

export const formatCidr = (c: Cidr): string => `${formatIp({ family: c.family, value: c.base })}/${c.prefix}`;
export const firstOf = (c: Cidr): bigint => c.base;
export const lastOf = (c: Cidr): bigint => c.base | (~mask(c.family, c.prefix) & ((1n << BigInt(bitsOf(c.family))) - 1n));
export const sizeOf = (c: Cidr): bigint => 1n << BigInt(bitsOf(c.family) - c.prefix);

export function contains(c: Cidr, a: IpAddr): boolean {
  return c.family === a.family && (a.value & mask(c.family, c.prefix)) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const p = Math.min(a.prefix, b.prefix);
  const m = mask(a.family, p);
  return (a.base & m) === (b.base & m);
}

/** True when `inner` lies wholly inside `outer`. */
export const within = (inner: Cidr, outer: Cidr): boolean =>
  inner.family === outer.family && inner.prefix >= outer.prefix && overlaps(inner, outer);

/**
 * The usable host range, as Docker's IPAM sees it: IPv4 prefixes up to /30 lose the network
 * and broadcast addresses; /31 and /32 (RFC 3021) keep both. IPv6 loses only the
 * subnet-router anycast address (host bits zero) down to /126, like libnetwork.
 */
export function hostRange(c: Cidr): { first: bigint; last: bigint } {
  const first = firstOf(c);
  const last = lastOf(c);
  const max = bitsOf(c.family);
  if (c.family === 4) return c.prefix <= 30 ? { first: first + 1n, last: last - 1n } : { first, last };
  return c.prefix <= max - 2 ? { first: first + 1n, last } : { first, last };
}
