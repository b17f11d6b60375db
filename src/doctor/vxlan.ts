/**
 * The cluster part of the reconciler, pure: each cluster network's VXLAN device (present, on its
 * bridge, with the VNI, source address, port, learning and proxy flags and MTU the record says),
 * its VXLAN guard (the input chain that drops our VNI from non-members, its rule, and the
 * member set) and its entries (vxlan-entries.ts). These are differences like any other, repaired by the same policies, so the
 * guard comes back with the reconcile loop and `mynet doctor --fix` whether or not etcd
 * answers: its members are what the data plane last knew (multihost/plane.ts `view`), never a
 * live etcd read; before the plane knew anything, the members the kernel's set holds are kept.
 */
import { vxlanSpecOf } from '../driver/network.js';
import type { NetworkRecord, StateView } from '../driver/state.js';
import type { KernelSnapshot, LinkInfo } from '../host/kernel-snapshot.js';
import { VXLAN_PORT, type VxlanSpec, floodSteps, remoteEntrySteps, vxlanDeviceSteps, vxlanName } from '../plan/vxlan.js';
import { GUARD_PRIORITY, guardChain, guardCommands, guardFor, guardRules, peerSet } from '../plan/vxlan-firewall.js';
import { nftOp } from '../plan/nft.js';
import type { HostPlan } from '../plan/step.js';
import type { Difference } from './difference.js';
import { attachVethStep, setMtuStep } from './repairs.js';
import { entryDifferences } from './vxlan-entries.js';
import type { DataPlaneView, PlaneKnowledge } from './plane-knowledge.js';

export type { DataPlaneView, PlaneKnowledge, RefusedRecordNote } from './plane-knowledge.js';

/** Why the device's attributes are not the record's (all but the MTU, which is set in place), or undefined. */
export function deviceDrift(spec: VxlanSpec, l: LinkInfo): string | undefined {
  const v = l.vxlan;
  if (!v) return 'is not a VXLAN device';
  const wrong: string[] = [];
  if (v.id !== spec.vni) wrong.push(`VNI ${v.id}, not ${spec.vni}`);
  if (v.local !== spec.local) wrong.push(`local address ${v.local ?? 'none'}, not ${spec.local}`);
  if (v.port !== VXLAN_PORT) wrong.push(`port ${v.port}, not ${VXLAN_PORT}`);
  if (v.learning) wrong.push('learning on');
  if (!v.proxy) wrong.push('ARP proxy off');
  return wrong.length ? wrong.join(', ') : undefined;
}

/**
 * The device made again as the record says, on its bridge, with the remote entries and (with
 * mynet.multicast) the flood entries the plane knows: a remade device floods to the same hosts.
 */
const remakeDevice = (n: NetworkRecord, spec: VxlanSpec, plane: PlaneKnowledge | undefined): HostPlan => [
  ...vxlanDeviceSteps(spec),
  ...(plane?.entries ?? []).flatMap((e) => remoteEntrySteps(n.id, e)),
  ...(n.cluster?.multicast ? (plane?.flood ?? []).flatMap((u) => floodSteps(n.id, u)) : []),
];

/**
 * The record with this host's underlay address as its VXLAN source, when the plugin runs with
 * another address than the network was made with (issue 22, finding 9: the address changed and
 * the plugin was restarted); the record itself otherwise. An encrypted network's source is its
 * tunnel address, not the underlay's.
 */
export function reboundTo(n: NetworkRecord, underlay: string | undefined): NetworkRecord {
  const c = n.cluster;
  if (!c || c.encrypt || underlay === undefined || c.local === underlay) return n;
  return { ...n, cluster: { ...c, local: underlay } };
}

