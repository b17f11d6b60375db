/**
 * A real Plugin wired to a throwaway namespace, and the request sequences dockerd sends
 * (shapes from shared/fixtures/dockerd-20.10/requests.jsonl): RequestPool +
 * RequestAddress(gateway) before CreateNetwork; CreateEndpoint, Join; then the container side is
 * moved, renamed and addressed by dockerd, which `plugContainer` imitates.
 */
import type { Logger } from 'pino';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { HostPorts, Proto } from '../../src/decision.js';
import type { CreateNetworkRequest } from '../../src/driver/network.js';
import type { Executor } from '../../src/host/executor.js';
import type { Background } from '../../src/host/background.js';
import { kernelSnapshot } from '../../src/host/kernel-snapshot.js';
import { linkOwner, ourLinks } from '../../src/host/probe.js';
import { Plugin } from '../../src/plugin.js';
import type { ClusterPort } from '../../src/multihost/agent.js';
import { State } from '../../src/driver/state.js';
import type { StateStore } from '../../src/store/state-store.js';
import { type TestNetns, dockerId, silentLog as log } from '../helpers/netns.js';
import { testPlugin } from '../helpers/test-plugin.js';

import { ClusterAgent } from '../../src/multihost/agent.js';
import { planeView } from '../../src/multihost/plane.js';

export { log };

export interface PluginOptions {
  readonly state?: State;
  readonly store?: StateStore;
  /** Wraps the namespace's executor (failure injection). */
  readonly exec?: Executor;
  /** What the host uses (default: nothing listens, ephemeral range 49152-60999). */
  readonly hostPorts?: (protos: readonly Proto[]) => Promise<HostPorts>;
  /** Run `later` steps after the answer, as the plugin does (host/background.ts). */
  readonly background?: Background;
  /** The cluster agent (multi-host networks). */
  readonly cluster?: ClusterPort;
}

export function buildPlugin(ns: TestNetns, o: PluginOptions = {}): Plugin {
  const exec = ns.exec;
  return testPlugin<Executor, StateStore>({
    ...o,
    // As main.ts wires it: the reconciler reads what the agent's data planes last knew.
    ...(o.cluster instanceof ClusterAgent
      ? {
          dataPlane: () => planeView((o.cluster as ClusterAgent).planes),
          clusterFindings: (repair: boolean, l: Logger) => (o.cluster as ClusterAgent).findings(repair, l),
        }
      : {}),
    exec: o.exec ?? exec,
    linkOwner: (n, l) => linkOwner(exec, n, l),
    ourLinks: (l) => ourLinks(exec, l),
    snapshot: (l) => kernelSnapshot(exec, l),
    hostPorts: o.hostPorts ?? ((): Promise<HostPorts> => Promise.resolve({ listening: () => [], ephemeral: [49152, 60999] })),
  }).plugin;
}

export interface NetSpec {
  /** com.docker.network.generic options (strings, as `docker network create -o` sends them). */
  readonly generic?: Record<string, string>;
  /** An IPv6 pool to request (and enable IPv6), e.g. "fd00:1::/64". */
  readonly v6Pool?: string;
  /** An explicit IPv4 pool; default: the next automatic one from 10.200.0.0/16/24. */
  readonly v4Pool?: string;
  /** Top-level CreateNetwork options beside the generic map, e.g. com.docker.network.internal: true. */
  readonly options?: Record<string, unknown>;
}

export interface CreatedNetwork {
  readonly id: string;
  readonly request: CreateNetworkRequest;
  readonly gateway4: string;
  readonly gateway6?: string;
  readonly pool4: string;
  readonly poolId4: string;
}

