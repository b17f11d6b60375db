/**
 * Published ports: ProgramExternalConnectivity / RevokeExternalConnectivity (and the port side of
 * Leave, DeleteEndpoint, DeleteNetwork). Ports are resolved here (ranges, ephemeral ports,
 * conflicts) from what the orchestrator read of the host (`HostPorts`), then become map elements
 * of the `inet mynet` table (plan/nft.ts): O(1) per port, one transaction per request.
 */
import { PluginError, invalid } from '../errors.js';
import { parseIp } from '../ip/address.js';
import { portElementsScript } from '../plan/nft.js';
import { checkId } from '../plan/link-names.js';
import type { HostStep } from '../plan/step.js';
import type { HostPorts, PlannedDecision, Proto } from '../decision.js';
import { bare, portElements, scopeOf, unpublishSteps } from '../plan/ports.js';
import { type EndpointRecord, type PortBinding, type StateView, networkOf } from './state.js';

const PROTOS: Record<number, Proto> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };
const NUMBERS: Record<Proto, number> = { tcp: 6, udp: 17, sctp: 132 };

interface RequestedBinding {
  readonly proto: Proto;
  readonly containerPort: number;
  readonly hostIp: string;
  readonly hostPort: number;
  readonly hostPortEnd: number;
}

const port = (field: string, v: unknown, min: number): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 65535) throw invalid(field, `${JSON.stringify(v)} is not a port number`);
  return v;
};

/** Decodes Options["com.docker.network.portmap"] (protocol.md §4.2). */
export function parsePortMap(options: Record<string, unknown> | null | undefined): RequestedBinding[] {
  const raw = options?.['com.docker.network.portmap'];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid('Options.com.docker.network.portmap', 'must be an array');
  if (raw.length > 65535) throw invalid('Options.com.docker.network.portmap', 'has more than 65535 bindings');
  return raw.map((b: unknown, i) => {
    const f = `Options.com.docker.network.portmap[${i}]`;
    if (typeof b !== 'object' || b === null) throw invalid(f, 'must be an object');
    const o = b as Record<string, unknown>;
    const proto = PROTOS[o.Proto as number];
    if (!proto) throw invalid(`${f}.Proto`, `${JSON.stringify(o.Proto)} is not 6 (tcp), 17 (udp) or 132 (sctp)`);
    const hostIp = o.HostIP === undefined || o.HostIP === null ? '' : o.HostIP;
    if (typeof hostIp !== 'string' || (hostIp !== '' && !parseIp(hostIp))) throw invalid(`${f}.HostIP`, `${JSON.stringify(hostIp).slice(0, 60)} is not an IP address`);
    const hostPort = o.HostPort === undefined ? 0 : port(`${f}.HostPort`, o.HostPort, 0);
    const hostPortEnd = o.HostPortEnd === undefined || o.HostPortEnd === 0 ? hostPort : port(`${f}.HostPortEnd`, o.HostPortEnd, 0);
    if (hostPortEnd < hostPort) throw invalid(`${f}.HostPortEnd`, `${hostPortEnd} is below HostPort ${hostPort}`);
    return { proto, containerPort: port(`${f}.Port`, o.Port, 1), hostIp, hostPort, hostPortEnd };
  });
}

const meets = (a: string | undefined, b: string | undefined): boolean => a !== undefined && b !== undefined && (a === 'any' || b === 'any' || a === b);
const clash = (a: string, b: string): boolean => {
  const x = scopeOf(a);
  const y = scopeOf(b);
  return meets(x.v4, y.v4) || meets(x.v6, y.v6);
};
/** A host listener on [::] usually takes IPv4 too (v6only off), so it clashes with anything. */
const listenerClash = (listener: string, hostIp: string): boolean => listener === '::' || clash(listener === '0.0.0.0' ? '0.0.0.0' : listener, hostIp);

const describe = (b: { hostIp: string; hostPort: number; proto: Proto }): string =>
  `${b.hostIp === '' ? '' : b.hostIp.includes(':') ? `[${b.hostIp}]:` : `${b.hostIp}:`}${b.hostPort}/${b.proto}`;

interface Taken { readonly binding: PortBinding; readonly owner: string }

function conflict(proto: Proto, hostPort: number, hostIp: string, taken: readonly Taken[], host: HostPorts): string | undefined {
  const t = taken.find((x) => x.binding.proto === proto && x.binding.hostPort === hostPort && clash(x.binding.hostIp, hostIp));
  if (t) return `already published by ${t.owner}`;
  const l = host.listening(proto, hostPort).find((addr) => listenerClash(addr, hostIp));
  if (l !== undefined) return `in use by a process listening on ${l.includes(':') ? `[${l}]` : l}:${hostPort}`;
  return undefined;
}

