/**
 * Read-only questions about the host: who owns a link name, which links carry our mark, and which
 * prefixes are in use (so automatic pools avoid them). Prefixes come from /proc and the
 * interface list, without starting a process.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { LinkOwner } from '../decision.js';
import { parseCidr, type Cidr } from '../ip/cidr.js';
import { MYNET_GROUP, RETIRED_GROUP } from '../plan/link-names.js';
import type { ExecaExecutor } from './execa-executor.js';

export async function linkOwner(exec: ExecaExecutor, name: string, log: Logger): Promise<LinkOwner> {
  const g = await exec.linkGroup(name, log);
  return g === undefined ? 'absent' : g === MYNET_GROUP ? 'ours' : 'foreign';
}

/** A link carrying one of our marks, and the alias that names its network/endpoint (if set). */
export interface MarkedLink {
  readonly name: string;
  /** In the retired group: a veth on its way out (plan/link-names.ts RETIRED_GROUP). */
  readonly retired: boolean;
  readonly alias?: string;
}

/** Our links, retired ones included (a crash can leave some behind before their reap). */
export async function ourLinks(exec: ExecaExecutor, log: Logger): Promise<MarkedLink[]> {
  const out: MarkedLink[] = [];
  for (const group of [MYNET_GROUP, RETIRED_GROUP]) {
    const text = await exec.command(['ip', '-j', 'link', 'show', 'group', String(group)], log);
    for (const l of JSON.parse(text || '[]') as { ifname?: string; ifalias?: string }[]) {
      if (l.ifname) out.push({ name: l.ifname, retired: group === RETIRED_GROUP, ...(l.ifalias ? { alias: l.ifalias } : {}) });
    }
  }
  return out;
}

const hexV4 = (h: string): string => {
  // /proc/net/route prints addresses as little-endian hex.
  const n = parseInt(h, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
};
const maskLen = (h: string): number => parseInt(h, 16).toString(2).replace(/0/g, '').length;

/** Routes of the main tables (v4 and v6, default routes left out) and every interface's prefix. */
export function hostPrefixes(log: Logger): Cidr[] {
  const out: Cidr[] = [];
  const add = (text: string): void => {
    const r = parseCidr(text);
    if (r.ok && r.cidr.prefix > 0) out.push(r.cidr);
  };
  try {
    for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 8) add(`${hexV4(f[1] as string)}/${maskLen(f[7] as string)}`);
    }
  } catch (err) {
    log.warn({ err }, 'cannot read /proc/net/route; automatic pools check interface addresses only');
  }
  try {
    for (const line of readFileSync('/proc/net/ipv6_route', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[9] === 'lo') continue;
      const a = (f[0] as string).match(/.{4}/g)?.join(':');
      if (a) add(`${a}/${parseInt(f[1] as string, 16)}`);
    }
  } catch (err) {
    log.warn({ err }, 'cannot read /proc/net/ipv6_route');
  }
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (!i.internal && i.cidr) add(i.cidr);
  }
  return out;
}
