/**
 * What the kernel holds of ours, read without changing anything: links in our netdev group
 * (with their master, MTU, state and addresses), the `inet mynet` table as nft prints it, and
 * the iptables FORWARD hook. The doctor compares this with the stored state.
 */
import type { Logger } from 'pino';
import { HostCommandError } from '../errors.js';
import { MYNET_GROUP } from '../plan/link-names.js';
import { type HookStatus, hookStatus } from './forward-hook.js';
import type { ExecaExecutor } from './execa-executor.js';

export interface LinkInfo {
  readonly name: string;
  readonly master?: string;
  readonly mtu: number;
  readonly up: boolean;
  readonly addrs: readonly string[];
}

export interface NftTable {
  readonly chains: ReadonlySet<string>;
  /** Elements of each map or set, as nft prints them ("tcp . 8080 : 10.1.0.2 . 80"). */
  readonly elements: ReadonlyMap<string, readonly string[]>;
}

export interface KernelSnapshot {
  readonly links: ReadonlyMap<string, LinkInfo>;
  /** undefined: the table does not exist. */
  readonly nft: NftTable | undefined;
  readonly hook: HookStatus;
}

interface IpLink {
  ifname?: string;
  master?: string;
  mtu?: number;
  flags?: string[];
  addr_info?: { local: string; prefixlen: number; scope?: string }[];
}

export function parseLinks(ipAddrJson: string): Map<string, LinkInfo> {
  const out = new Map<string, LinkInfo>();
  for (const l of JSON.parse(ipAddrJson || '[]') as IpLink[]) {
    if (!l.ifname) continue;
    out.set(l.ifname, {
      name: l.ifname,
      ...(l.master ? { master: l.master } : {}),
      mtu: l.mtu ?? 0,
      up: (l.flags ?? []).includes('UP'),
      addrs: (l.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`),
    });
  }
  return out;
}

/** Parses `nft list table inet mynet`: chain names and the elements of every map and set. */
export function parseNftTable(text: string): NftTable {
  const chains = new Set<string>();
  const elements = new Map<string, string[]>();
  for (const m of text.matchAll(/^\s*chain (\S+) \{/gm)) chains.add(m[1] as string);
  for (const m of text.matchAll(/^\s*(?:map|set) (\S+) \{([\s\S]*?)^\s*\}/gm)) {
    const body = m[2] as string;
    const el = /elements = \{([\s\S]*?)\}/.exec(body);
    const items = el ? (el[1] as string).split(',').map((s) => s.trim().replace(/\s+/g, ' ')).filter(Boolean) : [];
    elements.set(m[1] as string, items);
  }
  return { chains, elements };
}

export async function kernelSnapshot(exec: ExecaExecutor, log: Logger): Promise<KernelSnapshot> {
  const links = parseLinks(await exec.command(['ip', '-j', 'addr', 'show', 'group', String(MYNET_GROUP)], log));
  let nft: NftTable | undefined;
  try {
    nft = parseNftTable(await exec.command(['nft', 'list', 'table', 'inet', 'mynet'], log));
  } catch (err) {
    if (!(err instanceof HostCommandError && /No such file or directory/.test(err.stderr))) throw err;
  }
  const hook = hookStatus(await exec.command(['iptables-save', '-t', 'filter'], log));
  return { links, nft, hook };
}
