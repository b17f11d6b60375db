/**
 * What mynet keeps in its own nftables table, `inet mynet`, as data: the base objects every
 * network shares (maps, sets, base chains) and, per network, its two chains and its elements.
 * This is the one place that decides them: the create and teardown changes
 * (nft-render.ts) and the doctor's expected view (doctor/nft.ts) are all derived from here, so
 * they cannot drift apart.
 *
 * Shape: a fixed set of base chains whose few rules dispatch through maps, plus two small chains
 * per network. Published ports are map elements (plan/ports.ts), so publishing a port is one
 * element change; rules grow with networks, never with endpoints or ports.
 *
 * Every rule carries its fingerprint as its comment (a hash of its text): nft prints a rule back
 * in its own words, but the comment comes back as written, so the doctor compares each chain's
 * rules by fingerprint, in order, and a rule that changed (or a new mynet version's rule) is
 * seen as drift once and rewritten, never "repaired" forever.
 */
import type { NetworkRecord } from '../driver/state.js';
import type { GatewayMode } from '../protocol/options.js';
import { formatIp, parseIp } from '../ip/address.js';
import { formatCidr, parseCidr } from '../ip/cidr.js';
import { MYNET_GROUP, short } from './link-names.js';
import { type NftChain, type NftElement, type NftSet, chain } from './nft-rule.js';

export type { NftChain, NftElement, NftHook, NftRule, NftSet } from './nft-rule.js';
import { policyModel } from './policy-model.js';
import type { PolicyObjects } from './policy-nft.js';

export { TABLE } from '../rules/nft-names.js';
const G = String(MYNET_GROUP);

/**
 * The packet mark bit mynet's forward chain sets on every packet of our links it lets through;
 * the iptables hook (host/forward-hook.ts) accepts traffic of our links only with this bit and
 * drops the rest, so losing the table fails closed. 0x1000 (bit 12) is outside what the common
 * markers use: Kubernetes' kube-proxy 0x4000/0x8000, Calico 0xffff0000, Cilium 0x0f00 (and its
 * identity in the upper half), netavark 0x2000, Weave 0x20000/0x40000, Tailscale 0xff0000,
 * Docker's own IPVS service marks (small counters from 256) and its encrypted-overlay mark
 * 0xd0c4e3 (bit 12 clear). We only OR the bit in and test it, never overwrite the mark.
 */
export const FORWARD_MARK = 0x1000;
export const FORWARD_MARK_HEX = `0x${FORWARD_MARK.toString(16).padStart(8, '0')}`;

/** Docker's default bridge names: traffic from mynet networks to them is dropped (isolation). */
const DOCKER_BRIDGES = '{ "docker0", "docker_gwbridge", "br-*" }';

export interface NftObjects {
  readonly chains: readonly NftChain[];
  readonly elements: readonly NftElement[];
  /** A network's own sets and maps (its policy's: plan/policy-model.ts), made before its chains. */
  readonly sets: readonly NftSet[];
  /** Named counters (one per policy), made before the maps that point at them. */
  readonly counters: readonly string[];
}

export interface NftFamily {
  readonly subnets: readonly string[];
  /** Masquerade (or SNAT to `snat`) outbound traffic of this family. */
  readonly masquerade: boolean;
  readonly snat?: string;
  /** Other hosts may reach container addresses of this family directly. */
  readonly directAccess: boolean;
}

export interface NftNetwork {
  readonly id: string;
  readonly bridge: string;
  readonly internal: boolean;
  readonly icc: boolean;
  readonly isolate: boolean;
  readonly v4: NftFamily;
  readonly v6: NftFamily;
  /** Its network policy's objects (issue 25); absent while no policy names the network. */
  readonly policy?: PolicyObjects;
}

// nft prints addresses back in canonical form; the model writes them so, or the doctor would
// see "fd00:0009::/64" and "fd00:9::/64" as two elements and repair forever.
const canonicalCidr = (s: string): string => {
  const c = parseCidr(s);
  return c.ok ? formatCidr(c.cidr) : s;
};
const canonicalIp = (s: string): string => {
  const a = parseIp(s);
  return a ? formatIp(a) : s;
};

/**
 * How a stored network looks in the table. Each family follows its own gateway mode, as in
 * Docker's bridge driver: nat masquerades and refuses direct access from other hosts,
 * nat-unprotected masquerades and lets them in, routed does not masquerade and lets them in.
 */
