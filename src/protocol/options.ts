/**
 * Network options, as dockerd passes them in CreateNetwork: user `-o k=v` / compose
 * `driver_opts` arrive as strings in Options["com.docker.network.generic"]; IPv6 and internal
 * arrive as booleans beside it. We accept the built-in bridge driver's keys (so a compose file
 * written for `driver: bridge` works with `driver: mynet`) and our own `mynet.*` keys. An unknown
 * `mynet.*` key or a bad value is refused naming the key; other unknown keys are ignored, as the
 * bridge driver ignores them.
 */
import { invalid } from '../errors.js';
import { parseIp } from '../ip/address.js';
import { checkHostText } from '../rules/host-text.js';
import { CLUSTER_MTU_MIN, IPV6_MTU_MIN, MTU_MAX, MTU_MIN, checkClusterMtu } from '../rules/mtu.js';
import { checkClusterName, checkIfName } from '../rules/names.js';
import { VNI_MAX, VNI_MIN } from '../rules/vni.js';

export type GatewayMode = 'nat' | 'nat-unprotected' | 'routed';

export interface NetworkOptions {
  /** Bridge name asked for by the user; default is derived from the network id. */
  readonly bridgeName?: string;
  readonly mtu: number;
  readonly masquerade: boolean;
  readonly icc: boolean;
  /** Default host IP for published ports without one (bridge: host_binding_ipv4). */
  readonly hostBindingIpv4: string;
  readonly ifacePrefix: string;
  readonly internal: boolean;
  readonly ipv6: boolean;
  readonly gatewayModeIpv4: GatewayMode;
  readonly gatewayModeIpv6: GatewayMode;
  /** Source address for masquerade (bridge: com.docker.network.host_ipv4). */
  readonly hostIpv4?: string;
  readonly hostIpv6?: string;
  /** mynet.isolate: containers of this network cannot reach other mynet networks (default true). */
  readonly isolate: boolean;
  /** mynet.dns: names of this network are served by the mynet DNS server (default true). */
  readonly dns: boolean;
  /** mynet.cluster: the network spans every host that creates it with this name (issue 17). */
  readonly cluster?: string;
  /** mynet.vni: the cluster network's VXLAN id (default: derived from the name). */
  readonly vni?: number;
  /**
   * mynet.multicast: broadcast and multicast frames cross hosts (one all-zero forwarding entry
   * per member host, multihost/plane.ts). Cluster networks only; absent in records made before it: off.
   */
  readonly multicast?: boolean;
  /** mynet.encrypt: the cluster network's traffic between hosts goes through WireGuard (issue 24). */
  readonly encrypt?: 'wireguard';
}

export const DEFAULT_MTU = 1500;

const B = 'com.docker.network.bridge.';
const K = {
  name: `${B}name`,
  masq: `${B}enable_ip_masquerade`,
  icc: `${B}enable_icc`,
  hostBinding: `${B}host_binding_ipv4`,
  defaultBridge: `${B}default_bridge`,
  gwMode4: `${B}gateway_mode_ipv4`,
  gwMode6: `${B}gateway_mode_ipv6`,
  inhibit: `${B}inhibit_ipv4`,
  trusted: `${B}trusted_host_interfaces`,
  mtu: 'com.docker.network.driver.mtu',
  prefix: 'com.docker.network.container_iface_prefix',
  ipv6: 'com.docker.network.enable_ipv6',
  ipv4: 'com.docker.network.enable_ipv4',
  internal: 'com.docker.network.internal',
  hostIpv4: 'com.docker.network.host_ipv4',
  hostIpv6: 'com.docker.network.host_ipv6',
  isolate: 'mynet.isolate',
  dns: 'mynet.dns',
  cluster: 'mynet.cluster',
  vni: 'mynet.vni',
  multicast: 'mynet.multicast',
  encrypt: 'mynet.encrypt',
} as const;

/** The option keys, for the README's option table (test/unit/protocol/option-table.test.ts). */
export const OPTION_KEYS = K;

export const MYNET_KEYS: readonly string[] = [K.isolate, K.dns, K.cluster, K.vni, K.multicast, K.encrypt];

/** The encryptions a cluster network can have; only WireGuard so far. */
export const ENCRYPTIONS = ['wireguard'] as const;

function parseEncrypt(field: string, v: unknown): 'wireguard' {
  if (typeof v === 'string' && (ENCRYPTIONS as readonly string[]).includes(v)) return v as 'wireguard';
  throw invalid(field, `${JSON.stringify(v)?.slice(0, 40)} is not supported; valid values: ${ENCRYPTIONS.join(', ')}`);
}

const TRUE = new Set(['1', 't', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'f', 'false', 'no', 'off']);

export function parseBool(key: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (TRUE.has(s)) return true;
    if (FALSE.has(s)) return false;
  }
  throw invalid(`option ${key}`, `${JSON.stringify(v)} is not a boolean (use true or false)`);
}

