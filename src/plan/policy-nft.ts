/**
 * How one network's compiled policies (policy/compile.ts) look in mynet's nft table: the one
 * place that decides it, for the create, the update, the teardown and the doctor.
 *
 * - A chain `policy-<net>`, jumped first from the network's egress and ingress chains (so
 *   same-bridge, other-host (VXLAN is bridged) and other-network traffic all pass it; replies
 *   were accepted before, by `ct state established,related` in the base chain). It returns at
 *   once for an address no policy protects, lets through what a rule allows, counts the rest
 *   under the policy that protects the address, and drops it.
 * - One set per address group and family (`pg4-<net>-<group>`), one set of the protected
 *   addresses per family, one named counter per policy, one map address → counter per family.
 *
 * The rules depend only on the policies, never on the endpoints: an endpoint coming or going
 * changes set elements, and no rule is replaced, so no allowed flow is cut meanwhile.
 */
import { createHash } from 'node:crypto';
import { parseIp } from '../ip/address.js';
import type { CompiledNetwork } from '../policy/compile.js';
import { formatPortSpec, type PortSpec } from '../policy/document.js';
import { short } from './link-names.js';

export interface PolicySet {
  readonly name: string;
  readonly type: 'ipv4_addr' | 'ipv6_addr';
  readonly elements: readonly string[];
}

export interface PolicyCounterMap {
  readonly name: string;
  readonly type: 'ipv4_addr' | 'ipv6_addr';
  /** address → counter name */
  readonly elements: readonly (readonly [string, string])[];
}

export interface PolicyObjects {
  readonly chain: string;
  readonly rules: readonly string[];
  readonly sets: readonly PolicySet[];
  /** Named counters, one per policy: name → the policy it counts drops of. */
  readonly counters: ReadonlyMap<string, string>;
  readonly maps: readonly PolicyCounterMap[];
}

export const policyChain = (networkId: string): string => `policy-${short(networkId)}`;
/** The rule the network's egress and ingress chains start with once it has a policy. */
export const policyJump = (networkId: string): string => `jump ${policyChain(networkId)}`;
/** A policy's counter: its name hashed, so any policy name makes a valid nft name of fixed length. */
export const policyCounter = (networkId: string, policy: string): string =>
  `pc-${short(networkId)}-${createHash('sha256').update(policy).digest('hex').slice(0, 12)}`;

/** The set of a network's addresses some policy protects, per family ('4' or '6'). */
export const protectedSet = (networkId: string, tag: '4' | '6'): string => `pp${tag}-${short(networkId)}`;
/** The set of one address group (compile.ts groupId), per family. */
export const groupSet = (networkId: string, tag: '4' | '6', group: string): string => `pg${tag}-${short(networkId)}-${group}`;
/** The map from a protected address to the counter of the policy that protects it, per family. */
export const counterMap = (networkId: string, tag: '4' | '6'): string => `pm${tag}-${short(networkId)}`;

const FAMILIES = [
  { f: 4, ip: 'ip', type: 'ipv4_addr', tag: '4' },
  { f: 6, ip: 'ip6', type: 'ipv6_addr', tag: '6' },
] as const;

const ofFamily = (addresses: readonly string[], f: 4 | 6): string[] => addresses.filter((a) => parseIp(a)?.family === f);

/** `tcp . 5432`, `udp . 6000-6010`: the elements of a rule's anonymous port set. */
const portElements = (ports: readonly PortSpec[]): string =>
  ports.map((p) => `${p.proto} . ${formatPortSpec(p).slice(p.proto.length + 1)}`).join(', ');

