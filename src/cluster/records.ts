/**
 * The records mynet keeps in etcd: JSON with a version field, checked field by field on every
 * read like the local state (store/shape.ts), because etcd is written by every host (and by
 * any operator with etcdctl). A record that does not fit is reported with where and why, and
 * never used; a record whose key and contents disagree (another network's address under this
 * network's key) is refused too.
 */
import { invalid } from '../errors.js';
import { parseIp } from '../ip/address.js';
import { contains, formatCidr, hostRange, parseCidr } from '../ip/cidr.js';
import { underlayProblem, unicastProblem } from '../rules/address.js';
import { macProblem } from '../rules/mac.js';
import { CLUSTER_MTU_MAX, CLUSTER_MTU_MIN } from '../rules/mtu.js';
import { CLUSTER_NAME, CONTAINER_NAME, ID, MAX_RECORD_ALIASES, NAME_LABEL, NODE_ID, NODE_NAME } from '../rules/names.js';
import { VNI_MAX, VNI_MIN } from '../rules/vni.js';
import { checkLabels, type Labels } from '../rules/label.js';
import { parseKey } from './keys.js';

export const RECORD_VERSION = 1;

export interface NetworkDefinition {
  readonly v: 1;
  readonly cluster: string;
  /** Canonical IPv4 CIDR ("10.77.0.0/16"). */
  readonly subnet: string;
  /** The anycast gateway: the same address and MAC on every host's bridge. */
  readonly gateway: string;
  readonly gatewayMac: string;
  /**
   * Dual stack (`--ipv6`, issue 23): the one IPv6 subnet, canonical, and its anycast gateway,
   * written only for a dual-stack network (an IPv4-only record stays what older hosts write).
   */
  readonly subnet6?: string;
  readonly gateway6?: string;
  readonly vni: number;
  /** For the bridge, the VXLAN device and both veth ends (the underlay's MTU minus VXLAN's overhead, rules/mtu.ts). */
  readonly mtu: number;
  /**
   * `--internal` and `-o mynet.multicast=true`, written only when true: a record without them
   * (every record a mynet before issue 23 wrote, which refused both) is a network with neither,
   * and a plain network's record stays byte for byte what older hosts write and read.
   */
  readonly internal?: true;
  readonly multicast?: true;
  /** Traffic between hosts through WireGuard (issue 24); absent: VXLAN in the clear. Part of the network's identity. */
  readonly encrypt?: 'wireguard';
  /**
   * Written by hosts that record which of them have the network (finding 21): each one's
   * membership under members/<cluster>/, and the last one out removes the definition. A record
   * without it (a mynet before that) is kept for good, as it always was: its hosts record nothing.
   */
  readonly members?: true;
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
  /** The holder's node id (node-id.ts); absent in claims a mynet before ids wrote (held by name then). */
  readonly nodeId?: string;
  readonly claimedAt: string;
}

export interface EndpointRecord {
  readonly v: 1;
  readonly cluster: string;
  readonly id: string;
  readonly node: string;
  /** The writer's node id; absent in records a mynet before ids wrote. */
  readonly nodeId?: string;
  /** The node's underlay address (IPv4 or IPv6): where VXLAN frames for this endpoint go. */
  readonly underlay: string;
  /** The container's IPv4 address, without prefix length. */
  readonly address: string;
  /** Its IPv6 address on a dual-stack network, without prefix length; claimed like `address`. */
  readonly address6?: string;
  readonly mac: string;
  /** The container's name, for DNS on every host (`web.blue.mynet`); absent when unnamed. */
  readonly name?: string;
  /** Its `--network-alias` names (compose service names), for bare names on every host (issue 23). */
  readonly aliases?: readonly string[];
  /**
   * Its `mynet.label.*` labels (issue 25), for the network policies every host enforces; written
   * only when it has some, checked as a local endpoint's (rules/label.ts).
   */
  readonly labels?: Labels;
  readonly updatedAt: string;
}

/** A host has the cluster network (finding 21): written at its CreateNetwork, deleted at its DeleteNetwork. */
export interface MemberRecord {
  readonly v: 1;
  readonly cluster: string;
  /** The member's name, the same as its key's. */
  readonly node: string;
  readonly nodeId?: string;
  readonly joinedAt: string;
}

export interface NodeRecord {
  readonly v: 1;
  readonly name: string;
  /** The node's id: a presence of this name with another id is another host (finding 5). */
  readonly id?: string;
  readonly address: string;
  readonly startedAt: string;
}

export type Checked<T> = { readonly ok: true; readonly record: T } | { readonly ok: false; readonly problem: string };

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

type Check = (v: unknown) => string | undefined;
const str =
  (re: RegExp, what: string): Check =>
  (v) =>
    typeof v === 'string' && re.test(v) ? undefined : `must be ${what}`;
