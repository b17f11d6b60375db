/**
 * The names mynet's DNS serves, built from the containers Docker reports (pure):
 *   <container>.<network>.<zone> and <alias>.<network>.<zone> → the container's addresses on that network
 *   <container>.<zone>                                       → its addresses on every mynet network
 *   PTR of each container address                             → <container>.<network>.<zone>
 *   <container> and <alias>, one label, of a cluster network    → its addresses on every host (bare.ts)
 * A cluster network's containers have their names under the cluster's name too, so that
 * `<name>.<cluster>.<zone>` holds this host's containers with the other hosts' ones.
 * The other hosts' containers (`others`) are served as this host's own of the same network are:
 * under the name this host's Docker gives the network (a cluster network has one name per host:
 * compose calls it `<project>_blue`), their PTR included (issue 23). Docker's embedded DNS
 * answers a local container's PTR with `<container>.<network>.` and forwards every other one to
 * the host's nameservers, mynet's among them; mynet answers inside its zone, so that the name a
 * PTR gives resolves forward here too (outside it mynet would answer for the whole host).
 * Names are case-insensitive. Names outside the zone are refused: this is not an open resolver.
 */
import { NAME_LABEL } from '../rules/names.js';
import type { Labels } from '../rules/label.js';
import { parseIp } from '../ip/address.js';
import { BareNames, rotate } from './bare.js';

export interface ContainerNet {
  readonly networkId: string;
  readonly networkName: string;
  readonly ipv4?: string;
  readonly ipv6?: string;
  readonly aliases: readonly string[];
  /** The cluster name of a cluster network (`-o mynet.cluster`); absent on a host-local one. */
  readonly cluster?: string;
  /** Docker's endpoint id on that network (the driver's EndpointID), when Docker gave one. */
  readonly endpointId?: string;
}

export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly networks: readonly ContainerNet[];
  /** Its `mynet.label.*` Docker labels that check (rules/label.ts labelsFromContainer), for network policy. */
  readonly labels?: Labels;
}

export type Lookup =
  | { readonly kind: 'answer'; readonly a: readonly string[]; readonly aaaa: readonly string[]; readonly ptr: readonly string[] }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'refused' };

/** The reverse name of an address ("4.3.2.1.in-addr.arpa", nibbles for IPv6). */
export function reverseName(addr: string): string | undefined {
  const a = parseIp(addr);
  if (!a) return undefined;
  if (a.family === 4) return `${addr.split('.').reverse().join('.')}.in-addr.arpa`;
  return `${a.value.toString(16).padStart(32, '0').split('').reverse().join('.')}.ip6.arpa`;
}

/** What this host's Docker names each network its containers are on (network id → name). */
function hereNames(containers: readonly ContainerInfo[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of containers) for (const n of c.networks) if (!out.has(n.networkId)) out.set(n.networkId, n.networkName);
  return out;
}

export class NameTable {
  private readonly forward = new Map<string, { a: Set<string>; aaaa: Set<string> }>();
  private readonly reverse = new Map<string, string>();
  private readonly bare = new BareNames();

  constructor(
    readonly zone: string,
    containers: readonly ContainerInfo[],
    others: readonly ContainerInfo[] = [],
  ) {
    const z = zone.toLowerCase().replace(/\.$/, '');
    const add = (name: string, n: ContainerNet): void => {
      const e = this.forward.get(name) ?? { a: new Set<string>(), aaaa: new Set<string>() };
      if (n.ipv4) e.a.add(n.ipv4);
      if (n.ipv6) e.aaaa.add(n.ipv6);
      this.forward.set(name, e);
    };
    const here = hereNames(containers);
    const renamed = others.map((c) => ({
      ...c,
      networks: c.networks.map((n) => ({ ...n, networkName: here.get(n.networkId) ?? n.networkName })),
    }));
    for (const c of [...containers, ...renamed]) {
      const cname = c.name.replace(/^\//, '').toLowerCase();
      for (const n of c.networks) {
        // Docker names allow dots; a name that is not one DNS label is left out rather than misread
        // (a cluster network's names under its cluster's name and bare stay: those are labels).
        const net = NAME_LABEL.test(n.networkName.toLowerCase()) ? n.networkName.toLowerCase() : undefined;
        const cluster = n.cluster !== undefined && NAME_LABEL.test(n.cluster.toLowerCase()) ? n.cluster.toLowerCase() : undefined;
        const under = net ?? cluster;
        if (under === undefined) continue;
        const names = new Set([cname, ...n.aliases.map((x) => x.toLowerCase())].filter((x) => NAME_LABEL.test(x)));
        for (const x of names) {
          if (net) add(`${x}.${net}.${z}`, n);
          if (cluster && cluster !== net) add(`${x}.${cluster}.${z}`, n);
          if (cluster) this.bare.add(x, cluster, n.ipv4, n.ipv6);
        }
        if (NAME_LABEL.test(cname)) {
          add(`${cname}.${z}`, n);
          for (const ip of [n.ipv4, n.ipv6]) {
            const r = ip ? reverseName(ip) : undefined;
            if (r && !this.reverse.has(r)) this.reverse.set(r, `${cname}.${under}.${z}`);
          }
        }
      }
    }
    this.zoneName = z;
  }

  private readonly zoneName: string;

  get size(): number {
    return this.forward.size;
  }

  /** `turn` rotates the addresses of a name held by several containers (bare.ts). */
  lookup(qname: string, turn = 0): Lookup {
    const name = qname.toLowerCase().replace(/\.$/, '');
    if (name.endsWith('.in-addr.arpa') || name.endsWith('.ip6.arpa')) {
      const target = this.reverse.get(name);
      return target ? { kind: 'answer', a: [], aaaa: [], ptr: [target] } : { kind: 'refused' };
    }
    if (name !== this.zoneName && !name.includes('.')) {
      const b = this.bare.lookup(name);
      return b.kind === 'answer' ? { kind: 'answer', a: rotate(b.a, turn), aaaa: rotate(b.aaaa, turn), ptr: [] } : { kind: 'refused' };
    }
    if (name !== this.zoneName && !name.endsWith(`.${this.zoneName}`)) return { kind: 'refused' };
    const e = this.forward.get(name);
    if (e) return { kind: 'answer', a: rotate([...e.a].sort(), turn), aaaa: rotate([...e.aaaa].sort(), turn), ptr: [] };
    // The zone apex exists (no records of its own); anything else unknown does not.
    return name === this.zoneName ? { kind: 'answer', a: [], aaaa: [], ptr: [] } : { kind: 'nxdomain' };
  }
}
