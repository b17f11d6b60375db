import { describe, expect, it } from 'vitest';
import { DEFAULT_MTU, MYNET_KEYS, parseBool, parseNetworkOptions } from '../../../src/protocol/options.js';
import { errorOf } from '../support.js';

const G = 'com.docker.network.generic';
const B = 'com.docker.network.bridge.';
const withGeneric = (g: Record<string, unknown>, top: Record<string, unknown> = {}) =>
  parseNetworkOptions({ 'com.docker.network.enable_ipv6': false, [G]: g, ...top });

describe('parseNetworkOptions: defaults', () => {
  it('an empty or missing map gives the defaults', () => {
    const expected = {
      mtu: DEFAULT_MTU,
      masquerade: true,
      icc: true,
      hostBindingIpv4: '0.0.0.0',
      ifacePrefix: 'eth',
      internal: false,
      ipv6: false,
      gatewayModeIpv4: 'nat',
      gatewayModeIpv6: 'nat',
      isolate: true,
      dns: true,
    };
    expect(parseNetworkOptions(null)).toEqual(expected);
    expect(parseNetworkOptions(undefined)).toEqual(expected);
    expect(parseNetworkOptions({})).toEqual(expected);
    expect(withGeneric({})).toEqual(expected);
    expect(parseNetworkOptions(null).bridgeName).toBeUndefined();
  });

  it('reads the recorded dockerd 20.10 options of net_full', () => {
    const o = parseNetworkOptions({
      'com.docker.network.enable_ipv6': true,
      [G]: { 'com.docker.network.bridge.name': 'mybr0', 'com.docker.network.driver.mtu': '1400' },
    });
    expect(o).toMatchObject({ bridgeName: 'mybr0', mtu: 1400, ipv6: true, internal: false });
  });

  it('reads internal from the top level (as dockerd sends it) or from the generic map', () => {
    expect(parseNetworkOptions({ 'com.docker.network.internal': true, [G]: {} }).internal).toBe(true);
    expect(withGeneric({ 'com.docker.network.internal': 'true' }).internal).toBe(true);
    expect(parseNetworkOptions({ 'com.docker.network.enable_ipv6': true, [G]: {} }).ipv6).toBe(true);
  });
});

describe('parseNetworkOptions: bridge driver keys are accepted and coerced', () => {
  it('string booleans true/false/1/0 (and friends)', () => {
    for (const [text, value] of [
      ['true', true],
      ['false', false],
      ['1', true],
      ['0', false],
      ['TRUE', true],
      [' yes ', true],
      ['off', false],
      ['t', true],
      ['f', false],
    ] as const) {
      expect(withGeneric({ [`${B}enable_icc`]: text }).icc, text).toBe(value);
      expect(withGeneric({ [`${B}enable_ip_masquerade`]: text }).masquerade, text).toBe(value);
      expect(withGeneric({ 'mynet.isolate': text }).isolate, text).toBe(value);
      expect(withGeneric({ 'mynet.dns': text }).dns, text).toBe(value);
    }
    expect(withGeneric({ [`${B}enable_icc`]: false }).icc).toBe(false); // a JSON boolean too
  });

  it('an empty string means "not set"', () => {
    expect(withGeneric({ [`${B}enable_icc`]: '', 'com.docker.network.driver.mtu': '' })).toMatchObject({ icc: true, mtu: DEFAULT_MTU });
  });

  it('mtu as a string or a number', () => {
    expect(withGeneric({ 'com.docker.network.driver.mtu': '1400' }).mtu).toBe(1400);
    expect(withGeneric({ 'com.docker.network.driver.mtu': ' 9000 ' }).mtu).toBe(9000);
    expect(withGeneric({ 'com.docker.network.driver.mtu': 1450 }).mtu).toBe(1450);
    expect(withGeneric({ 'com.docker.network.driver.mtu': '68' }).mtu).toBe(68);
    expect(withGeneric({ 'com.docker.network.driver.mtu': '65535' }).mtu).toBe(65535);
  });

  it('other bridge keys', () => {
    const o = withGeneric({
      [`${B}host_binding_ipv4`]: '127.0.0.1',
      [`${B}gateway_mode_ipv4`]: 'routed',
      [`${B}gateway_mode_ipv6`]: 'nat-unprotected',
      'com.docker.network.container_iface_prefix': 'net',
      'com.docker.network.host_ipv4': '192.0.2.10',
      'com.docker.network.host_ipv6': '2001:db8::10',
      [`${B}default_bridge`]: 'false',
      [`${B}inhibit_ipv4`]: 'false',
    });
    expect(o).toMatchObject({
      hostBindingIpv4: '127.0.0.1',
      gatewayModeIpv4: 'routed',
      gatewayModeIpv6: 'nat-unprotected',
      ifacePrefix: 'net',
      hostIpv4: '192.0.2.10',
      hostIpv6: '2001:db8::10',
    });
  });
});

