/**
 * `mynet status` for WireGuard (issue 24): each believed peer's last handshake and bytes, read
 * from `wg show` (parseWgStats) and shown by the CLI (renderCluster); a peer the interface does
 * not hold is said so.
 */
import { describe, expect, it } from 'vitest';
import { PLAIN, renderCluster } from '../../../../src/cli/render.js';
import { parseWgStats } from '../../../../src/multihost/wireguard/peer-plan.js';

const K1 = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=';
const K2 = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=';

describe('WireGuard peers in mynet status', () => {
  it('reads handshakes and bytes by key, a handshake of 0 as none, lines that are not a key ignored', () => {
    const s = parseWgStats(`${K1}\t1765000000\n${K2}\t0\nnot-a-key\t5\n`, `${K1}\t1200\t3400\n${K2}\t0\t148\n`);
    expect(s.get(K1)).toEqual({ lastHandshake: 1_765_000_000, rxBytes: 1200, txBytes: 3400 });
    expect(s.get(K2)).toEqual({ lastHandshake: 0, rxBytes: 0, txBytes: 148 });
    expect(s.size).toBe(2);
  });

  it('shows each peer: handshake time and bytes, none yet, or missing from the interface', () => {
    const lines = renderCluster(
      {
        node: 'a',
        address: '198.18.191.1',
        etcd: 'up',
        networks: [],
        members: [],
        wireguard: {
          iface: 'mnwg-w0',
          peers: [
            {
              node: 'b',
              endpoint: '198.18.191.2:51820',
              tunnel: '100.82.191.2',
              programmed: true,
              lastHandshake: '2025-12-06T05:46:40.000Z',
              rxBytes: 1200,
              txBytes: 3400,
            },
            {
              node: 'c',
              endpoint: '198.18.191.3:51820',
              tunnel: '100.82.191.3',
              programmed: true,
              lastHandshake: undefined,
              rxBytes: 0,
              txBytes: 148,
            },
            {
              node: 'd',
              endpoint: '198.18.191.4:51820',
              tunnel: '100.82.191.4',
              programmed: false,
              lastHandshake: undefined,
              rxBytes: 0,
              txBytes: 0,
            },
          ],
        },
      },
      PLAIN,
    );
    expect(lines).toContain(
      '  wireguard peer b 198.18.191.2:51820 tunnel 100.82.191.2: handshake 2025-12-06T05:46:40.000Z, rx 1200 B, tx 3400 B',
    );
    expect(lines).toContain('  wireguard peer c 198.18.191.3:51820 tunnel 100.82.191.3: handshake none yet, rx 0 B, tx 148 B');
    expect(lines).toContain('  wireguard peer d 198.18.191.4:51820 tunnel 100.82.191.4: not on mnwg-w0');
  });
});