function deviceDifferences(n: NetworkRecord, k: KernelSnapshot, plane: PlaneKnowledge | undefined, underlay?: string): Difference[] {
  if (!n.cluster) return [];
  const dev = vxlanName(n.id);
  const l = k.links.get(dev);
  const object = `vxlan ${dev}`;
  // No bridge: the network's whole plan is made again (link-differences.ts), the device with it.
  if (!k.links.has(n.bridge)) return [];
  const rebound = reboundTo(n, underlay);
  if (rebound !== n && rebound.cluster) {
    // The record changes with the device, so the next start and the doctor describe the new one.
    const to = vxlanSpecOf(rebound, rebound.cluster);
    return [
      {
        kind: 'drift',
        object,
        detail: `made from ${n.cluster.local}, this host's underlay address is now ${to.local}: made again from it`,
        fix: remakeDevice(rebound, to, plane),
        changes: [{ op: 'network.put', network: rebound }],
      },
    ];
  }
  const spec = vxlanSpecOf(n, n.cluster);
  if (!l)
    return [
      { kind: 'missing', object, detail: `cluster network ${n.cluster.name} has no VXLAN device`, fix: remakeDevice(n, spec, plane) },
    ];
  const drift = deviceDrift(spec, l);
  // proxy and the VNI cannot change on a live device: it is deleted (ours by its mark) and made again.
  if (drift) return [{ kind: 'drift', object, detail: `${drift}: made again`, fix: remakeDevice(n, spec, plane) }];
  const out: Difference[] = [];
  if (l.mtu !== spec.mtu) out.push({ kind: 'drift', object, detail: `MTU is ${l.mtu}, not ${spec.mtu}`, fix: [setMtuStep(dev, spec.mtu)] });
  if (l.master !== n.bridge)
    out.push({
      kind: 'drift',
      object,
      detail: `is attached to ${l.master ?? 'nothing'}, not ${n.bridge}`,
      fix: [attachVethStep(dev, n.bridge)],
    });
  return out;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

function guardDifferences(n: NetworkRecord, k: KernelSnapshot, plane: PlaneKnowledge | undefined): Difference[] {
  if (!n.cluster) return [];
  const t = k.nft;
  const chain = guardChain(n.id);
  const set = peerSet(n.id);
  const kernelMembers = t?.elements.get(set);
  // Members: the plane's last knowledge; before it has any, what the kernel's set still holds.
  const members = plane?.members ?? kernelMembers ?? [];
  const g = guardFor(n.id, n.cluster, members);
  const fix: HostPlan = [{ what: `guard VXLAN of ${n.bridge} (${members.length} member(s))`, run: nftOp(guardCommands(g)) }];
  const object = `VXLAN guard ${chain}`;
  const hook = t?.hooks.get(chain);
  let detail: string | undefined;
  if (!t || !t.chains.has(chain)) detail = 'its chain is missing: VXLAN from any host is accepted';
  else if (!hook || (hook.hook as string) !== 'input' || hook.type !== 'filter' || hook.prio !== GUARD_PRIORITY || hook.policy !== 'accept')
    detail = `its chain does not hook filter input at priority ${GUARD_PRIORITY}`;
  else if (
    !sameSet(
      t.rules.get(chain) ?? [],
      guardRules(g).map((r) => r.id),
    )
  )
    detail = 'its rule is not as mynet writes it';
  else if (!t.sets.has(set)) detail = `its member set ${set} is missing`;
  else if (plane?.members && !sameSet(kernelMembers ?? [], plane.members))
    detail = `its members are ${(kernelMembers ?? []).join(', ') || 'none'}, not ${plane.members.join(', ') || 'none'}`;
  if (!detail) return [];
  return [{ kind: t?.chains.has(chain) ? 'drift' : 'missing', object, detail, fix }];
}

/** `underlay`: the address this host's cluster runs with now (undefined: no cluster, or unknown). */
export function vxlanDifferences(state: StateView, k: KernelSnapshot, plane: DataPlaneView = new Map(), underlay?: string): Difference[] {
  return [...state.networks.values()].flatMap((n) => {
    const device = deviceDifferences(n, k, plane.get(n.id), underlay);
    // A device made again brings its entries (remakeDevice): they are compared on the next run.
    const remade = !k.links.has(n.bridge) || device.some((d) => d.fix.some((s) => s.run.kind === 'link-del'));
    return [
      ...device,
      ...guardDifferences(n, k, plane.get(n.id)),
      ...entryDifferences(n, plane.get(n.id), remade ? undefined : k.entries?.get(vxlanName(n.id))),
    ];
  });
}
