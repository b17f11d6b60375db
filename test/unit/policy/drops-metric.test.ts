/**
 * mynet_policy_drops_total (issue 25): `nft -j list counters` read into packets per counter, the
 * counters named back to their policies (one missing from the kernel is left out, not 0), and
 * the metric following what each scrape reads.
 */
import { describe, expect, it } from 'vitest';
import { policyDrops } from '../../../src/driver/policy.js';
import type { PolicyRecord } from '../../../src/driver/state.js';
import { parseNftCounters } from '../../../src/host/nft-json.js';
import { Metrics } from '../../../src/metrics.js';
import { policyCounter } from '../../../src/plan/policy-nft.js';
import { fixtureState } from '../doctor/fixture.js';

const NET = 'a'.repeat(64);
const record = (name: string): PolicyRecord => ({ name, network: 'blue', networkId: NET, select: { app: 'db' }, ingress: [] });

describe('mynet_policy_drops_total', () => {
  it("reads each named counter's packets from nft -j (nftables 1.0.6), and nothing else of the table", () => {
    const json = `{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"counter": {"family": "inet", "name": "pc-x", "table": "mynet", "handle": 9, "packets": 17, "bytes": 1020}}, {"map": {"family": "inet", "name": "m", "table": "mynet", "type": "ipv4_addr", "map": "counter", "elem": [["10.222.9.2", "pc-x"]]}}]}`;
    expect(parseNftCounters(json)).toEqual(new Map([['pc-x', 17]]));
  });

  it('names each counter by its policy; a policy whose counter the kernel lacks is left out', () => {
    const policies = new Map([
      ['db-from-web', record('db-from-web')],
      ['gone', record('gone')],
    ]);
    const counters = new Map([
      [policyCounter(NET, 'db-from-web'), 5],
      ['pc-unrelated', 9],
    ]);
    expect(policyDrops({ policies }, counters)).toEqual(new Map([['db-from-web', 5]]));
  });

  it('is a counter per policy, following what each scrape reads', async () => {
    const m = new Metrics(() => fixtureState());
    let drops = new Map([
      ['db-from-web', 3],
      ['quiet', 0],
    ]);
    m.policyDrops(() => Promise.resolve(drops));
    const text = await m.registry.getSingleMetricAsString('mynet_policy_drops_total');
    expect(text).toContain('# TYPE mynet_policy_drops_total counter');
    expect(text).toContain('mynet_policy_drops_total{policy="db-from-web"} 3');
    expect(text).toContain('mynet_policy_drops_total{policy="quiet"} 0');
    drops = new Map([['db-from-web', 8]]);
    const next = await m.registry.getSingleMetricAsString('mynet_policy_drops_total');
    expect(next).toContain('mynet_policy_drops_total{policy="db-from-web"} 8');
    expect(next).not.toContain('quiet');
  });
});
