/**
 * Names and marks for what mynet creates on the host. Every link we create is in netdev group
 * MYNET_GROUP (readable without a process in /sys/class/net/<if>/netdev_group) and carries an
 * alias naming its network/endpoint, so the doctor can attribute it and deletes can check the
 * mark first. Interface names are at most 15 bytes (IFNAMSIZ - 1).
 */
import { invalid } from '../errors.js';

export const MYNET_GROUP = 28014; // 0x6d6e, "mn"
/**
 * Our veths on their way out: taken off their bridge and down, deleted together by one
 * `ip link del group` (the kernel pays its ~20 ms wait once per batch, not once per veth).
 */
export const RETIRED_GROUP = 28015;
export const BRIDGE_PREFIX = 'mn-';
export const HOST_VETH_PREFIX = 'mnh';
export const CONTAINER_VETH_PREFIX = 'mnc';
export const FORWARD_CHAIN = 'MYNET-FORWARD';

const ID = /^[0-9a-f]{12,64}$/;

/** Docker ids are 64 lowercase hex; we accept 12..64 so that short test ids work. */
export function checkId(field: string, id: unknown): string {
  if (typeof id !== 'string' || !ID.test(id)) throw invalid(field, `must be a hex id of 12 to 64 characters, got ${JSON.stringify(id)?.slice(0, 80)}`);
  return id;
}

export const short = (id: string): string => id.slice(0, 12);
export const defaultBridgeName = (networkId: string): string => `${BRIDGE_PREFIX}${short(networkId)}`;
export const hostVethName = (endpointId: string): string => `${HOST_VETH_PREFIX}${short(endpointId)}`;
export const containerVethName = (endpointId: string): string => `${CONTAINER_VETH_PREFIX}${short(endpointId)}`;
export const networkAlias = (networkId: string): string => `mynet net:${short(networkId)}`;
export const endpointAlias = (networkId: string, endpointId: string): string =>
  `mynet net:${short(networkId)} ep:${short(endpointId)}`;

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** A name a user may give a bridge: a valid interface name that cannot be read as an option. */
export function checkIfName(field: string, name: string): string {
  if (!IFNAME.test(name) || Buffer.byteLength(name) > 15) {
    throw invalid(field, `"${name.slice(0, 40)}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -, not starting with - . or _)`);
  }
  return name;
}
