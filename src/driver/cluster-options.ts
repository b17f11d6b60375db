/**
 * Which of a local network's options a cluster network takes (issue 23, item 6). Every option
 * either works across hosts (docs/cluster.md's option table says how) or is refused here by name, with
 * the reason: none may act on this host only while the user believes it holds for the network.
 * `--internal` and `mynet.multicast` work and are part of the recorded definition (every host
 * must ask the same); the options refused are those whose effect would stop at this host.
 */
import { invalid } from '../errors.js';
import { type NetworkOptions, OPTION_KEYS as K } from '../protocol/options.js';

/** What the IPAM data of the request brings besides the subnet (dockerd's IPv4Data[0]). */
export interface ClusterIpamData {
  readonly AuxAddresses?: Record<string, string> | null;
}

/** A refusal: the field it names and why (tested one by one against docs/cluster.md's table). */
export interface ClusterRefusal {
  readonly field: string;
  readonly why: string;
}

/** The refusals a request meets, in the order they are checked; empty: the options are fine. */
export function clusterRefusals(o: NetworkOptions, ipam: ClusterIpamData, ipam6?: ClusterIpamData): ClusterRefusal[] {
  const out: ClusterRefusal[] = [];
  if (!o.icc) {
    // ICC off is the bridge's own filter on each host; frames to and from the VXLAN port would
    // be filtered only where a host said so, and a host that did not would still let them in.
    out.push({
      field: `option ${K.icc}`,
      why: "ICC off is not supported on cluster networks: each host's bridge would filter only its own side of the traffic between hosts",
    });
  }
  if (o.gatewayModeIpv4 !== 'nat') {
    // Every host has the anycast gateway: traffic from outside would enter at whichever host it
    // reaches and the reply would leave through the container's own host.
    out.push({
      field: `option ${K.gwMode4}`,
      why: `"${o.gatewayModeIpv4}" is not supported on cluster networks (direct access from other hosts would enter at any host, every host has the gateway, and replies leave through the container's own); only nat is, publish ports with -p instead`,
    });
  }
  if (o.ipv6 && o.gatewayModeIpv6 !== 'nat') {
    // The same anycast gateway in IPv6 (dual stack): the same reason as for IPv4.
    out.push({
      field: `option ${K.gwMode6}`,
      why: `"${o.gatewayModeIpv6}" is not supported on cluster networks (every host has the IPv6 gateway, so traffic from outside would enter at any host and replies leave through the container's own); only nat is`,
    });
  }
  if (!o.dns) {
    // Remote containers' names are served from etcd on every host whatever this option says.
    out.push({
      field: `option ${K.dns}`,
      why: "false is not supported on cluster networks: every host serves the names of the network's containers on every host",
    });
  }
  for (const [field, d] of [
    ['IPv4Data[0].AuxAddresses', ipam],
    ['IPv6Data[0].AuxAddresses', ipam6],
  ] as const) {
    const aux = Object.keys(d?.AuxAddresses ?? {});
    // dockerd reserves them before the network is bound to its cluster: in this host's pool only,
    // so another host could give one of them to a container.
    if (aux.length > 0)
      out.push({
        field,
        why: `--aux-address (${aux.slice(0, 3).join(', ')}) is not supported on cluster networks: dockerd reserves those addresses on this host only, and another host could give them to a container`,
      });
  }
  return out;
}

/** Refuses the first option a cluster network does not take (INVALID_REQUEST naming it). */
export function checkClusterOptions(o: NetworkOptions, ipam: ClusterIpamData, ipam6?: ClusterIpamData): void {
  const first = clusterRefusals(o, ipam, ipam6)[0];
  if (first) throw invalid(first.field, first.why);
}
