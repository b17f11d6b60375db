import { describe, expect, it } from 'vitest';
import { gatewayMacFor, subnetAndGateway, vniFor } from '../../../src/cluster/identity.js';
import { VNI_MAX, VNI_MIN } from '../../../src/rules/vni.js';
import { PREFIX, keys, parseKey } from '../../../src/cluster/keys.js';
import { readRecord, type EndpointRecord, type NetworkDefinition } from '../../../src/cluster/records.js';

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
    expect(() => keys.endpoint('blue', 'xyz')).toThrow(/endpoint: must be a hex id of 12 to 64/);
    expect(() => keys.address('blue', '10.0.0.1/24')).toThrow(/not an IP address/);
  });

  it('parses its own keys back and nothing else', () => {
    expect(parseKey(keys.address('blue', '10.77.0.5'))).toEqual({ kind: 'address', cluster: 'blue', name: '10.77.0.5' });
    expect(parseKey(keys.endpoint('blue', EP))).toEqual({ kind: 'endpoint', cluster: 'blue', name: EP });
    expect(parseKey(keys.node('h1'))).toEqual({ kind: 'node', name: 'h1' });
    for (const k of ['/mynet/v2/networks/blue', '/mynet/v1/networks/blue/x', '/mynet/v1/addresses/blue/zz', '/other'])
      expect(parseKey(k)).toBeUndefined();
  });
});

