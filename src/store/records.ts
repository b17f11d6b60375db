/**
 * The records inside the state files, checked at load with the checks a request gets: ids
 * (checkId), interface names (checkIfName), CIDRs, MACs, addresses and network options
 * (protocol/options.ts). Their values go into `ip -batch` and `nft` text when the host is
 * restored and on every later change, so a record that a request could not have made (a hand
 * edit, another tool, a bug of an older version) stops the start instead of running as a
 * different command. Each check throws INVALID_REQUEST "<field>: <why>"; file-store.ts turns
 * that into STATE_CORRUPT naming the file and the record.
 */
import { LABELS_MAX, checkLabels } from '../rules/label.js';
import { checkPort } from '../rules/port.js';
import { invalid } from '../errors.js';
import { parseIp } from '../ip/address.js';
import { contains } from '../ip/cidr.js';
import { checkStoredOptions } from '../protocol/options.js';
import { checkCidr, checkHostText } from '../rules/host-text.js';
import { checkMac } from '../rules/mac.js';
import { CLUSTER_MTU_MAX, MTU_MIN, checkMtu } from '../rules/mtu.js';
import { checkClusterName, checkId, checkIfName, checkPolicyName } from '../rules/names.js';
import { checkVni } from '../rules/vni.js';
import { parsePolicy } from '../policy/document.js';
import type {
  Change,
  DepartureRecord,
  PolicyRecord,
  EndpointRecord,
  NetworkRecord,
  PoolRecord,
  Snapshot,
  SubnetRecord,
} from '../driver/state.js';

type Fields = Record<string, unknown>;
type Family = 4 | 6;

const object = (field: string, v: unknown): Fields => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field || 'record', 'must be an object');
  return v as Fields;
};
const array = (field: string, v: unknown): unknown[] => {
  if (!Array.isArray(v)) throw invalid(field, 'must be an array');
  return v;
};
/** A string that never reaches host text: bounded as a request's strings are (protocol/schemas.ts). */
const plain = (field: string, v: unknown, max = 4096): string => {
  if (typeof v !== 'string' || v.length > max) throw invalid(field, `must be a string of at most ${max} characters`);
  return v;
};
const ifName = (field: string, v: unknown): string => checkIfName(field, checkHostText(field, v));
const cidr = (field: string, v: unknown, family: Family): ReturnType<typeof checkCidr> => checkCidr(field, checkHostText(field, v), family);
const address = (field: string, v: unknown, family?: Family): bigint => {
  const a = parseIp(checkHostText(field, v));
  if (!a || (family && a.family !== family)) throw invalid(field, `${JSON.stringify(v)} is not an IPv${family ?? '4 or IPv6'} address`);
  return a.value;
};
const port = checkPort;

function subnets(field: string, v: unknown, family: Family): SubnetRecord[] {
  return array(field, v).map((s, i) => {
    const f = `${field}[${i}]`;
    const r = object(f, s);
    const pool = cidr(`${f}.pool`, r.pool, family);
    if (r.gateway !== undefined) {
      const gw = cidr(`${f}.gateway`, r.gateway, family);
      if (!contains(pool.cidr, gw.addr)) throw invalid(`${f}.gateway`, `${r.gateway as string} is not in ${r.pool as string}`);
    }
    return r as unknown as SubnetRecord;
  });
}

/** `at` prefixes the field names ("network." for a journal change). */
export function checkNetworkRecord(v: unknown, at = ''): NetworkRecord {
  const r = object(at.slice(0, -1), v);
  checkId(`${at}id`, r.id);
  ifName(`${at}bridge`, r.bridge);
  checkStoredOptions(`${at}options`, r.options);
  subnets(`${at}ipv4`, r.ipv4, 4);
  subnets(`${at}ipv6`, r.ipv6, 6);
  plain(`${at}createdAt`, r.createdAt, 64);
  if (r.cluster !== undefined) checkClusterBinding(`${at}cluster.`, r.cluster);
  return r as unknown as NetworkRecord;
}

/**
 * A cluster network's stored definition: its values go into `ip link add ... type vxlan` and nft.
 * The MTU is read as the kernel takes it, not as strictly as a new network is made
 * (rules/mtu.ts): an older mynet wrote cluster MTUs below 576, and its state must still start.
 */
