/** Address forms, and which addresses may be a container's, a gateway's or a host's underlay. */
import { type IpAddr, formatIp, parseIp } from '../ip/address.js';
import { parseCidr } from '../ip/cidr.js';

/** "10.1.0.2/24" → "10.1.0.2"; an address without a prefix length is returned as it is. */
export const bareAddress = (text: string): string => {
  const slash = text.indexOf('/');
  return slash < 0 ? text : text.slice(0, slash);
};

const inRange = (a: IpAddr, cidr: string): boolean => {
  const c = parseCidr(cidr);
  if (!c.ok || c.cidr.family !== a.family) return false;
  const host = BigInt((a.family === 4 ? 32 : 128) - c.cidr.prefix);
  return a.value >> host === c.cidr.base >> host;
};

// Never a unicast host of anyone's: nothing may be sent to or programmed for these.
const NOT_UNICAST: readonly (readonly [string, string])[] = [
  ['0.0.0.0/8', 'in "this network" (0.0.0.0/8)'],
  ['127.0.0.0/8', 'a loopback address'],
  ['169.254.0.0/16', 'a link-local address'],
  ['224.0.0.0/4', 'a multicast address'],
  ['240.0.0.0/4', 'reserved (240.0.0.0/4) or broadcast'],
  ['::/128', 'the unspecified address'],
  ['::1/128', 'a loopback address'],
  ['fe80::/10', 'a link-local address'],
  ['ff00::/8', 'a multicast address'],
];

/**
 * Why an address (no prefix length) cannot be another host's or a container's unicast address,
 * or undefined when it can. Everything read from etcd passes here before it reaches the kernel
 * (issue 22, finding 1: a record pointing a forwarding entry at 127.0.0.1).
 */
export function unicastProblem(text: string): string | undefined {
  const a = parseIp(text);
  if (!a || text.includes('/')) return 'is not an IP address';
  for (const [range, why] of NOT_UNICAST) if (inRange(a, range)) return `is ${why}`;
  return undefined;
}

/** The family of an address's text: 6 when it parses as IPv6, else 4 (an underlay is one or the other). */
export const familyOf = (text: string): 4 | 6 => (parseIp(text)?.family === 6 ? 6 : 4);

/**
 * Why an address cannot be a host's underlay address (VXLAN's source at one host, a forwarding
 * entry's destination and a guard set member at the others), or undefined when it can. An
 * IPv6 one must be written canonically (RFC 5952): the kernel prints it so, and the planes and
 * the doctor compare the forwarding entries' and the guard set's addresses as text.
 */
export function underlayProblem(text: string): string | undefined {
  const problem = unicastProblem(text);
  if (problem) return problem;
  const a = parseIp(text) as IpAddr;
  if (a.family === 6 && formatIp(a) !== text) return `is not written canonically (${formatIp(a)})`;
  return undefined;
}
