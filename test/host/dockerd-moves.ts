/**
 * What one host's dockerd sends its plugin, over the socket, in dockerd's order (shapes from
 * shared/fixtures/dockerd-20.10/requests.jsonl), and what dockerd does with the container end of
 * the veth (plugContainer in plugin-fixture.ts does the same for an in-process Plugin):
 *
 *   docker network create -d mynet --ipam-driver mynet --subnet S [-o mynet.cluster=C] N
 *     RequestPool, RequestAddress(gateway), CreateNetwork           -> createNetwork
 *   docker run [--ip A] --network N ...
 *     RequestAddress, CreateEndpoint, Join, (sandbox), ProgramExternalConnectivity -> runContainer
 *   docker rm -f
 *     RevokeExternalConnectivity, Leave, (sandbox), DeleteEndpoint, ReleaseAddress -> removeContainer
 *   docker network rm N
 *     DeleteNetwork, ReleasePool                                    -> removeNetwork
 *
 * A "container" is a namespace holding the renamed, addressed veth end with a default route.
 */
import { createNetns, dockerId, type TestNetns } from '../helpers/netns.js';
import type { FakeDocker } from './fake-docker.js';
import { post } from './plugin-client.js';

export const TAG = 'mnt-mhh-';

/** The host side of one dockerd: its namespace and its plugin's socket. */
export interface DockerHost {
  readonly label: string;
  /** Its underlay address (where VXLAN for its containers goes). */
  readonly address: string;
  readonly ns: TestNetns;
  readonly socket: string;
  /** What this host's dockerd tells API clients (names), when the test has one. */
  readonly docker?: FakeDocker;
  /** The name prefix of what its tests create (containers' namespaces, names); default TAG. */
  readonly tag?: string;
}

export interface Network {
  readonly host: DockerHost;
  /** dockerd's id: each host's dockerd makes its own for the same cluster network. */
  readonly id: string;
  /** Its name in `docker network create` (the same on every host). */
  readonly name: string;
  readonly poolId: string;
  readonly pool: string;
  /** "addr/len", as RequestAddress answered. */
  readonly gateway: string;
  readonly cluster?: string;
}

export interface Container {
  readonly host: DockerHost;
  readonly net: Network;
  /** dockerd's container id and `--name` (unnamed: none). */
  readonly containerId: string;
  readonly name?: string;
  readonly endpointId: string;
  /** "addr/len" */
  readonly cidr: string;
  readonly ip: string;
  readonly mac: string;
  /** The veth end's name in the host namespace before it moved (dockerd's SrcName). */
  readonly srcName: string;
  /** Its name inside the container (`<DstPrefix>0`). */
  readonly ifname: string;
  readonly box: TestNetns;
}

const ipOf = (cidr: string): string => cidr.split('/')[0] as string;

export interface NetworkSpec {
  readonly subnet: string;
  /** The network's name (default: the cluster's, else "local"). */
  readonly name?: string;
  /** -o mynet.cluster=... (absent: a host-local network). */
  readonly cluster?: string;
  /** More -o options (mynet.vni, ...). */
  readonly options?: Readonly<Record<string, string>>;
}

/** The calls before CreateNetwork; the returned `create` sends it (a race test holds it back). */
export async function prepareNetwork(h: DockerHost, spec: NetworkSpec): Promise<{ net: Network; create: () => Promise<unknown> }> {
  const p = await post<{ PoolID: string; Pool: string }>(h.socket, '/IpamDriver.RequestPool', {
    AddressSpace: 'mynet-local',
    Pool: spec.subnet,
    SubPool: '',
    Options: {},
    V6: false,
  });
  const g = await post<{ Address: string }>(h.socket, '/IpamDriver.RequestAddress', {
    PoolID: p.PoolID,
    Address: '',
    Options: { RequestAddressType: 'com.docker.network.gateway' },
  });
  const net: Network = {
    host: h,
    id: dockerId(),
    name: spec.name ?? spec.cluster ?? 'local',
    poolId: p.PoolID,
    pool: p.Pool,
    gateway: g.Address,
    ...(spec.cluster ? { cluster: spec.cluster } : {}),
  };
  const generic = { ...(spec.cluster ? { 'mynet.cluster': spec.cluster } : {}), ...(spec.options ?? {}) };
  const create = (): Promise<unknown> =>
    post(h.socket, '/NetworkDriver.CreateNetwork', {
      NetworkID: net.id,
      Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': generic },
      IPv4Data: [{ AddressSpace: 'mynet-local', Gateway: net.gateway, Pool: net.pool }],
      IPv6Data: [],
    });
  return { net, create };
}

/**
 * `docker network create`: the whole sequence. A refused CreateNetwork gives the pool back, as
 * dockerd does when the driver fails (ReleaseAddress of the gateway, ReleasePool).
 */
export async function createNetwork(h: DockerHost, spec: NetworkSpec): Promise<Network> {
  const { net, create } = await prepareNetwork(h, spec);
  try {
    await create();
  } catch (err) {
    await releasePool(net);
    throw err;
  }
  return net;
}

