import { describe, expect, it } from 'vitest';
import {
  type CreateEndpointRequest,
  createEndpoint,
  deleteEndpoint,
  endpointOperInfo,
  endpointSteps,
  join,
  leave,
} from '../../../src/driver/endpoint.js';
import { type CreateNetworkRequest, createNetwork } from '../../../src/driver/network.js';
import { type NetworkRecord, State } from '../../../src/driver/state.js';
import { macFromId } from '../../../src/plan/link.js';
import { renderPlan } from '../../../src/plan/step.js';
import { checkEndpointRecord } from '../../../src/store/records.js';
import { errorOf } from '../support.js';
import { DUAL_REQ, INTERNAL_REQ } from './requests.js';

const NOW = '2024-06-11T10:00:00.000Z';
const NFULL = DUAL_REQ.NetworkID;
const NINT = INTERNAL_REQ.NetworkID;
const NATT = '4401376d04fa0173a22fa6ac12865a136b765a1712b257fb6951ec7ab7e6310b';
const NPFX = '888d523846ae21ca9c44b844610a1be3feee74f6cd79dc28803976b67f92e32f';
const EC1 = 'eaa9b94eff48d101a249b461e493f6a08e25aead22365c6a3a8dab89d7a9574e';
const EATT = 'c22c4d431a809858c0c47bf69f2952cbc1f19bbeca4cec4c586c33522988ac64';
const EC2 = 'f2a3ada4b4f9c2ad3e77f28e3649f7204e472282c5a876386f6ac7aff4ea84b2';
const SANDBOX = '/var/run/docker/netns/1a0433bfbe3f';

const nets: CreateNetworkRequest[] = [
  DUAL_REQ,
  INTERNAL_REQ,
  {
    NetworkID: NATT,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Gateway: '10.152.0.1/24', Pool: '10.152.0.0/24' }],
    IPv6Data: [],
  },
  {
    NetworkID: NPFX,
    Options: { 'com.docker.network.generic': { 'com.docker.network.container_iface_prefix': 'net' } },
    IPv4Data: [{ Gateway: '10.153.0.1/24', Pool: '10.153.0.0/24' }],
    IPv6Data: [],
  },
];

function world(): State {
  const s = new State();
  for (const n of nets) s.apply(createNetwork(s, n, 'absent', NOW).changes);
  return s;
}

/** c1's CreateEndpoint as dockerd 20.10 sent it: the MAC is set by the user. */
const c1Req: CreateEndpointRequest = {
  NetworkID: NFULL,
  EndpointID: EC1,
  Interface: { Address: '10.150.5.20/16', AddressIPv6: 'fd00:150::20/64', MacAddress: '02:42:0a:96:05:14' },
  Options: { 'com.docker.network.endpoint.macaddress': 'AkIKlgUU', 'com.docker.network.portmap': [] },
};
const attReq: CreateEndpointRequest = {
  NetworkID: NATT,
  EndpointID: EATT,
  Interface: { Address: '10.152.0.9/24', AddressIPv6: '', MacAddress: '' },
  Options: {},
};
const c2Req: CreateEndpointRequest = {
  NetworkID: NINT,
  EndpointID: EC2,
  Interface: { Address: '10.151.0.2/24', AddressIPv6: '', MacAddress: '' },
  Options: {},
};

