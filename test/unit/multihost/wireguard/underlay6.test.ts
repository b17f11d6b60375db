/**
 * Issue 24 over an IPv6 underlay (issue 23), the pure parts: the tunnel address derived from an
 * IPv6 underlay address, the MTU (1500 - 80 - 50), the peer record's IPv6 underlay, the `wg`
 * endpoint in brackets as `wg` takes and prints it, and a tunnel address two hosts derive alike
 * believed for neither.
 */
import { describe, expect, it } from 'vitest';
import { endpointOf, peerDrift, setPeerCommand } from '../../../../src/multihost/wireguard/peer-plan.js';
import { type PeerRecord, encodePeer, judgePeers, peerKey, readPeer } from '../../../../src/multihost/wireguard/peer-record.js';
import { tunnelAddressFor } from '../../../../src/multihost/wireguard/settings.js';
import { encryptedClusterMtu, wireguardMtu } from '../../../../src/rules/mtu.js';

const b64 = (byte: string): string => Buffer.from(byte.repeat(32), 'hex').toString('base64');
const rec = (o: Partial<PeerRecord> = {}): PeerRecord => ({
  v: 1,
  node: 'host-b',
  publicKey: b64('22'),
  port: 51820,
  underlay: '2001:db8:64::2',
  tunnel: '100.64.0.2',
  updatedAt: '2026-12-07T08:00:00.000Z',
  ...o,
});
const SELF = { node: 'host-a', publicKey: b64('11'), underlay: '2001:db8:64::1', tunnelCidr: tunnelAddressFor('2001:db8:64::1') };

describe('WireGuard over an IPv6 underlay', () => {
  it("the tunnel address is IPv4, the underlay address's low 22 bits in 100.64.0.0/10", () => {
    expect(tunnelAddressFor('2001:db8:64::1')).toBe('100.64.0.1/10');
    expect(tunnelAddressFor('2001:db8:64::abcd:1234')).toBe('100.77.18.52/10');
    // All zeros or all ones in those bits would be the range's network or broadcast address.
    expect(tunnelAddressFor('2001:db8:64::')).toBe('100.64.0.1/10');
    expect(tunnelAddressFor('2001:db8:64::3f:ffff')).toBe('100.127.255.254/10');
    expect(() => tunnelAddressFor('not-an-address')).toThrow(/MYNET_NODE_ADDRESS: .* not an IPv4 or IPv6 address/);
  });

  it("the MTU: WireGuard's 80 over IPv6 and VXLAN's 50 (IPv4 inside the tunnel) come off the underlay", () => {
    expect(encryptedClusterMtu(1500, 6)).toBe(1370);
    expect(wireguardMtu(1500, 6)).toBe(1420);
  });

  it('a peer record with an IPv6 underlay is read back; one not written canonically is refused', () => {
    expect(readPeer(peerKey('host-b'), encodePeer(rec()))).toEqual({ ok: true, record: rec() });
    const problem = (r: PeerRecord): string => {
      const x = readPeer(peerKey('host-b'), JSON.stringify(r));
      return x.ok ? 'ok' : x.problem;
    };
    expect(problem(rec({ underlay: '2001:DB8:64:0::2' }))).toMatch(/\/underlay is not written canonically/);
    expect(problem(rec({ underlay: 'ff02::1' }))).toMatch(/\/underlay/);
    expect(problem(rec({ underlay: '2001:db8:64::2/64' }))).toMatch(/\/underlay must be an IPv4 or IPv6 address/);
    // The tunnel stays IPv4: VXLAN inside it and the guard's member set are of one family.
    expect(problem(rec({ tunnel: '2001:db8:64::2' }))).toMatch(/\/tunnel must be an IPv4 address/);
  });

  it("the endpoint is [address]:port, in the `wg set` argv and in the drift check against `wg show`'s", () => {
    expect(endpointOf(rec())).toBe('[2001:db8:64::2]:51820');
    expect(endpointOf(rec({ underlay: '198.18.160.2' }))).toBe('198.18.160.2:51820');
    expect(setPeerCommand('mnw6-w0', rec())).toContain('[2001:db8:64::2]:51820');
    expect(peerDrift(rec(), { endpoint: '[2001:db8:64::2]:51820', allowedIps: ['100.64.0.2/32'] })).toBeUndefined();
    expect(peerDrift(rec(), { endpoint: '2001:db8:64::2:51820', allowedIps: ['100.64.0.2/32'] })).toMatch(/endpoint/);
  });

  it('two hosts whose underlays share the low 22 bits derive one tunnel address: believed for neither, or refused as this host’s own', () => {
    const present = new Map([
      ['host-b', '2001:db8:64::2'],
      ['host-c', '2001:db8:65::2'],
      ['host-d', '2001:db8:65::1'],
    ]);
    const c = rec({
      node: 'host-c',
      publicKey: b64('33'),
      underlay: '2001:db8:65::2',
      tunnel: tunnelAddressFor('2001:db8:65::2').split('/')[0],
    });
    expect(c.tunnel).toBe('100.64.0.2');
    expect(judgePeers([rec(), c], SELF, present).refused.map((x) => [x.record.node, x.reason])).toEqual([
      ['host-b', 'duplicate'],
      ['host-c', 'duplicate'],
    ]);
    const d = rec({ node: 'host-d', publicKey: b64('44'), underlay: '2001:db8:65::1', tunnel: '100.64.0.1' });
    expect(judgePeers([d], SELF, present).refused.map((x) => x.reason)).toEqual(['self']);
  });
});