export async function releasePool(net: Network): Promise<void> {
  await post(net.host.socket, '/IpamDriver.ReleaseAddress', { PoolID: net.poolId, Address: ipOf(net.gateway) });
  await post(net.host.socket, '/IpamDriver.ReleasePool', { PoolID: net.poolId });
}

export async function removeNetwork(net: Network): Promise<void> {
  await post(net.host.socket, '/NetworkDriver.DeleteNetwork', { NetworkID: net.id });
  await releasePool(net);
}

/** RequestAddress as `docker run [--ip]` sends it; answers "addr/len". */
export async function requestAddress(net: Network, ip?: string): Promise<string> {
  const r = await post<{ Address: string }>(net.host.socket, '/IpamDriver.RequestAddress', {
    PoolID: net.poolId,
    Address: ip ?? '',
    Options: null,
  });
  return r.Address;
}

/** `docker run --network net [--ip ip]`: address, endpoint, join, the sandbox, external connectivity. */
export async function runContainer(
  net: Network,
  o: { ip?: string; name?: string; labels?: Readonly<Record<string, string>> } = {},
): Promise<Container> {
  const h = net.host;
  const cidr = await requestAddress(net, o.ip);
  const endpointId = dockerId();
  const ep = { NetworkID: net.id, EndpointID: endpointId };
  let created: { Interface?: { MacAddress?: string } };
  try {
    created = await post(h.socket, '/NetworkDriver.CreateEndpoint', {
      ...ep,
      Interface: { Address: cidr, AddressIPv6: '', MacAddress: '' },
      Options: {
        'com.docker.network.endpoint.exposedports': [],
        'com.docker.network.portmap': [],
        // `--network name=…,driver-opt=mynet.label.app=web` (issue 25)
        ...Object.fromEntries(Object.entries(o.labels ?? {}).map(([k, v]) => [`mynet.label.${k}`, v])),
      },
    });
  } catch (err) {
    // dockerd gives the address back when the driver refuses the endpoint.
    await post(h.socket, '/IpamDriver.ReleaseAddress', { PoolID: net.poolId, Address: ipOf(cidr) });
    throw err;
  }
  const mac = created.Interface?.MacAddress;
  if (!mac) throw new Error('CreateEndpoint without a MAC in the request must answer one');
  const j = await post<{ InterfaceName: { SrcName: string; DstPrefix: string }; Gateway?: string }>(h.socket, '/NetworkDriver.Join', {
    ...ep,
    SandboxKey: `/var/run/docker/netns/${endpointId.slice(0, 12)}`,
    Options: {},
  });
  const box = await createNetns({ prefix: `${h.tag ?? TAG}c-` });
  const ifname = `${j.InterfaceName.DstPrefix}0`;
  await h.ns.run(['ip', 'link', 'set', 'dev', j.InterfaceName.SrcName, 'netns', box.name]);
  await box.run(['ip', 'link', 'set', 'dev', j.InterfaceName.SrcName, 'name', ifname]);
  await box.run(['ip', 'addr', 'add', cidr, 'dev', ifname]);
  await box.run(['ip', 'link', 'set', 'dev', ifname, 'up']);
  if (j.Gateway) await box.run(['ip', 'route', 'add', 'default', 'via', j.Gateway]);
  await post(h.socket, '/NetworkDriver.ProgramExternalConnectivity', {
    ...ep,
    Options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] },
  });
  const containerId = dockerId();
  // The container runs: dockerd's API now shows it, with its name (an unnamed one gets a made-up name from dockerd).
  h.docker?.started({
    id: containerId,
    name: o.name ?? `${h.tag ?? TAG}${containerId.slice(0, 8)}`,
    networks: { [net.name]: { id: net.id, ip: ipOf(cidr) } },
  });
  return {
    host: h,
    net,
    containerId,
    ...(o.name ? { name: o.name } : {}),
    endpointId,
    cidr,
    ip: ipOf(cidr),
    mac,
    srcName: j.InterfaceName.SrcName,
    ifname,
    box,
  };
}

/**
 * `docker rm -f`: revoke, leave, the interface back to the host under its old name (as
 * libnetwork's sandbox removal does), the sandbox gone, then DeleteEndpoint and ReleaseAddress.
 * `gone`: the container's host died with it (reboot): only the calls, nothing to move.
 */
export async function removeContainer(c: Container, o: { gone?: boolean } = {}): Promise<void> {
  const s = c.host.socket;
  const ep = { NetworkID: c.net.id, EndpointID: c.endpointId };
  c.host.docker?.destroyed(c.containerId);
  await post(s, '/NetworkDriver.RevokeExternalConnectivity', ep);
  await post(s, '/NetworkDriver.Leave', ep);
  if (!o.gone) {
    await c.box.run(['ip', 'link', 'set', 'dev', c.ifname, 'down']);
    await c.box.run(['ip', 'link', 'set', 'dev', c.ifname, 'name', c.srcName]);
    await c.box.run(['ip', 'link', 'set', 'dev', c.srcName, 'netns', c.host.ns.name]);
  }
  await c.box.destroy();
  await post(s, '/NetworkDriver.DeleteEndpoint', ep);
  await post(s, '/IpamDriver.ReleaseAddress', { PoolID: c.net.poolId, Address: c.ip });
}