describe('createEndpoint', () => {
  it('when dockerd gave a MAC the response is {} (never echo a field dockerd set)', async () => {
    const s = world();
    const d = createEndpoint(s, c1Req);
    expect(d.response).toEqual({});
    await expect(renderPlan(d.plan)).toMatchFileSnapshot('../../golden/create-endpoint-with-mac.txt');
    expect(d.changes).toEqual([
      {
        op: 'endpoint.put',
        endpoint: {
          id: EC1,
          networkId: NFULL,
          hostIf: 'mnheaa9b94eff48',
          containerIf: 'mnceaa9b94eff48',
          mac: '02:42:0a:96:05:14',
          address: '10.150.5.20/16',
          addressV6: 'fd00:150::20/64',
          ports: [],
        },
      },
    ]);
  });

  it('generates a MAC when absent, from the IPv4 address as Docker does, and returns only that', async () => {
    const s = world();
    const d = createEndpoint(s, attReq);
    expect(d.response).toEqual({ Interface: { MacAddress: '02:42:0a:98:00:09' } }); // 10.152.0.9
    expect(Object.keys(d.response.Interface ?? {})).toEqual(['MacAddress']); // no Address echoed
    expect(d.response.Interface?.MacAddress).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    await expect(renderPlan(d.plan)).toMatchFileSnapshot('../../golden/create-endpoint-generated-mac.txt');
    // IPv6 only: from the endpoint id.
    const v6 = createEndpoint(s, { ...attReq, Interface: { Address: '', AddressIPv6: 'fd00:152::9/64', MacAddress: '' } });
    expect(v6.response).toEqual({ Interface: { MacAddress: macFromId(EATT) } });
  });

  it('stores an uppercase MAC in lowercase and still answers {}', () => {
    const s = world();
    const d = createEndpoint(s, { ...attReq, Interface: { Address: '10.152.0.9/24', MacAddress: '02:AB:CD:EF:01:02' } });
    expect(d.response).toEqual({});
    expect(d.changes[0]).toMatchObject({ endpoint: { mac: '02:ab:cd:ef:01:02' } });
  });

  it("keeps the mynet.label.* driver options as the endpoint's labels (network policy), checked on the way in and out", () => {
    const s = world();
    const d = createEndpoint(s, {
      ...attReq,
      Options: { 'mynet.label.app': 'web', 'mynet.label.tier': 'front', 'com.docker.network.endpoint.exposedports': [] },
    });
    expect(d.changes[0]).toMatchObject({ endpoint: { labels: { app: 'web', tier: 'front' } } });
    const e = (d.changes[0] as { endpoint: Parameters<typeof checkEndpointRecord>[0] }).endpoint;
    expect(checkEndpointRecord(JSON.parse(JSON.stringify(e)))).toEqual(e);
    expect(() => checkEndpointRecord({ ...(e as object), labels: { app: 'we b' } })).toThrow(/labels\.app: label value "we b"/);
    // No labels, no field: records written before labels existed read the same.
    expect(createEndpoint(s, attReq).changes[0]).not.toHaveProperty('endpoint.labels');
    const bad = errorOf(() => createEndpoint(s, { ...attReq, Options: { 'mynet.label.app': 'a;b' } }));
    expect(bad.message).toMatch(/Options\.mynet\.label\.app: label value "a;b"/);
  });

  it('a repeated create answers as the first one did, without host steps', () => {
    const s = world();
    const first = createEndpoint(s, attReq);
    s.apply(first.changes);
    expect(createEndpoint(s, attReq)).toEqual({ changes: [], plan: [], response: first.response });
    s.apply(createEndpoint(s, c1Req).changes);
    expect(createEndpoint(s, c1Req)).toEqual({ changes: [], plan: [], response: {} });
  });

  it('the same endpoint id on another network is a CONFLICT', () => {
    const s = world();
    s.apply(createEndpoint(s, attReq).changes);
    expect(errorOf(() => createEndpoint(s, { ...attReq, NetworkID: NINT })).code).toBe('CONFLICT');
  });

  it('another endpoint id with the same first 12 hex is a CONFLICT (it would need the same veth names)', () => {
    const s = world();
    s.apply(createEndpoint(s, attReq).changes);
    const twin = `${EATT.slice(0, 12)}${'f'.repeat(EATT.length - 12)}`;
    expect(twin).not.toBe(EATT);
    const err = errorOf(() => createEndpoint(s, { ...attReq, EndpointID: twin }));
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toMatch(/EndpointID: .* would need/);
  });

  it('refuses bad input naming the field', () => {
    const s = world();
    const cases: [CreateEndpointRequest, RegExp, string][] = [
      [{ ...attReq, NetworkID: 'nope' }, /^NetworkID: /, 'INVALID_REQUEST'],
      [{ ...attReq, EndpointID: 'nope' }, /^EndpointID: /, 'INVALID_REQUEST'],
      [{ ...attReq, NetworkID: 'a'.repeat(64) }, /^NetworkID: no mynet network aaaaaaaaaaaa/, 'NETWORK_NOT_FOUND'],
      [{ ...attReq, Interface: { Address: '10.152.0.9' } }, /^Interface\.Address: /, 'INVALID_REQUEST'],
      [{ ...attReq, Interface: { Address: 'fd00::1/64' } }, /^Interface\.Address: fd00::1\/64 is not IPv4/, 'INVALID_REQUEST'],
      [{ ...attReq, Interface: { AddressIPv6: '10.0.0.1/8' } }, /^Interface\.AddressIPv6: /, 'INVALID_REQUEST'],
      [{ ...attReq, Interface: { MacAddress: 'zz:zz:zz:zz:zz:zz' } }, /^Interface\.MacAddress: /, 'INVALID_REQUEST'],
      [{ ...attReq, Interface: { MacAddress: '03:00:00:00:00:01' } }, /^Interface\.MacAddress: .*multicast/, 'INVALID_REQUEST'],
      [{ ...attReq, Interface: { MacAddress: '02:42:0a:96:05' } }, /^Interface\.MacAddress: /, 'INVALID_REQUEST'],
    ];
    for (const [req, re, code] of cases) {
      const e = errorOf(() => createEndpoint(s, req));
      expect(e.code).toBe(code);
      expect(e.message).toMatch(re);
    }
  });

  it('endpointSteps re-creates a stored endpoint', () => {
    const s = world();
    s.apply(createEndpoint(s, c1Req).changes);
    const net = s.networks.get(NFULL);
    const ep = s.endpoints.get(EC1);
    if (!net || !ep) throw new Error('missing');
    expect(renderPlan(endpointSteps(net, ep))).toBe(renderPlan(createEndpoint(world(), c1Req).plan));
  });
});

