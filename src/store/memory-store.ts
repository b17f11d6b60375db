import { type Change, State } from '../driver/state.js';
import type { StateStore } from './state-store.js';

/** For tests: keeps committed change sets in memory. */
export class MemoryStore implements StateStore {
  readonly committed: Change[][] = [];
  failNext = false;

  load(): Promise<State> {
    const s = new State();
    for (const c of this.committed) s.apply(c);
    return Promise.resolve(s);
  }

  commit(changes: readonly Change[]): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error('injected store failure'));
    }
    this.committed.push([...changes]);
    return Promise.resolve();
  }

  maybeCompact(): Promise<void> {
    return Promise.resolve();
  }

  compact(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
