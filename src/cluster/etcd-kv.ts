/**
 * Kv over etcd v3 with the `etcd3` client (gRPC). What this file adds to the client:
 *  - every call is bounded: a gRPC deadline and a timer of CALL_TIMEOUT_MS (3 s), after which
 *    the caller gets a CLUSTER_UNAVAILABLE error naming the endpoints and the operation (the
 *    client's own dial timeout is 30 s, and its retries would add up past any request budget);
 *  - the client's per-host circuit breaker opens for 1 s instead of 5 s, so calls resume about
 *    a second after etcd is back (measured in docs: 5 s of refusals with the default);
 *  - watch reconnection is left to follower.ts (re-list and converge), not to the client's
 *    replay: a broken watch is reported once and cancelled.
 * Errors never carry TLS material: only the endpoints and the client's message.
 */
import { ConsecutiveBreaker, ConstantBackoff, circuitBreaker, handleWhen, retry, type IBackoff } from 'cockatiel';
import { Etcd3, GRPCResourceExhastedError, Range, isRecoverableError, type IKeyValue, type IOptions, type Watcher } from 'etcd3';
import { PluginError, messageOf } from '../errors.js';
import type { CreateResult, Kv, KvAt, KvEvent, KvGuard, KvItem, KvLease, KvList, KvWatch, KvWatchHandlers, KvWrite } from './kv.js';
import type { TlsMaterial } from './settings.js';

export const CALL_TIMEOUT_MS = 3000;

/**
 * Keys per page of a list (issue 22, finding 8): the client refuses an answer over 4 MiB, and an
 * unpaginated list of a prefix past that (~12 000 endpoint records, or three 1.4 MiB junk values)
 * failed every time, so its follower stayed `resyncing` for good. 256 of mynet's records (at most
 * 8 KiB each, records.ts) are under 2 MiB; a page that is still too big (values mynet never
 * writes) is read again one key at a time, each within etcd's own request limit (1.5 MiB).
 */
export const LIST_PAGE_KEYS = 256;

/**
 * gRPC keepalive (issue 22, finding 10): without it a half-open connection (a peer or middlebox
 * that stopped answering without a reset) kept the watches "up" and the host reported `synced`
 * for 81 s while missing changes. A ping every 10 s, unanswered for 5 s, ends the connection
 * and with it the watches, which the follower then re-lists. etcd refuses pings more often than
 * its `--grpc-keepalive-min-time` (5 s by default); pings are sent only while a call (a watch)
 * is open, which etcd's enforcement requires as well.
 */
export const KEEPALIVE = { timeMs: 10_000, timeoutMs: 5_000 } as const;

export class ClusterUnavailableError extends PluginError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLUSTER_UNAVAILABLE', message, options);
    this.name = 'ClusterUnavailableError';
  }
}

export interface EtcdKvOptions {
  readonly endpoints: readonly string[];
  readonly tls?: TlsMaterial;
  readonly timeoutMs?: number;
  /** Tests against an etcd started with a lower `--grpc-keepalive-min-time`; default KEEPALIVE. */
  readonly keepalive?: { readonly timeMs: number; readonly timeoutMs: number };
  /** Tests of the paging; default LIST_PAGE_KEYS. */
  readonly pageKeys?: number;
}

const item = (kv: IKeyValue): KvItem => ({ key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision) });

export class EtcdKv implements Kv {
  readonly client: Etcd3;
  private readonly timeoutMs: number;
  private readonly where: string;
  private readonly pageKeys: number;