describe('createEndpoint: a name a record holds is a conflict (issue 14.3)', () => {
  it("an endpoint whose veth name is a stored network's bridge (stored before names were reserved) is refused, nothing planned", () => {
    const s = new State();
    const stolen = `mnh${EC1.slice(0, 12)}`;
    s.apply([{ op: 'network.put', network: { ...(world().networks.get(NATT) as NetworkRecord), bridge: stolen } }]);
    const e = errorOf(() => createEndpoint(s, { ...c1Req, NetworkID: NATT }));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toBe(`EndpointID: its interface name ${stolen} is the bridge of mynet network ${NATT.slice(0, 12)}`);
  });
});

describe('join', () => {
  const joined = (s: State, req: CreateEndpointRequest) => {
    s.apply(createEndpoint(s, req).changes);
    const d = join(s, { NetworkID: req.NetworkID, EndpointID: req.EndpointID, SandboxKey: SANDBOX });
    s.apply(d.changes);
    return d;
  };

  it('normal network: Gateway and GatewayIPv6 are plain IPs; SrcName is the container veth; DstPrefix eth', () => {
    const s = world();
    const d = joined(s, c1Req);
    expect(d.plan).toEqual([]);
    expect(d.response).toEqual({
      InterfaceName: { SrcName: 'mnceaa9b94eff48', DstPrefix: 'eth' },
      Gateway: '10.150.0.254',
      GatewayIPv6: 'fd00:150::2',
    });
    expect(d.response.Gateway).not.toContain('/');
    expect(d.response.DisableGatewayService).toBeUndefined();
    expect(s.endpoints.get(EC1)?.sandboxKey).toBe(SANDBOX);
  });

  it('IPv4-only network has no GatewayIPv6', () => {
    const s = world();
    expect(joined(s, attReq).response).toEqual({
      InterfaceName: { SrcName: 'mnc' + EATT.slice(0, 12), DstPrefix: 'eth' },
      Gateway: '10.152.0.1',
    });
  });

  it('internal network: no gateway and DisableGatewayService', () => {
    const s = world();
    const r = joined(s, c2Req).response;
    expect(r).toEqual({ InterfaceName: { SrcName: 'mnc' + EC2.slice(0, 12), DstPrefix: 'eth' }, DisableGatewayService: true });
    expect(r.Gateway).toBeUndefined();
    expect(r.GatewayIPv6).toBeUndefined();
  });

  it('a custom container_iface_prefix becomes DstPrefix', () => {
    const s = world();
    const eid = 'ab'.repeat(32);
    const r = joined(s, { NetworkID: NPFX, EndpointID: eid, Interface: { Address: '10.153.0.2/24' } }).response;
    expect(r.InterfaceName).toEqual({ SrcName: `mnc${eid.slice(0, 12)}`, DstPrefix: 'net' });
  });

  it('a repeated join with the same sandbox changes nothing', () => {
    const s = world();
    joined(s, attReq);
    expect(join(s, { NetworkID: NATT, EndpointID: EATT, SandboxKey: SANDBOX }).changes).toEqual([]);
  });

  it('unknown endpoint or network, or an endpoint of another network, is refused', () => {
    const s = world();
    s.apply(createEndpoint(s, attReq).changes);
    expect(errorOf(() => join(s, { NetworkID: NATT, EndpointID: EC1 })).code).toBe('ENDPOINT_NOT_FOUND');
    expect(errorOf(() => join(s, { NetworkID: 'f'.repeat(64), EndpointID: EATT })).code).toBe('NETWORK_NOT_FOUND');
    const e = errorOf(() => join(s, { NetworkID: NFULL, EndpointID: EATT }));
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.message).toMatch(/^EndpointID: /);
  });
});

