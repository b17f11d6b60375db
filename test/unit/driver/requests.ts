/** CreateNetwork bodies as dockerd 20.10 sent them (test/fixtures/dockerd-20.10), shared by the driver tests. */
import type { CreateNetworkRequest } from '../../../src/driver/network.js';

/** Dual stack, bridge name and MTU given, an auxiliary address (`docker network create --ipv6 -o ... --aux-address`). */
export const DUAL_REQ: CreateNetworkRequest = {
  NetworkID: 'c38af9122a9a1c8bf8eeb6ece822e1bb24d7013aa212796ca4e1f1332a0bd1df',
  Options: {
    'com.docker.network.enable_ipv6': true,
    'com.docker.network.generic': { 'com.docker.network.bridge.name': 'mybr0', 'com.docker.network.driver.mtu': '1400' },
  },
  IPv4Data: [{ AddressSpace: 'mylocal', AuxAddresses: { host1: '10.150.0.10/16' }, Gateway: '10.150.0.254/16', Pool: '10.150.0.0/16' }],
  IPv6Data: [{ AddressSpace: 'mylocal', Gateway: 'fd00:150::2/64', Pool: 'fd00:150::/64' }],
};

/** `docker network create --internal`. */
export const INTERNAL_REQ: CreateNetworkRequest = {
  NetworkID: '3c33f0178f27d27d4b78ce9e8296f0675b6035d7dc94e4b17448d7cd8a973766',
  Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {}, 'com.docker.network.internal': true },
  IPv4Data: [{ AddressSpace: 'LocalDefault', Gateway: '10.151.0.1/24', Pool: '10.151.0.0/24' }],
  IPv6Data: [],
};
