/**
 * What the cluster host tests look at: the kernel of each host (forwarding entries on the VXLAN
 * device, links of ours), what etcd holds (claims and endpoint records, read from inside the
 * underlay), and traffic between container namespaces (ping, a TCP line with busybox nc).
 */
import { execa } from 'execa';
import type { TestEtcd } from '../helpers/etcd.js';
import type { TestNetns } from '../helpers/netns.js';
import { parseFdb, vxlanName } from '../../src/plan/vxlan.js';
import type { Container, Network } from './dockerd-moves.js';
import { adminGet } from './plugin-client.js';
import { waitUntil } from '../helpers/wait.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `ok` every 50 ms for up to `ms`; the failure says what was awaited, what `show` says and
 * the last error `ok` threw (a device the plugin has not made yet is "not yet", not a failure).
 */
export const until = (what: string, ok: () => Promise<boolean>, ms = 10_000, show?: () => Promise<string>): Promise<number> =>
  waitUntil(what, ok, { ms, every: 50, retryErrors: true, ...(show ? { show } : {}) });

/** Forwarding entries (MAC -> underlay address) on a network's VXLAN device on its host. */
export async function fdbOf(net: Network): Promise<Map<string, string>> {
  return parseFdb(await net.host.ns.run(['bridge', '-j', 'fdb', 'show', 'dev', vxlanName(net.id)]));
}

/** Neighbour entries (address -> MAC) on a network's VXLAN device: what its ARP proxy answers. */
export async function neighOf(net: Network): Promise<Map<string, string>> {
  const rows = JSON.parse((await net.host.ns.run(['ip', '-j', 'neigh', 'show', 'dev', vxlanName(net.id)])) || '[]') as {
    dst?: string;
    lladdr?: string;
  }[];
  return new Map(rows.flatMap((r) => (r.dst && r.lladdr ? [[r.dst, r.lladdr.toLowerCase()] as [string, string]] : [])));
}

/**
 * Whether every other host's copy of the network forwards `c`'s MAC to `c`'s host and answers
 * ARP for `c`'s address with it (the forwarding and the neighbour entry go out in separate
 * batches, so one may be there a moment before the other).
 */
export async function reachableFrom(c: Container, nets: readonly Network[]): Promise<boolean> {
  for (const n of nets) {
    if (n.host === c.host) continue;
    if ((await fdbOf(n)).get(c.mac) !== c.host.address) return false;
    if ((await neighOf(n)).get(c.ip) !== c.mac.toLowerCase()) return false;
  }
  return true;
}

/** A line over TCP from `from` to a busybox nc listener in `to`; answers what the listener got. */
export async function tcpLine(from: TestNetns, to: TestNetns, toIp: string, port: number, line: string): Promise<string> {
  const server = execa('ip', ['netns', 'exec', to.name, 'timeout', '10', 'busybox', 'nc', '-l', '-p', String(port)], { reject: false });
  try {
    for (let i = 0; i < 200 && !(await to.run(['busybox', 'netstat', '-ltn'])).includes(`:${port} `); i++) await sleep(25);
    await execa('ip', ['netns', 'exec', from.name, 'sh', '-c', `echo ${line} | timeout 5 busybox nc ${toIp} ${port}`]);
    return (await server).stdout;
  } finally {
    server.kill('SIGKILL');
  }
}

export interface Claim {
  readonly node: string;
  readonly address: string;
}
export interface EndpointRecord {
  readonly node: string;
  readonly address: string;
  readonly mac: string;
  readonly underlay: string;
  readonly id: string;
  readonly name?: string;
}

/** The address claims of a cluster network in etcd: address -> claim. */
export async function claims(etcd: TestEtcd, cluster: string): Promise<Map<string, Claim>> {
  const out = new Map<string, Claim>();
  for (const [k, v] of await etcd.get(`/mynet/v1/addresses/${cluster}/`)) out.set(k.split('/').at(-1) as string, v as Claim);
  return out;
}

/** The endpoint records of a cluster network in etcd: endpoint id -> record. */
export async function endpointRecords(etcd: TestEtcd, cluster: string): Promise<Map<string, EndpointRecord>> {
  const out = new Map<string, EndpointRecord>();
  for (const [k, v] of await etcd.get(`/mynet/v1/endpoints/${cluster}/`)) out.set(k.split('/').at(-1) as string, v as EndpointRecord);
  return out;
}

/** The claims (or records) one node holds, as a sorted list of addresses. */
export const heldBy = (m: ReadonlyMap<string, { node: string; address: string }>, node: string): string[] =>
  [...m.values()]
    .filter((c) => c.node === node)
    .map((c) => c.address)
    .sort();

/** Links of mynet's groups (ours and retired) in a namespace. */
export async function mynetLinks(ns: TestNetns): Promise<string[]> {
  const names: string[] = [];
  for (const g of ['28014', '28015']) {
    const links = JSON.parse(await ns.run(['ip', '-j', 'link', 'show', 'group', g])) as { ifname?: string }[];
    names.push(...links.flatMap((l) => (l.ifname ? [l.ifname] : [])));
  }
  return names.sort();
}

/** `counter packets N` of the first counter in an nft chain. */
export async function chainCounter(ns: TestNetns, table: string, chain: string): Promise<number> {
  const out = await ns.run(['nft', 'list', 'chain', ...table.split(' '), chain]);
  const m = /counter packets (\d+)/.exec(out);
  if (!m) throw new Error(`no counter in ${table} ${chain}:\n${out}`);
  return Number(m[1]);
}

/** The packets of a named nft counter (`nft list counter`). */
export async function namedCounter(ns: TestNetns, table: string, name: string): Promise<number> {
  const out = await ns.run(['nft', 'list', 'counter', ...table.split(' '), name]);
  const m = /packets (\d+)/.exec(out);
  if (!m) throw new Error(`no packets in counter ${table} ${name}:\n${out}`);
  return Number(m[1]);
}

/** A link's received-packet count (`ip -s`). */
export async function rxPackets(ns: TestNetns, dev: string): Promise<number> {
  const [l] = JSON.parse(await ns.run(['ip', '-j', '-s', 'link', 'show', 'dev', dev])) as { stats64: { rx: { packets: number } } }[];
  return l?.stats64.rx.packets ?? NaN;
}

export interface ClusterStatus {
  readonly node: string;
  readonly nodeId?: string;
  readonly refused?: string;
  readonly address: string;
  readonly etcd: 'up' | 'down';
  readonly networks: readonly { readonly cluster: string; readonly synced: boolean; readonly remote: number }[];
  readonly members: readonly { readonly name: string; readonly address: string; readonly up?: boolean; readonly endpoints: number }[];
}

/** The cluster part of a plugin's admin /status (what `mynet status` prints). */
export async function clusterStatus(adminSocket: string): Promise<ClusterStatus> {
  const s = JSON.parse(await adminGet(adminSocket, '/status')) as { cluster?: ClusterStatus };
  if (!s.cluster) throw new Error('admin /status has no cluster part');
  return s.cluster;
}

/**
 * Waits until a plugin follows etcd on every cluster network (after a start or an outage), and
 * a little more: its convergence with its journal is queued 50 ms after that and runs under the
 * request lock, so a request sent after this runs after the convergence.
 */
export async function following(adminSocket: string, ms = 10_000): Promise<void> {
  await until(
    `${adminSocket}: following etcd`,
    async () => {
      const c = await clusterStatus(adminSocket);
      return c.etcd === 'up' && c.networks.every((n) => n.synced);
    },
    ms,
    async () => JSON.stringify(await clusterStatus(adminSocket)),
  );
  await sleep(200);
}
