/**
 * The cluster networks on this host: their definition in etcd (defineNetwork, refused before
 * any write where this host cannot encrypt), each one's data plane brought up and down
 * (plane.ts), and what the planes followed, read out: the remote names for DNS, the count of
 * remote endpoints, what the doctor is told beyond each plane's view. Its own file because it is the agent's side facing
 * the planes, apart from claims and records.
 */
import type { Logger } from 'pino';
import type { NetworkWanted } from '../cluster/cluster-store.js';
import type { ContainerInfo } from '../dns/records.js';
import type { ClusterBinding, NetworkRecord } from '../driver/state.js';
import { PluginError } from '../errors.js';
import { clusterMtu, encryptedClusterMtu } from '../rules/mtu.js';
import { bareAddress, familyOf } from '../rules/address.js';
import type { AgentCore } from './agent-core.js';
import type { Difference } from '../doctor/difference.js';
import { NetworkPlane } from './plane.js';
import { ownEndpoints } from './trust.js';

export async function defineNetwork(a: AgentCore, w: NetworkWanted, log: Logger): Promise<ClusterBinding> {
  // A host that cannot encrypt is refused before it writes anything (issue 24).
  const wg = w.encrypt
    ? (a.o.wireguard?.ability() ?? {
        ok: false as const,
        refusal: 'option mynet.encrypt: this mynet was started without WireGuard support',
      })
    : undefined;
  const family = familyOf(a.node.address);
  if (wg && !wg.ok) throw new PluginError('INVALID_REQUEST', wg.refusal);
  a.identityAccepted();
  const mtu = Math.min(w.mtu, w.encrypt ? encryptedClusterMtu(a.o.underlayMtu, family) : clusterMtu(a.o.underlayMtu, family));
  const def = await a.call(a.o.store.defineNetwork({ ...w, mtu }));
  log.info({ cluster: def.cluster, vni: def.vni, createdBy: def.createdBy, encrypt: def.encrypt ?? 'none' }, 'cluster: network defined');
  // An encrypted network's VXLAN runs between tunnel addresses, inside WireGuard.
  const local = def.encrypt && a.o.wireguard ? a.o.wireguard.tunnelAddress : a.node.address;
  return {
    name: def.cluster,
    subnet: def.subnet,
    gateway: def.gateway,
    gatewayMac: def.gatewayMac,
    ...(def.subnet6 !== undefined && def.gateway6 !== undefined && { subnet6: def.subnet6, gateway6: def.gateway6 }),
    vni: def.vni,
    mtu: def.mtu,
    local,
    ...(def.internal && { internal: true }),
    ...(def.multicast && { multicast: true }),
    ...(def.encrypt && { encrypt: def.encrypt, ...(a.o.wireguard && { tunnelIf: a.o.wireguard.iface }) }),
  };
}

/** `scheduleConverge` is the agent's (ClusterAgent.scheduleConverge). */
export function networkUp(a: AgentCore, n: NetworkRecord, scheduleConverge: () => void): void {
  if (!n.cluster || a.planes.has(n.id) || a.stopped) return;
  const wg = n.cluster.encrypt ? a.o.wireguard : undefined;
  // The interface before the plane: its VXLAN goes to the peers' tunnel addresses (plane.ts via).
  if (wg) void wg.ensure();
  const plane = new NetworkPlane(n.id, n.cluster, {
    ...(wg && { via: (underlay: string) => wg.tunnelAt(underlay) }),
    store: a.o.store,
    exec: a.o.exec,
    read: a.o.read,
    log: a.o.log.child({ network: n.id.slice(0, 12), cluster: n.cluster.name }),
    self: a.node.name,
    selfUnderlay: a.node.address,
    own: () =>
      ownEndpoints(
        [...a.o.state().endpoints.values()]
          .filter((e) => e.networkId === n.id)
          .map((e) => ({
            id: e.id,
            ...(e.address !== undefined && { address: bareAddress(e.address) }),
            ...(e.addressV6 !== undefined && { address6: bareAddress(e.addressV6) }),
            mac: e.mac,
          })),
      ),
    ...(a.o.onRefused && { onRefused: a.o.onRefused }),
    isUp: (node) => a.isUp(node),
    onRemoteChange: () => a.o.onRemoteChange?.(),
    onResynced: () => scheduleConverge(),
    onState: (s) => {
      if (s === 'synced') {
        a.reachable = true;
        scheduleConverge();
      } else if (s === 'resyncing') a.reachable = false;
    },
    ...(a.o.onLag && { onLag: a.o.onLag }),
    ...(a.o.backoffMs && { backoffMs: a.o.backoffMs }),
    onPolicy: (input) => a.o.policyChanged?.(n.id, input),
  });
  a.planes.set(n.id, plane);
  plane.start();
}

