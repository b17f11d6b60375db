/**
 * The names mynet's DNS serves, built from the containers Docker reports (pure):
 *   <container>.<network>.<zone> and <alias>.<network>.<zone> → the container's addresses on that network
 *   <container>.<zone>                                       → its addresses on every mynet network
 *   PTR of each container address                             → <container>.<network>.<zone>
 *   <container> and <alias>, one label, of a cluster network    → its addresses on every host (bare.ts)
 * A cluster network's containers have their names under the cluster's name too, so that
 * `<name>.<cluster>.<zone>` holds this host's containers with the other hosts' ones.
 * Names are case-insensitive. Names outside the zone are refused: this is not an open resolver.
 */
import { NAME_LABEL } from '../rules/names.js';
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
}

export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly networks: readonly ContainerNet[];
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

export class NameTable {
  private readonly forward = new Map<string, { a: Set<string>; aaaa: Set<string> }>();
  private readonly reverse = new Map<string, string>();
  private readonly bare = new BareNames();

  constructor(
    readonly zone: string,
    containers: readonly ContainerInfo[],
  ) {
    const z = zone.toLowerCase().replace(/\.$/, '');
    const add = (name: string, n: ContainerNet): void => {
      const e = this.forward.get(name) ?? { a: new Set<string>(), aaaa: new Set<string>() };
      if (n.ipv4) e.a.add(n.ipv4);
      if (n.ipv6) e.aaaa.add(n.ipv6);
      this.forward.set(name, e);
    };
    for (const c of containers) {
      const cname = c.name.replace(/^\//, '').toLowerCase();
      for (const n of c.networks) {
        const net = n.networkName.toLowerCase();
        // Docker names allow dots; a name that is not one DNS label is left out rather than misread.
        if (!NAME_LABEL.test(net)) continue;
        const names = new Set([cname, ...n.aliases.map((x) => x.toLowerCase())].filter((x) => NAME_LABEL.test(x)));
        const cluster = n.cluster?.toLowerCase();
        for (const x of names) {
          add(`${x}.${net}.${z}`, n);
          if (cluster && cluster !== net && NAME_LABEL.test(cluster)) add(`${x}.${cluster}.${z}`, n);
          if (cluster) this.bare.add(x, cluster, n.ipv4, n.ipv6);
        }
        if (NAME_LABEL.test(cname)) {
          add(`${cname}.${z}`, n);
          for (const ip of [n.ipv4, n.ipv6]) {
            const r = ip ? reverseName(ip) : undefined;
            if (r && !this.reverse.has(r)) this.reverse.set(r, `${cname}.${net}.${z}`);
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
