/**
 * What the doctor (and start-up, which is the same comparison) reports: one difference between
 * the stored state and the kernel, and the plan that repairs it.
 */
import type { Change } from '../driver/state.js';
import type { HostPlan } from '../plan/step.js';

/**
 * - missing, drift: something a record says should be there, absent or not as recorded; the
 *   repair makes it as the record says (always safe).
 * - stale: a record that can no longer be served (an endpoint whose network is not stored); the
 *   repair is a state change only.
 * - leftover: carries our mark and is provably what a crash of a known record left: a veth in
 *   the retired group, or a veth whose alias names a stored network but an endpoint the state
 *   does not know. Removed at start.
 * - orphan: carries our mark but belongs to nothing the state knows (a wiped or moved state
 *   directory looks exactly like this). Never removed on its own: `mynet doctor --fix` does.
 */
export type DifferenceKind = 'missing' | 'drift' | 'stale' | 'leftover' | 'orphan';

export interface Difference {
  readonly kind: DifferenceKind;
  /** What it is about: "bridge mn-…", "veth mnh…", "port 8080/tcp", "FORWARD hook". */
  readonly object: string;
  readonly detail: string;
  readonly fix: HostPlan;
  /** State changes the repair makes (after its host plan, through the orchestrator's commit). */
  readonly changes?: readonly Change[];
  /**
   * 'ports': about a published-port element; start-up repairs all of those at once by writing
   * the port maps exactly as stored, in one transaction.
   */
  readonly scope?: 'ports';
}
