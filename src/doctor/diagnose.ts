/**
 * The reconciler's comparison, pure: the stored state (desired) against what the kernel holds
 * (observed) gives a list of differences, each with the plan that repairs it. Start-up and the
 * reconcile loop both use it (doctor/reconcile.ts decides which differences a run repairs).
 * Nothing unmarked is ever listed, so nothing unmarked is ever touched.
 */
import type { StateView } from '../driver/state.js';
import type { KernelSnapshot } from '../host/kernel-snapshot.js';
import type { MarkedLink } from '../host/probe.js';
import { short } from '../plan/link-names.js';
import type { Difference } from './difference.js';
import { linkDifferences, markedDifferences } from './link-differences.js';
import { nftDifferences } from './nft.js';
import { type DataPlaneView, vxlanDifferences } from './vxlan.js';
import { ensureHookStep } from './repairs.js';

export type { Difference, DifferenceKind } from './difference.js';

/** Records that cannot be served: an endpoint whose network is not stored (its repair drops it). */
function staleRecords(state: StateView): Difference[] {
  return [...state.endpoints.values()]
    .filter((e) => !state.networks.has(e.networkId))
    .map((e) => ({
      kind: 'stale',
      object: `endpoint ${short(e.id)}`,
      detail: `its network ${short(e.networkId)} is not in the state`,
      fix: [],
      changes: [{ op: 'endpoint.delete', id: e.id }],
    }));
}

function hookDifferences(state: StateView, k: KernelSnapshot): Difference[] {
  const h = k.hook;
  if (state.networks.size === 0 || (h.chain && h.rules && h.jump && h.guard)) return [];
  const detail = !h.jump
    ? 'iptables FORWARD does not jump to MYNET-FORWARD'
    : !h.chain || !h.rules
      ? 'the MYNET-FORWARD chain is not as mynet made it'
      : "the 127/8 guard is missing from iptables' raw PREROUTING";
  return [{ kind: 'missing', object: 'FORWARD hook', detail, fix: [ensureHookStep()] }];
}

/**
 * Every link with our mark: the list read with groups and aliases, and the snapshot's links
 * (all in our group) that it lacks (read a moment apart, or no list given).
 */
function allMarked(k: KernelSnapshot, marked: readonly MarkedLink[]): MarkedLink[] {
  const names = new Set(marked.map((m) => m.name));
  return [...marked, ...[...k.links.keys()].filter((n) => !names.has(n)).map((name) => ({ name, retired: false }))];
}

/**
 * `plane`: what the cluster's data plane last knew of each cluster network (members, remote
 * entries); the VXLAN devices and guards come last, after a table made again by nftDifferences.
 */
export function diagnose(
  state: StateView,
  k: KernelSnapshot,
  marked: readonly MarkedLink[] = [],
  plane?: DataPlaneView,
  underlay?: string,
): Difference[] {
  return [
    ...staleRecords(state),
    ...linkDifferences(state, k),
    ...hookDifferences(state, k),
    ...markedDifferences(state, allMarked(k, marked)),
    ...nftDifferences(state, k.nft),
    ...vxlanDifferences(state, k, plane, underlay),
  ];
}

/** Repairs the reconcile loop makes on its own: re-create what records say, drop stale records; never remove. */
export const safeToRepair = (d: Difference): boolean => d.kind === 'missing' || d.kind === 'drift' || d.kind === 'stale';