// The value checks below take the whole field name: `option <key>` for a request, the record's
// field for a state file (checkStoredOptions), so both name what is wrong the same way.

function parseInt10(field: string, v: unknown, min: number, max: number): number {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  if (!/^\d{1,6}$/.test(s) || Number(s) < min || Number(s) > max) {
    throw invalid(field, `${JSON.stringify(v)?.slice(0, 40)} is not a whole number from ${min} to ${max}`);
  }
  return Number(s);
}

const GATEWAY_MODES: readonly GatewayMode[] = ['nat', 'nat-unprotected', 'routed'];

function parseGatewayMode(field: string, v: unknown): GatewayMode {
  if (typeof v === 'string' && (GATEWAY_MODES as string[]).includes(v)) return v as GatewayMode;
  throw invalid(field, `${JSON.stringify(v)?.slice(0, 40)} is not supported; valid values: ${GATEWAY_MODES.join(', ')}`);
}

function parseAddr(field: string, v: unknown, family?: 4 | 6): string {
  const a = typeof v === 'string' ? parseIp(v) : undefined;
  if (!a || (family && a.family !== family))
    throw invalid(field, `${JSON.stringify(v)?.slice(0, 60)} is not an IPv${family ?? '4 or IPv6'} address`);
  return v as string;
}

/**
 * A text option: dockerd sends driver options as strings (docker network create -o k=v). Text
 * options end up in host commands: a character that would change an ip or nft line is refused
 * first, by name, before the option's own format is checked.
 */
function text(field: string, v: unknown): string {
  if (typeof v === 'string') return checkHostText(field, v);
  if (typeof v === 'number') return String(v);
  throw invalid(field, `${JSON.stringify(v)?.slice(0, 40)} is not a string`);
}

/** Decodes CreateNetwork's Options (the whole map, generic map inside). */
export function parseNetworkOptions(options: Record<string, unknown> | null | undefined): NetworkOptions {
  const top = options ?? {};
  const genericRaw = top['com.docker.network.generic'] ?? {};
  if (typeof genericRaw !== 'object' || genericRaw === null || Array.isArray(genericRaw)) {
    throw invalid('Options.com.docker.network.generic', 'must be an object of strings');
  }
  const g = genericRaw as Record<string, unknown>;
  for (const key of Object.keys(g)) {
    if (key.startsWith('mynet.') && !MYNET_KEYS.includes(key)) {
      throw invalid(`option ${key}`, `unknown mynet option; valid mynet options: ${MYNET_KEYS.join(', ')}`);
    }
  }
  const has = (k: string): boolean => g[k] !== undefined && g[k] !== '';
  if (has(K.defaultBridge) && parseBool(K.defaultBridge, g[K.defaultBridge])) {
    throw invalid(`option ${K.defaultBridge}`, 'a mynet network cannot be the default bridge');
  }
  if (has(K.inhibit) && parseBool(K.inhibit, g[K.inhibit])) {
    throw invalid(`option ${K.inhibit}`, 'not supported by mynet (the bridge always has its gateway address)');
  }
  if (has(K.trusted)) throw invalid(`option ${K.trusted}`, 'not supported by mynet');
  const boolOf = (k: string, dflt: boolean, v: unknown = g[k]): boolean => (v === undefined || v === '' ? dflt : parseBool(k, v));
  const internal = boolOf(K.internal, false, top[K.internal]) || boolOf(K.internal, false);
  const ipv6 = boolOf(K.ipv6, false, top[K.ipv6]) || boolOf(K.ipv6, false);
  const mode = (k: string): GatewayMode => (has(k) ? parseGatewayMode(`option ${k}`, g[k]) : 'nat');
  const o = (k: string): string => `option ${k}`;
  const opts: NetworkOptions = {
    ...(has(K.name) ? { bridgeName: checkIfName(o(K.name), text(o(K.name), g[K.name])) } : {}),
    mtu: has(K.mtu) ? parseInt10(o(K.mtu), g[K.mtu], MTU_MIN, MTU_MAX) : DEFAULT_MTU,
    masquerade: boolOf(K.masq, true),
    icc: boolOf(K.icc, true),
    hostBindingIpv4: has(K.hostBinding) ? parseAddr(o(K.hostBinding), g[K.hostBinding]) : '0.0.0.0',
    ifacePrefix: has(K.prefix) ? ifacePrefix(o(K.prefix), text(o(K.prefix), g[K.prefix])) : 'eth',
    internal,
    ipv6,
    gatewayModeIpv4: mode(K.gwMode4),
    gatewayModeIpv6: mode(K.gwMode6),
    ...(has(K.hostIpv4) ? { hostIpv4: parseAddr(o(K.hostIpv4), g[K.hostIpv4], 4) } : {}),
    ...(has(K.hostIpv6) ? { hostIpv6: parseAddr(o(K.hostIpv6), g[K.hostIpv6], 6) } : {}),
    isolate: boolOf(K.isolate, true),
    dns: boolOf(K.dns, true),
    ...(has(K.cluster) ? { cluster: checkClusterName(o(K.cluster), g[K.cluster]) } : {}),
    ...(has(K.vni) ? { vni: parseInt10(o(K.vni), g[K.vni], VNI_MIN, VNI_MAX) } : {}),
    ...(has(K.multicast) ? { multicast: parseBool(K.multicast, g[K.multicast]) } : {}),
    ...(has(K.encrypt) ? { encrypt: parseEncrypt(o(K.encrypt), g[K.encrypt]) } : {}),
  };
  if (opts.vni !== undefined && opts.cluster === undefined)
    throw invalid(o(K.vni), `is only for cluster networks (-o ${K.cluster}=<name>)`);
  // A local network's bridge floods broadcast and multicast to every port already.
  if (opts.multicast !== undefined && opts.cluster === undefined)
    throw invalid(
      o(K.multicast),
      `is only for cluster networks (-o ${K.cluster}=<name>); a local network carries broadcast and multicast already`,
    );
  if (opts.encrypt !== undefined && opts.cluster === undefined)
    throw invalid(o(K.encrypt), `is only for cluster networks (-o ${K.cluster}=<name>): a local network's traffic never leaves the host`);
  if (opts.ipv6 && opts.mtu < IPV6_MTU_MIN) throw invalid(o(K.mtu), `${opts.mtu} is below ${IPV6_MTU_MIN}, the IPv6 minimum`);
  // The definition other hosts read: refuse here what their reader would refuse (rules/mtu.ts).
  // Over the underlay's limit is not refused: the agent lowers it to what the underlay carries.
  if (opts.cluster !== undefined && opts.mtu < CLUSTER_MTU_MIN) checkClusterMtu(o(K.mtu), opts.mtu);
  return opts;
}

