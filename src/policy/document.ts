/**
 * A network policy as a user writes it (`mynet policy apply -f`), checked field by field the
 * same way whether it comes from the command line, the state journal or etcd: it is input from a
 * stranger each time. Semantics are Kubernetes NetworkPolicy's ingress rules (README, Policy).
 *
 *   { "name": "db-from-web", "network": "blue", "select": { "app": "db" },
 *     "ingress": [ { "from": [ { "app": "web" } ], "ports": [ "tcp/5432" ] } ] }
 */
import { FAILSAFE_SCHEMA, loadAll } from 'js-yaml';
import { invalid } from '../errors.js';
import { checkLabels, type Labels } from '../rules/label.js';
import { checkNetworkName, checkPolicyName } from '../rules/names.js';
import { checkPort } from '../rules/port.js';

export type Proto = 'tcp' | 'udp' | 'sctp';
export const PROTOS: readonly Proto[] = ['tcp', 'udp', 'sctp'];

/** One port or a range of them (`tcp/5432`, `udp/6000-6010`). */
export interface PortSpec {
  readonly proto: Proto;
  readonly from: number;
  readonly to: number;
}

export interface IngressRule {
  /** Endpoints of the same network with these labels (any entry); absent: from anywhere. */
  readonly from?: readonly Labels[];
  /** Absent: every port and protocol. */
  readonly ports?: readonly PortSpec[];
}

export interface Policy {
  readonly name: string;
  /** The network as the user named it (a Docker network name, an id, or a cluster name). */
  readonly network: string;
  readonly select: Labels;
  readonly ingress: readonly IngressRule[];
}

/** Bounds: a policy is small, and its rules stay few (each is an nft rule; README, Policy). */
export const POLICY_LIMITS = { rules: 64, from: 64, ports: 64, bytes: 64 * 1024 };

const PORT = /^(tcp|udp|sctp)\/([0-9]{1,5})(?:-([0-9]{1,5}))?$/;

const show = (v: unknown): string => JSON.stringify(v)?.slice(0, 80) ?? String(v);

function object(field: string, v: unknown, keys: readonly string[], required: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!keys.includes(k)) throw invalid(`${field}.${k.slice(0, 60)}`, `unknown field (known: ${keys.join(', ')})`);
  for (const k of required) if (o[k] === undefined) throw invalid(`${field}.${k}`, 'is required');
  return o;
}

function list(field: string, v: unknown, max: number): readonly unknown[] {
  if (!Array.isArray(v)) throw invalid(field, 'must be a list');
  if (v.length > max) throw invalid(field, `has ${v.length} entries, at most ${max}`);
  return v;
}

export function parsePortSpec(field: string, v: unknown): PortSpec {
  const m = typeof v === 'string' ? PORT.exec(v) : null;
  if (!m) throw invalid(field, `${show(v)} is not a port (tcp/5432, udp/53 or tcp/8000-8080)`);
  const from = checkPort(field, Number(m[2]), 1);
  const to = m[3] === undefined ? from : checkPort(field, Number(m[3]), 1);
  if (to < from) throw invalid(field, `${show(v)}: the range ends before it starts`);
  return { proto: m[1] as Proto, from, to };
}

export const formatPortSpec = (p: PortSpec): string => `${p.proto}/${p.from}${p.to === p.from ? '' : `-${p.to}`}`;

function parseRule(field: string, v: unknown): IngressRule {
  const o = object(field, v, ['from', 'ports'], []);
  const from =
    o.from === undefined
      ? undefined
      : list(`${field}.from`, o.from, POLICY_LIMITS.from).map((s, i) => checkLabels(`${field}.from[${i}]`, s));
  const ports =
    o.ports === undefined
      ? undefined
      : list(`${field}.ports`, o.ports, POLICY_LIMITS.ports).map((p, i) => parsePortSpec(`${field}.ports[${i}]`, p));
  return { ...(from ? { from } : {}), ...(ports ? { ports } : {}) };
}

/** A policy from its JSON form; `field` names where it came from (`policy`, `etcd /mynet/...`). */
export function parsePolicy(field: string, v: unknown): Policy {
  const o = object(field, v, ['name', 'network', 'select', 'ingress'], ['name', 'network', 'select', 'ingress']);
  const name = checkPolicyName(`${field}.name`, o.name);
  const network = checkNetworkName(`${field}.network`, o.network);
  const select = checkLabels(`${field}.select`, o.select);
  const ingress = list(`${field}.ingress`, o.ingress, POLICY_LIMITS.rules).map((r, i) => parseRule(`${field}.ingress[${i}]`, r));
  return { name, network, select, ingress };
}

/** A policy in the JSON form a file has (ports as `tcp/5432`): parsePolicy of it gives `p` back (etcd stores this, issue 25). */
export function policyDocument(p: Policy): unknown {
  return { ...p, ingress: p.ingress.map((r) => (r.ports ? { ...r, ports: r.ports.map(formatPortSpec) } : r)) };
}

/**
 * A file's text as data: JSON when it starts with `{` or `[`, else YAML (several `---` documents
 * are a list of policies). Every value of a policy is a string, so YAML's failsafe schema reads
 * every scalar as one (and knows no custom tags): a network id prefix `699849111812` or a label
 * `version: 1.10` stays what the user wrote, not a number that loses digits.
 */
function parseText(field: string, text: string): unknown {
  if (/^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw invalid(field, `does not parse as JSON: ${(err as Error).message}`);
    }
  }
  let docs: unknown[];
  try {
    docs = loadAll(text, undefined, { schema: FAILSAFE_SCHEMA });
  } catch (err) {
    throw invalid(field, `does not parse as YAML: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  if (docs.length === 0) throw invalid(field, 'is empty');
  return docs.length === 1 ? docs[0] : docs;
}

/** A policy file's text: JSON or YAML (one policy or a list of them), at most POLICY_LIMITS.bytes. */
export function parsePolicyText(field: string, text: string): readonly Policy[] {
  if (Buffer.byteLength(text) > POLICY_LIMITS.bytes) throw invalid(field, `is larger than ${POLICY_LIMITS.bytes} bytes`);
  const v = parseText(field, text);
  const all = Array.isArray(v) ? list(field, v, 256).map((p, i) => parsePolicy(`${field}[${i}]`, p)) : [parsePolicy(field, v)];
  const names = new Set<string>();
  for (const p of all) {
    if (names.has(p.name)) throw invalid(`${field}.name`, `policy ${p.name} is given twice`);
    names.add(p.name);
  }
  return all;
}
