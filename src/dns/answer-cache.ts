/**
 * Answers already built for the current NameTable, by the query's bytes after its ID (issue 26:
 * DNS queries per second at least dnsmasq's). A container asks the same few names again and
 * again; building each answer anew (parse, lookup, sort, encode) was most of a query's CPU.
 *
 * What makes a cached answer right: the table it came from is still the current one (the table
 * is replaced, never changed, when names change: sync.ts), and the answer did not depend on the
 * rotation turn (only answers with at most one record of each kind are kept; a name with
 * several addresses is answered afresh, rotated). Everything else the answer depends on (flags,
 * name as spelled, type, class, EDNS size) is in the bytes of the key. Bounded: at most `max`
 * entries of at most MAX_QUERY bytes, all dropped when full (a flood of distinct names only
 * makes misses).
 */
import type { NameTable } from './records.js';

/** Longer queries (odd EDNS options, long names) are answered afresh, never kept. */
export const MAX_QUERY = 128;

export interface Cached<K> {
  readonly reply: Buffer;
  readonly kind: K;
}

export class AnswerCache<K> {
  private table: NameTable | undefined;
  private readonly entries = new Map<string, Cached<K>>();

  constructor(private readonly max = 4096) {}

  /** The answer for `packet` from `table`, its ID set to the query's; undefined: build it. */
  get(table: NameTable, packet: Buffer): Cached<K> | undefined {
    if (table !== this.table || packet.length > MAX_QUERY || packet.length < 12) return undefined;
    const hit = this.entries.get(packet.toString('latin1', 2));
    if (!hit) return undefined;
    const reply = Buffer.from(hit.reply); // a copy: the kept one may still be on its way out
    reply[0] = packet[0] as number;
    reply[1] = packet[1] as number;
    return { reply, kind: hit.kind };
  }

  set(table: NameTable, packet: Buffer, reply: Buffer, kind: K): void {
    if (packet.length > MAX_QUERY || packet.length < 12) return;
    if (table !== this.table) {
      this.entries.clear();
      this.table = table;
    }
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(packet.toString('latin1', 2), { reply: Buffer.from(reply), kind });
  }

  get size(): number {
    return this.entries.size;
  }
}
