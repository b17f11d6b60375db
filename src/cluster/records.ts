/**
 * The records mynet keeps in etcd: JSON with a version field, checked field by field on every
 * read like the local state (store/shape.ts), because etcd is written by every host (and by
 * any operator with etcdctl). A record that does not fit is reported with where and why, and
 * never used; a record whose key and contents disagree (another network's address under this
 * network's key) is refused too.
 */
import { parseIp } from '../ip/address.js';
import { formatCidr, parseCidr } from '../ip/cidr.js';
import { CLUSTER_NAME, parseKey } from './keys.js';
import { NODE_NAME } from './settings.js';

export const RECORD_VERSION = 1;

export interface NetworkDefinition {
  readonly v: 1;
  readonly cluster: string;
  /** Canonical IPv4 CIDR ("10.77.0.0/16"). */
  readonly subnet: string;
  /** The anycast gateway: the same address and MAC on every host's bridge. */
  readonly gateway: string;
  readonly gatewayMac: string;
  readonly vni: number;
  /** For the bridge, the VXLAN device and both veth ends (underlay MTU minus 50). */
  readonly mtu: number;
  readonly createdBy: string;
  readonly createdAt: string;
}

export interface VniRecord {
  readonly v: 1;
  readonly cluster: string;
}

export interface AddressClaim {
  readonly v: 1;
  readonly cluster: string;
  readonly address: string;
  /** The host that holds it; only this host releases it (or `mynet cluster forget`). */
  readonly node: string;
  readonly claimedAt: string;
}

export interface EndpointRecord {
  readonly v: 1;
  readonly cluster: string;
  readonly id: string;
  readonly node: string;
  /** The node's underlay address: where VXLAN frames for this endpoint go. */
  readonly underlay: string;
  /** The container's IPv4 address, without prefix length. */
  readonly address: string;
  readonly mac: string;
  /** The container's name, for DNS on every host (`web.blue.mynet`); absent when unnamed. */
  readonly name?: string;
  readonly updatedAt: string;
}

export interface NodeRecord {
  readonly v: 1;
  readonly name: string;
  readonly address: string;
  readonly startedAt: string;
}

export type Checked<T> = { readonly ok: true; readonly record: T } | { readonly ok: false; readonly problem: string };

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const HOSTNAME_ISH = /^[A-Za-z0-9]([A-Za-z0-9._ -]{0,253})?$/;

type Check = (v: unknown) => string | undefined;
const str = (re: RegExp, what: string): Check => (v) => (typeof v === 'string' && re.test(v) ? undefined : `must be ${what}`);
const ipv4: Check = (v) => (typeof v === 'string' && parseIp(v)?.family === 4 && !v.includes('/') ? undefined : 'must be an IPv4 address');
const int = (min: number, max: number): Check => (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `must be an integer from ${min} to ${max}`);
const time: Check = (v) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? undefined : 'must be an ISO time');
const subnet4: Check = (v) => {
  if (typeof v !== 'string') return 'must be an IPv4 CIDR';
  const c = parseCidr(v);
  return c.ok && c.cidr.family === 4 && formatCidr(c.cidr) === v ? undefined : 'must be a canonical IPv4 CIDR';
};
const optional = (c: Check): Check => (v) => (v === undefined ? undefined : c(v));

function checkFields(data: unknown, fields: Record<string, Check>): string | undefined {
  if (!isObject(data)) return '/ must be an object';
  if (data.v !== RECORD_VERSION) return `/v must be ${RECORD_VERSION} (this mynet reads layout v1 records only)`;
  for (const [f, c] of Object.entries(fields)) {
    const p = c(data[f]);
    if (p) return `/${f} ${p}`;
  }
  return undefined;
}

const FIELDS = {
  network: { cluster: str(CLUSTER_NAME, 'a cluster name'), subnet: subnet4, gateway: ipv4, gatewayMac: str(MAC, 'a MAC address'), vni: int(1, 16_777_215), mtu: int(576, 65_485), createdBy: str(NODE_NAME, 'a node name'), createdAt: time },
  vni: { cluster: str(CLUSTER_NAME, 'a cluster name') },
  address: { cluster: str(CLUSTER_NAME, 'a cluster name'), address: ipv4, node: str(NODE_NAME, 'a node name'), claimedAt: time },
  endpoint: {
    cluster: str(CLUSTER_NAME, 'a cluster name'), id: str(/^[0-9a-f]{12,64}$/, 'an endpoint id'), node: str(NODE_NAME, 'a node name'), underlay: ipv4,
    address: ipv4, mac: str(MAC, 'a MAC address'), name: optional(str(HOSTNAME_ISH, 'a container name')), updatedAt: time,
  },
  node: { name: str(NODE_NAME, 'a node name'), address: ipv4, startedAt: time },
} as const;

/** The record type stored under each kind of key. */
export interface RecordOf {
  network: NetworkDefinition;
  vni: VniRecord;
  address: AddressClaim;
  endpoint: EndpointRecord;
  node: NodeRecord;
}

/** Parses and checks the record stored under `key`; the kind comes from the key. */
export function readRecord<K extends keyof RecordOf>(kind: K, key: string, bytes: string): Checked<RecordOf[K]> {
  const where = parseKey(key);
  if (!where || where.kind !== kind) return { ok: false, problem: `${key}: not a ${kind} key` };
  let data: unknown;
  try {
    data = JSON.parse(bytes);
  } catch {
    return { ok: false, problem: `${key}: not JSON` };
  }
  const p = checkFields(data, FIELDS[kind]);
  if (p) return { ok: false, problem: `${key}: ${p}` };
  const r = data as Obj;
  // The key is the record's identity: contents that name another object are not this one.
  const mismatch =
    kind === 'network' ? r.cluster !== where.name
    : kind === 'vni' ? Number(where.name) < 1
    : kind === 'address' ? r.cluster !== where.cluster || r.address !== where.name
    : kind === 'endpoint' ? r.cluster !== where.cluster || r.id !== where.name
    : r.name !== where.name;
  if (mismatch) return { ok: false, problem: `${key}: the record's contents name another object than its key` };
  return { ok: true, record: data as RecordOf[K] };
}

/** The fields that make two definitions of one cluster network the same network. */
export const definitionShape = (d: Pick<NetworkDefinition, 'subnet' | 'gateway' | 'vni' | 'mtu'>): string =>
  `subnet ${d.subnet}, gateway ${d.gateway}, vni ${d.vni}, mtu ${d.mtu}`;

export const encode = (r: NetworkDefinition | VniRecord | AddressClaim | EndpointRecord | NodeRecord): string => JSON.stringify(r);
