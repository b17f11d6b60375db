/**
 * Names and marks for what mynet creates on the host. Every link we create is in netdev group
 * MYNET_GROUP (readable without a process in /sys/class/net/<if>/netdev_group) and carries an
 * alias naming its network/endpoint, so the doctor can attribute it and deletes can check the
 * mark first. Interface names are at most 15 bytes (IFNAMSIZ - 1): rules/names.ts checks them.
 */
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
/**
 * The alias on mynet's WireGuard interface (issue 24). Its name is a setting
 * (MYNET_WIREGUARD_INTERFACE), so the name alone proves nothing: an interface of that name
 * without this alias is someone else's, and neither up() nor the doctor touches it.
 */
export const WIREGUARD_ALIAS = 'mynet wireguard';

export const short = (id: string): string => id.slice(0, 12);
export const defaultBridgeName = (networkId: string): string => `${BRIDGE_PREFIX}${short(networkId)}`;
export const hostVethName = (endpointId: string): string => `${HOST_VETH_PREFIX}${short(endpointId)}`;
export const containerVethName = (endpointId: string): string => `${CONTAINER_VETH_PREFIX}${short(endpointId)}`;
export const networkAlias = (networkId: string): string => `mynet net:${short(networkId)}`;
export const endpointAlias = (networkId: string, endpointId: string): string => `mynet net:${short(networkId)} ep:${short(endpointId)}`;