export function policyObjects(networkId: string, c: CompiledNetwork): PolicyObjects {
  const group = (tag: '4' | '6', id: string): string => groupSet(networkId, tag, id);
  const sets: PolicySet[] = [];
  for (const { f, type, tag } of FAMILIES) {
    sets.push({ name: protectedSet(networkId, tag), type, elements: ofFamily([...c.protectedBy.keys()], f) });
    for (const [id, addrs] of c.groups) sets.push({ name: group(tag, id), type, elements: ofFamily(addrs, f) });
  }
  const counters = new Map(c.policies.map((p) => [policyCounter(networkId, p.name), p.name]));
  const maps = FAMILIES.map(({ f, type, tag }) => ({
    name: counterMap(networkId, tag),
    type,
    elements: [...c.protectedBy].filter(([a]) => parseIp(a)?.family === f).map(([a, p]) => [a, policyCounter(networkId, p)] as const),
  }));
  const rules: string[] = FAMILIES.map(({ ip, tag }) => `${ip} daddr != @${protectedSet(networkId, tag)} return`);
  for (const p of c.policies) {
    for (const r of p.rules) {
      for (const { ip, tag } of FAMILIES) {
        const from = r.sources === undefined ? '' : ` ${ip} saddr @${group(tag, r.sources)}`;
        const ports = r.ports === 'all' ? '' : ` meta l4proto . th dport { ${portElements(r.ports)} }`;
        rules.push(`${ip} daddr @${group(tag, p.selected)}${from}${ports} accept`);
      }
    }
  }
  rules.push(...FAMILIES.map(({ ip, tag }) => `counter name ${ip} daddr map @${counterMap(networkId, tag)} drop`), 'drop');
  return { chain: policyChain(networkId), rules, sets, counters, maps };
}

/** The objects as `nft -f` text inside `table inet <t> { ... }` (the golden test, and the host test's check against nft). */
export function renderPolicyObjects(o: PolicyObjects): string {
  const lines: string[] = [];
  for (const name of o.counters.keys()) lines.push(`counter ${name} { }`);
  for (const s of o.sets)
    lines.push(`set ${s.name} { type ${s.type};${s.elements.length ? ` elements = { ${s.elements.join(', ')} }` : ''} }`);
  for (const m of o.maps)
    lines.push(
      `map ${m.name} { type ${m.type} : counter;${m.elements.length ? ` elements = { ${m.elements.map(([a, c]) => `${a} : "${c}"`).join(', ')} }` : ''} }`,
    );
  lines.push(`chain ${o.chain} {`, ...o.rules.map((r) => `  ${r}`), '}');
  return lines.join('\n');
}

/**
 * One nft transaction (`nft -f`) that makes the table's policy objects for a network exactly `o`,
 * whatever of them was there: declared (a no-op where they exist), emptied and filled again.
 * nft applies a file all or nothing, so no packet sees the chain half-written: a flow allowed
 * before and after is never cut (and established ones pass the base chain's conntrack rule).
 * Counters are declared, never reset, so drop counts survive an update.
 */
export function policyReplaceScript(table: string, o: PolicyObjects, before?: PolicyObjects): string {
  const t = `inet ${table}`;
  const lines = [`add table ${t}`, `add chain ${t} ${o.chain}`, `flush chain ${t} ${o.chain}`];
  for (const name of o.counters.keys()) lines.push(`add counter ${t} ${name}`);
  for (const s of o.sets) {
    lines.push(`add set ${t} ${s.name} { type ${s.type}; }`, `flush set ${t} ${s.name}`);
    if (s.elements.length) lines.push(`add element ${t} ${s.name} { ${s.elements.join(', ')} }`);
  }
  for (const m of o.maps) {
    lines.push(`add map ${t} ${m.name} { type ${m.type} : counter; }`, `flush map ${t} ${m.name}`);
    if (m.elements.length) lines.push(`add element ${t} ${m.name} { ${m.elements.map(([a, c]) => `${a} : "${c}"`).join(', ')} }`);
  }
  for (const r of o.rules) lines.push(`add rule ${t} ${o.chain} ${r}`);
  // What only the old objects had goes last, once no rule of the new chain refers to it.
  if (before) {
    const sets = new Set(o.sets.map((x) => x.name));
    const maps = new Set(o.maps.map((x) => x.name));
    for (const x of before.sets) if (!sets.has(x.name)) lines.push(`delete set ${t} ${x.name}`);
    for (const x of before.maps) if (!maps.has(x.name)) lines.push(`delete map ${t} ${x.name}`);
    for (const name of before.counters.keys()) if (!o.counters.has(name)) lines.push(`delete counter ${t} ${name}`);
  }
  return `${lines.join('\n')}\n`;
}
