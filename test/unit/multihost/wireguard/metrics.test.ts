/** The handshake-age metric (issue 24): seconds since each peer's last handshake, at each scrape; none without a handshake. */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../../src/metrics.js';
import { fixtureState } from '../../doctor/fixture.js';

describe('mynet_wireguard_handshake_age_seconds', () => {
  it("gives each peer's age from wg's last handshake, leaves out a peer without one, and follows the peers at each scrape", async () => {
    const m = new Metrics(() => fixtureState());
    let peers = [
      { node: 'host-b', lastHandshake: '2026-12-07T03:00:00.000Z' },
      { node: 'host-c', lastHandshake: undefined },
    ];
    m.wireguard(
      () => Promise.resolve(peers),
      () => Date.parse('2026-12-07T03:01:30.000Z'),
    );
    const text = await m.registry.getSingleMetricAsString('mynet_wireguard_handshake_age_seconds');
    expect(text).toContain('mynet_wireguard_handshake_age_seconds{peer="host-b"} 90');
    expect(text).not.toContain('host-c');
    peers = [];
    expect(await m.registry.getSingleMetricAsString('mynet_wireguard_handshake_age_seconds')).not.toContain('host-b');
  });
});
