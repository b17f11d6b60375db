/**
 * Kernel settings a network needs. Forwarding is switched on (never off: other things on the host
 * may rely on it, and Docker's bridge turns it on too); route_localnet lets the host reach
 * ports published on 127.0.0.1 through our bridge.
 */
import type { HostStep } from './step.js';

export const forwardingSteps = (ipv4: boolean, ipv6: boolean): HostStep[] => [
  ...(ipv4 ? [{ what: 'enable IPv4 forwarding', run: { kind: 'sysctl', key: 'net/ipv4/ip_forward', value: '1' } } as const] : []),
  ...(ipv6 ? [{ what: 'enable IPv6 forwarding', run: { kind: 'sysctl', key: 'net/ipv6/conf/all/forwarding', value: '1' } } as const] : []),
];

/**
 * ICC off is enforced in our forward chain, which sees same-bridge traffic only when
 * br_netfilter passes bridged frames to it (dockerd turns this on too). Bridge port isolation
 * would be simpler but drops published-port hairpin traffic, which br_netfilter bridges port to
 * port after DNAT.
 */
export const bridgeNetfilterSteps = (ipv6: boolean): HostStep[] => [
  {
    what: 'pass bridged IPv4 traffic to the firewall (ICC off; needs the br_netfilter module)',
    run: { kind: 'sysctl', key: 'net/bridge/bridge-nf-call-iptables', value: '1' },
  },
  ...(ipv6
    ? [
        {
          what: 'pass bridged IPv6 traffic to the firewall (ICC off)',
          run: { kind: 'sysctl', key: 'net/bridge/bridge-nf-call-ip6tables', value: '1' },
        } as const,
      ]
    : []),
];

export const routeLocalnetStep = (bridge: string): HostStep => ({
  what: `let ${bridge} carry 127.0.0.1 traffic to published ports`,
  run: { kind: 'sysctl', key: `net/ipv4/conf/${bridge}/route_localnet`, value: '1' },
});