describe('parseNetworkOptions: bad values are refused naming the key', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ [`${B}enable_icc`]: 'maybe' }, `${B}enable_icc`],
    [{ [`${B}enable_ip_masquerade`]: '2' }, `${B}enable_ip_masquerade`],
    [{ 'mynet.isolate': 'nope' }, 'mynet.isolate'],
    [{ 'com.docker.network.driver.mtu': 'big' }, 'com.docker.network.driver.mtu'],
    [{ 'com.docker.network.driver.mtu': '1400.5' }, 'com.docker.network.driver.mtu'],
    [{ 'com.docker.network.driver.mtu': '-1' }, 'com.docker.network.driver.mtu'],
    [{ 'com.docker.network.driver.mtu': '67' }, 'com.docker.network.driver.mtu'],
    [{ 'com.docker.network.driver.mtu': '65536' }, 'com.docker.network.driver.mtu'],
    [{ 'com.docker.network.driver.mtu': '0x500' }, 'com.docker.network.driver.mtu'],
    [{ 'com.docker.network.driver.mtu': {} }, 'com.docker.network.driver.mtu'],
    [{ [`${B}host_binding_ipv4`]: 'localhost' }, `${B}host_binding_ipv4`],
    [{ [`${B}gateway_mode_ipv4`]: 'bridge' }, `${B}gateway_mode_ipv4`],
    [{ [`${B}gateway_mode_ipv6`]: 'NAT' }, `${B}gateway_mode_ipv6`],
    [{ 'com.docker.network.host_ipv4': '2001:db8::1' }, 'com.docker.network.host_ipv4'],
    [{ 'com.docker.network.host_ipv6': '192.0.2.1' }, 'com.docker.network.host_ipv6'],
    [{ 'com.docker.network.container_iface_prefix': 'Eth' }, 'com.docker.network.container_iface_prefix'],
    [{ 'com.docker.network.container_iface_prefix': 'abcdefghijk' }, 'com.docker.network.container_iface_prefix'],
    [{ 'com.docker.network.container_iface_prefix': '0eth' }, 'com.docker.network.container_iface_prefix'],
    [{ [`${B}inhibit_ipv4`]: 'true' }, `${B}inhibit_ipv4`],
    [{ [`${B}trusted_host_interfaces`]: 'eth0' }, `${B}trusted_host_interfaces`],
  ];
  for (const [g, key] of cases) {
    it(`${key} = ${JSON.stringify(Object.values(g)[0])}`, () => {
      const e = errorOf(() => withGeneric(g));
      expect(e.code).toBe('INVALID_REQUEST');
      expect(e.message.startsWith(`option ${key}: `), e.message).toBe(true);
    });
  }

  it('an IPv6 network refuses an MTU below 1280', () => {
    const e = errorOf(() => withGeneric({ 'com.docker.network.driver.mtu': '1200' }, { 'com.docker.network.enable_ipv6': true }));
    expect(e.message).toMatch(/^option com\.docker\.network\.driver\.mtu: 1200 is below 1280/);
    expect(withGeneric({ 'com.docker.network.driver.mtu': '1200' }).mtu).toBe(1200);
  });

  it('a generic map that is not an object is refused', () => {
    for (const g of ['x', 3, ['a']]) {
      const e = errorOf(() => parseNetworkOptions({ [G]: g }));
      expect(e.message).toMatch(/^Options\.com\.docker\.network\.generic: /);
    }
  });

  it('a bad internal flag is refused naming the key', () => {
    const e = errorOf(() => parseNetworkOptions({ 'com.docker.network.internal': 'sure', [G]: {} }));
    expect(e.message).toMatch(/^option com\.docker\.network\.internal: /);
  });
});

describe('parseNetworkOptions: unknown keys', () => {
  it('an unknown mynet.* key is refused listing the valid ones', () => {
    const e = errorOf(() => withGeneric({ 'mynet.custom': '1' }));
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.message).toMatch(/^option mynet\.custom: /);
    for (const k of MYNET_KEYS) expect(e.message).toContain(k);
    expect(MYNET_KEYS).toEqual(['mynet.isolate', 'mynet.dns', 'mynet.cluster', 'mynet.vni', 'mynet.multicast', 'mynet.encrypt']);
  });

  it('unknown non-mynet keys are ignored', () => {
    const o = withGeneric({
      foo: 'bar',
      'com.docker.network.bridge.something_new': 'x',
      'com.example.team': 'blue',
      mynet: 'x',
      'mynetx.y': 'z',
    });
    expect(o).toEqual(withGeneric({}));
  });
});

describe('parseNetworkOptions: default_bridge', () => {
  it('default_bridge=true is refused', () => {
    for (const v of ['true', '1', true]) {
      const e = errorOf(() => withGeneric({ [`${B}default_bridge`]: v }));
      expect(e.message).toMatch(/^option com\.docker\.network\.bridge\.default_bridge: .*default bridge/);
    }
    expect(errorOf(() => withGeneric({ [`${B}default_bridge`]: 'perhaps' })).message).toMatch(
      /^option com\.docker\.network\.bridge\.default_bridge: /,
    );
  });
});

describe('parseNetworkOptions: bridge name', () => {
  const name = (n: string) => withGeneric({ [`${B}name`]: n }).bridgeName;

  it('accepts valid interface names up to 15 bytes', () => {
    for (const n of ['mybr0', 'br-test', 'a', 'x'.repeat(15), 'br.10', 'br_x', 'B0']) expect(name(n), n).toBe(n);
  });

  it('refuses 16 bytes, leading -, spaces, shell metacharacters, slashes and non-ASCII', () => {
    const bad = [
      'x'.repeat(16),
      '-br',
      '.br',
      '_br',
      'my br',
      ' br0',
      'br0 ',
      'br;rm',
      'br$(x)',
      'br`x`',
      'br|x',
      'br&x',
      'br>x',
      'br/0',
      'br:0',
      'brü',
      'br\n0',
      'br*',
      "br'",
      'br"',
      'br\\',
      'br%d',
      '..',
      'é',
    ];
    for (const n of bad) {
      const e = errorOf(() => name(n));
      expect(e.code, JSON.stringify(n)).toBe('INVALID_REQUEST');
      expect(e.message.startsWith(`option ${B}name: `), e.message).toBe(true);
    }
  });
});

describe('parseBool', () => {
  it('names the key in its error', () => {
    expect(() => parseBool('k', 'x')).toThrow(/^option k: "x" is not a boolean/);
    expect(() => parseBool('k', 1)).toThrow(/^option k: /);
    expect(() => parseBool('k', null)).toThrow(/^option k: /);
  });
});
