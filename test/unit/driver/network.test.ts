import { describe, expect, it } from 'vitest';
import { createEndpoint } from '../../../src/driver/endpoint.js';
import type { LinkOwner } from '../../../src/decision.js';
import { type CreateNetworkRequest, bridgeNameFor, createNetwork, deleteNetwork, networkSteps } from '../../../src/driver/network.js';
import { State } from '../../../src/driver/state.js';
import { renderPlan } from '../../../src/plan/step.js';
import { errorOf } from '../support.js';
import { DUAL_REQ, INTERNAL_REQ } from './requests.js';

const NOW = '2024-06-11T10:00:00.000Z';
const N1 = '8f19a07e80feaabe8d677ef1a704b65e57a1a011db75e3b488333bfb5776e9e6';
const N2 = DUAL_REQ.NetworkID;
const N3 = INTERNAL_REQ.NetworkID;
const E1 = 'eaa9b94eff48d101a249b461e493f6a08e25aead22365c6a3a8dab89d7a9574e';
const E2 = 'c22c4d431a809858c0c47bf69f2952cbc1f19bbeca4cec4c586c33522988ac64';

/** CreateNetwork bodies as dockerd 20.10 sent them (test/fixtures/dockerd-20.10). */
const v4Req: CreateNetworkRequest = {
  NetworkID: N1,
  Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
  IPv4Data: [{ AddressSpace: 'LocalDefault', Gateway: '172.20.0.1/16', Pool: '172.20.0.0/16' }],
  IPv6Data: [],
};
const dualReq = DUAL_REQ;
const internalReq = INTERNAL_REQ;

const created = (s: State, req: CreateNetworkRequest, link: LinkOwner = 'absent') => {
  const d = createNetwork(s, req, link, NOW);
  s.apply(d.changes);
  return d;
};

