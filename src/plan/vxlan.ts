/**
 * The data plane of a cluster network (issue 17), as pure plan builders: one VXLAN device per
 * cluster network, a port of that network's bridge, and for every remote endpoint one
 * forwarding entry (its MAC → its host's underlay address) and one neighbour entry (its IP →
 * its MAC, which the device's ARP proxy answers from). Without `-o mynet.multicast=true` no
 * all-zero forwarding entry is added, so nothing floods between hosts; with it, one per member
 * host (`floodSteps`), so broadcast, multicast and unknown unicast go to every member. ARP never
 * crosses hosts either way: with `proxy` the device answers ARP from its neighbour table or drops
 * it, before any forwarding entry is looked at, so the anycast gateway (the same IP and MAC on
 * every host's bridge) stays safe. `proxy` cannot be changed on an existing device, so the
 * device is created with its final flags or not at all.
 *
 * Ownership: the device is named mnx<network id> and carries mynet's netdev group and an alias;
 * forwarding and neighbour entries live on that device only, so they are ours by where they are.
 * `diffEntries` is the one comparison of the entries with etcd's: the data plane's sync after a
 * list repairs with `repairSteps`, the doctor (doctor/vxlan-entries.ts) with the same steps one
 * difference at a time.
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
  /** The recorded MTU (underlay minus VXLAN's overhead, rules/mtu.ts), as on the bridge and both veth ends. */
  readonly mtu: number;
}

/** A remote endpoint as the data plane needs it (from its etcd record). */
export interface RemoteEntry {
  readonly address: string;
  /** Its IPv6 address on a dual-stack network: a neighbour entry of its own (the device's proxy answers NDP from it). */
  readonly address6?: string;
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
        args: [
          'link',
          'add',
          'name',
          dev,
          'mtu',
          String(v.mtu),
          'group',
          group,
          'type',
          'vxlan',
          'id',
          String(v.vni),
          'local',
          v.local,
          'dstport',
          String(VXLAN_PORT),
          'nolearning',
          'proxy',
        ],
      },
      undo: { kind: 'link-del', name: dev },
    },
    { what: `mark vxlan ${dev}`, run: { kind: 'ip', args: ['link', 'set', 'dev', dev, 'alias', vxlanAlias(v.networkId, v.cluster)] } },
    { what: `attach vxlan ${dev} to ${v.bridge}`, run: { kind: 'ip', args: ['link', 'set', 'dev', dev, 'master', v.bridge, 'up'] } },
  ];
}

/** Deleting the device takes its forwarding and neighbour entries with it. */
export const vxlanTeardownSteps = (networkId: string): HostStep[] => [
  { what: `delete vxlan ${vxlanName(networkId)}`, run: { kind: 'link-del', name: vxlanName(networkId) } },
];

const fdbDel = (dev: string, mac: string): HostStep['run'] => ({
  kind: 'bridge',
  args: ['fdb', 'del', mac, 'dev', dev, 'self'],
  absentOk: true,
});
const neighDel = (dev: string, address: string): HostStep['run'] => ({
  kind: 'ip',
  args: ['neigh', 'del', address, 'dev', dev],
  absentOk: true,
});

/**
 * Programs one remote endpoint. `replace` makes it idempotent, and moves an endpoint whose MAC
 * now lives on another host (one MAC, one destination). Forwarding first: once the neighbour
 * entry answers ARP, frames have somewhere to go.
 */
export function remoteEntrySteps(networkId: string, e: RemoteEntry): HostStep[] {
  const dev = vxlanName(networkId);
  return [
    {
      what: `forward ${e.mac} to ${e.underlay} on ${dev}`,
      run: { kind: 'bridge', args: ['fdb', 'replace', e.mac, 'dev', dev, 'dst', e.underlay, 'self', 'permanent'] },
      undo: fdbDel(dev, e.mac),
    },
    ...[e.address, ...(e.address6 !== undefined ? [e.address6] : [])].map((ip): HostStep => ({
      what: `answer ${ip === e.address ? 'ARP' : 'NDP'} for ${ip} with ${e.mac} on ${dev}`,
      run: { kind: 'ip', args: ['neigh', 'replace', ip, 'lladdr', e.mac, 'dev', dev, 'nud', 'permanent'] },
      undo: neighDel(dev, ip),
    })),
  ];
}

