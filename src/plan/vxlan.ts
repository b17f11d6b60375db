/**
 * The data plane of a cluster network (issue 17), as pure plan builders: one VXLAN device per
 * cluster network, a port of that network's bridge, and for every remote endpoint one
 * forwarding entry (its MAC → its host's underlay address) and one neighbour entry (its IP →
 * its MAC, which the device's ARP proxy answers from). No all-zero forwarding entry is ever
 * added, so nothing floods between hosts, and ARP never crosses hosts: the anycast gateway (the
 * same IP and MAC on every host's bridge) is safe. `proxy` cannot be changed on an existing
 * device, so the device is created with its final flags or not at all.
 *
 * Ownership: the device is named mnx<network id> and carries mynet's netdev group and an alias;
 * forwarding and neighbour entries live on that device only, so they are ours by where they are.
 * The doctor compares the entries with etcd through `diffEntries` and repairs with `repairSteps`.
 */
import { MYNET_GROUP, short } from './link-names.js';
import type { HostStep } from './step.js';

export const VXLAN_PREFIX = 'mnx';
export const VXLAN_PORT = 4789;
export const vxlanName = (networkId: string): string => `${VXLAN_PREFIX}${short(networkId)}`;
export const vxlanAlias = (networkId: string, cluster: string): string => `mynet net:${short(networkId)} cluster:${cluster}`;

export interface VxlanSpec {
  /** The local (dockerd's) network id: names the device, as the bridge. */
  readonly networkId: string;
  readonly cluster: string;
  readonly vni: number;
  readonly bridge: string;
  /** This host's underlay address (MYNET_NODE_ADDRESS): the source of encapsulated frames. */
  readonly local: string;
  /** The recorded MTU (underlay minus 50), as on the bridge and both veth ends. */
  readonly mtu: number;
}

/** A remote endpoint as the data plane needs it (from its etcd record). */
export interface RemoteEntry {
  readonly address: string;
  readonly mac: string;
  readonly underlay: string;
}

const group = String(MYNET_GROUP);

export function vxlanDeviceSteps(v: VxlanSpec): HostStep[] {
  const dev = vxlanName(v.networkId);
  return [
    { what: `remove leftover vxlan ${dev}`, run: { kind: 'link-del', name: dev } },
    {
      what: `create vxlan ${dev} (vni ${v.vni}) for cluster network ${v.cluster}`,
      run: {
        kind: 'ip',
        args: ['link', 'add', 'name', dev, 'mtu', String(v.mtu), 'group', group, 'type', 'vxlan', 'id', String(v.vni), 'local', v.local, 'dstport', String(VXLAN_PORT), 'nolearning', 'proxy'],
      },
      undo: { kind: 'link-del', name: dev },
    },
    { what: `mark vxlan ${dev}`, run: { kind: 'ip', args: ['link', 'set', 'dev', dev, 'alias', vxlanAlias(v.networkId, v.cluster)] } },
    { what: `attach vxlan ${dev} to ${v.bridge}`, run: { kind: 'ip', args: ['link', 'set', 'dev', dev, 'master', v.bridge, 'up'] } },
  ];
}

/** Deleting the device takes its forwarding and neighbour entries with it. */
export const vxlanTeardownSteps = (networkId: string): HostStep[] => [{ what: `delete vxlan ${vxlanName(networkId)}`, run: { kind: 'link-del', name: vxlanName(networkId) } }];

const fdbDel = (dev: string, mac: string): HostStep['run'] => ({ kind: 'bridge', args: ['fdb', 'del', mac, 'dev', dev, 'self'], absentOk: true });
const neighDel = (dev: string, address: string): HostStep['run'] => ({ kind: 'ip', args: ['neigh', 'del', address, 'dev', dev], absentOk: true });

/**
 * Programs one remote endpoint. `replace` makes it idempotent, and moves an endpoint whose MAC
 * now lives on another host (one MAC, one destination). Forwarding first: once the neighbour
 * entry answers ARP, frames have somewhere to go.
 */
export function remoteEntrySteps(networkId: string, e: RemoteEntry): HostStep[] {
  const dev = vxlanName(networkId);
  return [
    { what: `forward ${e.mac} to ${e.underlay} on ${dev}`, run: { kind: 'bridge', args: ['fdb', 'replace', e.mac, 'dev', dev, 'dst', e.underlay, 'self', 'permanent'] }, undo: fdbDel(dev, e.mac) },
    { what: `answer ARP for ${e.address} with ${e.mac} on ${dev}`, run: { kind: 'ip', args: ['neigh', 'replace', e.address, 'lladdr', e.mac, 'dev', dev, 'nud', 'permanent'] }, undo: neighDel(dev, e.address) },
  ];
}

