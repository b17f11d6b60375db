/** One cluster network's state and its VXLAN device as made, shared by the doctor's cluster tests. */
import { createNetwork } from '../../../src/driver/network.js';
import { type ClusterBinding, State } from '../../../src/driver/state.js';
import type { LinkInfo } from '../../../src/host/kernel-snapshot.js';
import { vxlanName } from '../../../src/plan/vxlan.js';
import { hexId } from '../support.js';

export const NET = hexId(0xc1);
export const BR = `mn-${NET.slice(0, 12)}`;
export const DEV = vxlanName(NET);
export const binding = {
  name: 'blue',
  subnet: '10.77.0.0/16',
  gateway: '10.77.0.1',
  gatewayMac: '02:6d:00:00:00:01',
  vni: 4242,
  mtu: 1450,
  local: '198.18.70.1',
};

/** The state with one cluster network; `more`: options of its binding (mynet.multicast). */
export function world(more: Partial<ClusterBinding> = {}): State {
  const s = new State();
  s.apply(
    createNetwork(
      s,
      {
        NetworkID: NET,
        Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue' } },
        IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: '10.77.0.1/16' }],
      },
      'absent',
      '2026-01-01T00:00:00.000Z',
      { ...binding, ...more },
    ).changes,
  );
  return s;
}

export const goodDevice: LinkInfo = {
  name: DEV,
  master: BR,
  mtu: 1450,
  up: true,
  addrs: [],
  vxlan: { id: 4242, local: '198.18.70.1', port: 4789, learning: false, proxy: true },
};
export const bridge: LinkInfo = { name: BR, mtu: 1450, up: true, addrs: ['10.77.0.1/16'] };
