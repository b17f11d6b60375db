/**
 * Published ports as host steps: an endpoint's bindings become map elements of the `inet mynet`
 * table (plan/nft.ts), and unpublishing removes them and forgets the flows that still use them.
 */
import { bareAddress } from '../rules/address.js';
import type { EndpointRecord, PortBinding } from '../driver/state.js';
import { type PortElement, nftTeardown, portElementCommands } from './nft.js';
import { parseIp } from '../ip/address.js';
import type { HeldSocket, HostStep } from './step.js';

/** An address of the family, 'any' for all of them, or undefined for none. */
export type Scope = { v4: string | undefined; v6: string | undefined };

/** Which addresses of each family a host IP covers: '' both families, 0.0.0.0 all IPv4, :: all IPv6. */
export function scopeOf(hostIp: string): Scope {
  if (hostIp === '') return { v4: 'any', v6: 'any' };
  if (hostIp === '0.0.0.0') return { v4: 'any', v6: undefined };
  if (hostIp === '::') return { v4: undefined, v6: 'any' };
  return parseIp(hostIp)?.family === 6 ? { v4: undefined, v6: hostIp } : { v4: hostIp, v6: undefined };
}

/** An address without its prefix length, or undefined when there is none. */
export const bare = (cidr: string | undefined): string | undefined => (cidr === undefined ? undefined : bareAddress(cidr));

/** The nft map elements of an endpoint's bindings. */
export function portElements(ep: EndpointRecord, ports: readonly PortBinding[]): PortElement[] {
  const v4 = bare(ep.address);
  const v6 = bare(ep.addressV6);
  const out: PortElement[] = [];
  for (const b of ports) {
    const s = scopeOf(b.hostIp);
    const tail = `${b.proto} . ${b.hostPort}`;
    if (s.v4 && v4)
      out.push(
        s.v4 === 'any'
          ? { map: 'pub4any', key: tail, value: `${v4} . ${b.containerPort}` }
          : { map: 'pub4', key: `${s.v4} . ${tail}`, value: `${v4} . ${b.containerPort}` },
      );
    if (s.v6 && v6)
      out.push(
        s.v6 === 'any'
          ? { map: 'pub6any', key: tail, value: `${v6} . ${b.containerPort}` }
          : { map: 'pub6', key: `${s.v6} . ${tail}`, value: `${v6} . ${b.containerPort}` },
      );
  }
  return out;
}

/**
 * The sockets that hold an endpoint's host ports while they are published, one per map element:
 * 0.0.0.0 or [::] for a binding on every address of the family, else its address. This is what
 * Docker's bridge binds (libnetwork/drivers/bridge/port_mapping_linux.go: a socket per host
 * address and family, an unspecified HostIP becoming 0.0.0.0 and [::] with IPV6_V6ONLY), so a
 * process of the host that binds the port later gets EADDRINUSE instead of being shadowed.
 */
export function heldSockets(ep: EndpointRecord, ports: readonly PortBinding[]): HeldSocket[] {
  const v4 = bare(ep.address);
  const v6 = bare(ep.addressV6);
  const out: HeldSocket[] = [];
  for (const b of ports) {
    const s = scopeOf(b.hostIp);
    if (s.v4 && v4) out.push({ proto: b.proto, address: s.v4 === 'any' ? '0.0.0.0' : s.v4, port: b.hostPort, hostIp: b.hostIp });
    if (s.v6 && v6) out.push({ proto: b.proto, address: s.v6 === 'any' ? '::' : s.v6, port: b.hostPort, hostIp: b.hostIp });
  }
  return out;
}

/** Steps that remove an endpoint's published ports and the flows that still use them. */
export function unpublishSteps(ep: EndpointRecord): HostStep[] {
  if (ep.ports.length === 0) return [];
  const els = portElements(ep, ep.ports);
  return [
    { what: `unpublish ports of ${ep.id.slice(0, 12)}`, run: nftTeardown(portElementCommands('delete', els)) },
    // Closing sockets is cheap and must be done before the answer: the next container may
    // publish the same port right away.
    { what: `release the host port sockets of ${ep.id.slice(0, 12)}`, run: { kind: 'port-release', sockets: heldSockets(ep, ep.ports) } },
    // Established flows (UDP especially) would otherwise keep reaching the old container.
    // After the answer: the elements are gone already, so no new flow reaches the old address.
    ...[bare(ep.address), bare(ep.addressV6)].flatMap((a): HostStep[] =>
      a ? [{ what: `forget flows to ${a}`, run: { kind: 'conntrack-flush', address: a }, later: true }] : [],
    ),
  ];
}
