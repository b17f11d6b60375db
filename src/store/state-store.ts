import type { Change, State } from '../driver/state.js';

/**
 * Persisted state. `commit` makes a change set durable before the orchestrator applies it and
 * answers dockerd; `load` rebuilds the State at start.
 */
export interface StateStore {
  load(): Promise<State>;
  commit(changes: readonly Change[], state: State): Promise<void>;
  /** Called after committed changes were applied: folds the journal into a snapshot when it has grown. */
  maybeCompact(state: State): Promise<void>;
  /** Writes a full snapshot (at shutdown, and when the journal grows). */
  compact(state: State): Promise<void>;
  close(): Promise<void>;
}