/** The MAC of the flood entries: frames whose MAC has no entry of its own go to each of its destinations. */
export const FLOOD_MAC = '00:00:00:00:00:00';

const floodDel = (dev: string, underlay: string): HostStep['run'] => ({
  kind: 'bridge',
  args: ['fdb', 'del', FLOOD_MAC, 'dev', dev, 'dst', underlay, 'self'],
  absentOk: true,
});

/**
 * Floods broadcast and multicast to one member host (mynet.multicast). `append` adds a
 * destination to the one all-zero entry; appending one already there changes nothing.
 */
export function floodSteps(networkId: string, underlay: string): HostStep[] {
  const dev = vxlanName(networkId);
  return [
    {
      what: `flood broadcast and multicast to ${underlay} on ${dev}`,
      run: { kind: 'bridge', args: ['fdb', 'append', FLOOD_MAC, 'dev', dev, 'dst', underlay, 'self', 'permanent'] },
      undo: floodDel(dev, underlay),
    },
  ];
}

/** Stops flooding to one host (it left, or multicast is off); an absent destination counts as removed. */
export const unfloodSteps = (networkId: string, underlay: string): HostStep[] => [
  { what: `stop flooding to ${underlay} on ${vxlanName(networkId)}`, run: floodDel(vxlanName(networkId), underlay) },
];

/** The flood entries to add and remove to go from `had` to `want` (member underlay addresses). */
export function floodChangeSteps(networkId: string, had: Iterable<string>, want: Iterable<string>): HostStep[] {
  const h = new Set(had);
  const w = new Set(want);
  return [
    ...[...h]
      .filter((u) => !w.has(u))
      .sort()
      .flatMap((u) => unfloodSteps(networkId, u)),
    ...[...w]
      .filter((u) => !h.has(u))
      .sort()
      .flatMap((u) => floodSteps(networkId, u)),
  ];
}

/**
 * Removes one remote endpoint's entries; absent entries count as removed (idempotent).
 * `keep` says which of its addresses' neighbour entries stay: another endpoint holds the address
 * now (issue 22, finding 16: a late delete of its old record removed the new owner's entry).
 */
export function removeEntrySteps(
  networkId: string,
  e: Pick<RemoteEntry, 'address' | 'address6' | 'mac'>,
  keep: (address: string) => boolean = () => false,
): HostStep[] {
  const dev = vxlanName(networkId);
  const ips = [e.address, ...(e.address6 !== undefined ? [e.address6] : [])].filter((ip) => !keep(ip));
  return [
    ...ips.map((ip): HostStep => ({
      what: `stop answering ${ip === e.address ? 'ARP' : 'NDP'} for ${ip} on ${dev}`,
      run: neighDel(dev, ip),
    })),
    { what: `stop forwarding ${e.mac} on ${dev}`, run: fdbDel(dev, e.mac) },
  ];
}

/** The entries the kernel holds on one VXLAN device (parsed from `bridge -j fdb` and `ip -j neigh`). */
export interface ObservedEntries {
  /** MAC → destination underlay address (entries with a `dst`: the device's own table). */
  readonly fdb: ReadonlyMap<string, string>;
  /** IP → MAC (permanent neighbour entries). */
  readonly neigh: ReadonlyMap<string, string>;
  /** The all-zero entry's destinations (each one a row of `bridge fdb`); absent: not read. */
  readonly flood?: ReadonlySet<string>;
}

