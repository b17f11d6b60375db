/**
 * DNS wire format, only what an authoritative server for one zone needs: parse a query (one
 * question, optional EDNS OPT), build an answer with A/AAAA/PTR records. Parsing never throws:
 * malformed packets come back as `{ ok: false }` so the server can drop them.
 */
export const TYPE = { A: 1, PTR: 12, AAAA: 28, OPT: 41 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface Query {
  readonly id: number;
  readonly rd: boolean;
  /** The name as asked (original case), without the trailing dot. */
  readonly name: string;
  readonly type: number;
  readonly cls: number;
  /** The raw question section, echoed in the answer. */
  readonly question: Buffer;
  /** Largest UDP answer the client accepts (512 without EDNS). */
  readonly udpSize: number;
  readonly edns: boolean;
}

/**
 * A packet that is no query we answer. `reply` says what to send back: nothing for a packet whose
 * header cannot be read or that is itself a response (answering responses lets two servers
 * ping-pong for ever, RFC 1035 4.1.1), NOTIMP for an opcode other than QUERY (RFC 1035
 * 4.1.1), FORMERR for the rest.
 */
export type ParseFailure =
  { ok: false; why: string; reply: 'none' } | { ok: false; id: number; opcode: number; why: string; reply: 'formerr' | 'notimp' };
export type ParseResult = { ok: true; query: Query } | ParseFailure;

export interface RR {
  readonly name: string;
  readonly type: number;
  readonly ttl: number;
  /** A/AAAA: the address bytes; PTR: the target name. */
  readonly data: Buffer | string;
}

function readName(buf: Buffer, start: number): { name: string; end: number } | undefined {
  const labels: string[] = [];
  let pos = start;
  let end = -1;
  let jumps = 0;
  let total = 0;
  for (;;) {
    if (pos >= buf.length) return undefined;
    const len = buf[pos] as number;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length || ++jumps > 16) return undefined; // truncated, or a pointer loop
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | (buf[pos + 1] as number);
      continue;
    }
    if (len & 0xc0) return undefined; // reserved label types
    if (pos + 1 + len > buf.length) return undefined;
    total += len + 1;
    if (total > 255) return undefined;
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return { name: labels.join('.'), end };
}

export function parseQuery(buf: Buffer): ParseResult {
  if (buf.length < 12) return { ok: false, why: 'shorter than a DNS header', reply: 'none' };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000) return { ok: false, why: 'a response, not a query', reply: 'none' };
  const opcode = (flags >> 11) & 0xf;
  if (opcode) return { ok: false, id, opcode, why: `opcode ${opcode}, not a standard query`, reply: 'notimp' };
  if (buf.readUInt16BE(4) !== 1) return { ok: false, id, opcode, why: 'not exactly one question', reply: 'formerr' };
  const q = readName(buf, 12);
  if (!q || q.end + 4 > buf.length) return { ok: false, id, opcode, why: 'malformed question', reply: 'formerr' };
  const type = buf.readUInt16BE(q.end);
  const cls = buf.readUInt16BE(q.end + 2);
  const qEnd = q.end + 4;
  let udpSize = 512;
  let edns = false;
  // An OPT record in the additional section raises the UDP size (RFC 6891).
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (an === 0 && ns === 0 && ar > 0) {
    let pos = qEnd;
    for (let i = 0; i < ar && pos < buf.length; i++) {
      const n = readName(buf, pos);
      if (!n || n.end + 10 > buf.length) break;
      const rtype = buf.readUInt16BE(n.end);
      const rdlen = buf.readUInt16BE(n.end + 8);
      if (rtype === TYPE.OPT) {
        edns = true;
        udpSize = Math.min(4096, Math.max(512, buf.readUInt16BE(n.end + 2)));
      }
      pos = n.end + 10 + rdlen;
    }
  }
  return { ok: true, query: { id, rd: !!(flags & 0x0100), name: q.name, type, cls, question: buf.subarray(12, qEnd), udpSize, edns } };
}

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter((l) => l.length > 0);
  return Buffer.concat([
    ...parts.map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l, 'latin1')]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
  ]);
}

function encodeRR(rr: RR): Buffer {
  const data = typeof rr.data === 'string' ? encodeName(rr.data) : rr.data;
  const head = Buffer.alloc(10);
  head.writeUInt16BE(rr.type, 0);
  head.writeUInt16BE(1, 2); // IN
  head.writeUInt32BE(rr.ttl, 4);
  head.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(rr.name), head, data]);
}

export interface AnswerSpec {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answers: readonly RR[];
}

/**
 * The answer to `q`. Over UDP (`maxSize` = the client's size) an answer that does not fit is sent
 * with TC set and no records, so the client retries over TCP.
 */
export function buildResponse(q: Pick<Query, 'id' | 'rd' | 'question' | 'edns'>, a: AnswerSpec, maxSize = 65535): Buffer {
  const opt = q.edns ? Buffer.from([0, 0, TYPE.OPT, 0x10, 0, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(0); // OPT, size 4096
  const make = (answers: readonly RR[], tc: boolean): Buffer => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(q.id, 0);
    h.writeUInt16BE(0x8000 | (a.authoritative ? 0x0400 : 0) | (tc ? 0x0200 : 0) | (q.rd ? 0x0100 : 0) | (a.rcode & 0xf), 2);
    h.writeUInt16BE(q.question.length ? 1 : 0, 4);
    h.writeUInt16BE(answers.length, 6);
    h.writeUInt16BE(0, 8);
    h.writeUInt16BE(q.edns ? 1 : 0, 10);
    return Buffer.concat([h, q.question, ...answers.map(encodeRR), opt]);
  };
  const full = make(a.answers, false);
  return full.length <= maxSize ? full : make([], true);
}

/**
 * An error answer (FORMERR, NOTIMP) to a query whose header could be read: no question, the
 * query's opcode echoed as RFC 1035 4.1.1 asks.
 */
export function errorReply(id: number, rcode: number, opcode = 0): Buffer {
  const out = buildResponse({ id, rd: false, question: Buffer.alloc(0), edns: false }, { rcode, authoritative: false, answers: [] });
  out.writeUInt16BE(out.readUInt16BE(2) | ((opcode & 0xf) << 11), 2);
  return out;
}
