/**
 * IPv4 and IPv6 addresses as bigints, so one set of CIDR and allocation code serves both
 * families (netmask, which we use for IPv4 checks, has no IPv6). Parsing is strict: no
 * leading zeros in IPv4 octets, no zone ids, and IPv4-mapped IPv6 (::ffff:a.b.c.d) is refused
 * because Docker never means it and it would alias an IPv4 address.
 */
import { Netmask } from 'netmask';

export type Family = 4 | 6;
export interface IpAddr {
  readonly family: Family;
  readonly value: bigint;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function parseV4(s: string): bigint | undefined {
  if (!V4.test(s)) return undefined;
  // netmask does the octet arithmetic; the regex above already refused what it would accept loosely.
  return BigInt(new Netmask(`${s}/32`).netLong);
}

function parseV6(s: string): bigint | undefined {
  if (s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let text = s;
  if (s.includes('.')) {
    // An embedded dotted quad ("::1.2.3.4") becomes two hex groups, then parses as usual.
    const lastColon = s.lastIndexOf(':');
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    text = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const group = (part: string): bigint[] | undefined => {
    if (part === '') return [];
    const out: bigint[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  const head = group(halves[0] ?? '');
  const rest = halves.length === 2 ? group(halves[1] ?? '') : [];
  if (!head || !rest) return undefined;
  const groups: bigint[] = [];
  const total = head.length + rest.length;
  if (halves.length === 2) {
    if (total > 7) return undefined;
    groups.push(...head, ...new Array<bigint>(8 - total).fill(0n), ...rest);
  } else {
    if (total !== 8) return undefined;
    groups.push(...head);
  }
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parses an address; undefined when it is not one (the caller names the field in its error). */
export function parseIp(s: string): IpAddr | undefined {
  if (typeof s !== 'string') return undefined;
  if (s.includes(':')) {
    const value = parseV6(s);
    if (value === undefined) return undefined;
    if (value >> 32n === 0xffffn) return undefined; // IPv4-mapped
    return { family: 6, value };
  }
  const value = parseV4(s);
  return value === undefined ? undefined : { family: 4, value };
}

/** Canonical text: dotted quad, or RFC 5952 for IPv6 (lowercase, longest zero run compressed). */
export function formatIp(a: IpAddr): string {
  if (a.family === 4) {
    const v = a.value;
    return [24n, 16n, 8n, 0n].map((s) => ((v >> s) & 0xffn).toString()).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((a.value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export const sameIp = (a: IpAddr, b: IpAddr): boolean => a.family === b.family && a.value === b.value;
