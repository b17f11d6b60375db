/**
 * mynet's own nftables table, `inet mynet`: outbound masquerade, isolation, internal networks and
 * published ports. We never edit a table we do not own; the only rule outside it is the FORWARD
 * hook (host/forward-hook.ts).
 *
 * Shape: a fixed set of base chains whose few rules dispatch through maps, plus three small
 * chains per network. Published ports are map elements (host ip . proto . port → container ip .
 * port), so publishing or removing a port is one element change in one transaction, whatever
 * else is published; rules grow with networks, never with endpoints or ports.
 *
 * Every script here is idempotent: chains are added then flushed and refilled, elements are
 * added before they are deleted (nft 1.0.6 has no `destroy`), so a script can run twice and a
 * teardown works on whatever is left. Each script is one `nft -f -` transaction: all or nothing.
 */
import { MYNET_GROUP, short } from './link-names.js';

export const TABLE = 'inet mynet';
const G = String(MYNET_GROUP);
/** Docker's default bridge names: traffic from mynet networks to them is dropped (isolation). */
const DOCKER_BRIDGES = '{ "docker0", "docker_gwbridge", "br-*" }';

export interface NftNetwork {
  readonly id: string;
  readonly bridge: string;
  readonly internal: boolean;
  readonly icc: boolean;
  readonly isolate: boolean;
  /** Masquerade outbound traffic (bridge: enable_ip_masquerade and gateway mode nat*). */
  readonly masquerade: boolean;
  /** Let other hosts reach container addresses directly (gateway mode nat-unprotected / routed). */
  readonly directAccess: boolean;
  readonly snat4?: string;
  readonly snat6?: string;
  readonly subnets4: readonly string[];
  readonly subnets6: readonly string[];
}

const chains = (id: string): { egress: string; ingress: string } => ({
  egress: `egress-${short(id)}`,
  ingress: `ingress-${short(id)}`,
});

/** The table, its maps and base chains. Safe to apply before every network change. */
export function baseScript(): string {
  return [
    `add table ${TABLE} { comment "owned by mynet; do not edit"; }`,
    // Published ports: specific host address, or any local address (per family).
    `add map ${TABLE} pub4 { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }`,
    `add map ${TABLE} pub4any { type inet_proto . inet_service : ipv4_addr . inet_service; }`,
    `add map ${TABLE} pub6 { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }`,
    `add map ${TABLE} pub6any { type inet_proto . inet_service : ipv6_addr . inet_service; }`,
    // Per-bridge policy chains.
    `add map ${TABLE} egress { type ifname : verdict; }`,
    `add map ${TABLE} ingress { type ifname : verdict; }`,
    // Outbound NAT by source subnet: masquerade, or SNAT to a chosen address (host_ipv4/6).
    // (Interval verdict maps refuse jump elements on this kernel, hence sets and data maps.)
    `add set ${TABLE} masq4 { type ipv4_addr; flags interval; }`,
    `add set ${TABLE} masq6 { type ipv6_addr; flags interval; }`,
    `add map ${TABLE} snat4 { type ipv4_addr : ipv4_addr; flags interval; }`,
    `add map ${TABLE} snat6 { type ipv6_addr : ipv6_addr; flags interval; }`,
    `add set ${TABLE} subnets4 { type ipv4_addr; flags interval; }`,
    `add set ${TABLE} subnets6 { type ipv6_addr; flags interval; }`,
    // route_localnet (on for our bridges, for the host's own 127.0.0.1 -> published port path)
    // would also let a container reach the host's services on 127.0.0.0/8, or pose as a local
    // client: nothing with a loopback address may come in from a mynet link. At raw priority, so
    // before the answers to the host's 127.0.0.1 flows are de-NATed back to 127.0.0.1.
    ...chain('localnet', 'type filter hook prerouting priority raw; policy accept;', [
      `iifgroup ${G} ip daddr 127.0.0.0/8 drop`,
      `iifgroup ${G} ip saddr 127.0.0.0/8 drop`,
    ]),
    ...chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', [
      // Loopback bindings are served from the host only (output chain): another host that sends
      // to 127.0.0.1 must not reach them.
      'fib daddr type local ip daddr != 127.0.0.0/8 dnat ip to ip daddr . meta l4proto . th dport map @pub4',
      'fib daddr type local ip daddr != 127.0.0.0/8 dnat ip to meta l4proto . th dport map @pub4any',
      'fib daddr type local ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6',
      'fib daddr type local ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @pub6any',
    ]),
    ...chain('output', 'type nat hook output priority -100; policy accept;', [
      'fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @pub4',
      'fib daddr type local dnat ip to meta l4proto . th dport map @pub4any',
      'fib daddr type local ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6',
      'fib daddr type local ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @pub6any',
    ]),
    ...chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', [
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
    ]),
    ...chain('forward', 'type filter hook forward priority filter; policy accept;', [
      'ct state established,related accept',
      'iifname vmap @egress',
      'oifname vmap @ingress',
    ]),
  ].join('\n');
}

function chain(name: string, spec: string | undefined, rules: readonly string[]): string[] {
  return [
    `add chain ${TABLE} ${name}${spec ? ` { ${spec} }` : ''}`,
    `flush chain ${TABLE} ${name}`,
    ...rules.map((r) => `add rule ${TABLE} ${name} ${r}`),
  ];
}

