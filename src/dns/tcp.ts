/**
 * One DNS-over-TCP connection (RFC 7766): two-byte length-framed queries in, answers out, with
 * everything one client can make the plugin hold bounded. DNS runs inside the plugin, so a client
 * that could grow our memory could have the network driver killed for it: a client that
 * pipelines queries and never reads its answers grew the plugin from 61 MB to 820 MB in 20 s
 * before these bounds.
 *
 * - Answers queued for a client are bounded by the socket's high-water mark (`maxQueuedBytes`,
 *   plus one answer): past it we stop reading (pause), so its queries wait in the kernel's
 *   buffers and then in the client's, not in ours. A client that leaves them unread for
 *   `stallMs` is closed.
 * - Input held is at most one incomplete message (2 + 65535 bytes) plus one read.
 * - Progress is counted in whole queries, not bytes: a client trickling one byte every few
 *   seconds is closed after `idleMs` without a complete query, and any connection after `lifeMs`
 *   or `maxQueries` queries (the answers up to there are still sent).
 */
import type { Socket } from 'node:net';

export interface TcpLimits {
  /** Connections open at once; more are closed when accepted. */
  readonly maxConnections: number;
  /** Bytes of answers queued for one client before we stop reading its queries. */
  readonly maxQueuedBytes: number;
  /** How long a client may leave its answers unread (reading paused) before it is closed. */
  readonly stallMs: number;
  /** How long a connection may go without one whole query. */
  readonly idleMs: number;
  /** A connection's whole life. */
  readonly lifeMs: number;
  /** Queries on one connection: then its answers are sent and it is closed. */
  readonly maxQueries: number;
}

/**
 * Worst case held for all clients together: 256 × (64 KiB + one answer queued + 128 KiB input)
 * ≈ 64 MiB, for at most `stallMs`; a client that reads holds next to nothing.
 */
export const TCP_LIMITS: TcpLimits = {
  maxConnections: 256,
  maxQueuedBytes: 64 * 1024,
  stallMs: 5000,
  idleMs: 10_000,
  lifeMs: 30_000,
  maxQueries: 1000,
};

export type CloseReason = 'client' | 'dropped' | 'stalled' | 'idle' | 'life' | 'queries' | 'full';

/** What the server holds for a connection, for tests and logs. */
export type TcpEvent =
  { kind: 'queued'; bytes: number } | { kind: 'paused'; bytes: number } | { kind: 'closed'; why: CloseReason; queries: number };

export function serveTcpConnection(
  sock: Socket,
  limits: TcpLimits,
  answer: (packet: Buffer) => Buffer | undefined,
  observe: (e: TcpEvent) => void,
): void {
  let buf: Buffer = Buffer.alloc(0);
  let queries = 0;
  let why: CloseReason = 'client';
  let ending = false;
  let dropped = 0;
  let stall: NodeJS.Timeout | undefined;
  let linger: NodeJS.Timeout | undefined;
  const close = (reason: CloseReason): void => {
    if (why === 'client') why = reason;
    sock.destroy();
  };
  const idle = setTimeout(() => close('idle'), limits.idleMs);
  const life = setTimeout(() => close('life'), limits.lifeMs);

  // Answers every whole query in `buf` unless the client stops reading; then waits for 'drain'.
  // Corked, so that the answers to one read go to the kernel in one writev.
  const pump = (): void => {
    sock.cork();
    try {
      answerAll();
    } finally {
      sock.uncork();
    }
  };
  const answerAll = (): void => {
    while (!ending && buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      const msg = buf.subarray(2, 2 + len);
      buf = buf.subarray(2 + len);
      queries++;
      idle.refresh();
      const out = answer(msg);
      // A response or a packet without a header: no answer, and a peer that sends such is no
      // resolver we serve.
      if (!out) return close('dropped');
      sock.write(Buffer.from([out.length >> 8, out.length & 0xff]));
      const flowing = sock.write(out);
      observe({ kind: 'queued', bytes: sock.writableLength });
      if (queries >= limits.maxQueries) {
        // Send what is answered, then FIN. What the client sends after is read and dropped, so
        // that closing does not reset the connection over unread input (a reset can lose the
        // answers), but only up to `maxQueuedBytes`, and only for `stallMs`: then it is closed.
        why = 'queries';
        ending = true;
        buf = Buffer.alloc(0);
        sock.end();
        linger = setTimeout(() => sock.destroy(), limits.stallMs);
        sock.resume();
        return;
      }
      if (!flowing) {
        sock.pause();
        observe({ kind: 'paused', bytes: sock.writableLength });
        stall = setTimeout(() => close('stalled'), limits.stallMs);
        sock.once('drain', () => {
          clearTimeout(stall);
          pump();
        });
        return;
      }
    }
    sock.resume();
  };

  sock.on('data', (chunk: Buffer) => {
    if (ending) {
      dropped += chunk.length;
      if (dropped > limits.maxQueuedBytes) sock.destroy();
      return;
    }
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    pump();
  });
  sock.on('close', () => {
    clearTimeout(idle);
    clearTimeout(life);
    clearTimeout(stall);
    clearTimeout(linger);
    observe({ kind: 'closed', why, queries });
  });
}
