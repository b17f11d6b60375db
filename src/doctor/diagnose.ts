/**
 * The doctor's decision, pure: compare the stored state with a kernel snapshot and list each
 * difference with the plan that repairs it. "missing" and "drift" are things our state says
 * should be there; repairing them is always safe. "orphan" is something carrying our mark that
 * no record explains; removing it is left to `mynet doctor --fix`. Nothing unmarked is ever
 * listed, so nothing unmarked is ever touched.
 */
import { portElements } from '../plan/ports.js';
import { endpointSteps } from '../driver/endpoint.js';
import { networkSteps, nftNetwork } from '../driver/network.js';
import type { NetworkRecord, StateView } from '../driver/state.js';
import type { KernelSnapshot } from '../host/kernel-snapshot.js';
import { TABLE, baseScript, networkScript, portElementsScript } from '../plan/nft.js';
import { short } from '../plan/link-names.js';
import type { HostPlan } from '../plan/step.js';

export type DifferenceKind = 'missing' | 'drift' | 'orphan';

export interface Difference {
  readonly kind: DifferenceKind;
  /** What it is about: "bridge mn-…", "veth mnh…", "port 8080/tcp", "FORWARD hook". */
  readonly object: string;
  readonly detail: string;
  readonly fix: HostPlan;
}

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

export function diagnose(state: StateView, k: KernelSnapshot): Difference[] {
  const out: Difference[] = [];
  const known = new Set<string>();
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
  for (const n of state.networks.values()) {
    known.add(n.bridge);
    const br = k.links.get(n.bridge);
    const eps = [...state.endpoints.values()].filter((e) => e.networkId === n.id);
    if (!br) {
      out.push({
        kind: 'missing',
        object: `bridge ${n.bridge}`,
        detail: `network ${short(n.id)} has no bridge`,
        fix: [
          ...networkSteps(n),
          // Host veths that survived are put back on the new bridge; missing ones are made again.
          ...eps.flatMap((e) => (k.links.has(e.hostIf)
            ? [{ what: `attach ${e.hostIf} to ${n.bridge}`, run: { kind: 'ip', args: ['link', 'set', 'dev', e.hostIf, 'master', n.bridge] } } as const]
            : endpointSteps(n, e))),
        ],
      });
    } else {
      if (!br.up) out.push({ kind: 'drift', object: `bridge ${n.bridge}`, detail: 'is down', fix: [{ what: `bring up ${n.bridge}`, run: { kind: 'ip', args: ['link', 'set', 'dev', n.bridge, 'up'] } }] });
      for (const gw of [...n.ipv4, ...n.ipv6].flatMap((s) => (s.gateway ? [s.gateway] : []))) {
        if (!br.addrs.includes(gw)) {
          out.push({ kind: 'drift', object: `bridge ${n.bridge}`, detail: `gateway ${gw} is not on it`, fix: [{ what: `add ${gw} to ${n.bridge}`, run: { kind: 'ip', args: ['addr', 'add', gw, 'dev', n.bridge, ...(gw.includes(':') ? ['nodad'] : [])] } }] });
        }
      }
      if (br.mtu !== n.options.mtu) {
        out.push({ kind: 'drift', object: `bridge ${n.bridge}`, detail: `MTU is ${br.mtu}, not ${n.options.mtu}`, fix: [{ what: `set MTU of ${n.bridge}`, run: { kind: 'ip', args: ['link', 'set', 'dev', n.bridge, 'mtu', String(n.options.mtu)] } }] });
      }
      for (const e of eps) {
        known.add(e.hostIf).add(e.containerIf);
        const v = k.links.get(e.hostIf);
        if (!v) out.push({ kind: 'missing', object: `veth ${e.hostIf}`, detail: `endpoint ${short(e.id)} has no host-side veth`, fix: endpointSteps(n, e) });
        else if (v.master !== n.bridge) out.push({ kind: 'drift', object: `veth ${e.hostIf}`, detail: `is attached to ${v.master ?? 'nothing'}, not ${n.bridge}`, fix: [{ what: `attach ${e.hostIf} to ${n.bridge}`, run: { kind: 'ip', args: ['link', 'set', 'dev', e.hostIf, 'master', n.bridge] } }] });
      }
    }
    for (const e of eps) known.add(e.hostIf).add(e.containerIf);
    if (k.nft) {
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
            out.push({ kind: 'missing', object: `port ${portName(p.key)}`, detail: `published port of ${short(e.id)} is not in ${p.map}`, fix: [{ what: `publish ${portName(p.key)}`, run: { kind: 'nft', script: `add element ${TABLE} ${p.map} { ${el} }` } }] });
          }
        }
      }
    }
  }
  if (state.networks.size > 0 && !(k.hook.chain && k.hook.rules && k.hook.jump)) {
    out.push({ kind: 'missing', object: 'FORWARD hook', detail: !k.hook.jump ? 'iptables FORWARD does not jump to MYNET-FORWARD' : 'the MYNET-FORWARD chain is not as mynet made it', fix: [{ what: 'ensure the FORWARD hook', run: { kind: 'forward-hook', action: 'ensure' } }] });
  }
  for (const name of k.links.keys()) {
    if (!known.has(name)) out.push({ kind: 'orphan', object: `link ${name}`, detail: 'carries mynet\'s mark but belongs to no network or endpoint', fix: [{ what: `remove orphan link ${name}`, run: { kind: 'link-del', name } }] });
  }
  for (const [map, els] of k.nft?.elements ?? []) {
    if (!/^(pub[46](any)?|egress|ingress)$/.test(map)) continue;
    for (const el of els) {
      if (expected.get(map)?.has(el)) continue;
      const key = el.slice(0, el.indexOf(' : '));
      out.push({ kind: 'orphan', object: `${map} element ${key}`, detail: 'in mynet\'s table but in no record', fix: [{ what: `remove ${map} ${key}`, run: { kind: 'nft', script: `delete element ${TABLE} ${map} { ${key} }` } }] });
    }
  }
  return out;
}

/** Repairs the reconcile loop makes on its own: everything but orphan removal. */
export const safeToRepair = (d: Difference): boolean => d.kind !== 'orphan';