/** RequestPool + RequestAddress(gateway) for each family, as dockerd does before CreateNetwork. */
export async function networkRequest(plugin: Plugin, spec: NetSpec = {}): Promise<CreatedNetwork> {
  const gw = { RequestAddressType: 'com.docker.network.gateway' };
  const p4 = await plugin.requestPool({ AddressSpace: '', Pool: spec.v4Pool ?? '', SubPool: '', Options: {}, V6: false }, log);
  const g4 = await plugin.requestAddress({ PoolID: p4.PoolID, Address: '', Options: gw }, log);
  let g6: string | undefined;
  let pool6: string | undefined;
  if (spec.v6Pool) {
    const p6 = await plugin.requestPool({ AddressSpace: '', Pool: spec.v6Pool, SubPool: '', Options: {}, V6: true }, log);
    g6 = (await plugin.requestAddress({ PoolID: p6.PoolID, Address: '', Options: gw }, log)).Address;
    pool6 = p6.Pool;
  }
  const id = dockerId();
  const request: CreateNetworkRequest = {
    NetworkID: id,
    Options: {
      'com.docker.network.enable_ipv6': !!spec.v6Pool,
      ...(spec.options ?? {}),
      'com.docker.network.generic': { ...(spec.generic ?? {}) },
    },
    IPv4Data: [{ AddressSpace: 'mynet-local', Gateway: g4.Address, Pool: p4.Pool }],
    IPv6Data: pool6 && g6 ? [{ AddressSpace: 'mynet-local', Gateway: g6, Pool: pool6 }] : [],
  };
  return { id, request, gateway4: g4.Address, ...(g6 ? { gateway6: g6 } : {}), pool4: p4.Pool, poolId4: p4.PoolID };
}

export async function createNetwork(plugin: Plugin, spec: NetSpec = {}): Promise<CreatedNetwork> {
  const n = await networkRequest(plugin, spec);
  await plugin.createNetwork(n.request, log);
  return n;
}

export interface CreatedEndpoint {
  readonly id: string;
  readonly networkId: string;
  readonly address: string;
  readonly addressV6?: string;
  readonly mac: string;
}

/** RequestAddress + CreateEndpoint (+ Join), returning what dockerd would then configure. */
export async function createEndpoint(
  plugin: Plugin,
  net: CreatedNetwork,
  o: { mac?: string; addressV6?: string; join?: boolean } = {},
): Promise<CreatedEndpoint & { srcName: string; dstPrefix: string; gateway?: string; gatewayV6?: string }> {
  const a = await plugin.requestAddress({ PoolID: net.poolId4, Address: '', Options: {} }, log);
  const id = dockerId();
  const res = await plugin.createEndpoint(
    {
      NetworkID: net.id,
      EndpointID: id,
      Interface: { Address: a.Address, AddressIPv6: o.addressV6 ?? '', MacAddress: o.mac ?? '' },
      Options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] },
    },
    log,
  );
  const mac = o.mac ?? res.Interface?.MacAddress;
  if (!mac) throw new Error('CreateEndpoint without a MAC in the request must return one');
  const base = { id, networkId: net.id, address: a.Address, ...(o.addressV6 ? { addressV6: o.addressV6 } : {}), mac };
  if (o.join === false) return { ...base, srcName: '', dstPrefix: '' };
  const j = await plugin.join({ NetworkID: net.id, EndpointID: id, SandboxKey: `/var/run/docker/netns/${id.slice(0, 12)}` }, log);
  return {
    ...base,
    srcName: j.InterfaceName.SrcName,
    dstPrefix: j.InterfaceName.DstPrefix,
    ...(j.Gateway ? { gateway: j.Gateway } : {}),
    ...(j.GatewayIPv6 ? { gatewayV6: j.GatewayIPv6 } : {}),
  };
}

/**
 * What dockerd does after Join: move the container end into the sandbox, rename it
 * `<DstPrefix>0`, give it its addresses and bring it up, and set the default route.
 */
export async function plugContainer(host: TestNetns, box: TestNetns, ep: Awaited<ReturnType<typeof createEndpoint>>): Promise<string> {
  const ifname = `${ep.dstPrefix}0`;
  await host.run(['ip', 'link', 'set', 'dev', ep.srcName, 'netns', box.name]);
  await box.run(['ip', 'link', 'set', 'dev', ep.srcName, 'name', ifname]);
  await box.run(['ip', 'addr', 'add', ep.address, 'dev', ifname]);
  // nodad, as dockerd does for container addresses: the address is usable at once.
  if (ep.addressV6) await box.run(['ip', 'addr', 'add', ep.addressV6, 'dev', ifname, 'nodad']);
  await box.run(['ip', 'link', 'set', 'dev', ifname, 'up']);
  if (ep.gateway) await box.run(['ip', 'route', 'add', 'default', 'via', ep.gateway]);
  return ifname;
}

/** The plain address of "addr/len". */
export const ipOf = (cidr: string): string => cidr.slice(0, cidr.indexOf('/'));

