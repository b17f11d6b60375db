/**
 * CreateNetwork / DeleteNetwork decisions. The orchestrator tells us whether the bridge name is
 * free on the host (`link`), so that the decision stays pure.
 */
import type { NetworkWanted } from '../cluster/cluster-store.js';
import { PluginError, invalid } from '../errors.js';
import { type Cidr, formatCidr, parseCidr } from '../ip/cidr.js';
import { bareAddress } from '../rules/address.js';
import { contains, overlaps } from '../ip/cidr.js';
import { BRIDGE_PREFIX, CONTAINER_VETH_PREFIX, HOST_VETH_PREFIX, defaultBridgeName, short } from '../plan/link-names.js';
import { checkId } from '../rules/names.js';
import { bridgeSteps, deleteLinkStep } from '../plan/link.js';
import {
  baseCommands,
  networkCommands,
  networkTeardownCommands,
  nftNetwork,
  nftOp,
  nftTeardown,
  reverse,
  tableTeardownCommands,
} from '../plan/nft.js';
import { bridgeNetfilterSteps, forwardingSteps, routeLocalnetStep } from '../plan/sysctl.js';
import { unpublishSteps } from '../plan/ports.js';
import type { HostPlan, HostStep } from '../plan/step.js';
import { parseNetworkOptions } from '../protocol/options.js';
import { type ClusterIpamData, checkClusterOptions } from './cluster-options.js';
import type { LinkOwner, PlannedDecision } from '../decision.js';
import { vxlanDeviceSteps, vxlanTeardownSteps, type VxlanSpec } from '../plan/vxlan.js';
import { guardCommands, guardFor, guardTeardownCommands, guardUndo } from '../plan/vxlan-firewall.js';
import { policiesOf, policyObjectsOf } from './policy.js';
import type { PolicyObjects } from '../plan/policy-nft.js';
import { type ClusterBinding, type NetworkRecord, type StateView, type SubnetRecord, mtuOf } from './state.js';

export interface IpamData {
  AddressSpace?: string;
  Pool: string;
  Gateway?: string;
  AuxAddresses?: Record<string, string> | null;
}

export interface CreateNetworkRequest {
  NetworkID: string;
  Options?: Record<string, unknown> | null;
  IPv4Data?: IpamData[] | null;
  IPv6Data?: IpamData[] | null;
}

const BRIDGE_NAME_OPTION = 'option com.docker.network.bridge.name';

/**
 * The names mynet generates are reserved: a user's bridge under one of them could take a
 * container's veth name (mnh/mnc + 12 hex of an endpoint id) or another network's default
 * bridge name (mn- + 12 hex of its id), and one of the two would later be deleted as the other.
 */
function checkUserBridgeName(id: string, name: string): string {
  const reserved = [HOST_VETH_PREFIX, CONTAINER_VETH_PREFIX, BRIDGE_PREFIX].find((p) => name.startsWith(p));
  if (reserved && name !== defaultBridgeName(id)) {
    throw invalid(
      BRIDGE_NAME_OPTION,
      `"${name}" starts with "${reserved}", which is reserved for the names mynet generates (mnh…/mnc… for veths, mn-<12 hex of the network id> for this network's default bridge); choose another name`,
    );
  }
  return name;
}

const bridgeOf = (id: string, options: { readonly bridgeName?: string }): string =>
  options.bridgeName === undefined ? defaultBridgeName(id) : checkUserBridgeName(id, options.bridgeName);

/** The bridge a CreateNetwork request asks for (validates the id and the options). */
export function bridgeNameFor(req: CreateNetworkRequest): string {
  const id = checkId('NetworkID', req.NetworkID);
  return bridgeOf(id, parseNetworkOptions(req.Options));
}

/**
 * A subnet of the new network that overlaps one of another mynet network, whatever IPAM driver
 * gave either (mynet's refuses overlap at RequestPool, Docker's default does not know ours):
 * the two would share the NAT elements of that subnet, and deleting one removes the other's.
 */
