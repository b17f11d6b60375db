/**
 * Names and ids, checked the same wherever they come in: a request, the journal, etcd keys and
 * records, the settings. They end up in etcd keys, DNS labels, interface names and messages.
 */
import { invalid } from '../errors.js';

const show = (v: unknown): string => JSON.stringify(v)?.slice(0, 80) ?? String(v);

/** Docker's network and endpoint ids are 64 lowercase hex; 12..64 so that short test ids work. */
export const ID = /^[0-9a-f]{12,64}$/;
export function checkId(field: string, id: unknown): string {
  if (typeof id !== 'string' || !ID.test(id)) throw invalid(field, `must be a hex id of 12 to 64 characters, got ${show(id)}`);
  return id;
}

/** One lowercase DNS label (RFC 1035 §2.3.1, digits allowed first as RFC 1123 does). */
const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
/** A DNS name of such labels (`mynet`, `cluster.example`), without the final dot. */
export const DNS_NAME = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
/** A label of a name mynet's DNS answers (`web_1.blue.mynet`): Docker's names may hold `_`. */
export const NAME_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
/** A cluster network's name (`-o mynet.cluster=blue`) becomes an etcd key and a DNS label (`web.blue.mynet`). */
export const CLUSTER_NAME = new RegExp(`^${LABEL}$`);
export function checkClusterName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !CLUSTER_NAME.test(v)) {
    throw invalid(field, `${show(v)} is not a cluster name (a DNS label: 1-63 of a-z 0-9 -, not starting or ending with -)`);
  }
  return v;
}

/** A node name goes into etcd keys and messages: a host name, no slash, no blank. */
export const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$/;
export const NODE_NAME_RULE = '1-64 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit';
export function checkNodeName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !NODE_NAME.test(v)) throw invalid(field, `${show(v)} is not a node name (${NODE_NAME_RULE})`);
  return v;
}

/**
 * A node's identity (issue 22, findings 5 and 15): 128 random bits as 32 lowercase hex, made once
 * per host and kept in its state directory. Names are labels (two hosts may be given one by
 * mistake, a host may be renamed); the id is who wrote a record.
 */
export const NODE_ID = /^[0-9a-f]{32}$/;

/** A container name as it travels in an endpoint record, for DNS on other hosts. */
export const CONTAINER_NAME = /^[A-Za-z0-9]([A-Za-z0-9._ -]{0,253})?$/;
/**
 * How many `--network-alias` names an endpoint record carries (issue 23): only names mynet's DNS
 * can answer (NAME_LABEL) travel, so with a 255-character name a record stays under
 * RECORD_MAX_BYTES (16 × 66 bytes of aliases and ~400 of the rest).
 */
export const MAX_RECORD_ALIASES = 16;

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
/** An interface name (at most 15 bytes, IFNAMSIZ - 1) that cannot be read as an option. */
export function checkIfName(field: string, name: string): string {
  if (!IFNAME.test(name) || Buffer.byteLength(name) > 15) {
    throw invalid(field, `"${name.slice(0, 40)}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -, not starting with - . or _)`);
  }
  return name;
}

/** A network policy's name (issue 25): it is shown, logged and a metric label. */
export const POLICY_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
export function checkPolicyName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !POLICY_NAME.test(v))
    throw invalid(field, `${show(v)} is not a policy name (1-63 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit)`);
  return v;
}

/** A Docker network's name as the user gives it (Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, bounded), or its id. */
export const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export function checkNetworkName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !NETWORK_NAME.test(v)) throw invalid(field, `${show(v)} is not a network name or id`);
  return v;
}
