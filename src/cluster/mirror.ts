/**
 * A local copy of one etcd prefix, kept by revision. Events older than what the copy holds are
 * ignored (a watch replaying after a re-list), and a re-list is turned into the puts and deletes
 * that take the copy to it, so a consumer sees one stream of changes whatever happened to the
 * connection: nothing lost, nothing twice. Pure: no I/O, no clock.
 */
import type { KvEvent, KvItem, KvList } from './kv.js';

export type MirrorChange =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly previous?: string }
  | { readonly type: 'delete'; readonly key: string; readonly previous: string };

export class Mirror {
  private readonly items = new Map<string, KvItem>();
  /** The revision the copy is complete at (0: never listed). */
  revision = 0;

  get size(): number {
    return this.items.size;
  }

  entries(): IterableIterator<KvItem> {
    return this.items.values();
  }

  get(key: string): KvItem | undefined {
    return this.items.get(key);
  }

  /** Replaces the copy by a fresh list; answers the changes from the old copy to it. */
  reset(list: KvList): MirrorChange[] {
    const changes: MirrorChange[] = [];
    const next = new Map(list.items.map((i) => [i.key, i]));
    for (const [key, old] of this.items) if (!next.has(key)) changes.push({ type: 'delete', key, previous: old.value });
    for (const [key, item] of next) {
      const old = this.items.get(key);
      if (!old) changes.push({ type: 'put', key, value: item.value });
      else if (old.value !== item.value || old.modRevision !== item.modRevision)
        changes.push({ type: 'put', key, value: item.value, previous: old.value });
    }
    this.items.clear();
    for (const [k, v] of next) this.items.set(k, v);
    // The list's revision, even when lower than before: an etcd that lost its data starts again
    // at revision 1, and keeping the old one would drop every later event as stale.
    this.revision = list.revision;
    return changes;
  }

  /** Applies watch events; those at or below the copy's revision are already in it. */
  apply(events: readonly KvEvent[]): MirrorChange[] {
    const changes: MirrorChange[] = [];
    for (const e of events) {
      if (e.modRevision <= this.revision) continue;
      const old = this.items.get(e.key);
      if (e.type === 'put') {
        this.items.set(e.key, { key: e.key, value: e.value, modRevision: e.modRevision });
        changes.push(old ? { type: 'put', key: e.key, value: e.value, previous: old.value } : { type: 'put', key: e.key, value: e.value });
      } else if (old) {
        this.items.delete(e.key);
        changes.push({ type: 'delete', key: e.key, previous: old.value });
      }
    }
    // Events of one revision come in one batch (one etcd transaction), so the copy is complete
    // at the last one's revision.
    const last = events.at(-1);
    if (last && last.modRevision > this.revision) this.revision = last.modRevision;
    return changes;
  }
}
