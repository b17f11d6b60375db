/**
 * The WireGuard settings (issue 24), from the environment like the cluster's. Only an encrypted
 * cluster network (`-o mynet.encrypt=wireguard`) uses them: the plain ones need no WireGuard.
 *
 *   MYNET_WIREGUARD            kernel (default) | userspace | off
 *   MYNET_WIREGUARD_PORT       the UDP port peers send to (default 51820)
 *   MYNET_WIREGUARD_INTERFACE  the interface's name (default mynet-wg0)
 *   MYNET_WIREGUARD_ADDRESS    this host's tunnel address with its prefix (default: derived
 *                              from the underlay address, tunnelAddressFor)
 *
 * `userspace` is a choice the operator makes, never a fallback: wireguard-go is ~0.3 Gbit/s per
 * core here against the kernel's several, and a host that silently ran it would be slow with
 * nothing saying why.
 */
import { invalid } from '../../errors.js';
import { formatIp, parseIp } from '../../ip/address.js';
import { formatCidr, parseCidr } from '../../ip/cidr.js';
import { checkIfName } from '../../rules/names.js';

export type WireGuardMode = 'kernel' | 'userspace' | 'off';
export const WIREGUARD_MODES: readonly WireGuardMode[] = ['kernel', 'userspace', 'off'];

export interface WireGuardSettings {
  readonly mode: WireGuardMode;
  readonly port: number;
  readonly iface: string;
  /** This host's tunnel address and prefix ("100.64.10.1/10"); undefined: tunnelAddressFor. */
  readonly address?: string;
}

export const DEFAULT_PORT = 51820;
export const DEFAULT_IFACE = 'mynet-wg0';
/** The tunnel addresses' default range: the shared address space (RFC 6598), never routed on the internet. */
export const DEFAULT_TUNNEL_RANGE = '100.64.0.0/10';

/** Port bounds a peer record may name (0 is no port; below 1024 is for the host's own services). */
export const PORT_MIN = 1024;
export const PORT_MAX = 65_535;

export function parseWireGuardSettings(env: NodeJS.ProcessEnv): WireGuardSettings {
  const modeText = (env.MYNET_WIREGUARD ?? '').trim() || 'kernel';
  if (!(WIREGUARD_MODES as readonly string[]).includes(modeText))
    throw invalid('MYNET_WIREGUARD', `"${modeText.slice(0, 40)}" is not one of ${WIREGUARD_MODES.join(', ')}`);
  const portText = (env.MYNET_WIREGUARD_PORT ?? '').trim() || String(DEFAULT_PORT);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < PORT_MIN || Number(portText) > PORT_MAX)
    throw invalid('MYNET_WIREGUARD_PORT', `"${portText.slice(0, 20)}" is not a UDP port from ${PORT_MIN} to ${PORT_MAX}`);
  const iface = checkIfName('MYNET_WIREGUARD_INTERFACE', (env.MYNET_WIREGUARD_INTERFACE ?? '').trim() || DEFAULT_IFACE);
  const addressText = (env.MYNET_WIREGUARD_ADDRESS ?? '').trim();
  const address = addressText === '' ? undefined : checkTunnelAddress('MYNET_WIREGUARD_ADDRESS', addressText);
  return Object.freeze({ mode: modeText as WireGuardMode, port: Number(portText), iface, ...(address && { address }) });
}

/** An IPv4 host address with a prefix of 8 to 30 bits, kept as given ("198.18.170.1/24"). */
export function checkTunnelAddress(field: string, text: string): string {
  const c = parseCidr(text);
  if (!c.ok || c.addr.family !== 4)
    throw invalid(field, `"${text.slice(0, 60)}" is not an IPv4 address with a prefix length (e.g. 100.64.0.1/10)`);
  if (c.cidr.prefix < 8 || c.cidr.prefix > 30)
    throw invalid(field, `"${text}": the prefix must be from /8 to /30 (it holds every host's tunnel address)`);
  const host = c.addr.value & ((1n << BigInt(32 - c.cidr.prefix)) - 1n);
  if (host === 0n || host === (1n << BigInt(32 - c.cidr.prefix)) - 1n)
    throw invalid(field, `"${text}" is the network or broadcast address of ${formatCidr(c.cidr)}`);
  return text;
}

/**
 * The default tunnel address: the underlay address's low 22 bits in 100.64.0.0/10, so hosts
 * agree without configuration when their underlay addresses differ in those bits (one /10 or
 * smaller IPv4 underlay; over IPv6, hosts numbered apart within their /64's last 22 bits, as
 * ::1, ::2 or SLAAC's random interface ids mostly are). The tunnel stays IPv4 whatever the
 * underlay: the VXLAN inside it, and the guard's member set, need one family. Two hosts that
 * collide are told so by the peer check (peer-record.ts: a tunnel address held twice is
 * believed for neither); MYNET_WIREGUARD_ADDRESS sets one by hand.
 */
export function tunnelAddressFor(underlay: string): string {
  const a = parseIp(underlay);
  if (!a) throw invalid('MYNET_NODE_ADDRESS', `"${underlay.slice(0, 60)}" is not an IPv4 or IPv6 address`);
  let low = a.value & ((1n << 22n) - 1n);
  // All zeros or all ones would be the range's network or broadcast address.
  if (low === 0n) low = 1n;
  if (low === (1n << 22n) - 1n) low -= 1n;
  return `${formatIp({ family: 4, value: (100n << 24n) | (64n << 16n) | low })}/10`;
}
