/** What the cluster agent asks of this host's WireGuard (issue 24); one implementation, wireguard/host.ts. */
import type { Ability } from './capability.js';

export interface WireGuardPort {
  /** Whether this host can run an encrypted network, with the refusal naming what to install or set. */
  ability(): Ability;
  /** This host's tunnel address, bare: the VXLAN source of its encrypted networks. */
  readonly tunnelAddress: string;
}