export async function networkDown(a: AgentCore, networkId: string): Promise<void> {
  const p = a.planes.get(networkId);
  a.planes.delete(networkId);
  if (p) {
    a.definitionDiffers.delete(p.binding.name);
    a.lost.delete(p.binding.name);
  }
  await p?.stop();
  // Its policies leave the state's copy once the network is gone (the teardown removed their objects).
  if (p) a.o.policyChanged?.(networkId, undefined);
  a.o.onRemoteChange?.();
  // The last encrypted network gone: nothing needs the tunnels (a plain network never did).
  if (p?.binding.encrypt && ![...a.planes.values()].some((x) => x.binding.encrypt)) await a.o.wireguard?.release();
}

/** The believed WireGuard peers changed: every encrypted network's entries and guard follow. */
export function peersChanged(a: AgentCore): void {
  for (const p of a.planes.values()) if (p.binding.encrypt) p.resync();
}

/**
 * Remote endpoints as the DNS zone serves them: under this host's network id (the DNS serves
 * them under this host's name of the network, as its own containers: records.ts), with the
 * cluster's name (`<name>.<cluster>.<zone>`, bare names) and the cluster's name as the network's
 * until this host's Docker names it.
 */
export function remoteNames(a: AgentCore, isUp: (node: string) => boolean): ContainerInfo[] {
  const out: ContainerInfo[] = [];
  for (const p of a.planes.values()) {
    for (const e of p.records.values()) {
      // A dead host's containers answer nothing (issue 23): a name resolves only where it can be reached.
      if (e.name === undefined || !isUp(e.node)) continue;
      out.push({
        id: `cluster:${e.id}`,
        name: e.name,
        networks: [
          {
            networkId: p.networkId,
            networkName: p.binding.name,
            cluster: p.binding.name,
            ipv4: e.address,
            ...(e.address6 !== undefined && { ipv6: e.address6 }),
            aliases: e.aliases ?? [],
          },
        ],
      });
    }
  }
  return out;
}

/** Addresses held here and claimed by another node (finding 4), over every cluster network. */
export function lostAddresses(a: AgentCore): number {
  let n = 0;
  for (const l of a.lost.values()) n += l.length;
  return n;
}

export function remoteEndpoints(a: AgentCore): number {
  let n = 0;
  for (const p of a.planes.values()) n += p.remoteCount();
  return n;
}

/**
 * What the reconciler is told beyond each plane's view (doctor/vxlan-entries.ts compares the
 * entries): per network, a definition etcd holds that differs from this host's and addresses
 * another node claims, listed and never repaired (nothing to run); then the WireGuard peers'
 * differences, each with its repair.
 */
export async function findings(a: AgentCore): Promise<Difference[]> {
  const note = (object: string, detail: string): Difference => ({ kind: 'drift', object, detail, fix: [] });
  const out: Difference[] = [];
  for (const p of a.planes.values()) {
    const differs = a.definitionDiffers.get(p.binding.name);
    if (differs !== undefined)
      out.push(
        note(
          `cluster network ${p.binding.name}`,
          `etcd holds another definition than this host built (not repaired: remove the network on the hosts that are wrong): ${differs}`,
        ),
      );
    for (const l of a.lost.get(p.binding.name) ?? [])
      out.push(
        note(
          `cluster network ${p.binding.name} address ${l.address}`,
          `held here and claimed in etcd by node ${l.holder} (this host was forgotten while away?); not published from here, not repaired: remove this host's container of it, or the other's`,
        ),
      );
  }
  if (a.o.wireguard) out.push(...(await a.o.wireguard.differences()));
  return out;
}
