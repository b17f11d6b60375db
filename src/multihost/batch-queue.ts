/**
 * A cluster network's record changes on their way to the kernel (plane.ts), coalesced: at most
 * one batch is applied at a time, and every change that arrives meanwhile waits in ONE next
 * batch, where a later change of an endpoint replaces its earlier one. A watch storm (issue 22,
 * finding 13: ~500 events/s) used to queue one kernel batch per event, so a real change waited
 * behind seconds of stale ones (3.9 s measured); now it waits behind at most the batch being
 * applied. The waiting batch holds at most one change per endpoint id: its memory is bounded by
 * the records etcd holds, not by the rate of events.
 *
 * Why keeping only an endpoint's last change is right: the plane applies a batch by the records
 * it holds at the end (each MAC's final holder decides), and a change replaced before it was
 * applied never reached the kernel, so there is nothing of it to undo.
 */
export interface Batch<C> {
  /** In the order of each endpoint's last change. */
  readonly changes: readonly C[];
  /** Compared with the kernel as a whole (a first list, a re-list, or a resync asked). */
  readonly whole: boolean;
  /** The changes that came from etcd's watch (their lag is measured), not a judgement again. */
  readonly watched: readonly C[];
  /** How many changes were folded into later ones of the same endpoint (for the tests and the log). */
  readonly folded: number;
}

interface Waiting<C> {
  readonly byKey: Map<string, { change: C; watched: boolean }>;
  whole: boolean;
  folded: number;
}

export class CoalescingQueue<C> {
  private tail: Promise<void> = Promise.resolve();
  private waiting: Waiting<C> | undefined;

  constructor(
    private readonly keyOf: (change: C) => string,
    private readonly run: (batch: Batch<C>) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  push(changes: readonly C[], whole: boolean, watched: boolean): void {
    let w = this.waiting;
    if (!w) {
      const mine: Waiting<C> = { byKey: new Map(), whole: false, folded: 0 };
      this.waiting = w = mine;
      this.tail = this.tail
        .then(() => {
          // From here on, what arrives waits for the next batch.
          if (this.waiting === mine) this.waiting = undefined;
          return this.run(batchOf(mine));
        })
        .catch(this.onError);
    }
    for (const change of changes) {
      const key = this.keyOf(change);
      if (w.byKey.delete(key)) w.folded += 1; // moved to the end: the order of last changes
      w.byKey.set(key, { change, watched });
    }
    w.whole ||= whole;
  }

  /** Resolves when everything pushed so far has been applied (or failed: onError). */
  idle(): Promise<void> {
    return this.tail;
  }
}

function batchOf<C>(w: Waiting<C>): Batch<C> {
  const items = [...w.byKey.values()];
  return {
    changes: items.map((i) => i.change),
    whole: w.whole,
    watched: items.filter((i) => i.watched).map((i) => i.change),
    folded: w.folded,
  };
}
