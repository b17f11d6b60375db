/**
 * What the kernel holds of ours, read without changing anything: links in our netdev group
 * (with their master, MTU, state and addresses), the `inet mynet` table as `nft -j` prints it
 * (host/nft-json.ts), and
 * the iptables FORWARD hook. The doctor compares this with the stored state.
 */
import type { Logger } from 'pino';
import { HostCommandError } from '../errors.js';
import { MYNET_GROUP } from '../plan/link-names.js';
import { type HookStatus, hookStatus } from './forward-hook.js';
import type { ExecaExecutor } from './execa-executor.js';
import { type NftTable, parseNftTable } from './nft-json.js';

export { type NftTable, parseNftTable } from './nft-json.js';

export interface LinkInfo {
  readonly name: string;
  readonly master?: string;
  readonly mtu: number;
  readonly up: boolean;
  readonly addrs: readonly string[];
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

export async function kernelSnapshot(exec: ExecaExecutor, log: Logger): Promise<KernelSnapshot> {
  const links = parseLinks(await exec.command(['ip', '-j', 'addr', 'show', 'group', String(MYNET_GROUP)], log));
  let nft: NftTable | undefined;
  try {
    nft = parseNftTable(await exec.command(['nft', '-j', 'list', 'table', 'inet', 'mynet'], log));
  } catch (err) {
    if (!(err instanceof HostCommandError && /No such file or directory/.test(err.stderr))) throw err;
  }
  const hook = hookStatus(await exec.command(['iptables-save', '-t', 'filter'], log), await exec.command(['iptables-save', '-t', 'raw'], log));
  return { links, nft, hook };
}
