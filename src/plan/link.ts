/**
 * Bridges and veth pairs. Everything here carries our netdev group (the ownership mark) and an
 * alias naming its network/endpoint. Creates are undone by an ownership-checked delete, and a
 * leftover of ours under the same name (a crash between host change and save) is removed first,
 * so every create plan is safe to run again. A foreign link under that name makes the plan fail
 * at its first step, before anything is made.
 */
import { bareAddress } from '../rules/address.js';
import { MYNET_GROUP, endpointAlias, networkAlias } from './link-names.js';
import type { HostStep } from './step.js';

export interface BridgeSpec {
  readonly networkId: string;
  readonly name: string;
  readonly mtu: number;
  /** Gateway addresses with prefix length ("10.1.0.1/24", "fd00::1/64"). */
  readonly addresses: readonly string[];
  /** The bridge's MAC; default macFromId. A cluster network's is its anycast gateway MAC, the same on every host. */
  readonly mac?: string;
}

/** A stable, locally administered MAC: the kernel would otherwise give the bridge its lowest port's MAC, which changes as containers come and go. */
export const macFromId = (id: string): string => `02:${id.slice(0, 10).match(/../g)?.join(':') ?? '00:00:00:00:00'}`;

/**
 * An endpoint's MAC from its IPv4 address, as Docker's bridge driver makes them (02:42 and the
 * four bytes): an address given to a new container keeps its MAC, so the neighbour caches of
 * the host and of the other containers, which still hold the address's last MAC, stay right.
 */
export const macFromIPv4 = (cidr: string): string =>
  `02:42:${bareAddress(cidr)
    .split('.')
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join(':')}`;

const group = String(MYNET_GROUP);

export function bridgeSteps(b: BridgeSpec): HostStep[] {
  return [
    { what: `remove leftover bridge ${b.name}`, run: { kind: 'link-del', name: b.name } },
    {
      what: `create bridge ${b.name}`,
      run: {
        kind: 'ip',
        args: [
          'link',
          'add',
          'name',
          b.name,
          'mtu',
          String(b.mtu),
          'address',
          b.mac ?? macFromId(b.networkId),
          'group',
          group,
          'type',
          'bridge',
        ],
      },
      undo: { kind: 'link-del', name: b.name },
    },
    { what: `mark bridge ${b.name}`, run: { kind: 'ip', args: ['link', 'set', 'dev', b.name, 'alias', networkAlias(b.networkId)] } },
    ...b.addresses.map((a): HostStep => ({
      what: `add gateway ${a} to ${b.name}`,
      // nodad: the gateway must answer at once; nobody else can hold it on a bridge we just made.
      run: { kind: 'ip', args: ['addr', 'add', a, 'dev', b.name, ...(a.includes(':') ? ['nodad'] : [])] },
    })),
    { what: `bring up bridge ${b.name}`, run: { kind: 'ip', args: ['link', 'set', 'dev', b.name, 'up'] } },
  ];
}

export const deleteLinkStep = (name: string, what: string): HostStep => ({ what, run: { kind: 'link-del', name } });

export interface VethSpec {
  readonly networkId: string;
  readonly endpointId: string;
  readonly bridge: string;
  readonly hostIf: string;
  readonly containerIf: string;
  readonly mtu: number;
  readonly mac: string;
}

/**
 * One command makes the pair, attaches the host side to the bridge and brings it up; the next
 * puts that bridge port in hairpin mode. The container side is left down and unaddressed:
 * dockerd moves, renames and addresses it.
 */
export function vethSteps(v: VethSpec): HostStep[] {
  return [
    { what: `remove leftover veth ${v.hostIf}`, run: { kind: 'link-del', name: v.hostIf } },
    {
      what: `create veth ${v.hostIf} on ${v.bridge}`,
      run: {
        kind: 'ip',
        args: [
          'link',
          'add',
          'name',
          v.hostIf,
          'mtu',
          String(v.mtu),
          'group',
          group,
          'master',
          v.bridge,
          'up',
          'type',
          'veth',
          'peer',
          'name',
          v.containerIf,
          'mtu',
          String(v.mtu),
          'address',
          v.mac,
          'group',
          group,
        ],
      },
      undo: { kind: 'link-del', name: v.hostIf },
    },
    // A container reaching its own published port through the host's address: after DNAT the
    // frame (bridged, br_netfilter) must go back out of the port it came in on, which a bridge
    // does only in hairpin mode. Docker's bridge driver sets it when the userland proxy is off
    // (with the proxy, docker-proxy answers instead); mynet has no proxy, so always.
    {
      what: `let ${v.hostIf} send frames back to the port they came from (hairpin to itself)`,
      run: { kind: 'ip', args: ['link', 'set', 'dev', v.hostIf, 'type', 'bridge_slave', 'hairpin', 'on'] },
    },
    {
      what: `mark veth ${v.hostIf}`,
      run: { kind: 'ip', args: ['link', 'set', 'dev', v.hostIf, 'alias', endpointAlias(v.networkId, v.endpointId)] },
    },
  ];
}
