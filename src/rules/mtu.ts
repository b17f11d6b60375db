/**
 * MTU bounds and encapsulation overheads, in one place: requests (protocol/options.ts), the
 * journal's reader (store/records.ts), etcd's reader and writer (cluster/records.ts,
 * cluster/cluster-store.ts) and the underlay probe (multihost/start.ts) all take them from here,
 * so a value one of them accepts is never refused by another (issue 21: a cluster MTU of 500 was
 * accepted at create, written to etcd, then refused by every reader, this host's own start too).
 */
import { invalid } from '../errors.js';

/** What Linux takes on a bridge or veth (IPv4's minimum, 68, to the 16-bit maximum). */
export const MTU_MIN = 68;
export const MTU_MAX = 65_535;
/** IPv6 needs links of at least 1280 bytes (RFC 8200 §5). */
export const IPV6_MTU_MIN = 1280;

export type UnderlayFamily = 4 | 6;

/** VXLAN's cost per frame: outer IP (20 or 40), UDP 8, VXLAN 8, inner Ethernet 14. */
export const VXLAN_OVERHEAD: Readonly<Record<UnderlayFamily, number>> = { 4: 50, 6: 70 };
/** WireGuard's cost per packet: outer IP (20 or 40), UDP 8, WireGuard header 16 and tag 16. */
export const WIREGUARD_OVERHEAD: Readonly<Record<UnderlayFamily, number>> = { 4: 60, 6: 80 };

/**
 * A cluster network's MTU: at least 576 (the datagram every IPv4 host must take, RFC 791; and
 * what layout-v1 readers on other hosts accept), at most what fits in the largest underlay frame.
 */
export const CLUSTER_MTU_MIN = 576;
export const CLUSTER_MTU_MAX = MTU_MAX - VXLAN_OVERHEAD[4];
/** The least underlay MTU that still carries a cluster network over IPv4. */
export const UNDERLAY_MTU_MIN = CLUSTER_MTU_MIN + VXLAN_OVERHEAD[4];

/** The MTU containers get on a cluster network over an underlay of `underlayMtu`. */
export const clusterMtu = (underlayMtu: number, family: UnderlayFamily = 4): number => underlayMtu - VXLAN_OVERHEAD[family];

/**
 * The MTU containers get on an encrypted cluster network (issue 24): VXLAN (over the IPv4
 * tunnel addresses) inside WireGuard (over the underlay's family).
 */
export const encryptedClusterMtu = (underlayMtu: number, family: UnderlayFamily = 4): number =>
  underlayMtu - WIREGUARD_OVERHEAD[family] - VXLAN_OVERHEAD[4];

/** The WireGuard interface's own MTU: what one encrypted packet of it fills the underlay with. */
export const wireguardMtu = (underlayMtu: number, family: UnderlayFamily = 4): number => underlayMtu - WIREGUARD_OVERHEAD[family];

/** A whole number within [min, max]; `what` says whose bounds they are, for the message. */
export function checkMtu(field: string, v: unknown, min: number, max: number, what = ''): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(field, `${JSON.stringify(v)?.slice(0, 40)} is not a whole number from ${min} to ${max}${what ? ` (${what})` : ''}`);
  }
  return v;
}

/** The check of a cluster network's MTU, for the request, the journal and etcd alike. */
export const checkClusterMtu = (field: string, v: unknown): number =>
  checkMtu(
    field,
    v,
    CLUSTER_MTU_MIN,
    CLUSTER_MTU_MAX,
    `a cluster network's MTU: ${CLUSTER_MTU_MIN} at least, and VXLAN adds ${VXLAN_OVERHEAD[4]} bytes to every frame`,
  );
