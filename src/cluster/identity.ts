/**
 * What every host derives alike from a cluster network's name and subnet, so two hosts that
 * create the same network at the same moment write byte-identical shapes and the
 * create-if-absent transaction makes one of them win without a false "differs" (issue 17).
 */
import { createHash } from 'node:crypto';
import { invalid } from '../errors.js';
import { formatIp } from '../ip/address.js';
import { formatCidr, hostRange, parseCidr } from '../ip/cidr.js';
import { VNI_MAX, VNI_MIN } from '../rules/vni.js';

const digest = (s: string): Buffer => createHash('sha256').update(`mynet cluster ${s}`).digest();

/** A VXLAN id from the name; a clash between two names is caught by the vnis/ key (keys.ts). */
export function vniFor(cluster: string): number {
  return VNI_MIN + (digest(cluster).readUInt32BE(0) % (VNI_MAX - VNI_MIN + 1));
}

/** The anycast gateway's MAC, locally administered (02:...), the same on every host. */
export function gatewayMacFor(cluster: string): string {
  const d = digest(`${cluster} gateway`);
  return ['02', ...[...d.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * The subnet in canonical form and the gateway: `--gateway` if given, else the first host
 * address. `family` 6 for a dual-stack network's IPv6 subnet (the fields then end in 6).
 */
export function subnetAndGateway(subnet: string, gateway?: string, family: 4 | 6 = 4): { subnet: string; gateway: string } {
  const sfx = family === 6 ? '6' : '';
  const c = parseCidr(subnet);
  if (!c.ok || c.cidr.family !== family) throw invalid(`Pool${sfx}`, `"${subnet}": a cluster network needs an IPv${family} subnet here`);
  const { first, last } = hostRange(c.cidr);
  if (last - first < 1n) throw invalid(`Pool${sfx}`, `"${subnet}" is too small for a gateway and an endpoint`);
  if (gateway === undefined) return { subnet: formatCidr(c.cidr), gateway: formatIp({ family, value: first }) };
  const g = parseCidr(gateway.includes('/') ? gateway : `${gateway}/${c.cidr.prefix}`);
  if (!g.ok || g.addr.family !== family || g.addr.value < first || g.addr.value > last)
    throw invalid(`Gateway${sfx}`, `"${gateway}" is not a host address of ${formatCidr(c.cidr)}`);
  return { subnet: formatCidr(c.cidr), gateway: formatIp(g.addr) };
}