function checkNoOverlap(state: StateView, id: string, subnetsOf: readonly { field: string; pool: string }[]): void {
  for (const mine of subnetsOf) {
    const a = parseCidr(mine.pool);
    if (!a.ok) continue; // refused already by subnets()
    for (const n of state.networks.values()) {
      for (const theirs of [...n.ipv4, ...n.ipv6]) {
        const b = parseCidr(theirs.pool);
        if (b.ok && a.cidr.family === b.cidr.family && overlaps(a.cidr, b.cidr)) {
          throw new PluginError(
            'CONFLICT',
            `${mine.field}: subnet ${mine.pool} of network ${short(id)} overlaps subnet ${theirs.pool} of mynet network ${short(n.id)} (bridge ${n.bridge}); each mynet network needs its own subnets, whatever its IPAM driver`,
          );
        }
      }
    }
  }
}

function subnets(field: string, data: IpamData[] | null | undefined, family: 4 | 6): SubnetRecord[] {
  return (data ?? []).map((d, i) => {
    const f = `${field}[${i}]`;
    const pool = parseCidr(d.Pool);
    if (!pool.ok) throw invalid(`${f}.Pool`, pool.why);
    if (pool.cidr.family !== family) throw invalid(`${f}.Pool`, `${d.Pool} is not IPv${family}`);
    if (!d.Gateway) return { pool: d.Pool };
    const gw = parseCidr(d.Gateway);
    if (!gw.ok) throw invalid(`${f}.Gateway`, gw.why);
    if (!contains(pool.cidr, gw.addr)) throw invalid(`${f}.Gateway`, `${d.Gateway} is not in ${d.Pool}`);
    return { pool: d.Pool, gateway: d.Gateway };
  });
}

/** The VXLAN device of a cluster network, from its record. */
export const vxlanSpecOf = (n: NetworkRecord, c: ClusterBinding): VxlanSpec => ({
  networkId: n.id,
  cluster: c.name,
  vni: c.vni,
  bridge: n.bridge,
  local: c.local,
  mtu: c.mtu,
});

/** What a cluster network asks of etcd: the cluster store's own type (a type-only import crosses layers freely). */
export type ClusterWanted = NetworkWanted;

/**
 * What a cluster network asks of etcd, checked before any etcd call: mynet's IPAM (the
 * addresses are claimed in etcd through it), one IPv4 subnet, no IPv6 yet, one local network
 * per cluster name (one VXLAN id, one bridge), and none of the options that would act on this
 * host only (cluster-options.ts). Undefined: not a cluster network.
 */
