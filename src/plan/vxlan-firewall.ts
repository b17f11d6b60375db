/**
 * The firewall half of a cluster network: VXLAN (udp 4789) carrying this network's VNI is
 * accepted only from member hosts' underlay addresses. Anything else with our VNI is dropped
 * before the VXLAN socket sees it: without this, anyone who can send a UDP packet to this host
 * could put frames on the network's bridge, an open door into every container of it.
 *
 * Typed commands (plan/nft-change.ts), written as text in one place (plan/nft-text.ts) like the
 * rest of mynet's table. Each network has its own base chain on the input hook and its own peer
 * set in mynet's table, so a network's guard is idempotent (add, flush, refill) and touches no
 * other network's rules; several base chains on one hook each see every packet, and
 * a drop in any of them is final. Only VXLAN with one of our VNIs is matched: another tool's
 * VXLAN on port 4789 (Docker's overlay, flannel) is left alone. The VNI is the 24 bits at
 * offset 32 of the VXLAN header, which follows the 8-byte UDP header: transport bits 96-119.
 */
import { short } from './link-names.js';
import {
  type NftCommand,
  add,
  chainObj,
  counterObj,
  destroy,
  elementObj,
  flush,
  reverse,
  ruleObj,
  setObj,
  tableObj,
} from './nft-change.js';
import type { NftHook, NftRule, NftSet } from './nft-model.js';
import { familyOf } from '../rules/address.js';
import { VXLAN_PORT } from './vxlan.js';

export interface VxlanGuard {
  readonly networkId: string;
  readonly vni: number;
  /** Member hosts' underlay addresses, this host's own included or not; their tunnel addresses when encrypted. */
  readonly peers: readonly string[];
  /** The underlay's family (issue 23): an IPv6 underlay's guard matches `ip6 saddr` against an IPv6 set; absent: IPv4. */
  readonly family?: 6;
  /**
   * An encrypted network's (issue 24): the WireGuard interface its VXLAN must come out of. Our
   * VNI arriving any other way is plaintext from the underlay, dropped whatever its source (a
   * forged frame from a member's tunnel address included), and counted apart.
   */
  readonly tunnelIf?: string;
}

/** The guard of a network's binding (driver/state.ts ClusterBinding: its VNI and, encrypted, its interface). */
export const guardFor = (
  networkId: string,
  c: { readonly vni: number; readonly tunnelIf?: string; readonly local?: string },
  peers: readonly string[],
): VxlanGuard => ({
  networkId,
  vni: c.vni,
  peers,
  ...(c.tunnelIf !== undefined && { tunnelIf: c.tunnelIf }),
  // The VXLAN device's source decides the family its members' frames come in with.
  ...(c.local !== undefined && familyOf(c.local) === 6 && { family: 6 as const }),
});

export const guardChain = (networkId: string): string => `vxlan-in-${short(networkId)}`;
export const peerSet = (networkId: string): string => `vxpeers-${short(networkId)}`;
/**
 * The drop count of a network's guard, a named counter: the whole guard is re-applied (chain
 * flushed and refilled) at every reconcile and re-sync, and an anonymous counter in the rule
 * would start from 0 each time; a named one keeps counting across refills.
 */
export const dropCounter = (networkId: string): string => `vxdrop-${short(networkId)}`;

/** The drop count of an encrypted network's plaintext VXLAN (named for the same reason). */
export const plaintextCounter = (networkId: string): string => `vxplain-${short(networkId)}`;

/** The guard chain's priority on the input hook: just before filter (0). */
export const GUARD_PRIORITY = -5;

/** The guard rule's comment: the doctor finds the rule by it (doctor/vxlan.ts); it names the VNI the rule matches. */
export const guardComment = (g: Pick<VxlanGuard, 'networkId' | 'vni'>): string =>
  `net:${short(g.networkId)} vni:${g.vni} vxlan from a non-member`;

/**
 * The guard's member set, of the underlay's family. Teardown names no type (a set is destroyed
 * by its name whatever it holds), so it needs no family.
 */
