/**
 * The cluster settings (issue 17), from the environment like the others. With no
 * MYNET_ETCD_ENDPOINTS there is no cluster: `parseClusterSettings` answers undefined and mynet
 * stays host-local exactly as before. Only file paths are kept here, never their contents, so a
 * settings object can be logged whole; the TLS material is read by `readTls` into a value that
 * refuses to be printed.
 */
import { type KeyObject, X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { invalid } from '../errors.js';
import { formatIp, parseIp } from '../ip/address.js';
import { underlayProblem } from '../rules/address.js';
import { NODE_NAME, NODE_NAME_RULE } from '../rules/names.js';

export interface ClusterSettings {
  /** etcd's client URLs, normalised ("https://e1:2379"), all of one scheme. */
  readonly endpoints: readonly string[];
  readonly tls: boolean;
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** This host's name in the cluster (presence key, claim holder). */
  readonly nodeName: string;
  /** This host's underlay address for VXLAN; undefined: the source address towards etcd (node-address.ts). */
  readonly nodeAddress?: string;
  /** Seconds of this host's presence lease (MYNET_CLUSTER_PRESENCE_TTL, default 10). */
  readonly presenceTtlS: number;
}

function endpoint(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw invalid('MYNET_ETCD_ENDPOINTS', `"${text.slice(0, 80)}" is not a URL (expected http://host:port or https://host:port)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw invalid('MYNET_ETCD_ENDPOINTS', `"${text.slice(0, 80)}" must start with http:// or https://`);
  // A password in a URL ends up in logs and process listings: refuse it instead of masking it.
  if (u.username !== '' || u.password !== '')
    throw invalid(
      'MYNET_ETCD_ENDPOINTS',
      `an endpoint must not carry a user or password (use MYNET_ETCD_CERT/_KEY for client authentication)`,
    );
  if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '')
    throw invalid('MYNET_ETCD_ENDPOINTS', `"${u.host}": an endpoint is scheme://host:port, without a path or query`);
  if (u.hostname === '') throw invalid('MYNET_ETCD_ENDPOINTS', `"${text.slice(0, 80)}" has no host`);
  return `${u.protocol}//${u.host}`;
}

export function parseClusterSettings(env: NodeJS.ProcessEnv, hostname: string): ClusterSettings | undefined {
  const raw = env.MYNET_ETCD_ENDPOINTS?.trim() ?? '';
  const files = (['MYNET_ETCD_CA', 'MYNET_ETCD_CERT', 'MYNET_ETCD_KEY'] as const).filter((k) => (env[k] ?? '') !== '');
  if (raw === '') {
    if (files.length > 0)
      throw invalid(files[0] as string, 'is set but MYNET_ETCD_ENDPOINTS is not: set the etcd endpoints too, or unset it');
    return undefined;
  }
  const endpoints = [
    ...new Set(
      raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map(endpoint),
    ),
  ];
  if (endpoints.length === 0) throw invalid('MYNET_ETCD_ENDPOINTS', 'lists no endpoint');
  const schemes = new Set(endpoints.map((e) => e.slice(0, e.indexOf(':'))));
  // The client uses one set of credentials for every endpoint.
  if (schemes.size > 1) throw invalid('MYNET_ETCD_ENDPOINTS', 'mixes http:// and https:// endpoints; use one scheme for all');
  const tls = schemes.has('https');
  const caFile = env.MYNET_ETCD_CA || undefined;
  const certFile = env.MYNET_ETCD_CERT || undefined;
  const keyFile = env.MYNET_ETCD_KEY || undefined;
  if (!tls && files.length > 0)
    throw invalid(files[0] as string, 'is set but the endpoints are http://; TLS files need https:// endpoints');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw invalid(certFile ? 'MYNET_ETCD_KEY' : 'MYNET_ETCD_CERT', 'a client certificate needs both MYNET_ETCD_CERT and MYNET_ETCD_KEY');
  const nodeName = env.MYNET_NODE_NAME || hostname;
  if (!NODE_NAME.test(nodeName)) {
    throw invalid(
      env.MYNET_NODE_NAME ? 'MYNET_NODE_NAME' : 'hostname',
      `"${nodeName.slice(0, 80)}" is not a usable node name (${NODE_NAME_RULE})`,
    );
  }
  const given = env.MYNET_NODE_ADDRESS || undefined;
  const nodeAddress = given === undefined ? undefined : checkNodeAddress('MYNET_NODE_ADDRESS', given);
  const ttlText = env.MYNET_CLUSTER_PRESENCE_TTL || '10';
  // Below 2 s a lease cannot be kept alive reliably; above 5 minutes a dead host looks alive too long.
  if (!/^\d{1,3}$/.test(ttlText) || Number(ttlText) < 2 || Number(ttlText) > 300)
    throw invalid('MYNET_CLUSTER_PRESENCE_TTL', `"${ttlText.slice(0, 20)}" is not a whole number of seconds from 2 to 300`);
  return Object.freeze({
    endpoints,
    tls,
    nodeName,
    presenceTtlS: Number(ttlText),
    ...(caFile && { caFile }),
    ...(certFile && { certFile }),
    ...(keyFile && { keyFile }),
    ...(nodeAddress && { nodeAddress }),
  });
}

/**
 * The underlay address, IPv4 or IPv6 (issue 23): VXLAN's source and the address the other hosts
 * send to. Answered canonical (an IPv6 one as RFC 5952 writes it): the other hosts compare it as
 * text with what their kernel prints.
 */
export function checkNodeAddress(field: string, text: string): string {
  const a = parseIp(text);
  if (!a) throw invalid(field, `"${text.slice(0, 80)}" is not an IP address`);
  if (a.family === 4 && (a.value === 0n || a.value >> 24n === 127n))
    throw invalid(field, `"${text}" cannot carry VXLAN between hosts (unspecified or loopback)`);
  const canonical = formatIp(a);
  const problem = underlayProblem(canonical);
  if (problem) throw invalid(field, `"${text}" cannot carry VXLAN between hosts: it ${problem}`);
  return canonical;
}

/** The TLS files' contents. Printing or serialising it shows no key material. */
export class TlsMaterial {
  constructor(
    readonly ca: Buffer | undefined,
    readonly cert: Buffer | undefined,
    readonly key: Buffer | undefined,
  ) {}
  toJSON(): string {
    return '[tls material redacted]';
  }
  [inspect.custom](): string {
    return 'TlsMaterial [redacted]';
  }
  toString(): string {
    return '[tls material redacted]';
  }
}

export function readTls(s: ClusterSettings, read: (path: string) => Buffer = readFileSync): TlsMaterial | undefined {
  if (!s.tls) return undefined;
  const load = (field: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return read(path);
    } catch (err) {
      // The path is safe to show; the contents never are (and were not read).
      throw invalid(field, `cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  return new TlsMaterial(load('MYNET_ETCD_CA', s.caFile), load('MYNET_ETCD_CERT', s.certFile), load('MYNET_ETCD_KEY', s.keyFile));
}

/**
 * The TLS files' contents checked before the client takes them (issue 22, finding 20): a
 * certificate that is not one, or a key that is not the certificate's, failed later inside gRPC
 * with a message that named no setting. The errors name the setting, never the contents.
 */
export function checkTls(t: TlsMaterial): TlsMaterial {
  const certificate = (field: string, pem: Buffer): X509Certificate => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw invalid(field, `is not a PEM certificate (${(err as Error).message.slice(0, 80)})`);
    }
  };
  if (t.ca) certificate('MYNET_ETCD_CA', t.ca);
  if (t.cert && t.key) {
    const cert = certificate('MYNET_ETCD_CERT', t.cert);
    let key: KeyObject;
    try {
      key = createPrivateKey(t.key);
    } catch {
      // The parser's message may quote the file: only the setting is named.
      throw invalid('MYNET_ETCD_KEY', 'is not an unencrypted PEM private key');
    }
    if (!cert.checkPrivateKey(key)) throw invalid('MYNET_ETCD_KEY', 'is not the private key of the certificate in MYNET_ETCD_CERT');
  }
  return t;
}
