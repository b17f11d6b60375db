/**
 * Published ports: ProgramExternalConnectivity / RevokeExternalConnectivity (and the port side of
 * Leave, DeleteEndpoint, DeleteNetwork). Ports are resolved here (ranges, ephemeral ports,
 * conflicts) from what the orchestrator read of the host (`HostPorts`), then become map elements
 * of the `inet mynet` table (plan/nft.ts) and sockets the plugin holds (plan/ports.ts,
 * host/port-holder.ts): one transaction per request, whatever else is published.
 *
 * Linear in the bindings of the request and the ports already published: taken ports are
 * indexed by proto/port, and each range keeps a cursor, so a port found taken is never looked at
 * again in the same request (`docker run -P` with 4 000 EXPOSEs took 38.7 s when each candidate
 * port was searched for in a list). One request publishes at most MAX_BINDINGS bindings.
 */
import { checkPort } from '../rules/port.js';
import { PluginError, invalid } from '../errors.js';
import { parseIp } from '../ip/address.js';
import { nftOp, nftTeardown, portElementCommands, reverse } from '../plan/nft.js';
import { checkId } from '../rules/names.js';
import type { HostStep } from '../plan/step.js';
import type { HostPorts, PlannedDecision, Proto } from '../decision.js';
import { bare, heldSockets, portElements, scopeOf, unpublishSteps } from '../plan/ports.js';
import { type EndpointRecord, type PortBinding, type StateView, networkOf } from './state.js';

const PROTOS: Record<number, Proto> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };
const NUMBERS: Record<Proto, number> = { tcp: 6, udp: 17, sctp: 132 };

/**
 * Bindings one request may publish. `-P` on an image with 20 000 EXPOSEs and
 * `-p 10000-20000:10000-20000/udp` (10 001) fit; each binding costs an nft element or two and a
 * held socket per address family (~4 KB of the plugin's memory, one file descriptor).
 */
export const MAX_BINDINGS = 25_000;

const FIELD = 'Options.com.docker.network.portmap';

export interface RequestedBinding {
  readonly proto: Proto;
  readonly containerPort: number;
  readonly hostIp: string;
  readonly hostPort: number;
  readonly hostPortEnd: number;
}

const port = checkPort;

/** Decodes Options["com.docker.network.portmap"] (protocol.md §4.2). */
export function parsePortMap(options: Record<string, unknown> | null | undefined): RequestedBinding[] {
  const raw = options?.['com.docker.network.portmap'];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid(FIELD, 'must be an array');
  if (raw.length > MAX_BINDINGS) throw invalid(FIELD, `has ${raw.length} bindings, more than the ${MAX_BINDINGS} one request may publish`);
  return raw.map((b: unknown, i) => {
    const f = `${FIELD}[${i}]`;
    if (typeof b !== 'object' || b === null) throw invalid(f, 'must be an object');
    const o = b as Record<string, unknown>;
    const proto = PROTOS[o.Proto as number];
    if (!proto) throw invalid(`${f}.Proto`, `${JSON.stringify(o.Proto)} is not 6 (tcp), 17 (udp) or 132 (sctp)`);
    const hostIp = o.HostIP === undefined || o.HostIP === null ? '' : o.HostIP;
    if (typeof hostIp !== 'string' || (hostIp !== '' && !parseIp(hostIp)))
      throw invalid(`${f}.HostIP`, `${JSON.stringify(hostIp).slice(0, 60)} is not an IP address`);
    const hostPort = o.HostPort === undefined ? 0 : port(`${f}.HostPort`, o.HostPort, 0);
    const hostPortEnd = o.HostPortEnd === undefined || o.HostPortEnd === 0 ? hostPort : port(`${f}.HostPortEnd`, o.HostPortEnd, 0);
    if (hostPortEnd < hostPort) throw invalid(`${f}.HostPortEnd`, `${hostPortEnd} is below HostPort ${hostPort}`);
    return { proto, containerPort: port(`${f}.Port`, o.Port, 1), hostIp, hostPort, hostPortEnd };
  });
}

/** An exact host port (not a range, not "any free port"). */
export const isExact = (b: RequestedBinding): boolean => b.hostPort !== 0 && b.hostPortEnd === b.hostPort;

const meets = (a: string | undefined, b: string | undefined): boolean =>
  a !== undefined && b !== undefined && (a === 'any' || b === 'any' || a === b);
