/**
 * Checks of single values that end up in host command text, shared by requests and by the
 * records read back from the state files (store/records.ts) and from etcd: what a request could
 * not get through must not come in through a state file or another host either.
 *
 * `ip -batch` reads a line up to `#` as a comment (`alias x#y mtu 1400` ran as `alias x`),
 * splits words at blanks, takes `"` and `'` as quotes with no escapes, and joins a line ending in
 * `\` to the next; `nft -f` ends a command at `;` or a newline and a string at `"`, and reads
 * `{ }` as a set. None of these characters, nor any control character, may be in a value.
 */
import { invalid } from '../errors.js';
import { type CidrParse, parseCidr } from '../ip/cidr.js';

// eslint-disable-next-line no-control-regex
const UNSAFE = /["'#\\;{}\s\u0000-\u001f\u007f]/;

/** Refuses a value carrying a character that changes the meaning of an `ip -batch` or `nft` line. */
export function checkHostText(field: string, v: unknown): string {
  if (typeof v !== 'string') throw invalid(field, `${JSON.stringify(v)?.slice(0, 40) ?? String(v)} is not a string`);
  const bad = UNSAFE.exec(v);
  if (bad) {
    throw invalid(
      field,
      `${JSON.stringify(v.slice(0, 40))} contains ${JSON.stringify(bad[0])}, which would change the meaning of an ip or nft command (refused: " ' # \\ ; { }, blanks and control characters)`,
    );
  }
  return v;
}

/** An address with prefix length of the family ("10.1.0.2/24"). */
export function checkCidr(field: string, v: string, family: 4 | 6): Extract<CidrParse, { ok: true }> {
  const r = parseCidr(v);
  if (!r.ok) throw invalid(field, r.why);
  if (r.addr.family !== family) throw invalid(field, `${v} is not IPv${family}`);
  return r;
}