function checkClusterBinding(at: string, v: unknown): void {
  const c = object(at.slice(0, -1), v);
  checkClusterName(`${at}name`, c.name);
  cidr(`${at}subnet`, c.subnet, 4);
  address(`${at}gateway`, c.gateway, 4);
  if ((c.subnet6 === undefined) !== (c.gateway6 === undefined))
    throw invalid(`${at}subnet6`, 'subnet6 and gateway6 come together or not at all');
  if (c.subnet6 !== undefined) {
    cidr(`${at}subnet6`, c.subnet6, 6);
    address(`${at}gateway6`, c.gateway6, 6);
  }
  address(`${at}local`, c.local, 4);
  checkMac(`${at}gatewayMac`, checkHostText(`${at}gatewayMac`, c.gatewayMac));
  checkVni(`${at}vni`, c.vni);
  checkMtu(`${at}mtu`, c.mtu, MTU_MIN, CLUSTER_MTU_MAX);
  for (const k of ['internal', 'multicast'] as const) {
    if (c[k] !== undefined && c[k] !== true) throw invalid(`${at}${k}`, `${JSON.stringify(c[k])?.slice(0, 40)} must be true when present`);
  }
  if (c.encrypt !== undefined && c.encrypt !== 'wireguard')
    throw invalid(`${at}encrypt`, `${JSON.stringify(c.encrypt)?.slice(0, 40)} is not "wireguard"`);
  if ((c.tunnelIf !== undefined) !== (c.encrypt !== undefined))
    throw invalid(`${at}tunnelIf`, 'an encrypted network has its WireGuard interface, and only an encrypted one');
  if (c.tunnelIf !== undefined) ifName(`${at}tunnelIf`, c.tunnelIf);
}

const PROTOS = ['tcp', 'udp', 'sctp'];

export function checkEndpointRecord(v: unknown, at = ''): EndpointRecord {
  const r = object(at.slice(0, -1), v);
  checkId(`${at}id`, r.id);
  checkId(`${at}networkId`, r.networkId);
  ifName(`${at}hostIf`, r.hostIf);
  ifName(`${at}containerIf`, r.containerIf);
  const mac = checkHostText(`${at}mac`, r.mac);
  if (checkMac(`${at}mac`, mac) !== mac) throw invalid(`${at}mac`, `"${mac}" must be lowercase`);
  if (r.address !== undefined) cidr(`${at}address`, r.address, 4);
  if (r.addressV6 !== undefined) cidr(`${at}addressV6`, r.addressV6, 6);
  if (r.sandboxKey !== undefined) plain(`${at}sandboxKey`, r.sandboxKey);
  array(`${at}ports`, r.ports).forEach((b, i) => {
    const f = `${at}ports[${i}]`;
    const p = object(f, b);
    if (typeof p.proto !== 'string' || !PROTOS.includes(p.proto))
      throw invalid(`${f}.proto`, `${JSON.stringify(p.proto)?.slice(0, 40)} is not one of ${PROTOS.join(', ')}`);
    port(`${f}.containerPort`, p.containerPort, 1);
    port(`${f}.hostPort`, p.hostPort, 1);
    if (p.hostIp !== '') address(`${f}.hostIp`, p.hostIp);
  });
  if (r.labels !== undefined) checkLabels(`${at}labels`, r.labels);
  if (r.containerLabels !== undefined) {
    const both = Object.keys({ ...checkLabels(`${at}containerLabels`, r.containerLabels), ...(r.labels as object | undefined) }).length;
    if (both > LABELS_MAX) throw invalid(`${at}containerLabels`, `with labels makes ${both} labels, at most ${LABELS_MAX}`);
  }
  return r as unknown as EndpointRecord;
}

/** A pool as a journal change carries it, or (with `taken`) as a snapshot does. */
export function checkPoolRecord(v: unknown, at = '', withTaken = false): PoolRecord {
  const r = object(at.slice(0, -1), v);
  plain(`${at}id`, r.id);
  plain(`${at}space`, r.space);
  if (r.family !== 4 && r.family !== 6) throw invalid(`${at}family`, `${JSON.stringify(r.family)?.slice(0, 40)} is not 4 or 6`);
  const family: Family = r.family;
  const pool = cidr(`${at}pool`, r.pool, family).cidr;
  if (r.subPool !== undefined) {
    const sub = cidr(`${at}subPool`, r.subPool, family).cidr;
    if (sub.prefix < pool.prefix || !contains(pool, { family, value: sub.base }))
      throw invalid(`${at}subPool`, `${r.subPool as string} is not inside ${r.pool as string}`);
  }
  for (const [k, val] of Object.entries(object(`${at}options`, r.options))) plain(`${at}options.${k.slice(0, 60)}`, val);
  if (withTaken) {
    array(`${at}taken`, r.taken).forEach((range, i) => {
      const f = `${at}taken[${i}]`;
      const [a, b] = array(f, range);
      if ((range as unknown[]).length !== 2) throw invalid(f, 'must be a pair of addresses');
      const lo = address(`${f}[0]`, a, family);
      const hi = address(`${f}[1]`, b, family);
      if (hi < lo) throw invalid(f, `${String(b)} is below ${String(a)}`);
    });
    if (r.cursor !== undefined) address(`${at}cursor`, r.cursor, family);
  }
  return r as unknown as PoolRecord;
}

