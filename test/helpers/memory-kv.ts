/**
 * An in-memory Kv with etcd's revision semantics (one revision per write, watches from a
 * revision), for the unit tier. `breakWatches()` ends every watch as a lost connection does,
 * `down` makes every call fail like an unreachable etcd, and `compactedBefore` refuses watches
 * from older revisions, so the follower's re-list-and-converge logic can be driven exactly.
 */
import { PluginError } from '../../src/errors.js';
import type {
  CreateResult,
  Kv,
  KvAt,
  KvEvent,
  KvGuard,
  KvItem,
  KvLease,
  KvList,
  KvWatch,
  KvWatchHandlers,
  KvWrite,
} from '../../src/cluster/kv.js';

interface Watch {
  readonly prefix: string;
  readonly h: KvWatchHandlers;
  live: boolean;
}

export class MemoryKv implements Kv {
  readonly data = new Map<string, KvItem & { lease?: string }>();
  revision = 1;
  down = false;
  /** While set, writes (createAll, put) wait for it: an etcd that answers late (lossy, overloaded). */
  stall: Promise<void> | undefined;
  /** While set, a watch's cancel waits for it: an etcd that never confirms (stopped, lossy). */
  cancelStall: Promise<void> | undefined;
  watches: Watch[] = [];
  private leases = 0;
  /** Every call, by name (to count requests). */
  readonly calls: string[] = [];

  private check(what: string): void {
    this.calls.push(what);
    if (this.down) throw new PluginError('CLUSTER_UNAVAILABLE', `cluster: etcd (memory) is down (${what})`);
  }

  private write(events: KvEvent[]): void {
    for (const w of this.watches) {
      if (!w.live) continue;
      const mine = events.filter((e) => e.key.startsWith(w.prefix));
      if (mine.length > 0) w.h.onEvents(mine);
    }
  }

  private putNow(key: string, value: string, lease?: string): KvEvent {
    const modRevision = this.revision;
    this.data.set(key, { key, value, modRevision, ...(lease && { lease }) });
    return { type: 'put', key, value, modRevision };
  }

  /** A write from "another host" or an operator, bypassing `down`. */
  external(key: string, value: string | undefined): void {
    this.revision++;
    if (value === undefined) {
      if (this.data.delete(key)) this.write([{ type: 'delete', key, modRevision: this.revision }]);
    } else this.write([this.putNow(key, value)]);
  }

  get(key: string): Promise<KvItem | undefined> {
    this.check(`get ${key}`);
    return Promise.resolve(this.data.get(key));
  }

  list(prefix: string): Promise<KvList> {
    this.check(`list ${prefix}`);
    return Promise.resolve({
      revision: this.revision,
      items: [...this.data.values()].filter((i) => i.key.startsWith(prefix)).sort((a, b) => a.key.localeCompare(b.key)),
    });
  }

  async createAll(entries: readonly { key: string; value: string }[]): Promise<CreateResult> {
    this.check(`create ${entries[0]?.key}`);
    await this.stall;
    if (entries.some((e) => this.data.has(e.key))) return { created: false, existing: entries.map((e) => this.data.get(e.key)) };
    this.revision++;
    this.write(entries.map((e) => this.putNow(e.key, e.value)));
    return { created: true, revision: this.revision };
  }

  async put(key: string, value: string): Promise<number> {
    this.check(`put ${key}`);
    await this.stall;
    this.revision++;
    this.write([this.putNow(key, value)]);
    return this.revision;
  }

  putIfAt(key: string, value: string, modRevision: number, lease?: string): Promise<boolean> {
    this.check(`put ${key}`);
    if ((this.data.get(key)?.modRevision ?? 0) !== modRevision) return Promise.resolve(false);
    this.revision++;
    this.write([this.putNow(key, value, lease)]);
    return Promise.resolve(true);
  }