export function clusterRequest(state: StateView, req: CreateNetworkRequest): ClusterWanted | undefined {
  const id = checkId('NetworkID', req.NetworkID);
  const options = parseNetworkOptions(req.Options);
  if (options.cluster === undefined || state.networks.has(id)) return undefined;
  const v4 = req.IPv4Data ?? [];
  // IPv6-only (`--ipv4=false`, Docker 28+) is issue 23's next step: the endpoint records, the
  // claims' trust and the data plane still key every container by its IPv4 address.
  const v6only = v4.length === 0 && (req.IPv6Data ?? []).length > 0;
  if (v4.length !== 1 || !v4[0])
    throw invalid(
      'IPv4Data',
      `a cluster network (mynet.cluster=${options.cluster}) needs exactly one IPv4 subnet (--subnet), got ${v4.length}${
        v6only ? ': IPv6-only cluster networks (--ipv4=false) are not supported yet; add an IPv4 --subnet for a dual-stack one' : ''
      }`,
    );
  const v6 = clusterIpv6(state, req, options.ipv6, options.cluster);
  const pool = parseCidr(v4[0].Pool);
  if (!pool.ok) throw invalid('IPv4Data[0].Pool', pool.why);
  // With --ip-range the pool has a SubPool: this host's own range of the one subnet (issue 23).
  if (!ourPool(state, 4, pool.cidr))
    throw invalid(
      'IPv4Data[0].Pool',
      `a cluster network's addresses are claimed across hosts by mynet's IPAM: create it with --ipam-driver mynet --subnet ${v4[0].Pool}`,
    );
  const other = [...state.networks.values()].find((n) => n.cluster?.name === options.cluster);
  if (other)
    throw new PluginError(
      'CONFLICT',
      `option mynet.cluster: this host already has network ${short(other.id)} in cluster network "${options.cluster}"`,
    );
  checkClusterOptions(options, v4[0], v6);
  const gw = v4[0].Gateway;
  return {
    cluster: options.cluster,
    subnet: formatCidr(pool.cidr),
    ...(gw ? { gateway: bareAddress(gw) } : {}),
    ...(v6 && { subnet6: v6.subnet }),
    ...(v6?.gateway !== undefined && { gateway6: v6.gateway }),
    ...(options.vni !== undefined ? { vni: options.vni } : {}),
    mtu: options.mtu,
    internal: options.internal,
    multicast: options.multicast === true,
    ...(options.encrypt && { encrypt: options.encrypt }),
  };
}

/** Whether mynet's IPAM gave this subnet (with --ip-range its pool has a SubPool: this host's range of it, issue 23). */
const ourPool = (state: StateView, family: 4 | 6, c: Cidr): boolean =>
  [...state.pools.values()].some((p) => p.record.family === family && p.record.pool === formatCidr(c));

/**
 * A dual-stack cluster network's IPv6 side (`--ipv6` and one IPv6 subnet of mynet's IPAM; its
 * addresses are claimed in etcd as the IPv4 ones), or undefined for an IPv4-only one.
 */
function clusterIpv6(
  state: StateView,
  req: CreateNetworkRequest,
  ipv6: boolean,
  cluster: string,
): ({ subnet: string; gateway?: string } & ClusterIpamData) | undefined {
  const d = req.IPv6Data ?? [];
  if (!ipv6 && d.length === 0) return undefined;
  if (!ipv6) throw invalid('IPv6Data', 'an IPv6 subnet needs --ipv6 (com.docker.network.enable_ipv6)');
  if (d.length !== 1 || !d[0])
    throw invalid(
      'IPv6Data',
      `a dual-stack cluster network (mynet.cluster=${cluster}) needs exactly one IPv6 subnet (--subnet), got ${d.length}`,
    );
  const pool = parseCidr(d[0].Pool);
  if (!pool.ok || pool.cidr.family !== 6) throw invalid('IPv6Data[0].Pool', pool.ok ? `${d[0].Pool} is not IPv6` : pool.why);
  if (!ourPool(state, 6, pool.cidr))
    throw invalid(
      'IPv6Data[0].Pool',
      `a cluster network's addresses are claimed across hosts by mynet's IPAM: create it with --ipam-driver mynet --subnet ${d[0].Pool}`,
    );
  const gw = d[0].Gateway;
  return { subnet: formatCidr(pool.cidr), ...(gw && { gateway: bareAddress(gw) }), AuxAddresses: d[0].AuxAddresses ?? null };
}

