/**
 * The decision contract: what a pure decision (driver/) returns to the orchestrator (plugin.ts),
 * and what the orchestrator reads of the host for it. Types only, so that every layer can name
 * them without importing another layer's code.
 */
import type { Change, PortBinding } from './driver/state.js';
import type { HostPlan } from './plan/step.js';

/** State changes to save and apply, and the answer to give once they are saved. */
export interface Decision<R> {
  readonly changes: readonly Change[];
  readonly response: R;
}

/** A decision that also needs host steps (run, and rolled back on failure, before saving). */
export interface PlannedDecision<R> extends Decision<R> {
  readonly plan: HostPlan;
}

/** Whether a link name is free on the host, carries mynet's mark, or is someone else's. */
export type LinkOwner = 'absent' | 'ours' | 'foreign';

export type Proto = PortBinding['proto'];

/** What the host already uses, read by the orchestrator before deciding. */
export interface HostPorts {
  /** Host addresses listening on proto/port ('0.0.0.0' or '::' for any). */
  listening(proto: Proto, port: number): readonly string[];
  /**
   * Whether a socket that is not listening uses proto/port as its local port (a TCP connection
   * a client made from it): binding the port would fail, so a range or HostPort 0 skips it.
   */
  busy?(proto: Proto, port: number): boolean;
  /** The kernel's ephemeral range (net.ipv4.ip_local_port_range). */
  readonly ephemeral: readonly [number, number];
}