const clash = (a: string, b: string): boolean => {
  const x = scopeOf(a);
  const y = scopeOf(b);
  return meets(x.v4, y.v4) || meets(x.v6, y.v6);
};
/** A host listener on [::] usually takes IPv4 too (v6only off), so it clashes with anything. */
const listenerClash = (listener: string, hostIp: string): boolean =>
  listener === '::' || clash(listener === '0.0.0.0' ? '0.0.0.0' : listener, hostIp);

const describe = (b: { hostIp: string; hostPort: number; proto: Proto }): string =>
  `${b.hostIp === '' ? '' : b.hostIp.includes(':') ? `[${b.hostIp}]:` : `${b.hostIp}:`}${b.hostPort}/${b.proto}`;

interface Taken {
  readonly hostIp: string;
  readonly owner: string;
}

/** proto/port as one number (a Map with number keys is several times faster than with strings). */
const slot = (proto: Proto, hostPort: number): number => NUMBERS[proto] * 65536 + hostPort;

/** Ports published by other endpoints and by this request so far, by proto/port. */
class TakenPorts {
  private readonly byPort = new Map<number, Taken[]>();

  add(proto: Proto, hostPort: number, hostIp: string, owner: string): void {
    const key = slot(proto, hostPort);
    const list = this.byPort.get(key);
    if (list) list.push({ hostIp, owner });
    else this.byPort.set(key, [{ hostIp, owner }]);
  }

  /** Who holds proto/port on an address that meets hostIp, if anyone (a handful per port at most). */
  owner(proto: Proto, hostPort: number, hostIp: string): string | undefined {
    return this.byPort.get(slot(proto, hostPort))?.find((t) => clash(t.hostIp, hostIp))?.owner;
  }
}

function conflict(
  proto: Proto,
  hostPort: number,
  hostIp: string,
  taken: TakenPorts,
  host: HostPorts,
  choosing: boolean,
): string | undefined {
  const owner = taken.owner(proto, hostPort, hostIp);
  if (owner) return `already published by ${owner}`;
  // A port a client connection uses cannot be bound (held): a range skips it (Docker's bridge
  // finds it by a failed bind and tries another port); an exact port is the bind's to refuse.
  if (choosing && host.busy?.(proto, hostPort)) return 'in use by a connection of the host';
  const l = host.listening(proto, hostPort).find((addr) => listenerClash(addr, hostIp));
  if (l !== undefined) return `in use by a process listening on ${l.includes(':') ? `[${l}]` : l}:${hostPort}`;
  return undefined;
}

/**
 * Chooses a host port for each binding and refuses conflicts; pure. Exact ports are placed
 * first and ranges around them, as Docker's bridge does (libnetwork's cmpPortBindingReqs:
 * "exact host ports are placed before ranges"), so `-p 8000-8010:80 -p 8000:81` gives 8000 to
 * the exact binding and 8001 to the range; the answer keeps the request's order.
 */