function ifacePrefix(field: string, v: string): string {
  // dockerd appends an index (eth0, eth1...): keep room for it inside 15 bytes.
  if (!/^[a-z][a-z0-9]{0,9}$/.test(v)) {
    throw invalid(field, `"${v.slice(0, 40)}" must be 1-10 lowercase letters or digits, starting with a letter`);
  }
  return v;
}

/**
 * NetworkOptions read back from a state file, checked as parseNetworkOptions checks a request
 * (the stored form has real booleans and numbers). `field` names the record's field
 * ("options"); errors name "options.<name>". Unknown fields are ignored, as unknown options are.
 */
export function checkStoredOptions(field: string, v: unknown): NetworkOptions {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'must be an object');
  const r = v as Record<string, unknown>;
  const f = (k: keyof NetworkOptions): string => `${field}.${k}`;
  const str = (k: keyof NetworkOptions): string => checkHostText(f(k), r[k]);
  if (r.bridgeName !== undefined) checkIfName(f('bridgeName'), str('bridgeName'));
  if (typeof r.mtu !== 'number') throw invalid(f('mtu'), `${JSON.stringify(r.mtu)?.slice(0, 40)} is not a number`);
  parseInt10(f('mtu'), r.mtu, MTU_MIN, MTU_MAX);
  for (const k of ['masquerade', 'icc', 'internal', 'ipv6', 'isolate', 'dns'] as const) {
    if (typeof r[k] !== 'boolean') throw invalid(f(k), `${JSON.stringify(r[k])?.slice(0, 40)} is not true or false`);
  }
  parseAddr(f('hostBindingIpv4'), str('hostBindingIpv4'));
  ifacePrefix(f('ifacePrefix'), str('ifacePrefix'));
  parseGatewayMode(f('gatewayModeIpv4'), r.gatewayModeIpv4);
  parseGatewayMode(f('gatewayModeIpv6'), r.gatewayModeIpv6);
  if (r.hostIpv4 !== undefined) parseAddr(f('hostIpv4'), str('hostIpv4'), 4);
  if (r.hostIpv6 !== undefined) parseAddr(f('hostIpv6'), str('hostIpv6'), 6);
  if (r.cluster !== undefined) checkClusterName(f('cluster'), r.cluster);
  if (r.vni !== undefined) parseInt10(f('vni'), r.vni, VNI_MIN, VNI_MAX);
  if (r.multicast !== undefined && typeof r.multicast !== 'boolean')
    throw invalid(f('multicast'), `${JSON.stringify(r.multicast)?.slice(0, 40)} is not true or false`);
  if (r.encrypt !== undefined) parseEncrypt(f('encrypt'), r.encrypt);
  if (r.ipv6 === true && r.mtu < IPV6_MTU_MIN) throw invalid(f('mtu'), `${String(r.mtu)} is below ${IPV6_MTU_MIN}, the IPv6 minimum`);
  return r as unknown as NetworkOptions;
}
