/**
 * This host's presence: /mynet/v1/nodes/<name> on a lease of PRESENCE_TTL_S seconds, kept alive
 * by the client. Only presence is on a lease: when it expires the host shows as down, and its
 * addresses and endpoints stay (issue 17). When the lease is lost (etcd was away longer than
 * the TTL) a new one is granted and the key put again, with a bounded backoff, until stop().
 * A live node of the same name with another node id (or, written before ids, at another address)
 * is refused at start: two hosts sharing a name would take each other's addresses (finding 5).
 */
import { PluginError } from '../errors.js';
import type { NodeIdentity } from './cluster-store.js';
import { keys } from './keys.js';
import type { Kv, KvLease } from './kv.js';
import { encodeRecord, readRecord, type NodeRecord } from './records.js';
import { Backoff } from './backoff.js';

export const PRESENCE_TTL_S = 10;

export interface PresenceOptions {
  readonly ttlS?: number;
  readonly onLost?: (err: Error) => void;
  readonly onRestored?: () => void;
  /** The first wait after a loss; doubled on each failed try up to 30 s (backoff.ts). */
  readonly retryMs?: number;
}

/**
 * Why a presence of this name already in etcd is another host's, or undefined when it is this
 * host's own from before a restart (its old lease has not run out yet: it is taken over). With
 * ids, the id decides; a presence written before ids is this host's only at its address.
 */
export function presenceOfAnother(there: NodeRecord, mine: NodeRecord): string | undefined {
  const same = there.id !== undefined && mine.id !== undefined ? there.id === mine.id : there.address === mine.address;
  if (same) return undefined;
  const who = there.id !== undefined ? `as node id ${there.id.slice(0, 8)}… at ${there.address}` : `at ${there.address}`;
  return `MYNET_NODE_NAME: node "${mine.name}" is already present in the cluster ${who} (this host is ${mine.id !== undefined ? `node id ${mine.id.slice(0, 8)}… at ` : ''}${mine.address}); give each host its own name. This host takes no address or record of that node's and makes no cluster change until then`;
}

export class NodePresence {
  private lease: KvLease | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Issue 22, finding 18: a lost lease was tried again every second, with a warning each. */
  private readonly backoff: Backoff;
  readonly record: NodeRecord;

  constructor(
    private readonly kv: Kv,
    node: NodeIdentity,
    private readonly o: PresenceOptions = {},
    now: () => Date = () => new Date(),
  ) {
    this.record = {
      v: 1,
      name: node.name,
      ...(node.id !== undefined && { id: node.id }),
      address: node.address,
      startedAt: now().toISOString(),
    };
    this.backoff = new Backoff({ first: o.retryMs ?? 1000, max: Math.max(30_000, o.retryMs ?? 1000) });
  }

  /** Grants the lease and puts the key; rejects when etcd is unreachable or the name is taken. */
  async start(): Promise<void> {
    const key = keys.node(this.record.name);
    const lease = await this.kv.lease(this.o.ttlS ?? PRESENCE_TTL_S, (err) => this.lost(lease, err));
    try {
      for (;;) {
        const it = await this.kv.get(key);
        if (it) {
          const c = readRecord('node', key, it.value);
          const other = c.ok && presenceOfAnother(c.record, this.record);
          if (other) throw new PluginError('CONFLICT', other);
        }
        if (await lease.putIfAt(key, encodeRecord('node', key, this.record), it?.modRevision ?? 0)) break;
      }
    } catch (err) {
      // The failure to start is what the caller needs; a revoke that fails too only means the
      // lease runs out by itself within its TTL.
      await lease.revoke().catch((e: unknown) => this.o.onLost?.(e as Error));
      throw err;
    }
    this.lease = lease;
  }

  private lost(lease: KvLease, err: Error): void {
    if (this.stopped || (this.lease !== undefined && this.lease !== lease)) return;
    this.lease = undefined;
    this.o.onLost?.(err);
    this.retry();
  }

  private retry(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.start().then(
        () => {
          this.backoff.reset();
          this.o.onRestored?.();
        },
        (err: unknown) => {
          this.o.onLost?.(err as Error);
          this.retry();
        },
      );
    }, this.backoff.next());
  }

  /** Revokes the lease: the host leaves at once (a clean shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const l = this.lease;
    this.lease = undefined;
    await l?.revoke();
  }

  /** Stops keep-alive without revoking, as a crash would: the key goes when the TTL runs out. */
  abandon(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.lease?.abandon();
    this.lease = undefined;
  }
}