describe('records', () => {
  const def: NetworkDefinition = {
    v: 1,
    cluster: 'blue',
    subnet: '10.77.0.0/16',
    gateway: '10.77.0.1',
    gatewayMac: '02:aa:bb:cc:dd:ee',
    vni: 5000,
    mtu: 1450,
    createdBy: 'host-a',
    createdAt: '2026-12-02T00:00:00.000Z',
  };
  const ep: EndpointRecord = {
    v: 1,
    cluster: 'blue',
    id: EP,
    node: 'host-a',
    underlay: '198.18.0.1',
    address: '10.77.0.5',
    mac: '02:42:0a:4d:00:05',
    name: 'web',
    updatedAt: '2026-12-02T00:00:00.000Z',
  };

  it('reads back what it wrote', () => {
    expect(readRecord('network', keys.network('blue'), JSON.stringify(def))).toEqual({ ok: true, record: def });
    expect(readRecord('endpoint', keys.endpoint('blue', EP), JSON.stringify(ep))).toEqual({ ok: true, record: ep });
    const aliased = { ...ep, aliases: ['api', 'web_1'] };
    expect(readRecord('endpoint', keys.endpoint('blue', EP), JSON.stringify(aliased))).toEqual({ ok: true, record: aliased });
    // Issue 23: a host on an IPv6 underlay.
    const over6 = { ...ep, underlay: '2001:db8:62::1' };
    expect(readRecord('endpoint', keys.endpoint('blue', EP), JSON.stringify(over6))).toEqual({ ok: true, record: over6 });
    // Issue 25: the largest record a host writes (32 labels of 63 characters, a 255-character name, 16 aliases) is read back.
    const big = {
      ...ep,
      name: `w${'x'.repeat(253)}`,
      aliases: Array.from({ length: 16 }, (_, i) => `${'a'.repeat(60)}${i}`),
      labels: Object.fromEntries(
        Array.from({ length: 32 }, (_, i) => [`${'k'.repeat(61)}${i.toString().padStart(2, '0')}`, 'v'.repeat(63)]),
      ),
    };
    expect(readRecord('endpoint', keys.endpoint('blue', EP), JSON.stringify(big))).toEqual({ ok: true, record: big });
    const node6 = { v: 1, name: 'host-a', address: '2001:db8:62::1', startedAt: '2026-12-02T00:00:00.000Z' };
    expect(readRecord('node', keys.node('host-a'), JSON.stringify(node6))).toEqual({ ok: true, record: node6 });
  });

  it.each([
    ['not JSON', 'network', keys.network('blue'), '{', /not JSON/],
    ['another version', 'network', keys.network('blue'), JSON.stringify({ ...def, v: 2 as 1 }), /\/v must be 1/],
    [
      'a bad subnet',
      'network',
      keys.network('blue'),
      JSON.stringify({ ...def, subnet: '10.77.0.1/16' }),
      /\/subnet must be a canonical IPv4 CIDR/,
    ],
    ['a VNI out of range', 'network', keys.network('blue'), JSON.stringify({ ...def, vni: 2 ** 24 }), /\/vni must be an integer/],
    ['a tiny MTU', 'network', keys.network('blue'), JSON.stringify({ ...def, mtu: 100 }), /\/mtu must be/],
    ['another cluster under this key', 'network', keys.network('red'), JSON.stringify(def), /contents name another object/],
    [
      'an endpoint under another id',
      'endpoint',
      keys.endpoint('blue', 'cd'.repeat(32)),
      JSON.stringify(ep),
      /contents name another object/,
    ],
    [
      'an address with a prefix length',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, address: '10.77.0.5/16' }),
      /\/address must be an IPv4 address/,
    ],
    ['a bad MAC', 'endpoint', keys.endpoint('blue', EP), JSON.stringify({ ...ep, mac: '02:42' }), /\/mac must be a MAC/],
    // Issue 23: aliases become DNS answers on every host.
    [
      'aliases that are no list',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, aliases: 'api' }),
      /\/aliases must be a list of at most 16 DNS names/,
    ],
    [
      'an alias that is no DNS label',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, aliases: ['api.evil.com'] }),
      /\/aliases must be a list/,
    ],
    [
      '17 aliases',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, aliases: Array.from({ length: 17 }, (_, i) => `a${i}`) }),
      /\/aliases must be a list of at most 16/,
    ],
    // Issue 25: labels travel in the record, checked as a local endpoint's; a bad one refuses the whole record.
    [
      'a label key with a space',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, labels: { 'a b': 'x' } }),
      /\/labels must be labels: .*label key "a b"/,
    ],
    [
      'a label value of 64 characters',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, labels: { app: 'x'.repeat(64) } }),
      /\/labels must be labels: .*label value/,
    ],
    [
      'a label value not text',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, labels: { app: 5 } }),
      /\/labels must be labels/,
    ],
    [
      'labels as a list',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, labels: ['app=web'] }),
      /\/labels must be labels: .*must be an object/,
    ],
    [
      '33 labels',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }),
      /\/labels must be labels: .*has 33 labels, at most 32/,
    ],
    ['a record of another kind', 'endpoint', keys.network('blue'), JSON.stringify(ep), /not a endpoint key/],
    [
      'a huge record (finding 14)',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, junk: 'x'.repeat(1_500_000) }),
      /1500\d{3} bytes, over the 8192 a mynet record takes/,
    ],
    // Issue 22, finding 17: the kernel refuses these in a permanent entry; every sync failed and logged.
    [
      'an all-zero MAC (finding 17)',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, mac: '00:00:00:00:00:00' }),
      /\/mac must be a MAC address of a host: "00:00:00:00:00:00" is the all-zero address/,
    ],
    [
      'a multicast MAC (finding 17)',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, mac: '01:00:5e:00:00:01' }),
      /\/mac .* is a multicast address/,
    ],
    [
      'a broadcast MAC (finding 17)',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, mac: 'ff:ff:ff:ff:ff:ff' }),
      /\/mac .* is a multicast address/,
    ],
    ['an uppercase MAC', 'endpoint', keys.endpoint('blue', EP), JSON.stringify({ ...ep, mac: '02:42:0A:4D:00:05' }), /\/mac .* lowercase/],
    // Issue 22, finding 1: a forwarding entry never points at loopback, link-local, multicast or broadcast.
    [
      'a loopback underlay (finding 1)',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: '127.0.0.1' }),
      /\/underlay is a loopback address, not a host's/,
    ],
    [
      'a link-local underlay',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: '169.254.1.1' }),
      /\/underlay is a link-local address/,
    ],
    [
      'a multicast underlay',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: '239.1.1.1' }),
      /\/underlay is a multicast address/,
    ],
    [
      'a broadcast underlay',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: '255.255.255.255' }),
      /\/underlay is reserved .* or broadcast/,
    ],
    [
      'an underlay of 0.0.0.0',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: '0.0.0.0' }),
      /\/underlay is in "this network"/,
    ],
    // Issue 23: an IPv6 underlay meets the same checks, and is canonical (compared as the kernel prints it).
    [
      'a loopback IPv6 underlay',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: '::1' }),
      /\/underlay is a loopback address/,
    ],
    [
      'a link-local IPv6 underlay',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: 'fe80::2' }),
      /\/underlay is a link-local address/,
    ],
    [
      'a multicast IPv6 underlay',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: 'ff02::1' }),
      /\/underlay is a multicast address/,
    ],
    [
      'an IPv6 underlay not written canonically',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, underlay: '2001:DB8:62:0::2' }),
      /\/underlay is not written canonically \(2001:db8:62::2\)/,
    ],
    [
      'a multicast IPv6 node address',
      'node',
      keys.node('host-a'),
      JSON.stringify({ v: 1, name: 'host-a', address: 'ff05::2', startedAt: '2026-12-02T00:00:00.000Z' }),
      /\/address is a multicast address/,
    ],
    [
      'a loopback container address',
      'endpoint',
      keys.endpoint('blue', EP),
      JSON.stringify({ ...ep, address: '127.0.0.2' }),
      /\/address is a loopback address/,
    ],
    [
      'a loopback node address',
      'node',
      keys.node('host-a'),
      JSON.stringify({ v: 1, name: 'host-a', address: '127.0.0.1', startedAt: '2026-12-02T00:00:00.000Z' }),
      /\/address is a loopback address/,
    ],
    [
      'a gateway outside the subnet',
      'network',
      keys.network('blue'),
      JSON.stringify({ ...def, gateway: '10.78.0.1' }),
      /\/gateway 10\.78\.0\.1 is not a host address of 10\.77\.0\.0\/16/,
    ],
    [
      "a VNI below mynet's range",
      'network',
      keys.network('blue'),
      JSON.stringify({ ...def, vni: 100 }),
      /\/vni must be an integer from 4096/,
    ],
    ["a VNI key below mynet's range", 'vni', keys.vni(100), JSON.stringify({ v: 1, cluster: 'blue' }), /contents name another object/],
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
