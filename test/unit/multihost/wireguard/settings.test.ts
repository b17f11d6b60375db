/** MYNET_WIREGUARD and its siblings, the host's ability to encrypt, and `-o mynet.encrypt` (issue 24). */
import { describe, expect, it } from 'vitest';
import { encryptionAbility, type HostAbilities } from '../../../../src/multihost/wireguard/capability.js';
import { parseWireGuardSettings, tunnelAddressFor } from '../../../../src/multihost/wireguard/settings.js';
import { parseNetworkOptions, checkStoredOptions } from '../../../../src/protocol/options.js';
import { encryptedClusterMtu, wireguardMtu } from '../../../../src/rules/mtu.js';

const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};
const ALL: HostAbilities = { kernel: true, wireguardGo: true, wg: true, tun: true };
const generic = (g: Record<string, string>): Record<string, unknown> => ({ 'com.docker.network.generic': g });

describe('WireGuard settings', () => {
  it('defaults: kernel, port 51820, interface mynet-wg0, the tunnel address derived', () => {
    expect(parseWireGuardSettings({})).toEqual({ mode: 'kernel', port: 51820, iface: 'mynet-wg0' });
    expect(
      parseWireGuardSettings({
        MYNET_WIREGUARD: 'userspace',
        MYNET_WIREGUARD_PORT: '51999',
        MYNET_WIREGUARD_INTERFACE: 'mnt-ng-w',
        MYNET_WIREGUARD_ADDRESS: '198.18.170.1/24',
      }),
    ).toEqual({ mode: 'userspace', port: 51999, iface: 'mnt-ng-w', address: '198.18.170.1/24' });
  });

  it('bad values are refused naming the setting', () => {
    expect(errorOf(() => parseWireGuardSettings({ MYNET_WIREGUARD: 'yes' }))).toMatch(
      /MYNET_WIREGUARD: "yes" is not one of kernel, userspace, off/,
    );
    expect(errorOf(() => parseWireGuardSettings({ MYNET_WIREGUARD_PORT: '80' }))).toMatch(
      /MYNET_WIREGUARD_PORT: "80" is not a UDP port from 1024 to 65535/,
    );
    expect(errorOf(() => parseWireGuardSettings({ MYNET_WIREGUARD_PORT: '70000' }))).toMatch(/MYNET_WIREGUARD_PORT/);
    expect(errorOf(() => parseWireGuardSettings({ MYNET_WIREGUARD_INTERFACE: 'a name; rm' }))).toMatch(/MYNET_WIREGUARD_INTERFACE/);
    expect(errorOf(() => parseWireGuardSettings({ MYNET_WIREGUARD_ADDRESS: '198.18.170.1' }))).toMatch(
      /MYNET_WIREGUARD_ADDRESS: .* with a prefix length/,
    );
    expect(errorOf(() => parseWireGuardSettings({ MYNET_WIREGUARD_ADDRESS: '198.18.170.0/24' }))).toMatch(/network or broadcast/);
    expect(errorOf(() => parseWireGuardSettings({ MYNET_WIREGUARD_ADDRESS: 'fd00::1/64' }))).toMatch(/IPv4/);
  });

  it("the derived tunnel address keeps the underlay's low 22 bits in 100.64.0.0/10", () => {
    expect(tunnelAddressFor('198.18.160.1')).toBe('100.82.160.1/10');
    expect(tunnelAddressFor('10.0.0.0')).toBe('100.64.0.1/10');
  });

  it("MTU: WireGuard's 60 and VXLAN's 50 come off the underlay; the interface itself loses 60", () => {
    expect(encryptedClusterMtu(1500)).toBe(1390);
    expect(encryptedClusterMtu(1500, 6)).toBe(1370);
    expect(wireguardMtu(1500)).toBe(1440);
  });
});

describe('whether this host can encrypt', () => {
  it('kernel with the module: the kernel runs it; userspace with wireguard-go and a TUN: wireguard-go does', () => {
    expect(encryptionAbility({ mode: 'kernel' }, ALL)).toEqual({ ok: true, runner: 'kernel' });
    expect(encryptionAbility({ mode: 'userspace' }, { ...ALL, kernel: false })).toEqual({ ok: true, runner: 'userspace' });
  });

  it('each refusal says what to install or set', () => {
    const refusal = (mode: 'kernel' | 'userspace' | 'off', h: Partial<HostAbilities>): string => {
      const a = encryptionAbility({ mode }, { ...ALL, ...h });
      return a.ok ? 'ok' : a.refusal;
    };
    // This machine's case: no kernel WireGuard, wireguard-go installed, not allowed.
    expect(refusal('kernel', { kernel: false })).toMatch(
      /this kernel has no WireGuard .*set MYNET_WIREGUARD=userspace .*wireguard-go is installed/,
    );
    expect(refusal('kernel', { kernel: false, wireguardGo: false })).toMatch(/apt-get install wireguard-go/);
    expect(refusal('userspace', { wireguardGo: false })).toMatch(
      /MYNET_WIREGUARD=userspace needs wireguard-go \(apt-get install wireguard-go\)/,
    );
    expect(refusal('userspace', { tun: false })).toMatch(/\/dev\/net\/tun/);
    expect(refusal('kernel', { wg: false })).toMatch(/apt-get install wireguard-tools/);
    expect(refusal('off', {})).toMatch(/MYNET_WIREGUARD=off.*set MYNET_WIREGUARD=kernel or userspace/);
  });
});

describe('option mynet.encrypt', () => {
  it('wireguard on a cluster network; anything else, or on a local network, is refused naming the option', () => {
    expect(parseNetworkOptions(generic({ 'mynet.cluster': 'secure', 'mynet.encrypt': 'wireguard' })).encrypt).toBe('wireguard');
    expect(parseNetworkOptions(generic({ 'mynet.cluster': 'plain' })).encrypt).toBeUndefined();
    expect(errorOf(() => parseNetworkOptions(generic({ 'mynet.cluster': 'secure', 'mynet.encrypt': 'ipsec' })))).toMatch(
      /option mynet.encrypt: "ipsec" is not supported; valid values: wireguard/,
    );
    expect(errorOf(() => parseNetworkOptions(generic({ 'mynet.encrypt': 'wireguard' })))).toMatch(
      /option mynet.encrypt: is only for cluster networks/,
    );
  });

  it('the stored form is checked as the request is', () => {
    const o = parseNetworkOptions(generic({ 'mynet.cluster': 'secure', 'mynet.encrypt': 'wireguard' }));
    expect(checkStoredOptions('options', o)).toEqual(o);
    expect(errorOf(() => checkStoredOptions('options', { ...o, encrypt: 'none' }))).toMatch(/options.encrypt/);
  });
});