const ipv4: Check = (v) => (typeof v === 'string' && parseIp(v)?.family === 4 && !v.includes('/') ? undefined : 'must be an IPv4 address');
/** An address something is sent to: never loopback, link-local, multicast, broadcast or 0.0.0.0/8. */
const unicast4: Check = (v) => ipv4(v) ?? (unicastProblem(v as string) ? `${unicastProblem(v as string)}, not a host's` : undefined);
/** A MAC a forwarding entry may name: the kernel refuses all-zero and multicast ones (finding 17). */
const mac: Check = (v) =>
  typeof v !== 'string'
    ? 'must be a MAC address'
    : macProblem(v)
      ? `must be a MAC address of a host: ${JSON.stringify(v.slice(0, 40))} ${macProblem(v)}`
      : undefined;
const int =
  (min: number, max: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `must be an integer from ${min} to ${max}`;
const time: Check = (v) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? undefined : 'must be an ISO time');
const ipv6: Check = (v) => (typeof v === 'string' && parseIp(v)?.family === 6 && !v.includes('/') ? undefined : 'must be an IPv6 address');
const unicast6: Check = (v) => ipv6(v) ?? (unicastProblem(v as string) ? `${unicastProblem(v as string)}, not a host's` : undefined);
/**
 * A host's underlay address, IPv4 or IPv6 (issue 23): the same meaning checks as a container's
 * address, and an IPv6 one canonical (the kernel's text, which the planes compare it with).
 */
const underlay: Check = (v) =>
  typeof v === 'string' && parseIp(v)?.family === 6
    ? (ipv6(v) ?? (underlayProblem(v) ? `${underlayProblem(v)}, not a host's` : undefined))
    : unicast4(v);
/** A claim's address: either family (a dual-stack network claims both), canonical as its key is. */
const unicast: Check = (v) => (typeof v === 'string' && parseIp(v)?.family === 6 ? unicast6(v) : unicast4(v));
const subnetOf =
  (family: 4 | 6): Check =>
  (v) => {
    if (typeof v !== 'string') return `must be an IPv${family} CIDR`;
    const c = parseCidr(v);
    return c.ok && c.cidr.family === family && formatCidr(c.cidr) === v ? undefined : `must be a canonical IPv${family} CIDR`;
  };
const optional =
  (c: Check): Check =>
  (v) =>
    v === undefined ? undefined : c(v);
const labels =
  (max: number): Check =>
  (v) =>
    Array.isArray(v) && v.length <= max && v.every((x) => typeof x === 'string' && NAME_LABEL.test(x))
      ? undefined
      : `must be a list of at most ${max} DNS names (lowercase labels)`;
/** The same rules as a local endpoint's labels: a problem is the record's (refused as a whole), never thrown. */
const labelMap: Check = (v) => {
  try {
    checkLabels('labels', v);
    return undefined;
  } catch (err) {
    return `must be labels: ${(err as Error).message}`;
  }
};
const onlyTrue: Check = (v) => (v === true ? undefined : 'must be true when present');

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
  network: {
    cluster: str(CLUSTER_NAME, 'a cluster name'),
    subnet: subnetOf(4),
    gateway: unicast4,
    gatewayMac: mac,
    subnet6: optional(subnetOf(6)),
    gateway6: optional(unicast6),
    vni: int(VNI_MIN, VNI_MAX),
    mtu: int(CLUSTER_MTU_MIN, CLUSTER_MTU_MAX),
    internal: optional(onlyTrue),
    multicast: optional(onlyTrue),
    encrypt: optional(str(/^wireguard$/, '"wireguard" when present')),
    members: optional(onlyTrue),
    createdBy: str(NODE_NAME, 'a node name'),
    createdAt: time,
  },
  vni: { cluster: str(CLUSTER_NAME, 'a cluster name') },
  address: {
    cluster: str(CLUSTER_NAME, 'a cluster name'),
    address: unicast,
    node: str(NODE_NAME, 'a node name'),
    nodeId: optional(str(NODE_ID, 'a node id')),
    claimedAt: time,
  },
  endpoint: {
    cluster: str(CLUSTER_NAME, 'a cluster name'),
    id: str(ID, 'an endpoint id'),
    node: str(NODE_NAME, 'a node name'),
    nodeId: optional(str(NODE_ID, 'a node id')),
    underlay,
    address: unicast4,
    address6: optional(unicast6),
    mac,
    name: optional(str(CONTAINER_NAME, 'a container name')),
    aliases: optional(labels(MAX_RECORD_ALIASES)),
    labels: optional(labelMap),
    updatedAt: time,
  },
  member: {
    cluster: str(CLUSTER_NAME, 'a cluster name'),
    node: str(NODE_NAME, 'a node name'),
    nodeId: optional(str(NODE_ID, 'a node id')),
    joinedAt: time,
  },
  node: { name: str(NODE_NAME, 'a node name'), id: optional(str(NODE_ID, 'a node id')), address: underlay, startedAt: time },
} as const;