/** Chains and map elements of one network. */
export function networkScript(n: NftNetwork): string {
  const c = chains(n.id);
  const tag = `comment "net:${short(n.id)}"`;
  const br = `"${n.bridge}"`;
  const egress: string[] = [
    // Published ports are reachable from every container, ICC or not.
    'ct status dnat accept',
    `oifname ${br} ${n.icc ? 'accept' : 'drop'} ${tag}`,
  ];
  if (n.internal) egress.push(`drop ${tag}`);
  else {
    if (n.isolate) egress.push(`oifgroup ${G} drop ${tag}`);
    egress.push(`oifname ${DOCKER_BRIDGES} drop ${tag}`, 'return');
  }
  const ingress: string[] = ['ct status dnat accept'];
  // From another mynet network: allowed only when neither side isolates (its egress chain ran first).
  if (!n.internal && !n.isolate) ingress.push(`iifgroup ${G} accept`);
  if (!n.internal && n.directAccess) ingress.push(`iifgroup != ${G} accept`);
  ingress.push(`drop ${tag}`);
  const out: string[] = [
    ...chain(c.egress, undefined, egress),
    ...chain(c.ingress, undefined, ingress),
    `add element ${TABLE} egress { ${br} : jump ${c.egress} }`,
    `add element ${TABLE} ingress { ${br} : jump ${c.ingress} }`,
  ];
  if (n.subnets4.length) out.push(`add element ${TABLE} subnets4 { ${n.subnets4.join(', ')} }`);
  if (n.subnets6.length) out.push(`add element ${TABLE} subnets6 { ${n.subnets6.join(', ')} }`);
  if (n.masquerade && !n.internal) out.push(...natElements(n).map((e) => `add element ${TABLE} ${e}`));
  return out.join('\n');
}

/** Outbound NAT elements: "<set or map> { elements }". */
function natElements(n: NftNetwork): string[] {
  const out: string[] = [];
  const fam = [
    { list: n.subnets4, snat: n.snat4, set: 'masq4', map: 'snat4' },
    { list: n.subnets6, snat: n.snat6, set: 'masq6', map: 'snat6' },
  ];
  for (const f of fam) {
    if (!f.list.length) continue;
    out.push(f.snat ? `${f.map} { ${f.list.map((s) => `${s} : ${f.snat}`).join(', ')} }` : `${f.set} { ${f.list.join(', ')} }`);
  }
  return out;
}

/** Removes one network's chains and elements; works on whatever part of them is left. */
export function networkTeardownScript(n: NftNetwork): string {
  const c = chains(n.id);
  const br = `"${n.bridge}"`;
  const out: string[] = [];
  // Make everything exist (idempotently), then delete it: nft 1.0.6 has no `destroy`.
  for (const name of [c.egress, c.ingress]) out.push(`add chain ${TABLE} ${name}`, `flush chain ${TABLE} ${name}`);
  out.push(
    `add element ${TABLE} egress { ${br} : jump ${c.egress} }`,
    `delete element ${TABLE} egress { ${br} }`,
    `add element ${TABLE} ingress { ${br} : jump ${c.ingress} }`,
    `delete element ${TABLE} ingress { ${br} }`,
  );
  for (const [set, list] of [['subnets4', n.subnets4], ['subnets6', n.subnets6]] as const) {
    if (list.length) out.push(`add element ${TABLE} ${set} { ${list.join(', ')} }`, `delete element ${TABLE} ${set} { ${list.join(', ')} }`);
  }
  // Whichever NAT elements the network had (masquerade or SNAT, or none when internal).
  const anyHost4 = n.snat4 ?? '0.0.0.0';
  const anyHost6 = n.snat6 ?? '::';
  for (const [set, map, list, to] of [['masq4', 'snat4', n.subnets4, anyHost4], ['masq6', 'snat6', n.subnets6, anyHost6]] as const) {
    if (!list.length) continue;
    out.push(`add element ${TABLE} ${set} { ${list.join(', ')} }`, `delete element ${TABLE} ${set} { ${list.join(', ')} }`);
    out.push(`add element ${TABLE} ${map} { ${list.map((s) => `${s} : ${to}`).join(', ')} }`, `delete element ${TABLE} ${map} { ${list.join(', ')} }`);
  }
  for (const name of [c.egress, c.ingress]) out.push(`delete chain ${TABLE} ${name}`);
  return out.join('\n');
}

/** Removes the whole table (when the last network goes). */
export const tableTeardownScript = (): string => [`add table ${TABLE}`, `delete table ${TABLE}`].join('\n');

/** One published port as map elements: which map, its key and its value. */
export interface PortElement {
  readonly map: 'pub4' | 'pub4any' | 'pub6' | 'pub6any';
  readonly key: string;
  readonly value: string;
}

export function portElementsScript(op: 'add' | 'delete', els: readonly PortElement[]): string {
  // Grouped by map in one pass (a list copied per element made 20 000 elements quadratic).
  const byMap = new Map<string, PortElement[]>();
  for (const e of els) {
    const list = byMap.get(e.map);
    if (list) list.push(e);
    else byMap.set(e.map, [e]);
  }
  const out: string[] = [];
  for (const [map, list] of byMap) {
    const add = `add element ${TABLE} ${map} { ${list.map((e) => `${e.key} : ${e.value}`).join(', ')} }`;
    // add-then-delete keeps a delete idempotent.
    out.push(add);
    if (op === 'delete') out.push(`delete element ${TABLE} ${map} { ${list.map((e) => e.key).join(', ')} }`);
  }
  return out.join('\n');
}
