/**
 * The doctor's decision, pure: compare the stored state with a kernel snapshot and list each
 * difference with the plan that repairs it. "missing" and "drift" are things our state says
 * should be there; repairing them is always safe. "orphan" is something carrying our mark that
 * no record explains; removing it is left to `mynet doctor --fix`. Nothing unmarked is ever
 * listed, so nothing unmarked is ever touched.
 */
import { endpointSteps } from '../driver/endpoint.js';
import { networkSteps } from '../driver/network.js';
import type { StateView } from '../driver/state.js';
import type { KernelSnapshot } from '../host/kernel-snapshot.js';
import { nftDifferences } from './nft.js';
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

export function diagnose(state: StateView, k: KernelSnapshot): Difference[] {
  const out: Difference[] = [];
  const known = new Set<string>();

  out.push(...nftDifferences(state, k.nft));
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
  }
  if (state.networks.size > 0 && !(k.hook.chain && k.hook.rules && k.hook.jump)) {
    out.push({ kind: 'missing', object: 'FORWARD hook', detail: !k.hook.jump ? 'iptables FORWARD does not jump to MYNET-FORWARD' : 'the MYNET-FORWARD chain is not as mynet made it', fix: [{ what: 'ensure the FORWARD hook', run: { kind: 'forward-hook', action: 'ensure' } }] });
  }
  for (const name of k.links.keys()) {
    if (!known.has(name)) out.push({ kind: 'orphan', object: `link ${name}`, detail: 'carries mynet\'s mark but belongs to no network or endpoint', fix: [{ what: `remove orphan link ${name}`, run: { kind: 'link-del', name } }] });
  }
  return out;
}

/** Repairs the reconcile loop makes on its own: everything but orphan removal. */
export const safeToRepair = (d: Difference): boolean => d.kind !== 'orphan';