/**
 * Makes the ip/ip6 filter tables exist, as they do on any host with a firewall. In a pristine
 * namespace they do not, and iptables-nft creates them (with an empty FORWARD base chain, policy
 * ACCEPT) the first time our hook is written; removing the hook rightly leaves a table we do not
 * own, so a "back to the start" comparison needs the tables present from the start.
 */
export async function hostLikeFilter(ns: TestNetns): Promise<void> {
  for (const cmd of ['iptables', 'ip6tables']) await ns.run([cmd, '-w', '-P', 'FORWARD', 'ACCEPT']);
  await rawPrerouting(ns);
}

/**
 * Makes the IPv4 raw table's PREROUTING exist, as on a host where dockerd (or any firewall) has
 * used it. iptables-nft makes `table ip raw` on the first rule written there (mynet's 127/8
 * guard, host/forward-hook.ts); that table is not ours, so removing the guard rightly leaves it.
 */
async function rawPrerouting(ns: TestNetns): Promise<void> {
  const rule = ['PREROUTING', '-m', 'comment', '--comment', 'mnt-setup', '-j', 'ACCEPT'];
  await ns.run(['iptables', '-w', '-t', 'raw', '-A', ...rule]);
  await ns.run(['iptables', '-w', '-t', 'raw', '-D', ...rule]);
}

/** Sets up a namespace's filter tables as dockerd leaves them: DOCKER-USER first, then its own chain, policy DROP. */
export async function dockerLikeFirewall(ns: TestNetns): Promise<void> {
  for (const cmd of ['iptables', 'ip6tables']) {
    await ns.run([cmd, '-w', '-N', 'DOCKER-USER']);
    await ns.run([cmd, '-w', '-A', 'DOCKER-USER', '-j', 'RETURN']);
    await ns.run([cmd, '-w', '-N', 'DOCKER-FORWARD']);
    await ns.run([cmd, '-w', '-P', 'FORWARD', 'DROP']);
    await ns.run([cmd, '-w', '-A', 'FORWARD', '-j', 'DOCKER-USER']);
    await ns.run([cmd, '-w', '-A', 'FORWARD', '-j', 'DOCKER-FORWARD']);
  }
  await rawPrerouting(ns);
}

/** The `-A FORWARD` lines of one family's filter table. */
export async function forwardRules(ns: TestNetns, save: 'iptables-save' | 'ip6tables-save'): Promise<string[]> {
  return (await ns.run([save, '-t', 'filter'])).split('\n').filter((l) => l.startsWith('-A FORWARD '));
}

/** `ping`, or busybox's when iputils is not installed. */
const PING: readonly string[] = (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).some((d) => existsSync(join(d, 'ping')))
  ? ['ping']
  : ['busybox', 'ping'];

/**
 * Whether `from` reaches `addr` with ICMP echo. Reachability is retried a few times (a fresh
 * bridge port or neighbour entry can lose the first packet); unreachability is one try, as a
 * packet dropped by the firewall is dropped every time.
 */
export async function pings(from: TestNetns, addr: string, expectReachable = true): Promise<boolean> {
  const tries = expectReachable ? 5 : 1;
  for (let i = 0; i < tries; i++) {
    if (await from.succeeds([...PING, '-c', '1', '-W', '1', addr])) return true;
  }
  return false;
}

/** ProgramExternalConnectivity with `com.docker.network.portmap` entries, as dockerd sends it after Join. */
export function publish(plugin: Plugin, ep: { id: string; networkId: string }, portmap: readonly object[]): Promise<Record<string, never>> {
  const exposed = portmap.map((b) => ({ Proto: (b as { Proto: number }).Proto, Port: (b as { Port: number }).Port }));
  return plugin.programExternalConnectivity(
    {
      NetworkID: ep.networkId,
      EndpointID: ep.id,
      Options: { 'com.docker.network.endpoint.exposedports': exposed, 'com.docker.network.portmap': portmap },
    },
    log,
  );
}

/** What dockerd sends when a container stops: Revoke, Leave, DeleteEndpoint (and the address goes back). */
export async function removeEndpoint(plugin: Plugin, net: CreatedNetwork, ep: CreatedEndpoint): Promise<void> {
  const req = { NetworkID: ep.networkId, EndpointID: ep.id };
  await plugin.revokeExternalConnectivity(req, log);
  await plugin.leave(req, log);
  await plugin.deleteEndpoint(req, log);
  await plugin.releaseAddress({ PoolID: net.poolId4, Address: ipOf(ep.address) }, log);
}