export function resolveBindings(
  state: StateView,
  ep: EndpointRecord,
  requested: readonly RequestedBinding[],
  defaultHostIp: string,
  host: HostPorts,
): PortBinding[] {
  const taken = new TakenPorts();
  for (const e of state.endpoints.values()) {
    if (e.id === ep.id) continue;
    const owner = `mynet endpoint ${e.id.slice(0, 12)}`;
    for (const b of e.ports) taken.add(b.proto, b.hostPort, b.hostIp, owner);
  }
  // Per range and address: every port below the cursor was found taken in this request, and
  // stays taken (this request only adds), so the next binding of that range starts there.
  const cursors = new Map<string, number>();
  const out: (PortBinding | undefined)[] = new Array<PortBinding | undefined>(requested.length);
  const order = [...requested.keys()].filter((i) => isExact(requested[i] as RequestedBinding));
  for (const [i, r] of requested.entries()) if (!isExact(r)) order.push(i);
  for (const i of order) {
    const r = requested[i] as RequestedBinding;
    const hostIp = r.hostIp !== '' ? r.hostIp : defaultHostIp === '0.0.0.0' ? '' : defaultHostIp;
    const scope = scopeOf(hostIp);
    if ((scope.v4 && !ep.address && !scope.v6) || (scope.v6 && !ep.addressV6 && !scope.v4)) {
      throw invalid(
        FIELD,
        `${describe({ hostIp, hostPort: r.hostPort, proto: r.proto })}: the container has no IPv${scope.v4 ? 4 : 6} address on this network`,
      );
    }
    const [lo, hi] = r.hostPort === 0 ? host.ephemeral : [r.hostPort, r.hostPortEnd];
    const cursorKey = `${r.proto}|${lo}|${hi}|${hostIp}`;
    let chosen: number | undefined;
    let why: string | undefined;
    let p = cursors.get(cursorKey) ?? lo;
    for (; p <= hi; p++) {
      why = conflict(r.proto, p, hostIp, taken, host, !isExact(r));
      if (!why) {
        chosen = p;
        break;
      }
    }
    cursors.set(cursorKey, p);
    if (chosen === undefined) {
      const what =
        r.hostPort === 0
          ? `no free port in the ephemeral range ${lo}-${hi}/${r.proto}`
          : lo === hi
            ? `host port ${describe({ hostIp, hostPort: lo, proto: r.proto })} is ${why ?? 'taken'}`
            : `no free host port in ${lo}-${hi}/${r.proto}`;
      throw new PluginError('CONFLICT', what);
    }
    const b: PortBinding = { proto: r.proto, containerPort: r.containerPort, hostIp, hostPort: chosen };
    out[i] = b;
    taken.add(b.proto, b.hostPort, b.hostIp, 'another binding of this container');
  }
  return out as PortBinding[];
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
  const sockets = heldSockets(ep, ports);
  // A UDP/SCTP flow that kept sending to the port while nothing was published there is tracked
  // as a flow to the host and would never be DNATed: forget it (dockerd does the same), in one
  // pass for all the ports after the answer (a process per port made a 10 001-port UDP range
  // wait ~4.5 min for 20 002 conntrack processes).
  const flows: { udp: number[]; sctp: number[] } = { udp: [], sctp: [] };
  const seen = new Set<string>();
  for (const b of ports) {
    if (b.proto === 'tcp' || seen.has(`${b.proto}/${b.hostPort}`)) continue;
    seen.add(`${b.proto}/${b.hostPort}`);
    flows[b.proto].push(b.hostPort);
  }
  const plan: HostStep[] = [];
  // The held sockets first: a bind that fails (a process of the host uses the port) refuses the
  // request before anything else changed.
  if (sockets.length)
    plan.push({
      what: `hold ${sockets.length} host port socket(s) of ${eid.slice(0, 12)}`,
      run: { kind: 'port-hold', sockets },
      undo: { kind: 'port-release', sockets },
    });
  plan.push({
    what: `publish ${ports.length} port(s) of ${eid.slice(0, 12)}`,
    run: nftOp(portElementCommands('add', els)),
    undo: nftTeardown(reverse(portElementCommands('add', els))),
  });
  if (flows.udp.length + flows.sctp.length > 0) {
    plan.push({
      what: `forget flows to ${flows.udp.length + flows.sctp.length} newly published UDP/SCTP host port(s)`,
      run: { kind: 'conntrack-flush-ports', udp: flows.udp, sctp: flows.sctp },
      later: true,
    });
  }
  return { changes: [{ op: 'endpoint.put', endpoint: { ...ep, ports } }], plan, response: {} };
}

export function revokeExternalConnectivity(
  state: StateView,
  req: { NetworkID: string; EndpointID: string },
): PlannedDecision<Record<string, never>> {
  checkId('NetworkID', req.NetworkID);
  const ep = state.endpoints.get(checkId('EndpointID', req.EndpointID));
  if (!ep || ep.ports.length === 0) return { changes: [], plan: [], response: {} };
  return { changes: [{ op: 'endpoint.put', endpoint: { ...ep, ports: [] } }], plan: unpublishSteps(ep), response: {} };
}

/** EndpointOperInfo's view of the bindings in force, in dockerd's PortBinding shape. */
export const portMapInfo = (ep: EndpointRecord): Record<string, unknown>[] =>
  ep.ports.map((b) => ({
    Proto: NUMBERS[b.proto],
    IP: bare(ep.address) ?? bare(ep.addressV6) ?? '',
    Port: b.containerPort,
    HostIP: b.hostIp,
    HostPort: b.hostPort,
    HostPortEnd: b.hostPort,
  }));