  constructor(o: EtcdKvOptions) {
    this.timeoutMs = o.timeoutMs ?? CALL_TIMEOUT_MS;
    this.where = o.endpoints.join(',');
    this.pageKeys = o.pageKeys ?? LIST_PAGE_KEYS;
    const keepalive = o.keepalive ?? KEEPALIVE;
    const options: IOptions = {
      hosts: [...o.endpoints],
      grpcOptions: {
        'grpc.keepalive_time_ms': keepalive.timeMs,
        'grpc.keepalive_timeout_ms': keepalive.timeoutMs,
        'grpc.keepalive_permit_without_calls': 0,
      },
      dialTimeout: this.timeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.timeoutMs }),
      faultHandling: {
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        // Try each other endpoint once; the outer timer bounds the whole.
        global: retry(handleWhen(isRecoverableError), { maxAttempts: o.endpoints.length - 1, backoff: new ConstantBackoff(20) }),
        // etcd3's types say IBackoff, its code calls .next() on it: a factory, as its own default.
        watchBackoff: new ConstantBackoff(500) as unknown as IBackoff<unknown>,
      },
      ...(o.tls && {
        credentials: {
          // undefined (no CA file): Node's bundled CA list (Mozilla's), not the system's store:
          // grpc-js passes no `ca` to Node's TLS then (NODE_EXTRA_CA_CERTS adds to that list).
          rootCertificate: o.tls.ca as Buffer,
          ...(o.tls.key && { privateKey: o.tls.key }),
          ...(o.tls.cert && { certChain: o.tls.cert }),
        },
      }),
    };
    this.client = new Etcd3(options);
  }

  /** Runs one etcd call with the time bound and the error mapping. */
  private async bounded<T>(what: string, call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ClusterUnavailableError(`cluster: etcd at ${this.where} did not answer ${what} within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([call(), timeout]);
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new ClusterUnavailableError(`cluster: etcd at ${this.where} failed ${what}: ${messageOf(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  get(key: string): Promise<KvItem | undefined> {
    return this.bounded(`get ${key}`, async () => {
      const r = await this.client.get(key).exec();
      const kv = r.kvs[0];
      return kv && item(kv);
    });
  }

  /**
   * The prefix in pages (LIST_PAGE_KEYS), every page at the first page's revision: one snapshot,
   * as a single range would be (a revision compacted meanwhile fails the list; the follower lists
   * again). Each page is bounded on its own.
   */
  async list(prefix: string): Promise<KvList> {
    const whole = Range.prefix(prefix);
    const items: KvItem[] = [];
    let revision: number | undefined;
    let start: Buffer = whole.start;
    for (;;) {
      const page = await this.page(prefix, new Range(start, whole.end), revision);
      revision ??= page.revision;
      items.push(...page.items);
      const last = page.items.at(-1);
      if (!page.more || !last) return { revision, items };
      start = Buffer.concat([Buffer.from(last.key), Buffer.from([0])]); // the next key after the last one read
    }
  }

  /** One page; an answer over the client's cap is read again one key at a time. */
  private async page(
    prefix: string,
    range: Range,
    revision: number | undefined,
  ): Promise<{ revision: number; items: KvItem[]; more: boolean }> {
    const read = (limit: number): Promise<{ revision: number; items: KvItem[]; more: boolean }> =>
      this.bounded(`list ${prefix}`, async () => {
        const b = this.client.getAll().inRange(range).limit(limit);
        const r = await (revision === undefined ? b : b.revision(revision)).exec();
        return { revision: Number(r.header.revision), items: r.kvs.map(item), more: r.more };
      });
    try {
      return await read(this.pageKeys);
    } catch (err) {
      if (!(err instanceof ClusterUnavailableError && err.cause instanceof GRPCResourceExhastedError)) throw err;
      return read(1);
    }
  }

  createAll(entries: readonly { key: string; value: string }[]): Promise<CreateResult> {
    const first = entries[0];
    if (!first) throw new PluginError('INTERNAL', 'createAll needs at least one key');
    return this.bounded(`create ${first.key}`, async () => {
      let txn = this.client.if(first.key, 'Create', '==', 0);
      for (const e of entries.slice(1)) txn = txn.and(e.key, 'Create', '==', 0);
      const r = await txn
        .then(...entries.map((e) => this.client.put(e.key).value(e.value)))
        .else(...entries.map((e) => this.client.get(e.key)))
        .commit();
      if (r.succeeded) return { created: true, revision: Number(r.header.revision) };
      return { created: false, existing: r.responses.map((op) => op.response_range.kvs[0]).map((kv) => kv && item(kv)) };
    });
  }

  put(key: string, value: string): Promise<number> {
    return this.bounded(`put ${key}`, async () => Number((await this.client.put(key).value(value).exec()).header.revision));
  }

  putIfAt(key: string, value: string, modRevision: number): Promise<boolean> {
    return this.bounded(`put ${key}`, async () => {
      const col = modRevision === 0 ? 'Create' : 'Mod';
      return (await this.client.if(key, col, '==', modRevision).then(this.client.put(key).value(value)).commit()).succeeded;
    });
  }

  putIfValues(key: string, value: string, guards: readonly KvGuard[]): Promise<boolean> {
    const first = guards[0];
    if (!first) throw new PluginError('INTERNAL', 'putIfValues needs at least one guard');
    return this.bounded(`put ${key}`, async () => {
      // etcd fails a Value compare on a key that does not exist: a claim gone refuses the put too.
      let txn = this.client.if(first.key, 'Value', '==', first.value);
      for (const g of guards.slice(1)) txn = txn.and(g.key, 'Value', '==', g.value);
      return (await txn.then(this.client.put(key).value(value)).commit()).succeeded;
    });
  }

  deleteIfAt(key: string, modRevision: number): Promise<boolean> {
    return this.bounded(
      `delete ${key}`,
      async () => (await this.client.if(key, 'Mod', '==', modRevision).then(this.client.delete().key(key)).commit()).succeeded,
    );
  }

  deleteIfValue(key: string, value: string): Promise<boolean> {
    return this.bounded(
      `delete ${key}`,
      async () => (await this.client.if(key, 'Value', '==', value).then(this.client.delete().key(key)).commit()).succeeded,
    );
  }

  writeIfAt(conditions: readonly KvAt[], writes: readonly KvWrite[]): Promise<boolean> {
    const [first, ...rest] = conditions;
    if (!first) throw new PluginError('INTERNAL', 'writeIfAt needs at least one condition');
    const at = (c: KvAt) => [c.key, c.modRevision === 0 ? 'Create' : 'Mod', '==', c.modRevision] as const;
    return this.bounded(`write ${first.key}`, async () => {
      let txn = this.client.if(...at(first));
      for (const c of rest) txn = txn.and(...at(c));
      const ops = writes.map((w) => (w.value === undefined ? this.client.delete().key(w.key) : this.client.put(w.key).value(w.value)));
      return (await txn.then(...ops).commit()).succeeded;
    });
  }

  watch(prefix: string, fromRevision: number, h: KvWatchHandlers): Promise<KvWatch> {
    // A watch made after the time bound gave up on it is nobody's: cancelled as soon as it
    // exists (issue 22, finding 22: it went on delivering events to a follower that had moved on).
    let abandoned = false;
    const made = this.client.watch().prefix(prefix).startRevision(String(fromRevision)).create();
    made.then(
      (w) => {
        if (abandoned) void w.cancel().catch(() => undefined); // the channel is gone, and the watch with it
      },
      () => undefined, // the bounded call below reports the failure
    );
    return this.bounded(`watch ${prefix}`, async () => {
      const w: Watcher = await made;
      let over = false;
      const broken = (err: Error): void => {
        if (over) return;
        over = true;
        h.onBroken(err);
      };
      w.on('data', (res) => {
        const events: KvEvent[] = res.events.map((e) =>
          e.type === 'Delete'
            ? { type: 'delete', key: e.kv.key.toString(), modRevision: Number(e.kv.mod_revision) }
            : { type: 'put', key: e.kv.key.toString(), value: e.kv.value.toString(), modRevision: Number(e.kv.mod_revision) },
        );
        if (events.length > 0) h.onEvents(events);
      });
      w.on('disconnected', (err) =>
        broken(
          new ClusterUnavailableError(`cluster: the watch of ${prefix} on etcd at ${this.where} was cut: ${err.message}`, { cause: err }),
        ),
      );
      w.on('error', (err) =>
        broken(new ClusterUnavailableError(`cluster: etcd at ${this.where} ended the watch of ${prefix}: ${err.message}`, { cause: err })),
      );
      return {
        cancel: async () => {
          over = true;
          // Bounded as every call: a hung etcd never answers a cancel, and a DeleteNetwork
          // (which stops the network's follower first) waited for it for good (issue 22). Its
          // events are ignored from here on (`over`), so a cancel etcd did not confirm in time
          // only leaves a stream that goes with the channel; it is not the caller's failure.
          await this.bounded(`cancel the watch of ${prefix}`, () => w.cancel()).catch(() => undefined);
        },
      };
    }).catch((err: unknown) => {
      abandoned = true;
      throw err;
    });
  }

  async lease(ttlS: number, onLost: (err: Error) => void): Promise<KvLease> {
    const lease = this.client.lease(ttlS);
    lease.on('lost', (err) =>
      onLost(new ClusterUnavailableError(`cluster: the presence lease on etcd at ${this.where} was lost: ${err.message}`, { cause: err })),
    );
    const id = await this.bounded('grant a lease', () => lease.grant());
    return {
      id,
      put: async (key, value) => {
        await this.bounded(`put ${key} on a lease`, () => lease.put(key).value(value).exec());
      },
      putIfAt: (key, value, modRevision) =>
        this.bounded(`put ${key} on a lease`, async () => {
          const col = modRevision === 0 ? 'Create' : 'Mod';
          return (await this.client.if(key, col, '==', modRevision).then(this.client.put(key).value(value).lease(id)).commit()).succeeded;
        }),
      revoke: () => this.bounded('revoke the presence lease', () => lease.revoke()),
      abandon: () => lease.release(),
    };
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}