describe('leave / deleteEndpoint are idempotent', () => {
  it('leave forgets the sandbox, then is a no-op', () => {
    const s = world();
    s.apply(createEndpoint(s, attReq).changes);
    s.apply(join(s, { NetworkID: NATT, EndpointID: EATT, SandboxKey: SANDBOX }).changes);
    const d = leave(s, { NetworkID: NATT, EndpointID: EATT });
    expect(d.response).toEqual({});
    expect(d.plan).toEqual([]);
    s.apply(d.changes);
    expect(s.endpoints.get(EATT)?.sandboxKey).toBeUndefined();
    expect(leave(s, { NetworkID: NATT, EndpointID: EATT })).toEqual({ changes: [], plan: [], response: {} });
  });

  it('leave of an unknown endpoint: empty plan and {}', () => {
    expect(leave(world(), { NetworkID: NATT, EndpointID: EC2 })).toEqual({ changes: [], plan: [], response: {} });
  });

  it('deleteEndpoint removes the veth, then is a no-op', async () => {
    const s = world();
    s.apply(createEndpoint(s, attReq).changes);
    const d = deleteEndpoint(s, { NetworkID: NATT, EndpointID: EATT });
    expect(d.response).toEqual({});
    expect(d.changes).toEqual([{ op: 'endpoint.delete', id: EATT }]);
    await expect(renderPlan(d.plan)).toMatchFileSnapshot('../../golden/delete-endpoint.txt');
    s.apply(d.changes);
    expect(deleteEndpoint(s, { NetworkID: NATT, EndpointID: EATT })).toEqual({ changes: [], plan: [], response: {} });
  });

  it('deleteEndpoint of an unknown id (or unknown network): empty plan and {}', () => {
    expect(deleteEndpoint(world(), { NetworkID: NATT, EndpointID: EC2 })).toEqual({ changes: [], plan: [], response: {} });
    expect(deleteEndpoint(new State(), { NetworkID: NATT, EndpointID: EC2 })).toEqual({ changes: [], plan: [], response: {} });
  });

  it('malformed ids are still refused', () => {
    expect(() => leave(world(), { NetworkID: NATT, EndpointID: 'x' })).toThrow(/^EndpointID: /);
    expect(() => deleteEndpoint(world(), { NetworkID: 'x', EndpointID: EC2 })).toThrow(/^NetworkID: /);
  });
});

describe('endpointOperInfo', () => {
  it('answers the MAC, or an empty Value for an unknown endpoint', () => {
    const s = world();
    s.apply(createEndpoint(s, c1Req).changes);
    expect(endpointOperInfo(s, { NetworkID: NFULL, EndpointID: EC1 })).toMatchObject({
      Value: { 'com.docker.network.endpoint.macaddress': '02:42:0a:96:05:14' },
    });
    expect(endpointOperInfo(s, { NetworkID: NFULL, EndpointID: EC2 })).toEqual({ Value: {} });
  });
});