/** `bridge -j fdb show dev <vxlan>`: keeps the device's remote entries, not the bridge's learned ones. */
export function parseFdb(json: string): Map<string, string> {
  const rows = JSON.parse(json || '[]') as { mac?: string; dst?: string }[];
  const out = new Map<string, string>();
  // The all-zero entry has a row per destination: parseFlood reads those; diffEntries compares them.
  for (const r of rows) if (r.mac && r.dst && r.mac !== FLOOD_MAC) out.set(r.mac.toLowerCase(), r.dst);
  return out;
}

/** The all-zero entry's destinations in `bridge -j fdb show dev <vxlan>`. */
export function parseFlood(json: string): Set<string> {
  const rows = JSON.parse(json || '[]') as { mac?: string; dst?: string }[];
  return new Set(rows.flatMap((r) => (r.mac === FLOOD_MAC && r.dst ? [r.dst] : [])));
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
  /** Member hosts the all-zero entry should flood to and does not (mynet.multicast). */
  readonly addFlood?: readonly string[];
  /** Destinations of the all-zero entry that are no member's, or all of them with multicast off. */
  readonly removeFlood?: readonly string[];
}

/** `flood`: the member hosts to flood to (empty with multicast off: every all-zero destination goes). */
export function diffEntries(desired: readonly RemoteEntry[], observed: ObservedEntries, flood: readonly string[] = []): EntryDiff {
  const ipsOf = (e: RemoteEntry): string[] => [e.address, ...(e.address6 !== undefined ? [e.address6] : [])];
  const program = desired.filter(
    (e) => observed.fdb.get(e.mac.toLowerCase()) !== e.underlay || ipsOf(e).some((ip) => observed.neigh.get(ip) !== e.mac.toLowerCase()),
  );
  const macs = new Set(desired.map((e) => e.mac.toLowerCase()));
  const ips = new Set(desired.flatMap(ipsOf));
  return {
    program,
    removeFdb: [...observed.fdb.keys()].filter((m) => !macs.has(m)).sort(),
    removeNeigh: [...observed.neigh.keys()].filter((a) => !ips.has(a)).sort(),
    ...(observed.flood && {
      addFlood: flood.filter((u) => !observed.flood?.has(u)).sort(),
      removeFlood: [...observed.flood].filter((u) => !flood.includes(u)).sort(),
    }),
  };
}

export const inSync = (d: EntryDiff): boolean =>
  d.program.length === 0 && d.removeFdb.length === 0 && d.removeNeigh.length === 0 && !d.addFlood?.length && !d.removeFlood?.length;

/** Removes a neighbour entry no remote endpoint explains. */
export const strayNeighStep = (networkId: string, address: string): HostStep => ({
  what: `remove stray neighbour ${address} on ${vxlanName(networkId)}`,
  run: neighDel(vxlanName(networkId), address),
});

/** Removes a forwarding entry no remote endpoint explains. */
export const strayFdbStep = (networkId: string, mac: string): HostStep => ({
  what: `remove stray forwarding entry ${mac} on ${vxlanName(networkId)}`,
  run: fdbDel(vxlanName(networkId), mac),
});

/** Steps that take the kernel to the desired entries: removals first, then (re)programming. */
export function repairSteps(networkId: string, d: EntryDiff): HostStep[] {
  return [
    ...d.removeNeigh.map((a) => strayNeighStep(networkId, a)),
    ...d.removeFdb.map((m) => strayFdbStep(networkId, m)),
    ...(d.removeFlood ?? []).flatMap((u) => unfloodSteps(networkId, u)),
    ...d.program.flatMap((e) => remoteEntrySteps(networkId, e)),
    ...(d.addFlood ?? []).flatMap((u) => floodSteps(networkId, u)),
  ];
}

/** The remote entries from endpoint records: every endpoint not on this node. */
export const remoteEntries = (
  endpoints: readonly { node: string; address: string; address6?: string; mac: string; underlay: string }[],
  self: string,
): RemoteEntry[] =>
  endpoints
    .filter((e) => e.node !== self)
    .map((e) => ({ address: e.address, ...(e.address6 !== undefined && { address6: e.address6 }), mac: e.mac, underlay: e.underlay }));
