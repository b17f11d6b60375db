import { describe, expect, it } from 'vitest';
import { gatewayMacFor, subnetAndGateway, vniFor, VNI_MAX, VNI_MIN } from '../../../src/cluster/identity.js';
import { PREFIX, keys, parseKey } from '../../../src/cluster/keys.js';
import { encode, readRecord, type EndpointRecord, type NetworkDefinition } from '../../../src/cluster/records.js';

const EP = 'ab'.repeat(32);

describe('key layout', () => {
  it('puts everything under /mynet/v1/', () => {
    expect(PREFIX).toBe('/mynet/v1/');
    expect(keys.network('blue')).toBe('/mynet/v1/networks/blue');
    expect(keys.vni(4242)).toBe('/mynet/v1/vnis/4242');
    expect(keys.address('blue', '10.77.0.5')).toBe('/mynet/v1/addresses/blue/10.77.0.5');
    expect(keys.address('blue', 'fd00:0:0::5')).toBe('/mynet/v1/addresses/blue/fd00::5');
    expect(keys.endpoint('blue', EP)).toBe(`/mynet/v1/endpoints/blue/${EP}`);
    expect(keys.node('host-a')).toBe('/mynet/v1/nodes/host-a');
    expect(keys.addresses('blue')).toBe('/mynet/v1/addresses/blue/');
  });

  it('no name can reach another subtree', () => {
    for (const bad of ['', 'Blue', 'a/b', '..', '-a', 'a'.repeat(64), 'a b']) expect(() => keys.network(bad)).toThrow(/not a cluster name/);
    expect(() => keys.node('../x')).toThrow(/not a node name/);
    expect(() => keys.endpoint('blue', 'xyz')).toThrow(/not an endpoint id/);
    expect(() => keys.address('blue', '10.0.0.1/24')).toThrow(/not an IP address/);
  });

  it('parses its own keys back and nothing else', () => {
    expect(parseKey(keys.address('blue', '10.77.0.5'))).toEqual({ kind: 'address', cluster: 'blue', name: '10.77.0.5' });
    expect(parseKey(keys.endpoint('blue', EP))).toEqual({ kind: 'endpoint', cluster: 'blue', name: EP });
    expect(parseKey(keys.node('h1'))).toEqual({ kind: 'node', name: 'h1' });
    for (const k of ['/mynet/v2/networks/blue', '/mynet/v1/networks/blue/x', '/mynet/v1/addresses/blue/zz', '/other']) expect(parseKey(k)).toBeUndefined();
  });
});

describe('records', () => {
  const def: NetworkDefinition = { v: 1, cluster: 'blue', subnet: '10.77.0.0/16', gateway: '10.77.0.1', gatewayMac: '02:aa:bb:cc:dd:ee', vni: 5000, mtu: 1450, createdBy: 'host-a', createdAt: '2026-12-02T00:00:00.000Z' };
  const ep: EndpointRecord = { v: 1, cluster: 'blue', id: EP, node: 'host-a', underlay: '198.18.0.1', address: '10.77.0.5', mac: '02:42:0a:4d:00:05', name: 'web', updatedAt: '2026-12-02T00:00:00.000Z' };

  it('reads back what it wrote', () => {
    expect(readRecord('network', keys.network('blue'), encode(def))).toEqual({ ok: true, record: def });
    expect(readRecord('endpoint', keys.endpoint('blue', EP), encode(ep))).toEqual({ ok: true, record: ep });
  });

  it.each([
    ['not JSON', 'network', keys.network('blue'), '{', /not JSON/],
    ['another version', 'network', keys.network('blue'), encode({ ...def, v: 2 as 1 }), /\/v must be 1/],
    ['a bad subnet', 'network', keys.network('blue'), encode({ ...def, subnet: '10.77.0.1/16' }), /\/subnet must be a canonical IPv4 CIDR/],
    ['a VNI out of range', 'network', keys.network('blue'), encode({ ...def, vni: 2 ** 24 }), /\/vni must be an integer/],
    ['a tiny MTU', 'network', keys.network('blue'), encode({ ...def, mtu: 100 }), /\/mtu must be/],
    ['another cluster under this key', 'network', keys.network('red'), encode(def), /contents name another object/],
    ['an endpoint under another id', 'endpoint', keys.endpoint('blue', 'cd'.repeat(32)), encode(ep), /contents name another object/],
    ['an address with a prefix length', 'endpoint', keys.endpoint('blue', EP), encode({ ...ep, address: '10.77.0.5/16' }), /\/address must be an IPv4 address/],
    ['a bad MAC', 'endpoint', keys.endpoint('blue', EP), encode({ ...ep, mac: '02:42' }), /\/mac must be a MAC/],
    ['a record of another kind', 'endpoint', keys.network('blue'), encode(ep), /not a endpoint key/],
  ] as const)('refuses %s', (_what, kind, key, bytes, re) => {
    const r = readRecord(kind, key, bytes);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.problem).toMatch(re);
  });
});

describe('identity derived alike on every host', () => {
  it('VNI and gateway MAC are stable functions of the name', () => {
    expect(vniFor('blue')).toBe(vniFor('blue'));
    expect(vniFor('blue')).not.toBe(vniFor('red'));
    for (const n of ['a', 'blue', 'x'.repeat(63)]) {
      expect(vniFor(n)).toBeGreaterThanOrEqual(VNI_MIN);
      expect(vniFor(n)).toBeLessThanOrEqual(VNI_MAX);
    }
    expect(gatewayMacFor('blue')).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(gatewayMacFor('blue')).toBe(gatewayMacFor('blue'));
  });

  it('the gateway is --gateway or the first host address', () => {
    expect(subnetAndGateway('10.77.3.4/16')).toEqual({ subnet: '10.77.0.0/16', gateway: '10.77.0.1' });
    expect(subnetAndGateway('10.77.0.0/16', '10.77.255.254')).toEqual({ subnet: '10.77.0.0/16', gateway: '10.77.255.254' });
    expect(() => subnetAndGateway('10.77.0.0/16', '10.78.0.1')).toThrow(/Gateway: "10.78.0.1" is not a host address of 10.77.0.0\/16/);
    expect(() => subnetAndGateway('fd00::/64')).toThrow(/needs an IPv4 subnet/);
    expect(() => subnetAndGateway('10.0.0.1/32')).toThrow(/too small/);
  });
});