const memberSet = (networkId: string, family?: 6): NftSet => ({
  name: peerSet(networkId),
  kind: 'set',
  type: family === 6 ? 'ipv6_addr' : 'ipv4_addr',
  interval: false,
});
const guardHook: NftHook = { type: 'filter', hook: 'input', prio: GUARD_PRIORITY };

/** The guard's rule: our VNI on the VXLAN port from an address not in the member set is counted and dropped. */
export const guardRule = (g: Pick<VxlanGuard, 'networkId' | 'vni' | 'family'>): NftRule => ({
  text: `udp dport ${VXLAN_PORT} @th,96,24 ${g.vni} ${g.family === 6 ? 'ip6' : 'ip'} saddr != @${peerSet(g.networkId)} counter name ${dropCounter(g.networkId)} drop`,
  id: guardComment(g),
});

/** An encrypted network's first rule: our VNI not out of its WireGuard interface is counted and dropped. */
export const plaintextRule = (g: Pick<VxlanGuard, 'networkId' | 'vni'>, tunnelIf: string): NftRule => ({
  text: `iifname != "${tunnelIf}" udp dport ${VXLAN_PORT} @th,96,24 ${g.vni} counter name ${plaintextCounter(g.networkId)} drop`,
  id: `net:${short(g.networkId)} vni:${g.vni} plaintext vxlan of an encrypted network`,
});

/** The guard's rules, in order (the doctor compares the chain's with these). */
export const guardRules = (g: VxlanGuard): NftRule[] => [...(g.tunnelIf !== undefined ? [plaintextRule(g, g.tunnelIf)] : []), guardRule(g)];

/** The guard's own objects: set, counters, chain and rules (the table is not its own). */
function guardObjects(g: VxlanGuard): NftCommand[] {
  const chain = guardChain(g.networkId);
  const set = memberSet(g.networkId, g.family);
  return [
    add(setObj(set)),
    add(counterObj(dropCounter(g.networkId))),
    ...(g.tunnelIf !== undefined ? [add(counterObj(plaintextCounter(g.networkId)))] : []),
    flush(setObj(set)),
    add(
      elementObj(
        set.name,
        [...g.peers].sort().map((key) => ({ key })),
      ),
    ),
    // Just before the filter priority: a drop here cannot be undone by an accept elsewhere.
    add(chainObj(chain, guardHook)),
    flush(chainObj(chain)),
    ...guardRules(g).map((r) => add(ruleObj(chain, r))),
  ];
}

/**
 * The whole guard of one network: set, counter, chain and rule, refilled (network create, the
 * doctor's repair, the data plane's full sync). The table is added first (the guard comes before
 * the network's firewall, and before its device); the undo is the reverse of the guard's own part.
 */
export const guardCommands = (g: VxlanGuard): NftCommand[] => [add(tableObj()), ...guardObjects(g)];
export const guardUndo = (g: VxlanGuard): NftCommand[] => reverse(guardObjects(g));

/** Members join or leave: element changes only, the rule and the other members untouched. */
export function guardMemberCommands(networkId: string, joined: readonly string[], left: readonly string[]): NftCommand[] {
  const items = (list: readonly string[]): { key: string }[] => [...list].sort().map((key) => ({ key }));
  return [
    ...(left.length > 0 ? [destroy(elementObj(peerSet(networkId), items(left)))] : []),
    ...(joined.length > 0 ? [add(elementObj(peerSet(networkId), items(joined)))] : []),
  ];
}

/**
 * Removes the guard; works on whatever is left of it (each part destroyed). It does not add the
 * table: run it with plan/nft.ts nftTeardown, so a table already gone stays gone.
 */
export function guardTeardownCommands(networkId: string): NftCommand[] {
  return [
    destroy(chainObj(guardChain(networkId), guardHook)),
    destroy(setObj(memberSet(networkId))),
    destroy(counterObj(dropCounter(networkId))),
    // Destroy: a plain network never had it.
    destroy(counterObj(plaintextCounter(networkId))),
  ];
}