/** Chooses a host port for each binding and refuses conflicts; pure. */
export function resolveBindings(state: StateView, ep: EndpointRecord, requested: readonly RequestedBinding[], defaultHostIp: string, host: HostPorts): PortBinding[] {
  const taken: Taken[] = [];
  for (const e of state.endpoints.values()) {
    if (e.id === ep.id) continue;
    for (const b of e.ports) taken.push({ binding: b, owner: `mynet endpoint ${e.id.slice(0, 12)}` });
  }
  const out: PortBinding[] = [];
  for (const r of requested) {
    const hostIp = r.hostIp !== '' ? r.hostIp : defaultHostIp === '0.0.0.0' ? '' : defaultHostIp;
    const scope = scopeOf(hostIp);
    if ((scope.v4 && !ep.address && !scope.v6) || (scope.v6 && !ep.addressV6 && !scope.v4)) {
      throw invalid('Options.com.docker.network.portmap', `${describe({ hostIp, hostPort: r.hostPort, proto: r.proto })}: the container has no IPv${scope.v4 ? 4 : 6} address on this network`);
    }
    const [lo, hi] = r.hostPort === 0 ? host.ephemeral : [r.hostPort, r.hostPortEnd];
    let chosen: number | undefined;
    let why: string | undefined;
    for (let p = lo; p <= hi; p++) {
      why = conflict(r.proto, p, hostIp, taken, host);
      if (!why) { chosen = p; break; }
    }
    if (chosen === undefined) {
      const what = r.hostPort === 0 ? `no free port in the ephemeral range ${lo}-${hi}/${r.proto}` : lo === hi ? `host port ${describe({ hostIp, hostPort: lo, proto: r.proto })} is ${why}` : `no free host port in ${lo}-${hi}/${r.proto}`;
      throw new PluginError('CONFLICT', what);
    }
    const b: PortBinding = { proto: r.proto, containerPort: r.containerPort, hostIp, hostPort: chosen };
    out.push(b);
    taken.push({ binding: b, owner: 'another binding of this container' });
  }
  return out;
}

export function programExternalConnectivity(
  state: StateView,
  req: { NetworkID: string; EndpointID: string; Options?: Record<string, unknown> | null },
  host: HostPorts,
): PlannedDecision<Record<string, never>> {
  const net = networkOf(state, checkId('NetworkID', req.NetworkID));
  const eid = checkId('EndpointID', req.EndpointID);
  const ep = state.endpoints.get(eid);
  if (!ep) throw new PluginError('ENDPOINT_NOT_FOUND', `EndpointID: no mynet endpoint ${eid.slice(0, 12)}`);
  const requested = parsePortMap(req.Options);
  // Internal networks publish nothing; a repeat of a call already in force changes nothing.
  if (net.options.internal || requested.length === 0 || ep.ports.length > 0) return { changes: [], plan: [], response: {} };
  const ports = resolveBindings(state, ep, requested, net.options.hostBindingIpv4, host);
  const els = portElements(ep, ports);
  // A UDP/SCTP flow that kept sending to the port while nothing was published there is tracked
  // as a flow to the host and would never be DNATed: forget it (dockerd does the same).
  const flows = new Map<string, { proto: 'udp' | 'sctp'; port: number }>();
  for (const b of ports) if (b.proto !== 'tcp') flows.set(`${b.hostPort}/${b.proto}`, { proto: b.proto, port: b.hostPort });
  return {
    changes: [{ op: 'endpoint.put', endpoint: { ...ep, ports } }],
    plan: [
      {
        what: `publish ${ports.length} port(s) of ${eid.slice(0, 12)}`,
        run: { kind: 'nft', script: portElementsScript('add', els) },
        undo: { kind: 'nft', script: portElementsScript('delete', els) },
      },
      ...[...flows].map(([k, f]): HostStep => ({ what: `forget flows to host port ${k}`, run: { kind: 'conntrack-flush-port', ...f } })),
    ],
    response: {},
  };
}

export function revokeExternalConnectivity(state: StateView, req: { NetworkID: string; EndpointID: string }): PlannedDecision<Record<string, never>> {
  checkId('NetworkID', req.NetworkID);
  const ep = state.endpoints.get(checkId('EndpointID', req.EndpointID));
  if (!ep || ep.ports.length === 0) return { changes: [], plan: [], response: {} };
  return { changes: [{ op: 'endpoint.put', endpoint: { ...ep, ports: [] } }], plan: unpublishSteps(ep), response: {} };
}

/** EndpointOperInfo's view of the bindings in force, in dockerd's PortBinding shape. */
export const portMapInfo = (ep: EndpointRecord): Record<string, unknown>[] =>
  ep.ports.map((b) => ({ Proto: NUMBERS[b.proto], IP: bare(ep.address) ?? bare(ep.addressV6) ?? '', Port: b.containerPort, HostIP: b.hostIp, HostPort: b.hostPort, HostPortEnd: b.hostPort }));
