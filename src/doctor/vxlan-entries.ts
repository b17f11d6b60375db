/**
 * The cluster part of the reconciler for a VXLAN device's entries, pure: the forwarding,
 * neighbour and flood (mynet.multicast) entries the kernel holds against those the data plane
 * believes from etcd's records (multihost/plane.ts `view`: the same description it programs
 * from, compared by plan/vxlan.ts `diffEntries`, the plane's own sync's comparison). Each
 * difference repairs itself with the plane's steps, through the executor and the policies of
 * every other difference. Records and policies this host refused are listed and never
 * repaired (the doctor cannot fix etcd's writer); while the plane does not follow etcd nothing
 * is compared, so nothing is removed on stale knowledge.
 */
import type { NetworkRecord } from '../driver/state.js';
import {
  type ObservedEntries,
  diffEntries,
  floodSteps,
  remoteEntrySteps,
  strayFdbStep,
  strayNeighStep,
  unfloodSteps,
  vxlanName,
} from '../plan/vxlan.js';
import type { Difference } from './difference.js';
import type { PlaneKnowledge } from './plane-knowledge.js';

/** Listed for the operator: nothing of ours to run (reconcile.ts leaves a difference without a repair). */
const note = (object: string, detail: string): Difference => ({ kind: 'drift', object, detail, fix: [] });

/** What etcd refused of this network: its records this host does not believe, its policies that do not check. */
function refusals(dev: string, plane: PlaneKnowledge): Difference[] {
  return [
    ...(plane.refused ?? []).map((r) => note(`${dev} record ${r.id.slice(0, 12)} of node ${r.node}`, `refused (${r.reason}): ${r.detail}`)),
    ...(plane.refusedPolicies ?? []).map(([key, problem]) => note(`policy ${key}`, `refused, not enforced: ${problem}`)),
  ];
}

/**
 * `kernel`: the device's entries as read (undefined: the device is not there, or is made again
 * with its entries by doctor/vxlan.ts). `plane` undefined: no cluster follows this network.
 */
export function entryDifferences(
  n: Pick<NetworkRecord, 'id' | 'cluster'>,
  plane: PlaneKnowledge | undefined,
  kernel: ObservedEntries | undefined,
): Difference[] {
  if (!n.cluster || !plane) return [];
  const dev = vxlanName(n.id);
  if (plane.following === false)
    return [note(dev, 'not compared: the endpoint records of etcd are not followed right now (etcd unreachable?)')];
  if (!kernel || !plane.entries) return refusals(dev, plane);
  const d = diffEntries(plane.entries, kernel, plane.flood ?? []);
  const drift = (object: string, detail: string, fix: Difference['fix']): Difference => ({ kind: 'drift', object, detail, fix });
  return [
    ...d.program.map((e) =>
      drift(`${dev} entry ${e.address}`, `missing or wrong: etcd says ${e.mac} on host ${e.underlay}`, remoteEntrySteps(n.id, e)),
    ),
    ...d.removeFdb.map((m) => drift(`${dev} fdb ${m}`, 'no endpoint in etcd has this MAC', [strayFdbStep(n.id, m)])),
    ...d.removeNeigh.map((a) => drift(`${dev} neighbour ${a}`, 'no endpoint in etcd has this address', [strayNeighStep(n.id, a)])),
    ...(d.addFlood ?? []).map((u) =>
      drift(`${dev} flood ${u}`, 'missing: multicast is on and this member host is not flooded to', floodSteps(n.id, u)),
    ),
    ...(d.removeFlood ?? []).map((u) =>
      drift(
        `${dev} flood ${u}`,
        n.cluster?.multicast ? 'no member host has this address' : 'multicast is off: nothing floods between hosts',
        unfloodSteps(n.id, u),
      ),
    ),
    ...refusals(dev, plane),
  ];
}