/** The record type stored under each kind of key. */
export interface RecordOf {
  network: NetworkDefinition;
  vni: VniRecord;
  address: AddressClaim;
  endpoint: EndpointRecord;
  node: NodeRecord;
  member: MemberRecord;
}

/** Parses and checks the record stored under `key`; the kind comes from the key. */
/**
 * The largest record mynet writes is an endpoint's: about 1.5 KiB with a 255-character name and
 * 16 aliases, plus at most 32 labels of 63-character keys and values (~4.3 KiB, issue 25);
 * anything much larger is someone else's write, refused before it is parsed or kept (issue 22,
 * finding 14: 1.5 MiB values were parsed and held twice in memory).
 */
export const RECORD_MAX_BYTES = 8192;

/** Why a recorded gateway is not a host address of its recorded subnet, if it is not. */
function gatewayProblem(gateway: unknown, subnet: unknown, field: string): string | undefined {
  const gw = parseIp(gateway as string);
  const net = parseCidr(subnet as string);
  if (!gw || !net.ok || !contains(net.cidr, gw) || gw.value < hostRange(net.cidr).first || gw.value > hostRange(net.cidr).last)
    return `/${field} ${String(gateway)} is not a host address of ${String(subnet)}`;
  return undefined;
}

export function readRecord<K extends keyof RecordOf>(kind: K, key: string, bytes: string): Checked<RecordOf[K]> {
  const where = parseKey(key);
  if (!where || where.kind !== kind) return { ok: false, problem: `${key}: not a ${kind} key` };
  if (bytes.length > RECORD_MAX_BYTES)
    return { ok: false, problem: `${key}: ${bytes.length} bytes, over the ${RECORD_MAX_BYTES} a mynet record takes` };
  let data: unknown;
  try {
    data = JSON.parse(bytes);
  } catch {
    return { ok: false, problem: `${key}: not JSON` };
  }
  const p = checkFields(data, FIELDS[kind]);
  if (p) return { ok: false, problem: `${key}: ${p}` };
  const r = data as Obj;
  if (kind === 'network') {
    const g =
      gatewayProblem(r.gateway, r.subnet, 'gateway') ??
      ((r.subnet6 === undefined) !== (r.gateway6 === undefined)
        ? '/subnet6 and /gateway6 come together or not at all'
        : r.subnet6 !== undefined
          ? gatewayProblem(r.gateway6, r.subnet6, 'gateway6')
          : undefined);
    if (g) return { ok: false, problem: `${key}: ${g}` };
  }
  // The key is the record's identity: contents that name another object are not this one.
  const mismatch =
    kind === 'network'
      ? r.cluster !== where.name
      : kind === 'vni'
        ? Number(where.name) < VNI_MIN || Number(where.name) > VNI_MAX
        : kind === 'address'
          ? r.cluster !== where.cluster || r.address !== where.name
          : kind === 'endpoint'
            ? r.cluster !== where.cluster || r.id !== where.name
            : kind === 'member'
              ? r.cluster !== where.cluster || r.node !== where.name
              : r.name !== where.name;
  if (mismatch) return { ok: false, problem: `${key}: the record's contents name another object than its key` };
  return { ok: true, record: data as RecordOf[K] };
}

/**
 * The fields that make two definitions of one cluster network the same network. A host's
 * `--ip-range` is not one of them: each host gives addresses from its own range of the one
 * subnet, and the claims in etcd keep them apart (issue 23).
 */
export const definitionShape = (
  d: Pick<NetworkDefinition, 'subnet' | 'gateway' | 'subnet6' | 'gateway6' | 'vni' | 'mtu' | 'internal' | 'multicast' | 'encrypt'>,
): string =>
  `subnet ${d.subnet}, gateway ${d.gateway}, ${d.subnet6 ? `IPv6 subnet ${d.subnet6}, gateway ${d.gateway6 ?? '?'}, ` : ''}vni ${d.vni}, mtu ${d.mtu}, ${d.internal ? 'internal' : 'not internal'}, multicast ${d.multicast ? 'on' : 'off'}${d.encrypt ? `, encrypted (${d.encrypt})` : ''}`;

/**
 * The bytes to write under `key`, read back through the same check every reader uses first:
 * this host never writes a record that it, or any other host, would refuse (issue 21: a cluster
 * MTU of 500 went to etcd and every reader refused it). A refusal is this host's bug or a
 * request the checks before it let through: INVALID_REQUEST naming the field.
 */
export function encodeRecord<K extends keyof RecordOf>(kind: K, key: string, record: RecordOf[K]): string {
  const bytes = JSON.stringify(record);
  const back = readRecord(kind, key, bytes);
  if (!back.ok) throw invalid(`${kind} record`, `this host would write a record its readers refuse: ${back.problem}`);
  return bytes;
}