describe('createNetwork', () => {
  it('IPv4: bridge with gateway, then the FORWARD hook', async () => {
    const s = new State();
    const d = createNetwork(s, v4Req, 'absent', NOW);
    expect(d.response).toEqual({});
    await expect(renderPlan(d.plan)).toMatchFileSnapshot('../../golden/create-network-v4.txt');
    expect(d.changes).toHaveLength(1);
    const put = d.changes[0];
    expect(put?.op).toBe('network.put');
    if (put?.op !== 'network.put') return;
    expect(put.network).toMatchObject({
      id: N1,
      bridge: 'mn-8f19a07e80fe',
      ipv4: [{ pool: '172.20.0.0/16', gateway: '172.20.0.1/16' }],
      ipv6: [],
      createdAt: NOW,
      options: { mtu: 1500, internal: false, ipv6: false },
    });
  });

  it('dual stack with MTU and a custom bridge name', async () => {
    const s = new State();
    const d = createNetwork(s, dualReq, 'absent', NOW);
    await expect(renderPlan(d.plan)).toMatchFileSnapshot('../../golden/create-network-dual.txt');
    s.apply(d.changes);
    const n = s.networks.get(N2);
    expect(n?.bridge).toBe('mybr0');
    expect(n?.options.mtu).toBe(1400);
    expect(n?.ipv6).toEqual([{ pool: 'fd00:150::/64', gateway: 'fd00:150::2/64' }]);
  });

  it('internal network', async () => {
    const s = new State();
    const d = createNetwork(s, internalReq, 'absent', NOW);
    await expect(renderPlan(d.plan)).toMatchFileSnapshot('../../golden/create-network-internal.txt');
    s.apply(d.changes);
    expect(s.networks.get(N3)?.options.internal).toBe(true);
  });

  it('only the first network brings the hook with an undo (a failed save takes it away again)', () => {
    const s = new State();
    const first = createNetwork(s, v4Req, 'absent', NOW);
    expect(first.plan.at(-1)).toEqual({
      what: 'ensure the FORWARD hook',
      run: { kind: 'forward-hook', action: 'ensure' },
      undo: { kind: 'forward-hook', action: 'remove' },
    });
    s.apply(first.changes);
    const second = createNetwork(s, dualReq, 'absent', NOW);
    expect(second.plan.at(-1)).toEqual({ what: 'ensure the FORWARD hook', run: { kind: 'forward-hook', action: 'ensure' } });
  });

  it('a subnet without a gateway gets no address step', () => {
    const s = new State();
    const d = createNetwork(s, { NetworkID: N1, Options: {}, IPv4Data: [{ Pool: '10.9.0.0/24' }], IPv6Data: [] }, 'absent', NOW);
    expect(d.plan.some((st) => st.what.startsWith('add gateway'))).toBe(false);
  });

  it('a leftover bridge of ours is fine: the plan removes it first', () => {
    const s = new State();
    const d = createNetwork(s, v4Req, 'ours', NOW);
    const remove = d.plan.findIndex((st) => st.what === 'remove leftover bridge mn-8f19a07e80fe');
    const create = d.plan.findIndex((st) => st.what === 'create bridge mn-8f19a07e80fe');
    expect(d.plan[remove]?.run).toEqual({ kind: 'link-del', name: 'mn-8f19a07e80fe' });
    expect(remove).toBeGreaterThanOrEqual(0);
    expect(remove).toBeLessThan(create);
  });

  it('a repeated create of a known network changes nothing', () => {
    const s = new State();
    created(s, v4Req);
    expect(createNetwork(s, v4Req, 'ours', NOW)).toEqual({ changes: [], plan: [], response: {} });
  });

  it('refuses a bridge name held by a foreign link', () => {
    const s = new State();
    const e = errorOf(() => createNetwork(s, dualReq, 'foreign', NOW));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toContain('com.docker.network.bridge.name');
    expect(e.message).toContain('"mybr0"');
    expect(e.message).toContain('not created by mynet');
  });

  it('refuses a bridge name another mynet network uses', () => {
    const s = new State();
    created(s, dualReq);
    const other = { ...v4Req, Options: { 'com.docker.network.generic': { 'com.docker.network.bridge.name': 'mybr0' } } };
    const e = errorOf(() => createNetwork(s, other, 'ours', NOW));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toBe(`bridge name mybr0 is already used by mynet network ${N2.slice(0, 12)}`);
  });

  it('refuses bad input naming the field', () => {
    const s = new State();
    const cases: [CreateNetworkRequest, RegExp][] = [
      [{ ...v4Req, NetworkID: 'nope' }, /^NetworkID: /],
      [{ ...v4Req, IPv4Data: [{ Pool: 'x' }] }, /^IPv4Data\[0\]\.Pool: /],
      [{ ...v4Req, IPv4Data: [{ Pool: 'fd00::/64' }] }, /^IPv4Data\[0\]\.Pool: fd00::\/64 is not IPv4/],
      [{ ...v4Req, IPv6Data: [{ Pool: '10.0.0.0/8' }] }, /^IPv6Data\[0\]\.Pool: /],
      [
        { ...v4Req, IPv4Data: [{ Pool: '10.1.0.0/24', Gateway: '10.2.0.1/24' }] },
        /^IPv4Data\[0\]\.Gateway: 10\.2\.0\.1\/24 is not in 10\.1\.0\.0\/24/,
      ],
      [{ ...v4Req, IPv4Data: [{ Pool: '10.1.0.0/24', Gateway: '10.1.0.1' }] }, /^IPv4Data\[0\]\.Gateway: /],
      [{ ...v4Req, Options: { 'com.docker.network.generic': { 'mynet.custom': '1' } } }, /^option mynet\.custom: /],
      [
        { ...v4Req, Options: { 'com.docker.network.generic': { 'com.docker.network.bridge.name': 'a b' } } },
        /^option com\.docker\.network\.bridge\.name: /,
      ],
    ];
    for (const [req, re] of cases) {
      const e = errorOf(() => createNetwork(s, req, 'absent', NOW));
      expect(e.code).toBe('INVALID_REQUEST');
      expect(e.message).toMatch(re);
    }
  });

  it('bridgeNameFor reads the option or derives the default', () => {
    expect(bridgeNameFor(v4Req)).toBe('mn-8f19a07e80fe');
    expect(bridgeNameFor(dualReq)).toBe('mybr0');
    expect(() => bridgeNameFor({ NetworkID: 'bad' })).toThrow(/^NetworkID: /);
  });

  it('networkSteps re-creates a stored network without the hook', () => {
    const s = new State();
    created(s, dualReq);
    const n = s.networks.get(N2);
    if (!n) throw new Error('missing');
    const plan = networkSteps(n);
    expect(plan.some((st) => st.run.kind === 'forward-hook')).toBe(false);
    expect(renderPlan(createNetwork(new State(), dualReq, 'absent', NOW).plan)).toContain(renderPlan(plan));
  });
});

describe('createNetwork: names mynet generates are reserved; a name a record holds is a conflict (issue 14.3)', () => {
  const named = (name: string): CreateNetworkRequest => ({
    ...v4Req,
    Options: { 'com.docker.network.generic': { 'com.docker.network.bridge.name': name } },
  });

  it("refuses mnh…, mnc… and another network's mn-… as a user bridge name, naming the option; its own default name is accepted", () => {
    for (const name of [`mnh${E1.slice(0, 12)}`, `mnc${E1.slice(0, 12)}`, `mn-${N2.slice(0, 12)}`, 'mn-x']) {
      for (const fn of [() => createNetwork(new State(), named(name), 'absent', NOW), () => bridgeNameFor(named(name))]) {
        const e = errorOf(fn);
        expect(e.code).toBe('INVALID_REQUEST');
        expect(e.message).toMatch(/^option com\.docker\.network\.bridge\.name: ".*" starts with "mn[hc-]", which is reserved/);
      }
    }
    expect(createNetwork(new State(), named(`mn-${N1.slice(0, 12)}`), 'absent', NOW).changes).toHaveLength(1);
    expect(createNetwork(new State(), named('mnt-ok'), 'absent', NOW).changes).toHaveLength(1);
  });

  it("a stored endpoint's interface name is a conflict, never a leftover to delete, even when the link is ours", () => {
    const s = new State();
    s.apply([
      {
        op: 'endpoint.put',
        endpoint: { id: E1, networkId: N2, hostIf: 'oldveth1', containerIf: 'oldveth2', mac: '02:00:00:00:00:01', ports: [] },
      },
    ]);
    for (const name of ['oldveth1', 'oldveth2']) {
      const e = errorOf(() => createNetwork(s, named(name), 'ours', NOW));
      expect(e.code).toBe('CONFLICT');
      expect(e.message).toBe(`option com.docker.network.bridge.name: ${name} is the interface of mynet endpoint ${E1.slice(0, 12)}`);
    }
  });
});

