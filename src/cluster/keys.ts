/**
 * The key layout in etcd, in one place. Everything mynet writes is under PREFIX; the "v1" is the
 * layout's version, so a later layout can live beside it during an upgrade.
 *
 *   /mynet/v1/networks/<cluster>            network definition (create-if-absent)
 *   /mynet/v1/vnis/<vni>                    which cluster holds a VXLAN id (same transaction)
 *   /mynet/v1/addresses/<cluster>/<ip>      address claim (never on a lease)
 *   /mynet/v1/endpoints/<cluster>/<id>      endpoint record (never on a lease)
 *   /mynet/v1/nodes/<name>                  node presence (on a ~10 s lease)
 *   /mynet/v1/policies/<cluster>/<name>     network policy (issue 25; create-or-replace)
 *   /mynet/v1/members/<cluster>/<node>      a host has the network (finding 21; never on a lease)
 *
 * Names are checked before they become keys, so no name can reach another's subtree ("/", "..").
 */
import { invalid } from '../errors.js';
import { formatIp, parseIp } from '../ip/address.js';
import { CLUSTER_NAME, ID, NODE_NAME, POLICY_NAME, checkClusterName, checkId, checkNodeName, checkPolicyName } from '../rules/names.js';

export const PREFIX = '/mynet/v1/';

/** The canonical text of an address (no prefix length), so one address has one key. */
export function canonicalIp(field: string, text: string): string {
  const a = parseIp(text);
  if (!a) throw invalid(field, `"${text.slice(0, 80)}" is not an IP address`);
  return formatIp(a);
}

export const keys = {
  networks: (): string => `${PREFIX}networks/`,
  network: (cluster: string): string => `${PREFIX}networks/${checkClusterName('cluster', cluster)}`,
  vni: (vni: number): string => `${PREFIX}vnis/${vni}`,
  addresses: (cluster: string): string => `${PREFIX}addresses/${checkClusterName('cluster', cluster)}/`,
  address: (cluster: string, ip: string): string => `${keys.addresses(cluster)}${canonicalIp('address', ip)}`,
  endpoints: (cluster: string): string => `${PREFIX}endpoints/${checkClusterName('cluster', cluster)}/`,
  endpoint: (cluster: string, id: string): string => `${keys.endpoints(cluster)}${checkId('endpoint', id)}`,
  nodes: (): string => `${PREFIX}nodes/`,
  node: (name: string): string => `${PREFIX}nodes/${checkNodeName('node', name)}`,
  policies: (cluster: string): string => `${PREFIX}policies/${checkClusterName('cluster', cluster)}/`,
  policy: (cluster: string, name: string): string => `${keys.policies(cluster)}${checkPolicyName('policy', name)}`,
  members: (cluster: string): string => `${PREFIX}members/${checkClusterName('cluster', cluster)}/`,
  member: (cluster: string, node: string): string => `${keys.members(cluster)}${checkNodeName('node', node)}`,
} as const;

export type KeyKind = 'network' | 'vni' | 'address' | 'endpoint' | 'node' | 'policy' | 'member';

/** What a key under PREFIX names, or undefined for a key mynet does not write. */
export function parseKey(key: string): { kind: KeyKind; cluster?: string; name: string } | undefined {
  if (!key.startsWith(PREFIX)) return undefined;
  const parts = key.slice(PREFIX.length).split('/');
  const [kind, a, b] = parts;
  if (parts.length === 2 && kind === 'networks' && a && CLUSTER_NAME.test(a)) return { kind: 'network', name: a };
  if (parts.length === 2 && kind === 'vnis' && a && /^\d{1,8}$/.test(a)) return { kind: 'vni', name: a };
  if (parts.length === 2 && kind === 'nodes' && a && NODE_NAME.test(a)) return { kind: 'node', name: a };
  if (parts.length === 3 && kind === 'addresses' && a && CLUSTER_NAME.test(a) && b && parseIp(b))
    return { kind: 'address', cluster: a, name: b };
  if (parts.length === 3 && kind === 'endpoints' && a && CLUSTER_NAME.test(a) && b && ID.test(b))
    return { kind: 'endpoint', cluster: a, name: b };
  if (parts.length === 3 && kind === 'policies' && a && CLUSTER_NAME.test(a) && b && POLICY_NAME.test(b))
    return { kind: 'policy', cluster: a, name: b };
  if (parts.length === 3 && kind === 'members' && a && CLUSTER_NAME.test(a) && b && NODE_NAME.test(b))
    return { kind: 'member', cluster: a, name: b };
  return undefined;
}