export function nftNetwork(n: NetworkRecord, policy?: PolicyObjects): NftNetwork {
  const o = n.options;
  const family = (subnets: NetworkRecord['ipv4'], mode: GatewayMode, snat: string | undefined): NftFamily => ({
    subnets: subnets.map((s) => canonicalCidr(s.pool)),
    masquerade: !o.internal && o.masquerade && mode !== 'routed',
    directAccess: !o.internal && mode !== 'nat',
    ...(snat ? { snat: canonicalIp(snat) } : {}),
  });
  return {
    id: n.id,
    bridge: n.bridge,
    internal: o.internal,
    icc: o.icc,
    isolate: o.isolate,
    v4: family(n.ipv4, o.gatewayModeIpv4, o.hostIpv4),
    v6: family(n.ipv6, o.gatewayModeIpv6, o.hostIpv6),
    ...(policy ? { policy } : {}),
  };
}

export const BASE_SETS: readonly NftSet[] = [
  // Published ports: specific host address, or any local address (per family).
  { name: 'pub4', kind: 'map', type: 'ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service', interval: false },
  { name: 'pub4any', kind: 'map', type: 'inet_proto . inet_service : ipv4_addr . inet_service', interval: false },
  { name: 'pub6', kind: 'map', type: 'ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service', interval: false },
  { name: 'pub6any', kind: 'map', type: 'inet_proto . inet_service : ipv6_addr . inet_service', interval: false },
  // Per-bridge policy chains.
  { name: 'egress', kind: 'map', type: 'ifname : verdict', interval: false },
  { name: 'ingress', kind: 'map', type: 'ifname : verdict', interval: false },
  // Outbound NAT by source subnet: masquerade, or SNAT to a chosen address (host_ipv4/6).
  // (Interval verdict maps refuse jump elements on this kernel, hence sets and data maps.)
  { name: 'masq4', kind: 'set', type: 'ipv4_addr', interval: true },
  { name: 'masq6', kind: 'set', type: 'ipv6_addr', interval: true },
  { name: 'snat4', kind: 'map', type: 'ipv4_addr : ipv4_addr', interval: true },
  { name: 'snat6', kind: 'map', type: 'ipv6_addr : ipv6_addr', interval: true },
  { name: 'subnets4', kind: 'set', type: 'ipv4_addr', interval: true },
  { name: 'subnets6', kind: 'set', type: 'ipv6_addr', interval: true },
];

/**
 * The forward chain runs before iptables' filter FORWARD (priority filter = 0, where
 * iptables-nft and legacy iptables both hook): it marks every packet of our links first, so a
 * packet reaches FORWARD marked only if this chain saw it and did not drop it (a drop is final).
 */
const FORWARD_PRIO = -10;

/** Chains the table once had and a newer mynet removes (a base chain cannot change priority). */
export const RETIRED_CHAINS: readonly string[] = ['forward'];

export const BASE_CHAINS: readonly NftChain[] = [
  // route_localnet (on for our bridges, for the host's own 127.0.0.1 -> published port path)
  // would also let a container reach the host's services on 127.0.0.0/8, or pose as a local
  // client: nothing with a loopback address may come in from a mynet link. At raw priority, so
  // before the answers to the host's 127.0.0.1 flows are de-NATed back to 127.0.0.1.
  chain('localnet', [`iifgroup ${G} ip daddr 127.0.0.0/8 drop`, `iifgroup ${G} ip saddr 127.0.0.0/8 drop`], {
    type: 'filter',
    hook: 'prerouting',
    prio: -300,
  }),
  chain(
    'prerouting',
    [
      // Loopback bindings are served from the host only (output chain): another host that sends
      // to 127.0.0.1 must not reach them.
      'fib daddr type local ip daddr != 127.0.0.0/8 dnat ip to ip daddr . meta l4proto . th dport map @pub4',
      'fib daddr type local ip daddr != 127.0.0.0/8 dnat ip to meta l4proto . th dport map @pub4any',
      'fib daddr type local ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6',
      'fib daddr type local ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @pub6any',
    ],
    { type: 'nat', hook: 'prerouting', prio: -100 },
  ),
  chain(
    'output',
    [
      'fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @pub4',
      'fib daddr type local dnat ip to meta l4proto . th dport map @pub4any',
      'fib daddr type local ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6',
      'fib daddr type local ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @pub6any',
    ],
    { type: 'nat', hook: 'output', prio: -100 },
  ),
  chain(
    'postrouting',
    [
      // Hairpin: a container reaching a published port through the host's address must see
      // the answer come back through the host, so its source is rewritten.
      `ct status dnat ip saddr @subnets4 oifgroup ${G} masquerade`,
      `ct status dnat ip6 saddr @subnets6 oifgroup ${G} masquerade`,
      // The host itself on 127.0.0.1 (route_localnet is on for our bridges).
      `ip saddr 127.0.0.0/8 oifgroup ${G} masquerade`,
      `oifgroup != ${G} snat ip to ip saddr map @snat4`,
      `oifgroup != ${G} snat ip6 to ip6 saddr map @snat6`,
      `oifgroup != ${G} ip saddr @masq4 masquerade`,
      `oifgroup != ${G} ip6 saddr @masq6 masquerade`,
    ],
    { type: 'nat', hook: 'postrouting', prio: 100 },
  ),
  chain(
    'firewall',
    [
      // Marked first, dropped after: see FORWARD_MARK.
      `iifgroup ${G} meta mark set meta mark | ${FORWARD_MARK_HEX}`,
      `oifgroup ${G} meta mark set meta mark | ${FORWARD_MARK_HEX}`,
      'ct state established,related accept',
      'iifname vmap @egress',
      'oifname vmap @ingress',
    ],
    { type: 'filter', hook: 'forward', prio: FORWARD_PRIO },
  ),
];

