/** This host's WireGuard key file and the peer records other hosts publish (issue 24). */
import { mkdtempSync, readFileSync, rmSync, statSync, chmodSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KEY_FILE, isWgKey, loadOrCreateKey, newPrivateKey, publicKeyOf } from '../../../../src/multihost/wireguard/keyfile.js';
import { type PeerRecord, encodePeer, judgePeers, peerKey, readPeer } from '../../../../src/multihost/wireguard/peer-record.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'mnt-ng-key-'));
  dirs.push(d);
  return d;
};
const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

describe('the key file', () => {
  it('derives the public key as X25519 does (RFC 7748 §6.1, Alice)', () => {
    expect(publicKeyOf(b64('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))).toBe(
      b64('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'),
    );
  });

  it('made once, mode 0600, the same key on every later load; the public key is all that is returned', () => {
    const d = tmp();
    const k = loadOrCreateKey(d);
    expect(statSync(join(d, KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(isWgKey(k.publicKey)).toBe(true);
    const text = readFileSync(join(d, KEY_FILE), 'utf8').trim();
    expect(isWgKey(text)).toBe(true);
    expect(Object.values(k)).not.toContain(text);
    expect(JSON.stringify(k)).not.toContain(text);
    expect(loadOrCreateKey(d)).toEqual(k);
  });

  it('a key others can read, or a file that is not a key, is refused naming the file and not its contents', () => {
    const d = tmp();
    loadOrCreateKey(d);
    const secret = readFileSync(join(d, KEY_FILE), 'utf8').trim();
    chmodSync(join(d, KEY_FILE), 0o644);
    expect(() => loadOrCreateKey(d)).toThrow(/wireguard.key: the WireGuard private key is readable by others \(mode 644\); chmod 600/);
    writeFileSync(join(d, KEY_FILE), 'not a key\n', { mode: 0o600 });
    chmodSync(join(d, KEY_FILE), 0o600);
    let message = '';
    try {
      loadOrCreateKey(d);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/not a WireGuard private key/);
    expect(message).not.toContain(secret);
  });

  it('new keys are clamped 32-byte keys', () => {
    const raw = Buffer.from(newPrivateKey(), 'base64');
    expect(raw).toHaveLength(32);
    expect((raw[0] as number) & 7).toBe(0);
    expect((raw[31] as number) & 0xc0).toBe(0x40);
  });
});

const KEY_B = b64('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
const KEY_C = b64('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
const rec = (o: Partial<PeerRecord> = {}): PeerRecord => ({
  v: 1,
  node: 'host-b',
  publicKey: KEY_B,
  port: 51820,
  underlay: '198.18.160.2',
  tunnel: '198.18.170.2',
  updatedAt: '2026-12-06T23:00:00.000Z',
  ...o,
});
const SELF = { node: 'host-a', publicKey: b64('11'.repeat(32)), underlay: '198.18.160.1', tunnelCidr: '198.18.170.1/24' };

describe('peer records: shape', () => {
  it('what this host writes, its readers read back', () => {
    expect(readPeer(peerKey('host-b'), encodePeer(rec()))).toEqual({ ok: true, record: rec() });
  });

  it('each bad field is refused naming it', () => {
    const problem = (r: unknown, key = peerKey('host-b')): string => {
      const x = readPeer(key, typeof r === 'string' ? r : JSON.stringify(r));
      return x.ok ? 'ok' : x.problem;
    };
    expect(problem(rec({ publicKey: 'AAAA' }))).toMatch(/\/publicKey must be a WireGuard key/);
    expect(problem(rec({ publicKey: `${KEY_B.slice(0, 42)}B=` }))).toMatch(/\/publicKey/); // 33rd bit set: not 32 bytes
    expect(problem(rec({ port: 80 }))).toMatch(/\/port must be an integer from 1024 to 65535/);
    expect(problem(rec({ port: 65536 }))).toMatch(/\/port/);
    expect(problem(rec({ underlay: '127.0.0.1' }))).toMatch(/\/underlay/);
    expect(problem(rec({ underlay: '198.18.160.2/24' }))).toMatch(/\/underlay must be an IPv4 or IPv6 address/);
    expect(problem(rec({ tunnel: '224.0.0.1' }))).toMatch(/\/tunnel/);
    expect(problem(rec({ node: 'host-c' }))).toMatch(/\/node must be the key's node name/);
    expect(problem({ ...rec(), v: 2 })).toMatch(/\/v must be 1/);
    expect(problem('{')).toMatch(/not JSON/);
    expect(problem(JSON.stringify({ ...rec(), pad: 'x'.repeat(2000) }))).toMatch(/over the 1024/);
    expect(problem(rec(), '/mynet/v1/wireguard/../nodes/x')).toMatch(/not a WireGuard peer key/);
    expect(() => encodePeer(rec({ port: 1 }))).toThrow(/its readers refuse/);
  });
});

describe('peer records: meaning', () => {
  const present = new Map([
    ['host-b', '198.18.160.2'],
    ['host-c', '198.18.160.3'],
  ]);
  it('a present member at its registered address is a peer', () => {
    expect(judgePeers([rec()], SELF, present)).toEqual({ peers: [rec()], refused: [] });
  });

  it("not a member, another address than registered, this host's own key or address, outside the tunnel network: refused", () => {
    const reasons = (r: PeerRecord): string[] => judgePeers([r], SELF, present).refused.map((x) => x.reason);
    expect(reasons(rec({ node: 'host-z' }))).toEqual(['not-member']);
    expect(reasons(rec({ underlay: '198.18.160.9' }))).toEqual(['underlay-mismatch']);
    expect(reasons(rec({ publicKey: SELF.publicKey }))).toEqual(['self']);
    expect(reasons(rec({ tunnel: '198.18.170.1' }))).toEqual(['self']);
    expect(reasons(rec({ tunnel: '198.18.171.2' }))).toEqual(['outside-tunnel']);
    // This host's own record is not a peer of itself, nor a refusal.
    expect(judgePeers([rec({ node: 'host-a', underlay: '198.18.160.1' })], SELF, present)).toEqual({ peers: [], refused: [] });
  });

  it('a key or tunnel address held by two nodes is believed for neither', () => {
    const c = rec({ node: 'host-c', underlay: '198.18.160.3', tunnel: '198.18.170.3' });
    expect(judgePeers([rec(), { ...c, publicKey: KEY_B }], SELF, present).peers).toEqual([]);
    expect(judgePeers([rec(), { ...c, publicKey: KEY_C, tunnel: '198.18.170.2' }], SELF, present).refused.map((x) => x.reason)).toEqual([
      'duplicate',
      'duplicate',
    ]);
    expect(judgePeers([rec(), { ...c, publicKey: KEY_C }], SELF, present).peers.map((p) => p.node)).toEqual(['host-b', 'host-c']);
  });
});
