/**
 * Bare names of cluster networks (issue 23), pure. dockerd's embedded DNS answers a container's
 * lookup of a name it knows on its own host and forwards the rest to the host's nameservers,
 * mynet's among them, as the name was asked (`web.`, one label: container resolv.conf has
 * `ndots:0`, and dockerd forwards single-label names unless the user set ndots). A forwarded
 * query comes from dockerd in the host's namespace, so mynet cannot tell which container, nor
 * which network, asks: a bare name is answered when it is held on exactly one cluster network
 * (by the containers of every present host, local ones included), and refused when it is held on
 * several, or on none (the host's next nameserver then answers, as for any name not mynet's).
 * Host-local networks' names are never answered bare: dockerd alone decides who sees those.
 */
import { NAME_LABEL } from '../rules/names.js';

export interface Addresses {
  readonly a: ReadonlySet<string>;
  readonly aaaa: ReadonlySet<string>;
}

export type BareLookup =
  | { readonly kind: 'answer'; readonly cluster: string; readonly a: readonly string[]; readonly aaaa: readonly string[] }
  | { readonly kind: 'refused'; readonly why: 'not a bare name' | 'unknown' | 'on several cluster networks' };

export class BareNames {
  /** label → cluster → addresses */
  private readonly names = new Map<string, Map<string, { a: Set<string>; aaaa: Set<string> }>>();

  add(label: string, cluster: string, ipv4: string | undefined, ipv6: string | undefined): void {
    const name = label.toLowerCase();
    if (!NAME_LABEL.test(name)) return;
    const byCluster = this.names.get(name) ?? new Map<string, { a: Set<string>; aaaa: Set<string> }>();
    const e = byCluster.get(cluster) ?? { a: new Set<string>(), aaaa: new Set<string>() };
    if (ipv4) e.a.add(ipv4);
    if (ipv6) e.aaaa.add(ipv6);
    byCluster.set(cluster, e);
    this.names.set(name, byCluster);
  }

  lookup(qname: string): BareLookup {
    const name = qname.toLowerCase().replace(/\.$/, '');
    if (name.includes('.') || !NAME_LABEL.test(name)) return { kind: 'refused', why: 'not a bare name' };
    const byCluster = this.names.get(name);
    if (!byCluster) return { kind: 'refused', why: 'unknown' };
    if (byCluster.size > 1) return { kind: 'refused', why: 'on several cluster networks' };
    const [cluster, e] = [...byCluster][0] as [string, Addresses];
    return { kind: 'answer', cluster, a: [...e.a].sort(), aaaa: [...e.aaaa].sort() };
  }
}

/**
 * Every address of a name, the first one moved on by one each time (`turn`): as dockerd
 * shuffles an alias's addresses, so clients that take the first one spread over all of them.
 */
export function rotate<T>(xs: readonly T[], turn: number): T[] {
  if (xs.length < 2) return [...xs];
  const k = ((turn % xs.length) + xs.length) % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}
