/** What `mynet status` and `mynet ports` show, built from the state (pure). */
import { bareAddress } from '../rules/address.js';
import { type StateView, mtuOf } from '../driver/state.js';
import type { NamesSource } from '../dns/engine.js';
import type { DockerNames } from './docker-names.js';
import { endpointLabels, matches, type Labels } from '../rules/label.js';
import type { Policy } from '../policy/document.js';
import type { EndpointRecord, PolicyRecord } from '../driver/state.js';

export interface EndpointView {
  readonly id: string;
  readonly container?: string;
  readonly addresses: readonly string[];
  readonly mac: string;
  readonly hostVeth: string;
  readonly ports: number;
  /** Its `mynet.label.*` labels and the policies that select it (issue 25); absent when none. */
  readonly labels?: Labels;
  readonly policies?: readonly string[];
}

/** A policy as `mynet policy ls` shows it: the document, its network, the endpoints it selects. */
export interface PolicyView extends Policy {
  readonly networkId: string;
  readonly networkName?: string;
  readonly selects: readonly { readonly id: string; readonly container?: string; readonly addresses: readonly string[] }[];
}

export interface NetworkView {
  readonly id: string;
  readonly name?: string;
  readonly bridge: string;
  readonly subnets: readonly string[];
  readonly gateways: readonly string[];
  readonly options: Record<string, unknown>;
  readonly endpoints: readonly EndpointView[];
}

export interface PortView {
  readonly hostIp: string;
  readonly hostPort: number;
  readonly proto: string;
  readonly container?: string;
  readonly containerIp: string;
  readonly containerPort: number;
  readonly network: string;
  readonly endpoint: string;
}

const bare = (cidr?: string): string | undefined => (cidr === undefined ? undefined : bareAddress(cidr));

/** Host DNS names and container names in `mynet status`: on, or off and why. */
export interface NamesView {
  readonly on: boolean;
  readonly socket: string;
  readonly why?: string;
}

export const namesView = (s: NamesSource): NamesView =>
  s.on ? { on: true, socket: s.socket } : { on: false, socket: s.socket, why: s.why };

export function statusView(state: StateView, names: DockerNames): NetworkView[] {
  return [...state.networks.values()].map((n) => ({
    id: n.id,
    ...(names.networks.get(n.id) ? { name: names.networks.get(n.id) } : {}),
    bridge: n.bridge,
    subnets: [...n.ipv4, ...n.ipv6].map((s) => s.pool),
    gateways: [...n.ipv4, ...n.ipv6].flatMap((s) => (s.gateway ? [bare(s.gateway) as string] : [])),
    // A cluster network's bridge runs at its recorded MTU (underlay minus VXLAN's overhead, rules/mtu.ts), not the option's.
    options: { ...n.options, mtu: mtuOf(n) },
    endpoints: [...state.endpoints.values()]
      .filter((e) => e.networkId === n.id)
      .map((e) => ({
        id: e.id,
        ...(names.endpoints.get(e.id) ? { container: names.endpoints.get(e.id) } : {}),
        addresses: addressesOf(e),
        mac: e.mac,
        hostVeth: e.hostIf,
        ports: e.ports.length,
        ...(e.labels || e.containerLabels ? { labels: endpointLabels(e) } : {}),
        ...selecting(state, e),
      })),
  }));
}

const addressesOf = (e: EndpointRecord): string[] => [e.address, e.addressV6].filter((a): a is string => !!a);

const selects = (p: PolicyRecord, e: EndpointRecord): boolean => e.networkId === p.networkId && matches(p.select, endpointLabels(e));

/** The local policies and, as etcd says, the cluster networks' (issue 25), each with its network's id. */
const allPolicies = (state: StateView): PolicyRecord[] => [
  ...state.policies.values(),
  ...[...(state.clusterPolicy ?? [])].flatMap(([networkId, c]) => c.policies.map((p): PolicyRecord => ({ ...p, networkId }))),
];

function selecting(state: StateView, e: EndpointRecord): { policies?: string[] } {
  const names = allPolicies(state)
    .filter((p) => selects(p, e))
    .map((p) => p.name);
  return names.length ? { policies: names.sort() } : {};
}

/** Each policy with the endpoints it selects on this host (a cluster network's select other hosts' too, listed there). */
export function policiesView(state: StateView, names: DockerNames): PolicyView[] {
  return allPolicies(state)
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((p) => ({
      ...p,
      ...(names.networks.get(p.networkId) ? { networkName: names.networks.get(p.networkId) } : {}),
      selects: [...state.endpoints.values()]
        .filter((e) => selects(p, e))
        .map((e) => ({
          id: e.id,
          ...(names.endpoints.get(e.id) ? { container: names.endpoints.get(e.id) } : {}),
          addresses: addressesOf(e).map((a) => bare(a) as string),
        })),
    }));
}

export function portsView(state: StateView, names: DockerNames): PortView[] {
  const out: PortView[] = [];
  for (const e of state.endpoints.values()) {
    for (const p of e.ports) {
      out.push({
        hostIp: p.hostIp || '*',
        hostPort: p.hostPort,
        proto: p.proto,
        ...(names.endpoints.get(e.id) ? { container: names.endpoints.get(e.id) } : {}),
        containerIp: bare(p.hostIp.includes(':') ? e.addressV6 : (e.address ?? e.addressV6)) ?? '',
        containerPort: p.containerPort,
        network: names.networks.get(e.networkId) ?? e.networkId.slice(0, 12),
        endpoint: e.id,
      });
    }
  }
  return out.sort((a, b) => a.hostPort - b.hostPort || a.proto.localeCompare(b.proto));
}