export const egressChain = (id: string): string => `egress-${short(id)}`;
export const ingressChain = (id: string): string => `ingress-${short(id)}`;

/** Direct access from other hosts, per family: one rule for both, one for either, or none. */
function directAccessRule(n: NftNetwork): string[] {
  if (n.v4.directAccess && n.v6.directAccess) return [`iifgroup != ${G} accept`];
  if (n.v4.directAccess) return [`meta nfproto ipv4 iifgroup != ${G} accept`];
  if (n.v6.directAccess) return [`meta nfproto ipv6 iifgroup != ${G} accept`];
  return [];
}

/**
 * One network's chains and elements. With a policy, both of its chains start with a jump to its policy chain
 * (plan/policy-nft.ts): the egress chain sees traffic between containers of the same bridge (the
 * bridge netfilter hook passes bridged frames through the forward hook, as for ICC), the ingress
 * chain what comes from elsewhere; replies were accepted before, by the base chain's conntrack rule.
 */
export function networkObjects(n: NftNetwork): NftObjects {
  const br = `"${n.bridge}"`;
  const policy = n.policy ? policyModel(n.policy) : undefined;
  const jump = policy ? [`jump ${policy.chain.name}`] : [];
  const egress: string[] = [
    ...jump,
    // Published ports are reachable from every container, ICC or not.
    'ct status dnat accept',
    `oifname ${br} ${n.icc ? 'accept' : 'drop'}`,
  ];
  if (n.internal) egress.push('drop');
  else {
    if (n.isolate) egress.push(`oifgroup ${G} drop`);
    egress.push(`oifname ${DOCKER_BRIDGES} drop`, 'return');
  }
  const ingress: string[] = [...jump, 'ct status dnat accept'];
  // From another mynet network: allowed only when neither side isolates (its egress chain ran first).
  if (!n.internal && !n.isolate) ingress.push(`iifgroup ${G} accept`);
  ingress.push(...directAccessRule(n), 'drop');
  const elements: NftElement[] = [
    { set: 'egress', key: br, value: `jump ${egressChain(n.id)}` },
    { set: 'ingress', key: br, value: `jump ${ingressChain(n.id)}` },
    ...n.v4.subnets.map((s) => ({ set: 'subnets4', key: s })),
    ...n.v6.subnets.map((s) => ({ set: 'subnets6', key: s })),
    ...natElements(n.v4, 'masq4', 'snat4'),
    ...natElements(n.v6, 'masq6', 'snat6'),
    ...(policy?.elements ?? []),
  ];
  return {
    chains: [...(policy ? [policy.chain] : []), chain(egressChain(n.id), egress), chain(ingressChain(n.id), ingress)],
    elements,
    sets: policy?.sets ?? [],
    counters: policy?.counters ?? [],
  };
}

function natElements(f: NftFamily, set: string, map: string): NftElement[] {
  if (!f.masquerade) return [];
  return f.subnets.map((s) => (f.snat ? { set: map, key: s, value: f.snat } : { set, key: s }));
}

/**
 * Every element a network could have left keyed by its subnets, whatever its options were
 * when they were written (an older mynet applied gateway_mode_ipv4 to both families): the
 * teardown removes all of them, so no NAT element outlives its network.
 */
export function networkLeftovers(n: NftNetwork): NftElement[] {
  const out: NftElement[] = [];
  for (const [f, set, map, any] of [
    [n.v4, 'masq4', 'snat4', '0.0.0.0'],
    [n.v6, 'masq6', 'snat6', '::'],
  ] as const) {
    for (const s of f.subnets) out.push({ set, key: s }, { set: map, key: s, value: f.snat ?? any });
  }
  return out;
}