/** A cluster network left (driver/state.ts): its name becomes an etcd key prefix. */
export function checkDepartureRecord(v: unknown, at = ''): DepartureRecord {
  const r = object(at.slice(0, -1), v);
  checkClusterName(`${at}cluster`, r.cluster);
  cidr(`${at}subnet`, r.subnet, 4);
  return r as unknown as DepartureRecord;
}

const portText = (p: Fields): string => `${String(p.proto)}/${String(p.from)}-${String(p.to)}`;

/** A stored policy: the document checked as `mynet policy apply` checks it, and its network's id. */
export function checkPolicyRecord(v: unknown, at = ''): PolicyRecord {
  const { networkId, ...doc } = object(at.slice(0, -1), v);
  // Stored parsed, its ports as { proto, from, to }: written back as the text a file has, they
  // pass the same check (anything else becomes text that check refuses).
  const ingress = Array.isArray(doc.ingress)
    ? doc.ingress.map((r: unknown) => {
        const o = r as { ports?: unknown };
        if (typeof r !== 'object' || r === null || !Array.isArray(o.ports)) return r;
        return { ...r, ports: o.ports.map((p: unknown) => (typeof p === 'object' && p !== null ? portText(p as Fields) : p)) };
      })
    : doc.ingress;
  const policy = parsePolicy(at.slice(0, -1) || 'policy', { ...doc, ingress });
  return { ...policy, networkId: checkId(`${at}networkId`, networkId) };
}

/** Each record of a snapshot whose outer shape is right (shape.ts): "<where>: <field>: <why>", or undefined. */
export function snapshotRecordProblem(s: Snapshot): string | undefined {
  const lists = [
    ['networks', s.networks, (r: unknown) => checkNetworkRecord(r)],
    ['endpoints', s.endpoints, (r: unknown) => checkEndpointRecord(r)],
    ['pools', s.pools, (r: unknown) => checkPoolRecord(r, '', true)],
    ['departures', s.departures ?? [], (r: unknown) => checkDepartureRecord(r)],
    ['policies', s.policies ?? [], (r: unknown) => checkPolicyRecord(r)],
  ] as const;
  for (const [name, list, check] of lists) {
    for (let i = 0; i < list.length; i++) {
      try {
        check(list[i]);
      } catch (err) {
        const r = list[i] as { id?: unknown; cluster?: unknown; name?: unknown } | undefined;
        return `/${name}/${i} (id ${JSON.stringify(String(r?.id ?? r?.cluster ?? r?.name).slice(0, 16))}): ${(err as Error).message}`;
      }
    }
  }
  return undefined;
}

/** One change of a journal line. */
export function checkChange(v: unknown): Change {
  const c = object('change', v);
  switch (c.op) {
    case 'network.put':
      checkNetworkRecord(c.network, 'network.');
      break;
    case 'endpoint.put':
      checkEndpointRecord(c.endpoint, 'endpoint.');
      break;
    case 'pool.put':
      checkPoolRecord(c.pool, 'pool.');
      break;
    case 'network.delete':
    case 'endpoint.delete':
      checkId('id', c.id);
      break;
    case 'pool.delete':
      plain('id', c.id);
      break;
    case 'address.take':
    case 'address.free':
      plain('pool', c.pool);
      address('address', c.address);
      if (c.cursor !== undefined && typeof c.cursor !== 'boolean') throw invalid('cursor', 'must be true or false');
      break;
    case 'departure.put':
      checkDepartureRecord(c.departure, 'departure.');
      break;
    case 'departure.delete':
      checkClusterName('cluster', c.cluster);
      break;
    case 'policy.put':
      checkPolicyRecord(c.policy, 'policy.');
      break;
    case 'policy.delete':
      checkPolicyName('name', c.name);
      break;
    default:
      throw invalid('op', `${JSON.stringify(c.op)?.slice(0, 40)} is not a known change`);
  }
  return c as unknown as Change;
}
