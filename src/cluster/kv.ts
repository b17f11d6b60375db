/**
 * The few operations mynet needs from etcd, as an interface: etcd-kv.ts implements it over the
 * etcd3 client (with the 3 s bound and the typed errors), test/helpers/memory-kv.ts in memory
 * for the unit tier. Everything the cluster logic does goes through it, so that logic can be
 * tested against a fake that drops its watches on command.
 */
export interface KvItem {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
}

export interface KvList {
  /** The store's revision the list was read at: a watch from revision + 1 misses nothing. */
  readonly revision: number;
  readonly items: readonly KvItem[];
}

export type KvEvent =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly modRevision: number }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: number };

export interface KvWatchHandlers {
  readonly onEvents: (events: readonly KvEvent[]) => void;
  /** The watch ended without being cancelled (etcd gone, compaction): the view must be rebuilt. */
  readonly onBroken: (err: Error) => void;
}

export interface KvWatch {
  cancel(): Promise<void>;
}

/** Outcome of a create-if-absent: made, or the value already there. */
export type CreateResult =
  { readonly created: true; readonly revision: number } | { readonly created: false; readonly existing: readonly (KvItem | undefined)[] };

/** A key that must hold exactly `value` for a guarded write to happen. */
export interface KvGuard {
  readonly key: string;
  readonly value: string;
}

/** A condition of a transaction: the key is at `modRevision` (0: absent). */
export interface KvAt {
  readonly key: string;
  readonly modRevision: number;
}

/** A write of a transaction: a put, or a delete (`value` undefined). */
export interface KvWrite {
  readonly key: string;
  readonly value?: string;
}

export interface Kv {
  get(key: string): Promise<KvItem | undefined>;
  list(prefix: string): Promise<KvList>;
  /** Creates every key at once if none of them exists (one transaction); else answers what is there. */
  createAll(entries: readonly { key: string; value: string }[]): Promise<CreateResult>;
  put(key: string, value: string): Promise<number>;
  /** Puts only when the key is still at `modRevision` (0: absent). False: it changed meanwhile. */
  putIfAt(key: string, value: string, modRevision: number): Promise<boolean>;
  /**
   * Puts only while every guard's key holds exactly its value (one transaction: an endpoint
   * record only while its addresses' claims are this node's). False: a guard changed or is gone.
   */
  putIfValues(key: string, value: string, guards: readonly KvGuard[]): Promise<boolean>;
  /** Deletes only when the key is still at `modRevision`. False: it changed meanwhile (or is gone). */
  deleteIfAt(key: string, modRevision: number): Promise<boolean>;
  /** Deletes only when the key still holds exactly `value`. False: it changed meanwhile (or is gone). */
  deleteIfValue(key: string, value: string): Promise<boolean>;
  /**
   * Makes every write at once if every key is still at its revision (one transaction); false
   * when one changed meanwhile and nothing was written. What a decision read is what it writes on.
   */
  writeIfAt(conditions: readonly KvAt[], writes: readonly KvWrite[]): Promise<boolean>;
  watch(prefix: string, fromRevision: number, handlers: KvWatchHandlers): Promise<KvWatch>;
  /** A lease of `ttlS` seconds kept alive until revoked; `onLost` when keep-alive failed for good. */
  lease(ttlS: number, onLost: (err: Error) => void): Promise<KvLease>;
  close(): Promise<void>;
}

export interface KvLease {
  readonly id: string;
  /** Puts `key` on this lease (it disappears when the lease expires). */
  put(key: string, value: string): Promise<void>;
  /** Puts on this lease only if the key is absent or at `modRevision`. */
  putIfAt(key: string, value: string, modRevision: number): Promise<boolean>;
  /** Stops keeping the lease alive and revokes it (its keys go at once). */
  revoke(): Promise<void>;
  /** Stops keep-alive without revoking: the keys go when the TTL runs out (a crash, in tests). */
  abandon(): void;
}
