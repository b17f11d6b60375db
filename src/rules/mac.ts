/** MAC addresses: what mynet puts on an interface or in a forwarding entry. */
import { invalid } from '../errors.js';

export const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

/**
 * Why a lowercase MAC cannot be an interface's own address, or undefined when it can: the
 * kernel refuses an all-zero or multicast (and broadcast) address in a permanent forwarding or
 * neighbour entry, so a record carrying one would fail every sync (issue 22, finding 17).
 */
export function macProblem(m: string): string | undefined {
  if (!MAC.test(m)) return 'is not a MAC address (aa:bb:cc:dd:ee:ff, lowercase)';
  if (m === '00:00:00:00:00:00') return 'is the all-zero address';
  if (parseInt(m.slice(0, 2), 16) & 1) return 'is a multicast address';
  return undefined;
}

/** A unicast MAC address; returns it in lowercase. */
export function checkMac(field: string, mac: string): string {
  const m = mac.toLowerCase();
  const p = macProblem(m);
  if (p) throw invalid(field, `"${mac.slice(0, 40)}" ${p}`);
  return m;
}
