/**
 * Issue 22, finding 9: this host's underlay address changed while the plugin runs. The plugin
 * runs with the address it started with (its presence, its records' `underlay`, every cluster
 * network's VXLAN source); the reconcile loop asks again (a connected UDP socket, no packet
 * sent: cluster/node-address.ts) and, when the address no longer fits, says so loudly: `mynet
 * status`, `mynet doctor` and one error line per change. It does not move by itself yet: a
 * restart does (the start takes the new address; the doctor makes each VXLAN device again from
 * it, doctor/vxlan.ts `reboundTo`; convergence republishes the records with it).
 *
 * - detected (MYNET_NODE_ADDRESS unset): moved when the source address towards etcd is another.
 * - set: never moved from it; reported when no interface of this host holds it any more.
 */
import type { Difference } from '../doctor/difference.js';

/** What the host's addresses are now, as the reconcile loop asked (start.ts). */
export interface UnderlayNow {
  /** The source address towards etcd now; undefined with `error` when there is no route. */
  readonly source?: string;
  readonly error?: string;
  /** Whether an interface of this host holds the address the plugin runs with. */
  readonly held: boolean;
}

export interface AddressMove {
  /** The address the plugin runs with. */
  readonly running: string;
  /** The address it would take now (the source towards etcd), or why there is none. */
  readonly now: string;
  readonly setting: 'detected' | 'MYNET_NODE_ADDRESS';
}

/** Pure: whether the address the plugin runs with still fits the host. */
export function addressMove(running: string, setting: AddressMove['setting'], h: UnderlayNow): AddressMove | undefined {
  const now = h.source ?? `none (${h.error ?? 'no route towards etcd'})`;
  if (setting === 'MYNET_NODE_ADDRESS') return h.held ? undefined : { running, now, setting };
  // Detected: the source address towards etcd is the one; no route at all is a move only when
  // the old address is gone too (a route lost for a moment is etcd trouble, not a new address).
  if (h.source === running || (h.source === undefined && h.held)) return undefined;
  return { running, now, setting };
}

const restartHint = (m: AddressMove): string =>
  m.setting === 'detected'
    ? `restart the plugin: it takes ${m.now} at start and every cluster network follows`
    : `MYNET_NODE_ADDRESS=${m.running} is held by no interface of this host; set it to this host's underlay address and restart the plugin`;

/**
 * What a new check found, and the line to log when it differs from the last one (one per
 * change: the loop asks every interval): error for a move, info for the address fitting again.
 */
export function moveChange(
  before: AddressMove | undefined,
  m: AddressMove | undefined,
): { readonly level: 'error' | 'info'; readonly message: string } | undefined {
  if (m && (before?.now !== m.now || before.running !== m.running))
    return {
      level: 'error',
      message: `cluster: this host's underlay address is now ${m.now}, the plugin runs with ${m.running}: other hosts drop its VXLAN traffic; ${restartHint(m)}`,
    };
  if (!m && before) return { level: 'info', message: "cluster: this host's underlay address is the one the plugin runs with again" };
  return undefined;
}

/** The doctor's line for it (never repaired by the doctor: a restart moves). */
export function moveDifferences(m: AddressMove | undefined): Difference[] {
  if (!m) return [];
  return [
    {
      kind: 'drift',
      object: "this host's underlay address",
      detail: `the plugin runs with ${m.running}, its address is now ${m.now} (${m.setting}); not repaired: ${restartHint(m)}`,
      fix: [],
    },
  ];
}

/** For `mynet status`. */
export const moveStatus = (m: AddressMove | undefined): (AddressMove & { readonly restart: string }) | undefined =>
  m && { ...m, restart: restartHint(m) };