  async putIfValues(key: string, value: string, guards: readonly KvGuard[]): Promise<boolean> {
    this.check(`put ${key}`);
    await this.stall;
    // Checked after the stall, as etcd checks a transaction's compares when it runs it.
    if (guards.some((g) => this.data.get(g.key)?.value !== g.value)) return false;
    this.revision++;
    this.write([this.putNow(key, value)]);
    return true;
  }

  deleteIfAt(key: string, modRevision: number): Promise<boolean> {
    this.check(`delete ${key}`);
    if (this.data.get(key)?.modRevision !== modRevision) return Promise.resolve(false);
    this.revision++;
    this.data.delete(key);
    this.write([{ type: 'delete', key, modRevision: this.revision }]);
    return Promise.resolve(true);
  }

  deleteIfValue(key: string, value: string): Promise<boolean> {
    this.check(`delete ${key}`);
    if (this.data.get(key)?.value !== value) return Promise.resolve(false);
    this.revision++;
    this.data.delete(key);
    this.write([{ type: 'delete', key, modRevision: this.revision }]);
    return Promise.resolve(true);
  }

  async writeIfAt(conditions: readonly KvAt[], writes: readonly KvWrite[]): Promise<boolean> {
    this.check(`write ${conditions[0]?.key}`);
    await this.stall;
    if (conditions.some((c) => (this.data.get(c.key)?.modRevision ?? 0) !== c.modRevision)) return false;
    this.revision++;
    const events: KvEvent[] = [];
    for (const w of writes) {
      if (w.value !== undefined) events.push(this.putNow(w.key, w.value));
      else if (this.data.delete(w.key)) events.push({ type: 'delete', key: w.key, modRevision: this.revision });
    }
    this.write(events);
    return true;
  }

  /** History is not kept: a watch from an old revision gets nothing before now (as after compaction, but silently: the follower must not rely on it). */
  watch(prefix: string, _fromRevision: number, h: KvWatchHandlers): Promise<KvWatch> {
    this.check(`watch ${prefix}`);
    const w: Watch = { prefix, h, live: true };
    this.watches.push(w);
    return Promise.resolve({
      cancel: async () => {
        w.live = false;
        this.calls.push(`cancel ${prefix}`);
        await this.cancelStall;
      },
    });
  }

  /** An etcd that lost its data: empty, revisions from 1 again, every watch cut. */
  wipe(): void {
    this.data.clear();
    this.revision = 1;
    this.breakWatches(new Error('etcd restarted empty (memory)'));
  }

  /** Ends every live watch as a cut connection does. */
  breakWatches(err = new Error('connection lost (memory)')): void {
    for (const w of this.watches.splice(0)) {
      if (!w.live) continue;
      w.live = false;
      w.h.onBroken(err);
    }
  }

  get liveWatches(): number {
    return this.watches.filter((w) => w.live).length;
  }

  lease(_ttlS: number, onLost: (err: Error) => void): Promise<KvLease> {
    this.check('grant a lease');
    const id = String(++this.leases);
    const expire = (): void => {
      for (const [k, v] of this.data) if (v.lease === id) this.external(k, undefined);
    };
    this.lost.set(id, () => {
      expire();
      onLost(new Error('lease lost (memory)'));
    });
    return Promise.resolve({
      id,
      put: async (key, value) => {
        this.check(`put ${key} on a lease`);
        this.revision++;
        this.write([this.putNow(key, value, id)]);
        return Promise.resolve();
      },
      putIfAt: (key, value, rev) => this.putIfAt(key, value, rev, id),
      revoke: () => {
        this.lost.delete(id);
        expire();
        return Promise.resolve();
      },
      abandon: () => {
        this.lost.delete(id);
        expire();
      },
    });
  }

  /** Leases by id: calling one expires its keys and tells its holder (a lease lost while etcd was away). */
  readonly lost = new Map<string, () => void>();

  close(): Promise<void> {
    return Promise.resolve();
  }
}