export function createNetwork(
  state: StateView,
  req: CreateNetworkRequest,
  link: LinkOwner,
  now: string,
  cluster?: ClusterBinding,
): PlannedDecision<Record<string, never>> {
  const id = checkId('NetworkID', req.NetworkID);
  const options = parseNetworkOptions(req.Options);
  const bridge = bridgeOf(id, options);
  if (state.networks.has(id)) return { changes: [], plan: [], response: {} };
  // A name a record holds is a conflict, never a leftover to delete (the plan's first step would).
  const other = [...state.networks.values()].find((n) => n.bridge === bridge);
  if (other) throw new PluginError('CONFLICT', `bridge name ${bridge} is already used by mynet network ${other.id.slice(0, 12)}`);
  const ep = [...state.endpoints.values()].find((e) => e.hostIf === bridge || e.containerIf === bridge);
  if (ep) throw new PluginError('CONFLICT', `${BRIDGE_NAME_OPTION}: ${bridge} is the interface of mynet endpoint ${short(ep.id)}`);
  if (link === 'foreign') {
    throw new PluginError(
      'CONFLICT',
      `option com.docker.network.bridge.name: a link named "${bridge}" already exists and was not created by mynet; choose another name`,
    );
  }
  const first = state.networks.size === 0;
  const network: NetworkRecord = {
    id,
    bridge,
    options,
    ipv4: subnets('IPv4Data', req.IPv4Data, 4),
    ipv6: subnets('IPv6Data', req.IPv6Data, 6),
    createdAt: now,
    ...(cluster ? { cluster } : {}),
  };
  if (options.cluster !== undefined && !cluster)
    throw new PluginError(
      'CLUSTER_UNAVAILABLE',
      'option mynet.cluster: this mynet has no cluster store (set MYNET_ETCD_ENDPOINTS on every host)',
    );
  if (cluster && (network.ipv4[0]?.gateway && bareAddress(network.ipv4[0].gateway)) !== cluster.gateway) {
    throw new PluginError(
      'CONFLICT',
      `IPv4Data[0].Gateway: cluster network "${cluster.name}" has gateway ${cluster.gateway} on every host, this request has ${network.ipv4[0]?.gateway ?? 'none'}; create it with --gateway ${cluster.gateway}`,
    );
  }
  const gw6 = network.ipv6[0]?.gateway;
  if (cluster && (gw6 && bareAddress(gw6)) !== cluster.gateway6) {
    throw new PluginError(
      'CONFLICT',
      `IPv6Data[0].Gateway: cluster network "${cluster.name}" has IPv6 gateway ${cluster.gateway6 ?? 'none'} on every host, this request has ${gw6 ?? 'none'}`,
    );
  }
  checkNoOverlap(state, id, [
    ...network.ipv4.map((s, i) => ({ field: `IPv4Data[${i}].Pool`, pool: s.pool })),
    ...network.ipv6.map((s, i) => ({ field: `IPv6Data[${i}].Pool`, pool: s.pool })),
  ]);
  return {
    // Made here again: this host's records in etcd are the new network's (the convergence's).
    changes: [
      { op: 'network.put', network },
      ...(cluster && state.departures.has(cluster.name) ? [{ op: 'departure.delete' as const, cluster: cluster.name }] : []),
    ],
    plan: [
      // The first network brings mynet's table and the FORWARD hook, so undoing it (a later step
      // or saving the state failed) takes them away again; otherwise they would stay with no
      // network to remove them. The table step comes first so that its undo runs last.
      ...(first ? [{ what: 'ensure the mynet table', run: nftOp(baseCommands()), undo: nftOp(reverse(baseCommands())) }] : []),
      ...networkSteps(network),
      {
        what: 'ensure the FORWARD hook',
        run: { kind: 'forward-hook', action: 'ensure' },
        ...(first ? { undo: { kind: 'forward-hook', action: 'remove' } as const } : {}),
      },
    ],
    response: {},
  };
}

/** A cluster network's VXLAN guard, closed: its undo is the reverse of the guard's own objects. */
function guardStep(n: NetworkRecord, c: ClusterBinding): HostStep {
  const g = guardFor(n.id, c, []);
  return { what: `guard VXLAN of ${n.bridge}`, run: nftOp(guardCommands(g)), undo: nftTeardown(guardUndo(g)) };
}