/**
 * Removes one remote endpoint's entries; absent entries count as removed (idempotent).
 * `neighbour: false` keeps the address's neighbour entry: another endpoint holds the address now
 * (issue 22, finding 16: a late delete of its old record removed the new owner's entry).
 */
export function removeEntrySteps(networkId: string, e: Pick<RemoteEntry, 'address' | 'mac'>, o: { readonly neighbour?: boolean } = {}): HostStep[] {
  const dev = vxlanName(networkId);
  return [
    ...(o.neighbour === false ? [] : [{ what: `stop answering ARP for ${e.address} on ${dev}`, run: neighDel(dev, e.address) }]),
    { what: `stop forwarding ${e.mac} on ${dev}`, run: fdbDel(dev, e.mac) },
  ];
}

/** The entries the kernel holds on one VXLAN device (parsed from `bridge -j fdb` and `ip -j neigh`). */
export interface ObservedEntries {
  /** MAC → destination underlay address (entries with a `dst`: the device's own table). */
  readonly fdb: ReadonlyMap<string, string>;
  /** IP → MAC (permanent neighbour entries). */
  readonly neigh: ReadonlyMap<string, string>;
}

/** `bridge -j fdb show dev <vxlan>`: keeps the device's remote entries, not the bridge's learned ones. */
export function parseFdb(json: string): Map<string, string> {
  const rows = JSON.parse(json || '[]') as { mac?: string; dst?: string }[];
  const out = new Map<string, string>();
  // An all-zero entry (flooding) is kept too: no endpoint explains it, so diffEntries removes it.
  for (const r of rows) if (r.mac && r.dst) out.set(r.mac.toLowerCase(), r.dst);
  return out;
}

/** `ip -j neigh show dev <vxlan>`. */
export function parseNeigh(json: string): Map<string, string> {
  const rows = JSON.parse(json || '[]') as { dst?: string; lladdr?: string }[];
  const out = new Map<string, string>();
  for (const r of rows) if (r.dst && r.lladdr) out.set(r.dst, r.lladdr.toLowerCase());
  return out;
}

export interface EntryDiff {
  /** Desired entries missing or wrong in the kernel (wrong MAC, wrong destination). */
  readonly program: readonly RemoteEntry[];
  /** Kernel entries no remote endpoint explains (a withdrawn endpoint, a flood entry). */
  readonly removeFdb: readonly string[];
  readonly removeNeigh: readonly string[];
}

export function diffEntries(desired: readonly RemoteEntry[], observed: ObservedEntries): EntryDiff {
  const program = desired.filter((e) => observed.fdb.get(e.mac.toLowerCase()) !== e.underlay || observed.neigh.get(e.address) !== e.mac.toLowerCase());
  const macs = new Set(desired.map((e) => e.mac.toLowerCase()));
  const ips = new Set(desired.map((e) => e.address));
  return {
    program,
    removeFdb: [...observed.fdb.keys()].filter((m) => !macs.has(m)).sort(),
    removeNeigh: [...observed.neigh.keys()].filter((a) => !ips.has(a)).sort(),
  };
}

export const inSync = (d: EntryDiff): boolean => d.program.length === 0 && d.removeFdb.length === 0 && d.removeNeigh.length === 0;

/** Steps that take the kernel to the desired entries: removals first, then (re)programming. */
export function repairSteps(networkId: string, d: EntryDiff): HostStep[] {
  const dev = vxlanName(networkId);
  return [
    ...d.removeNeigh.map((a): HostStep => ({ what: `remove stray neighbour ${a} on ${dev}`, run: neighDel(dev, a) })),
    ...d.removeFdb.map((m): HostStep => ({ what: `remove stray forwarding entry ${m} on ${dev}`, run: fdbDel(dev, m) })),
    ...d.program.flatMap((e) => remoteEntrySteps(networkId, e)),
  ];
}

/** The remote entries from endpoint records: every endpoint not on this node. */
export const remoteEntries = (endpoints: readonly { node: string; address: string; mac: string; underlay: string }[], self: string): RemoteEntry[] =>
  endpoints.filter((e) => e.node !== self).map((e) => ({ address: e.address, mac: e.mac, underlay: e.underlay }));
