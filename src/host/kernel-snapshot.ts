/**
 * What the kernel holds of ours, read without changing anything: links in our netdev group
 * (with their master, MTU, state and addresses), the `inet mynet` table as `nft -j` prints it
 * (host/nft-json.ts), and
 * the iptables FORWARD hook. The doctor compares this with the stored state.
 */
import type { Logger } from 'pino';
import { HostCommandError } from '../errors.js';
import { MYNET_GROUP } from '../plan/link-names.js';
import { type ObservedEntries, VXLAN_PREFIX, parseFdb, parseFlood, parseNeigh } from '../plan/vxlan.js';
import { type HookStatus, hookStatus } from './forward-hook.js';
import type { ExecaExecutor } from './execa-executor.js';
import { type NftTable, parseNftCounters, parseNftTable } from './nft-json.js';

export { type NftTable, parseNftTable } from './nft-json.js';

export interface LinkInfo {
  readonly name: string;
  readonly master?: string;
  readonly mtu: number;
  readonly up: boolean;
  readonly addrs: readonly string[];
  /** A VXLAN device's attributes (`ip -d`), for the doctor's comparison with its record. */
  readonly vxlan?: VxlanInfo;
}

export interface VxlanInfo {
  readonly id: number;
  readonly local?: string;
  readonly port: number;
  readonly learning: boolean;
  readonly proxy: boolean;
}

export interface KernelSnapshot {
  readonly links: ReadonlyMap<string, LinkInfo>;
  /** undefined: the table does not exist. */
  readonly nft: NftTable | undefined;
  readonly hook: HookStatus;
  /** Each VXLAN device's forwarding, neighbour and flood entries, by device name (absent: not read). */
  readonly entries?: ReadonlyMap<string, ObservedEntries>;
}

interface IpLink {
  ifname?: string;
  master?: string;
  mtu?: number;
  flags?: string[];
  addr_info?: { local: string; prefixlen: number; scope?: string }[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; learning?: boolean; proxy?: boolean } };
}

function vxlanOf(l: IpLink): VxlanInfo | undefined {
  const d = l.linkinfo?.info_kind === 'vxlan' ? l.linkinfo.info_data : undefined;
  if (!d) return undefined;
  return {
    id: d.id ?? 0,
    ...(d.local ? { local: d.local } : {}),
    port: d.port ?? 0,
    learning: d.learning ?? false,
    proxy: d.proxy ?? false,
  };
}

export function parseLinks(ipAddrJson: string): Map<string, LinkInfo> {
  const out = new Map<string, LinkInfo>();
  for (const l of JSON.parse(ipAddrJson || '[]') as IpLink[]) {
    if (!l.ifname) continue;
    const vxlan = vxlanOf(l);
    out.set(l.ifname, {
      name: l.ifname,
      ...(l.master ? { master: l.master } : {}),
      mtu: l.mtu ?? 0,
      up: (l.flags ?? []).includes('UP'),
      addrs: (l.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`),
      ...(vxlan ? { vxlan } : {}),
    });
  }
  return out;
}

export async function kernelSnapshot(exec: ExecaExecutor, log: Logger): Promise<KernelSnapshot> {
  const links = parseLinks(await exec.command(['ip', '-d', '-j', 'addr', 'show', 'group', String(MYNET_GROUP)], log));
  const table = await listOurTable(exec, log, 'table');
  const nft: NftTable | undefined = table === undefined ? undefined : parseNftTable(table);
  const hook = hookStatus(
    await exec.command(['iptables-save', '-t', 'filter'], log),
    await exec.command(['iptables-save', '-t', 'raw'], log),
  );
  return { links, nft, hook, entries: await vxlanEntries(exec, links, log) };
}

/**
 * The entries of every VXLAN device of ours (a cluster network's; read for the doctor's comparison
 * with etcd). One `bridge -j fdb show` and one `ip -j neigh show` for all of them, split by
 * device, not two processes per cluster network: the reconcile runs under the request lock.
 * Nothing is run on a host without a cluster network.
 */
async function vxlanEntries(exec: ExecaExecutor, links: ReadonlyMap<string, LinkInfo>, log: Logger): Promise<Map<string, ObservedEntries>> {
  const devices = [...links.values()].filter((l) => l.vxlan && l.name.startsWith(VXLAN_PREFIX)).map((l) => l.name);
  if (devices.length === 0) return new Map();
  const [fdb, neigh] = await Promise.all([
    exec.command(['bridge', '-j', 'fdb', 'show'], log),
    exec.command(['ip', '-j', 'neigh', 'show'], log),
  ]);
  const fdbOf = byDevice(fdb, 'ifname');
  const neighOf = byDevice(neigh, 'dev');
  return new Map(
    devices.map((dev) => {
      const f = JSON.stringify(fdbOf.get(dev) ?? []);
      return [dev, { fdb: parseFdb(f), neigh: parseNeigh(JSON.stringify(neighOf.get(dev) ?? [])), flood: parseFlood(f) }];
    }),
  );
}

/** The rows of an iproute2 `-j` listing of every device, by the device each names (`field`). */
function byDevice(json: string, field: 'ifname' | 'dev'): Map<string, unknown[]> {
  const out = new Map<string, unknown[]>();
  for (const r of JSON.parse(json || '[]') as Record<string, unknown>[]) {
    const dev = r[field];
    if (typeof dev !== 'string') continue;
    const rows = out.get(dev);
    if (rows) rows.push(r);
    else out.set(dev, [r]);
  }
  return out;
}

/** `nft -j list <what> table inet mynet`; undefined when the table does not exist (nothing of ours). */
async function listOurTable(exec: ExecaExecutor, log: Logger, what: 'table' | 'counters'): Promise<string | undefined> {
  try {
    return await exec.command(['nft', '-j', 'list', what, ...(what === 'counters' ? ['table'] : []), 'inet', 'mynet'], log);
  } catch (err) {
    if (err instanceof HostCommandError && /No such file or directory/.test(err.stderr)) return undefined;
    throw err;
  }
}

/** The packets each of mynet's named counters has counted (the policies' drops); none without the table. */
export async function nftCounters(exec: ExecaExecutor, log: Logger): Promise<Map<string, number>> {
  const json = await listOurTable(exec, log, 'counters');
  return json === undefined ? new Map() : parseNftCounters(json);
}