/** The host steps that make a stored network (used by create and by restore at start, with its policies' objects). */
export function networkSteps(n: NetworkRecord, policy?: PolicyObjects): HostPlan {
  const nft = nftNetwork(n, policy);
  return [
    ...bridgeSteps({
      networkId: n.id,
      name: n.bridge,
      mtu: mtuOf(n),
      addresses: [...n.ipv4, ...n.ipv6].flatMap((s) => (s.gateway ? [s.gateway] : [])),
      ...(n.cluster ? { mac: n.cluster.gatewayMac } : {}),
    }),
    // The guard comes before the VXLAN device (issue 22, finding 19: a device up before its
    // guard accepts anyone's VXLAN meanwhile), closed (no member yet): the cluster follower
    // opens it to the members' underlay addresses (multihost/plane.ts).
    ...(n.cluster ? [guardStep(n, n.cluster), ...vxlanDeviceSteps(vxlanSpecOf(n, n.cluster))] : []),
    ...(n.options.internal ? [] : [...forwardingSteps(n.ipv4.length > 0, n.ipv6.length > 0), routeLocalnetStep(n.bridge)]),
    // ICC off and policies both judge traffic between containers of the bridge in the forward hook.
    ...(n.options.icc && !policy ? [] : bridgeNetfilterSteps(n.ipv6.length > 0)),
    {
      what: `program the firewall of ${n.bridge}`,
      // The base is shared with every network: the undo is the reverse of this network's part only.
      run: nftOp([...baseCommands(), ...networkCommands(nft)]),
      undo: nftTeardown(reverse(networkCommands(nft))),
    },
  ];
}

export function deleteNetwork(state: StateView, networkId: string): PlannedDecision<Record<string, never>> {
  const id = checkId('NetworkID', networkId);
  const n = state.networks.get(id);
  if (!n) return { changes: [], plan: [], response: {} };
  const eps = [...state.endpoints.values()].filter((e) => e.networkId === id);
  const last = state.networks.size === 1;
  return {
    changes: [
      ...eps.map((e) => ({ op: 'endpoint.delete' as const, id: e.id })),
      // Its policies go with it, as a Docker user expects of what belongs to a network (a
      // refusal would leave `docker network rm` failing with a reason dockerd shows badly).
      ...policiesOf(state, id).map((p) => ({ op: 'policy.delete' as const, name: p.name })),
      { op: 'network.delete', id },
      // What etcd holds of this host's in the cluster is removed when etcd answers (finding 7).
      ...(n.cluster ? [{ op: 'departure.put' as const, departure: { cluster: n.cluster.name, subnet: n.cluster.subnet } }] : []),
    ],
    plan: [
      // With the last network the table goes, ports and all: its element deletes are left out
      // for the same reason as its firewall below (the flushes of flows are kept).
      ...eps.flatMap((e) => [
        ...unpublishSteps(e).filter((st) => !last || st.run.kind !== 'nft'),
        deleteLinkStep(e.hostIf, `delete veth ${e.hostIf}`),
      ]),
      // The last network's firewall goes with the table below; removing it first would also
      // fail a retry after the table went (its script needs the table).
      ...(last
        ? []
        : [
            {
              what: `remove the firewall of ${n.bridge}`,
              run: nftTeardown(networkTeardownCommands(nftNetwork(n, policyObjectsOf(state, id)))),
            },
          ]),
      ...(n.cluster
        ? [
            ...vxlanTeardownSteps(n.id),
            ...(last ? [] : [{ what: `remove the VXLAN guard of ${n.bridge}`, run: nftTeardown(guardTeardownCommands(n.id)) }]),
          ]
        : []),
      deleteLinkStep(n.bridge, `delete bridge ${n.bridge}`),
      // The table and the hook serve every mynet network; they go with the last one.
      ...(last
        ? [
            { what: 'remove the mynet table', run: nftOp(tableTeardownCommands()) },
            { what: 'remove the FORWARD hook', run: { kind: 'forward-hook', action: 'remove' } } as const,
          ]
        : []),
    ],
    response: {},
  };
}
