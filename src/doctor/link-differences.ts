/**
 * The links part of the reconciler: bridges and veths the records say should be there (missing
 * or drifted), and links carrying our mark that no record names (leftover or orphan, see
 * difference.ts). A link is a leftover or an orphan only if no record names it, whatever its
 * name: a name a record holds is never removed here.
 */
import { endpointSteps } from '../driver/endpoint.js';
import { networkSteps } from '../driver/network.js';
import { policyObjectsOf } from '../driver/policy.js';
import { type EndpointRecord, type StateView, mtuOf } from '../driver/state.js';
import { vxlanName } from '../plan/vxlan.js';
import type { KernelSnapshot } from '../host/kernel-snapshot.js';
import type { MarkedLink } from '../host/probe.js';
import { CONTAINER_VETH_PREFIX, HOST_VETH_PREFIX, short } from '../plan/link-names.js';
import type { Difference } from './difference.js';
import { addGatewayStep, attachVethStep, bringUpStep, removeLinkStep, setMtuStep } from './repairs.js';

/** Endpoints by network, in one pass (a filter per network would cost networks × endpoints). */
export function endpointsByNetwork(state: StateView): Map<string, EndpointRecord[]> {
  const out = new Map<string, EndpointRecord[]>();
  for (const e of state.endpoints.values()) {
    const list = out.get(e.networkId);
    if (list) list.push(e);
    else out.set(e.networkId, [e]);
  }
  return out;
}

export function linkDifferences(state: StateView, k: KernelSnapshot): Difference[] {
  const out: Difference[] = [];
  const byNetwork = endpointsByNetwork(state);
  for (const n of state.networks.values()) {
    const br = k.links.get(n.bridge);
    const eps = byNetwork.get(n.id) ?? [];
    if (!br) {
      out.push({
        kind: 'missing',
        object: `bridge ${n.bridge}`,
        detail: `network ${short(n.id)} has no bridge`,
        // Host veths that survived are put back on the new bridge; missing ones are made again.
        fix: [
          ...networkSteps(n, policyObjectsOf(state, n.id)),
          ...eps.flatMap((e) => (k.links.has(e.hostIf) ? [attachVethStep(e.hostIf, n.bridge)] : endpointSteps(n, e))),
        ],
      });
      continue;
    }
    if (!br.up) out.push({ kind: 'drift', object: `bridge ${n.bridge}`, detail: 'is down', fix: [bringUpStep(n.bridge)] });
    for (const gw of [...n.ipv4, ...n.ipv6].flatMap((s) => (s.gateway ? [s.gateway] : []))) {
      if (!br.addrs.includes(gw))
        out.push({
          kind: 'drift',
          object: `bridge ${n.bridge}`,
          detail: `gateway ${gw} is not on it`,
          fix: [addGatewayStep(gw, n.bridge)],
        });
    }
    const mtu = mtuOf(n);
    if (br.mtu !== mtu)
      out.push({ kind: 'drift', object: `bridge ${n.bridge}`, detail: `MTU is ${br.mtu}, not ${mtu}`, fix: [setMtuStep(n.bridge, mtu)] });
    // A cluster network's VXLAN device is compared in vxlan.ts, with its guard.
    for (const e of eps) {
      const v = k.links.get(e.hostIf);
      if (!v)
        out.push({
          kind: 'missing',
          object: `veth ${e.hostIf}`,
          detail: `endpoint ${short(e.id)} has no host-side veth`,
          fix: endpointSteps(n, e),
        });
      else if (v.master !== n.bridge)
        out.push({
          kind: 'drift',
          object: `veth ${e.hostIf}`,
          detail: `is attached to ${v.master ?? 'nothing'}, not ${n.bridge}`,
          fix: [attachVethStep(e.hostIf, n.bridge)],
        });
    }
  }
  return out;
}

/** "mynet net:<12 hex> ep:<12 hex>" (plan/link-names.ts endpointAlias) → the network's short id. */
const ALIAS = /^mynet net:([0-9a-f]{12}) ep:[0-9a-f]{12}$/;

/** Links of ours that no record names: leftovers of a known state, or orphans. */
export function markedDifferences(state: StateView, marked: readonly MarkedLink[]): Difference[] {
  const named = new Set<string>();
  // A cluster network's VXLAN device is named by its network record (not an orphan).
  for (const n of state.networks.values()) {
    named.add(n.bridge);
    if (n.cluster) named.add(vxlanName(n.id));
  }
  for (const e of state.endpoints.values()) if (state.networks.has(e.networkId)) named.add(e.hostIf).add(e.containerIf);
  const networks = new Set([...state.networks.keys()].map(short));
  const whyLeftover = (m: MarkedLink): string | undefined => {
    if (m.retired) return 'a retired veth whose delete did not run (a crash or a failed reap)';
    const net = m.alias ? ALIAS.exec(m.alias)?.[1] : undefined;
    if (net && networks.has(net)) return `a veth of network ${net} for an endpoint the state does not know (a crash before the save)`;
    return undefined;
  };
  const leftovers = new Map<string, string>();
  for (const m of marked) {
    const why = named.has(m.name) ? undefined : whyLeftover(m);
    if (why) leftovers.set(m.name, why);
  }
  const out: Difference[] = [];
  for (const m of marked) {
    if (named.has(m.name)) continue;
    // The container end of a leftover pair, still in the host's namespace, goes with it.
    const peer = m.name.startsWith(CONTAINER_VETH_PREFIX) ? `${HOST_VETH_PREFIX}${m.name.slice(CONTAINER_VETH_PREFIX.length)}` : undefined;
    const why = leftovers.get(m.name) ?? (peer && leftovers.has(peer) ? `the container end of leftover ${peer}` : undefined);
    if (why) out.push({ kind: 'leftover', object: `link ${m.name}`, detail: why, fix: [removeLinkStep(m.name, 'leftover link')] });
    else
      out.push({
        kind: 'orphan',
        object: `link ${m.name}`,
        detail: "carries mynet's mark but belongs to no network or endpoint the state knows",
        fix: [removeLinkStep(m.name, 'orphan link')],
      });
  }
  return out;
}
