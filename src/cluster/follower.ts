/**
 * Follows one etcd prefix: list at revision R, watch from R + 1, and after anything that breaks
 * the watch (etcd restarted, the connection lost, the revision compacted) list again and
 * converge, retrying with a bounded backoff until etcd answers. The consumer gets the changes
 * from a Mirror, so a re-list after a gap delivers exactly what changed during the gap (the
 * deletes included), never a duplicate or an old event (flannel #610: a watch that silently
 * resumed lost endpoints).
 */
import type { Kv, KvWatch } from './kv.js';
import { Mirror, type MirrorChange } from './mirror.js';

export type FollowerState = 'starting' | 'synced' | 'resyncing' | 'stopped';

export interface FollowerOptions {
  readonly kv: Kv;
  readonly prefix: string;
  /** Changes to apply, in order; `resync`: they come from a re-list rather than the watch. */
  readonly onChanges: (changes: readonly MirrorChange[], how: { readonly resync: boolean; readonly revision: number }) => void;
  /** State transitions, with the error that caused a re-sync (for logs and metrics). */
  readonly onState?: (state: FollowerState, err?: Error) => void;
  readonly backoffMs?: { readonly first: number; readonly max: number };
}

export class PrefixFollower {
  readonly mirror = new Mirror();
  private state: FollowerState = 'starting';
  private generation = 0;
  private watch: KvWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  private readonly first: number;
  private readonly max: number;
  /** Completed syncs (the first list included): re-syncs = syncs - 1. */
  syncs = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly o: FollowerOptions) {
    this.first = o.backoffMs?.first ?? 200;
    this.max = o.backoffMs?.max ?? 2000;
    this.delay = this.first;
  }

  get current(): FollowerState {
    return this.state;
  }

  /** Starts following; never rejects (etcd may be down at start): see `synced()`. */
  start(): void {
    this.schedule(0);
  }

  /** Resolves at the next time the copy is complete and the watch is running. */
  synced(): Promise<void> {
    if (this.state === 'synced') return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.generation++;
    this.setState('stopped');
    clearTimeout(this.timer);
    const w = this.watch;
    this.watch = undefined;
    await w?.cancel();
  }

  private setState(s: FollowerState, err?: Error): void {
    if (this.state === 'stopped') return;
    this.state = s;
    this.o.onState?.(s, err);
    if (s === 'synced') for (const w of this.waiters.splice(0)) w();
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(), ms);
  }

  private broken(gen: number, err: Error): void {
    if (gen !== this.generation || this.state === 'stopped') return;
    this.generation++; // events of the broken watch are stale from now on
    this.setState('resyncing', err);
    const w = this.watch;
    this.watch = undefined;
    // Stop the client's own reconnect-and-replay: the re-list below replaces it.
    w?.cancel().catch((e: unknown) => this.o.onState?.('resyncing', e as Error));
    this.schedule(this.delay);
    this.delay = Math.min(this.max, this.delay * 2);
  }

  private async sync(): Promise<void> {
    if (this.state === 'stopped') return;
    const gen = ++this.generation;
    try {
      const list = await this.o.kv.list(this.o.prefix);
      if (gen !== this.generation) return;
      const changes = this.mirror.reset(list);
      if (changes.length > 0 || this.syncs === 0) this.o.onChanges(changes, { resync: this.syncs > 0, revision: list.revision });
      const watch = await this.o.kv.watch(this.o.prefix, list.revision + 1, {
        onEvents: (events) => {
          if (gen !== this.generation) return;
          const c = this.mirror.apply(events);
          if (c.length > 0) this.o.onChanges(c, { resync: false, revision: this.mirror.revision });
        },
        onBroken: (err) => this.broken(gen, err),
      });
      if (gen !== this.generation) {
        // Stopped or broken while the watch was being made.
        await watch.cancel();
        return;
      }
      this.watch = watch;
      this.syncs++;
      this.delay = this.first;
      this.setState('synced');
    } catch (err) {
      this.broken(gen, err as Error);
    }
  }
}
