/**
 * The reconciler: one function for start-up, the reconcile loop and `mynet doctor`. The records
 * (desired) against a kernel snapshot (observed) give the differences (diagnose.ts); a policy
 * says which of them this run repairs. Each repair is its own plan, so one that fails does not
 * keep the others from running; the orchestrator runs them and commits their state changes.
 *
 * Policies:
 * - report: repairs nothing (`mynet doctor`, `mynet status`).
 * - start: what the records say (missing, drift), stale records, and the leftovers a crash of a
 *   known state provably left (retired veths, veths and published-port elements of a stored
 *   network that no record names); every published-port repair in one nft transaction (leftover
 *   elements out, stored ones in), so there is no moment without the stored ports. Orphans
 *   (objects of networks the state does not know: a wiped state directory looks like that)
 *   are left for `mynet doctor --fix`.
 * - safe: the reconcile loop; what the records say and stale records, nothing removed.
 * - all: `mynet doctor --fix`; everything, orphans included.
 * A difference with nothing to run and no state change (what etcd holds that this host refuses,
 * a part not compared) is listed by every policy and repaired by none.
 */
import type { Change, StateView } from '../driver/state.js';
import type { KernelSnapshot } from '../host/kernel-snapshot.js';
import type { MarkedLink } from '../host/probe.js';
import type { HostPlan } from '../plan/step.js';
import type { Difference } from './difference.js';
import { diagnose, safeToRepair } from './diagnose.js';
import { oneTransaction } from './repairs.js';
import type { DataPlaneView } from './vxlan.js';

export type Policy = 'report' | 'start' | 'safe' | 'all';

/** What the kernel holds of ours: the snapshot, and every link with our mark (both groups). */
export interface Observed {
  readonly kernel: KernelSnapshot;
  readonly marked: readonly MarkedLink[];
  /** What the cluster's data plane last knew (members of each guard, remote entries); none without a cluster. */
  readonly plane?: DataPlaneView;
  /** The underlay address this host's cluster runs with (its VXLAN devices' source); none without a cluster. */
  readonly underlay?: string;
  /** Differences the cluster found itself (notes it cannot repair, WireGuard peers), listed last. */
  readonly found?: readonly Difference[];
}

/** One repair: the differences it settles, its host plan, and the state changes it makes. */
export interface Action {
  readonly differences: readonly Difference[];
  readonly fix: HostPlan;
  readonly changes: readonly Change[];
}

export interface Reconciliation {
  /** Every difference found, in the order found. */
  readonly found: readonly Difference[];
  readonly actions: readonly Action[];
  /** Differences this policy leaves as they are (reported). */
  readonly left: readonly Difference[];
}

export function repairs(policy: Policy, d: Difference): boolean {
  // Nothing to run (a record etcd holds that this host refuses, a part not compared): only listed.
  if (d.fix.length === 0 && !d.changes?.length) return false;
  switch (policy) {
    case 'report':
      return false;
    case 'start':
      return safeToRepair(d) || d.kind === 'leftover';
    case 'safe':
      return safeToRepair(d);
    case 'all':
      return true;
  }
}

const single = (d: Difference): Action => ({ differences: [d], fix: d.fix, changes: d.changes ?? [] });

export function reconcile(state: StateView, observed: Observed, policy: Policy): Reconciliation {
  const found = [...diagnose(state, observed.kernel, observed.marked, observed.plane, observed.underlay), ...(observed.found ?? [])];
  const chosen = found.filter((d) => repairs(policy, d));
  const left = found.filter((d) => !repairs(policy, d));
  if (policy !== 'start') return { found, actions: chosen.map(single), left };
  // Start-up: the port repairs in one transaction, after the rest (a firewall made again above
  // brings its maps first); elements that must go come out before stored ones go in, since a
  // leftover can hold the key a stored port needs.
  const ports = chosen.filter((d) => d.scope === 'ports').sort((a, b) => Number(a.kind !== 'leftover') - Number(b.kind !== 'leftover'));
  const one = oneTransaction(
    'published ports as stored',
    ports.flatMap((d) => d.fix),
  );
  const actions = chosen.filter((d) => !one || d.scope !== 'ports').map(single);
  if (one && ports.length) actions.push({ differences: ports, fix: [one], changes: [] });
  return { found, actions, left };
}