describe('createNetwork: subnets overlap no other mynet network, whatever the IPAM (issue 14.10)', () => {
  it('refuses the same or an overlapping subnet of another network (IPv4 and IPv6), naming both networks and subnets', () => {
    const s = new State();
    created(s, dualReq); // 10.150.0.0/16 and fd00:150::/64, bridge mybr0
    const cases: [CreateNetworkRequest, string][] = [
      [
        { ...v4Req, IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.150.0.0/16', Gateway: '10.150.0.1/16' }] },
        `IPv4Data[0].Pool: subnet 10.150.0.0/16 of network ${N1.slice(0, 12)} overlaps subnet 10.150.0.0/16 of mynet network ${N2.slice(0, 12)} (bridge mybr0)`,
      ],
      [
        { ...v4Req, IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.150.7.0/24' }] },
        `IPv4Data[0].Pool: subnet 10.150.7.0/24 of network ${N1.slice(0, 12)} overlaps subnet 10.150.0.0/16 of mynet network ${N2.slice(0, 12)} (bridge mybr0)`,
      ],
      [
        { ...v4Req, IPv6Data: [{ AddressSpace: 'LocalDefault', Pool: 'fd00:150::/48' }] },
        `IPv6Data[0].Pool: subnet fd00:150::/48 of network ${N1.slice(0, 12)} overlaps subnet fd00:150::/64 of mynet network ${N2.slice(0, 12)} (bridge mybr0)`,
      ],
    ];
    for (const [req, msg] of cases) {
      const e = errorOf(() => createNetwork(s, req, 'absent', NOW));
      expect(e.code).toBe('CONFLICT');
      expect(e.message.startsWith(msg)).toBe(true);
    }
    expect(s.networks.size).toBe(1);
    // Next to it, and a repeat of the stored create: accepted.
    expect(createNetwork(s, { ...v4Req, IPv4Data: [{ Pool: '10.151.0.0/16' }] }, 'absent', NOW).changes).toHaveLength(1);
    expect(createNetwork(s, dualReq, 'ours', NOW)).toEqual({ changes: [], plan: [], response: {} });
  });
});

describe('deleteNetwork', () => {
  it('with endpoints: deletes their veths, then the bridge; other networks keep the hook', async () => {
    const s = new State();
    created(s, v4Req);
    created(s, dualReq);
    for (const eid of [E1, E2]) {
      s.apply(createEndpoint(s, { NetworkID: N2, EndpointID: eid, Interface: { Address: '', AddressIPv6: '', MacAddress: '' } }).changes);
    }
    const d = deleteNetwork(s, N2);
    expect(d.response).toEqual({});
    await expect(renderPlan(d.plan)).toMatchFileSnapshot('../../golden/delete-network-with-endpoints.txt');
    expect(d.changes).toEqual([
      { op: 'endpoint.delete', id: E1 },
      { op: 'endpoint.delete', id: E2 },
      { op: 'network.delete', id: N2 },
    ]);
    s.apply(d.changes);
    expect(s.networks.has(N2)).toBe(false);
    expect(s.endpoints.size).toBe(0);
  });

  it('the last network removes the FORWARD hook', async () => {
    const s = new State();
    created(s, v4Req);
    const d = deleteNetwork(s, N1);
    await expect(renderPlan(d.plan)).toMatchFileSnapshot('../../golden/delete-network-last.txt');
    expect(d.plan.at(-1)?.run).toEqual({ kind: 'forward-hook', action: 'remove' });
  });

  it('an unknown network is an empty plan and {}', () => {
    const s = new State();
    created(s, v4Req);
    expect(deleteNetwork(s, N3)).toEqual({ changes: [], plan: [], response: {} });
    expect(deleteNetwork(new State(), N1)).toEqual({ changes: [], plan: [], response: {} });
  });

  it('refuses a malformed id', () => {
    expect(() => deleteNetwork(new State(), 'x')).toThrow(/^NetworkID: /);
  });
});
