/**
 * The firewall part of the doctor: mynet's `inet mynet` table against the state. Kept in one
 * piece (the missing-table block, each network's chains and elements, the published ports, the
 * elements no record explains) so that the table's own description can replace it as a whole.
 */
import { portElements } from '../plan/ports.js';
import { nftNetwork } from '../driver/network.js';
import type { NetworkRecord, StateView } from '../driver/state.js';
import type { KernelSnapshot } from '../host/kernel-snapshot.js';
import { TABLE, baseScript, networkScript, portElementsScript } from '../plan/nft.js';
import { short } from '../plan/link-names.js';
import { parseIp } from '../ip/address.js';
import { contains, parseCidr } from '../ip/cidr.js';
import type { HostPlan } from '../plan/step.js';
import type { Difference } from './difference.js';

const firewallFix = (n: NetworkRecord): HostPlan => [
  { what: `program the firewall of ${n.bridge}`, run: { kind: 'nft', script: `${baseScript()}\n${networkScript(nftNetwork(n))}` } },
];

/** A port element's key ("tcp . 8080", "127.0.0.1 . tcp . 8081") as an operator reads it: "8080/tcp", "127.0.0.1:8081/tcp". */
function portName(key: string): string {
  const parts = key.split(' . ');
  const [proto, port] = parts.slice(-2);
  const ip = parts.length === 3 ? (parts[0] as string) : undefined;
  return `${ip ? `${ip.includes(':') ? `[${ip}]` : ip}:` : ''}${port}/${proto}`;
}

/** Elements the network's part of the table should hold, as nft prints them, by map/set. */
function expectedNetworkElements(n: NetworkRecord): [string, string][] {
  const f = nftNetwork(n);
  const id = short(n.id);
  const out: [string, string][] = [
    ['egress', `"${n.bridge}" : jump egress-${id}`],
    ['ingress', `"${n.bridge}" : jump ingress-${id}`],
    ...f.subnets4.map((s): [string, string] => ['subnets4', s]),
    ...f.subnets6.map((s): [string, string] => ['subnets6', s]),
  ];
  if (f.masquerade && !f.internal) {
    out.push(...f.subnets4.map((s): [string, string] => (f.snat4 ? ['snat4', `${s} : ${f.snat4}`] : ['masq4', s])));
    out.push(...f.subnets6.map((s): [string, string] => (f.snat6 ? ['snat6', `${s} : ${f.snat6}`] : ['masq6', s])));
  }
  return out;
}

/** The stored network whose subnet holds a port element's target ("10.1.0.2 . 80"), if any. */
function networkOfTarget(state: StateView, element: string): NetworkRecord | undefined {
  const addr = parseIp(element.slice(element.indexOf(' : ') + 3).split(' . ')[0] ?? '');
  if (!addr) return undefined;
  return [...state.networks.values()].find((n) => [...n.ipv4, ...n.ipv6].some((s) => {
    const c = parseCidr(s.pool);
    return c.ok && contains(c.cidr, addr);
  }));
}

export function nftDifferences(state: StateView, k: KernelSnapshot): Difference[] {
  const out: Difference[] = [];
  const has = (map: string, el: string): boolean => k.nft?.elements.get(map)?.includes(el) ?? false;
  const expected = new Map<string, Set<string>>();
  const expect = (map: string, el: string): void => {
    expected.set(map, (expected.get(map) ?? new Set()).add(el));
  };

  if (state.networks.size > 0 && !k.nft) {
    const ports = [...state.endpoints.values()].flatMap((e) => portElements(e, e.ports));
    out.push({
      kind: 'missing',
      object: `nft table ${TABLE}`,
      detail: 'the table is gone (a firewall flush?)',
      fix: [
        ...[...state.networks.values()].flatMap(firewallFix),
        ...(ports.length ? [{ what: 'publish every port again', run: { kind: 'nft', script: portElementsScript('add', ports) } } as const] : []),
      ],
    });
  }
  if (!k.nft) return out;
  for (const n of state.networks.values()) {
    const eps = [...state.endpoints.values()].filter((e) => e.networkId === n.id);
    const els = expectedNetworkElements(n);
    els.forEach(([m, el]) => expect(m, el));
    const chainsOk = k.nft.chains.has(`egress-${short(n.id)}`) && k.nft.chains.has(`ingress-${short(n.id)}`);
    const missing = els.filter(([m, el]) => !has(m, el));
    if (!chainsOk || missing.length) {
      out.push({ kind: 'missing', object: `firewall of ${n.bridge}`, detail: chainsOk ? `missing ${missing.map(([m, el]) => `${m} ${el}`).join(', ')}` : 'its chains are missing', fix: firewallFix(n) });
    }
    for (const e of eps) {
      for (const p of portElements(e, e.ports)) {
        const el = `${p.key} : ${p.value}`;
        expect(p.map, el);
        if (!has(p.map, el)) {
          out.push({ kind: 'missing', scope: 'ports', object: `port ${portName(p.key)}`, detail: `published port of ${short(e.id)} is not in ${p.map}`, fix: [{ what: `publish ${portName(p.key)}`, run: { kind: 'nft', script: `add element ${TABLE} ${p.map} { ${el} }` } }] });
        }
      }
    }
  }
  for (const [map, els] of k.nft.elements) {
    if (!/^(pub[46](any)?|egress|ingress)$/.test(map)) continue;
    for (const el of els) {
      if (expected.get(map)?.has(el)) continue;
      const key = el.slice(0, el.indexOf(' : '));
      const fix = [{ what: `remove ${map} ${key}`, run: { kind: 'nft', script: `delete element ${TABLE} ${map} { ${key} }` } } as const];
      // A published port into a stored network that no record publishes: a crash between the
      // nft change and the save (it would block that host port for good).
      const into = map.startsWith('pub') ? networkOfTarget(state, el) : undefined;
      if (into) out.push({ kind: 'leftover', scope: 'ports', object: `${map} element ${key}`, detail: `points into network ${short(into.id)} but no record publishes it`, fix });
      else out.push({ kind: 'orphan', object: `${map} element ${key}`, detail: 'in mynet\'s table but in no record', fix });
    }
  }
  return out;
}
