/**
 * The firewall half of a cluster network: VXLAN (udp 4789) carrying this network's VNI is
 * accepted only from member hosts' underlay addresses. Anything else with our VNI is dropped
 * before the VXLAN socket sees it: without this, anyone who can send a UDP packet to this host
 * could put frames on the network's bridge, an open door into every container of it.
 *
 * Kept apart from plan/nft.ts (being reshaped into typed data) for a later merge: typed data
 * (VxlanGuard) and its nft text. Each network has its own base chain on the input hook and its
 * own peer set in mynet's table, so a network's script is idempotent (add, flush, refill) and
 * touches no other network's rules; several base chains on one hook each see every packet, and
 * a drop in any of them is final. Only VXLAN with one of our VNIs is matched: another tool's
 * VXLAN on port 4789 (Docker's overlay, flannel) is left alone. The VNI is the 24 bits at
 * offset 32 of the VXLAN header, which follows the 8-byte UDP header: transport bits 96-119.
 */
import { TABLE } from '../rules/nft-names.js';
import { short } from './link-names.js';
import { VXLAN_PORT } from './vxlan.js';


export interface VxlanGuard {
  readonly networkId: string;
  readonly vni: number;
  /** Member hosts' underlay addresses (IPv4), this host's own included or not. */
  readonly peers: readonly string[];
}

export const guardChain = (networkId: string): string => `vxlan-in-${short(networkId)}`;
export const peerSet = (networkId: string): string => `vxpeers-${short(networkId)}`;
/**
 * The drop count of a network's guard, a named counter: the guard script is re-applied (chain
 * flushed and refilled) at every reconcile and re-sync, and an anonymous counter in the rule
 * would start from 0 each time; a named one keeps counting across refills.
 */
export const dropCounter = (networkId: string): string => `vxdrop-${short(networkId)}`;

/** The guard chain's priority on the input hook: just before filter (0). */
export const GUARD_PRIORITY = -5;

/** The guard rule's comment: the doctor finds the rule by it (doctor/vxlan.ts); it names the VNI the rule matches. */
export const guardComment = (g: Pick<VxlanGuard, 'networkId' | 'vni'>): string => `net:${short(g.networkId)} vni:${g.vni} vxlan from a non-member`;

/** The whole guard of one network: chain, set and rule, refilled. */
export function vxlanGuardScript(g: VxlanGuard, table = TABLE): string {
  const chain = guardChain(g.networkId);
  const set = peerSet(g.networkId);
  return [
    `add table ${table}`,
    `add set ${table} ${set} { type ipv4_addr; }`,
    `add counter ${table} ${dropCounter(g.networkId)}`,
    `flush set ${table} ${set}`,
    ...(g.peers.length > 0 ? [`add element ${table} ${set} { ${[...g.peers].sort().join(', ')} }`] : []),
    // Just before the filter priority: a drop here cannot be undone by an accept elsewhere.
    `add chain ${table} ${chain} { type filter hook input priority filter - 5; policy accept; }`,
    `flush chain ${table} ${chain}`,
    `add rule ${table} ${chain} udp dport ${VXLAN_PORT} @th,96,24 ${g.vni} ip saddr != @${set} counter name ${dropCounter(g.networkId)} drop comment "${guardComment(g)}"`,
  ].join('\n');
}

/** A member joins or leaves: one element change, the rule untouched. */
export function vxlanPeersScript(op: 'add' | 'delete', networkId: string, peers: readonly string[], table = TABLE): string {
  if (peers.length === 0) return '';
  const set = peerSet(networkId);
  const els = `{ ${[...peers].sort().join(', ')} }`;
  // nft 1.0.6 has no `destroy`: add before delete so a delete of an absent member succeeds.
  return op === 'add' ? `add element ${table} ${set} ${els}` : [`add element ${table} ${set} ${els}`, `delete element ${table} ${set} ${els}`].join('\n');
}

/**
 * Removes the guard; works on whatever is left of it (add before delete). It does not add the
 * table: run it with ifTable (plan/nft.ts nftTeardown), so a table already gone stays gone.
 */
export function vxlanGuardTeardownScript(networkId: string, table = TABLE): string {
  const chain = guardChain(networkId);
  const set = peerSet(networkId);
  return [
    `add chain ${table} ${chain} { type filter hook input priority filter - 5; policy accept; }`,
    `delete chain ${table} ${chain}`,
    `add set ${table} ${set} { type ipv4_addr; }`,
    `delete set ${table} ${set}`,
    `add counter ${table} ${dropCounter(networkId)}`,
    `delete counter ${table} ${dropCounter(networkId)}`,
  ].join('\n');
}
