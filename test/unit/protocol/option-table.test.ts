/**
 * docs/cluster.md's "Options on a cluster network" table (issue 23, item 6) against the code: every
 * option src/protocol/options.ts reads has a row, every row naming an option is one it reads,
 * and what a row says is refused is refused (by name), what it says works is taken.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterRefusals } from '../../../src/driver/cluster-options.js';
import { OPTION_KEYS, parseNetworkOptions } from '../../../src/protocol/options.js';

const DOC = readFileSync(resolve(import.meta.dirname, '../../../docs/cluster.md'), 'utf8');

function tableRows(): { option: string; local: string; cluster: string }[] {
  const start = DOC.indexOf('## Options on a cluster network');
  expect(start).toBeGreaterThan(0);
  const lines = DOC.slice(start).split('\n');
  const first = lines.findIndex((l) => l.startsWith('| option |'));
  const rows: { option: string; local: string; cluster: string }[] = [];
  for (const l of lines.slice(first + 2)) {
    if (!l.startsWith('|')) break;
    const [option, local, cluster] = l.split(' | ').map((c) => c.replace(/^\| ?| ?\|$/g, ''));
    rows.push({ option: /^`([^`]+)`/.exec(option ?? '')?.[1] ?? '', local: local ?? '', cluster: cluster ?? '' });
  }
  return rows;
}

const OPTIONS = new Set<string>(Object.values(OPTION_KEYS));
/** A value each option takes, for the rows that say it works. */
const SAMPLE: Record<string, string> = {
  'com.docker.network.bridge.name': 'mnt-no-br',
  'com.docker.network.driver.mtu': '1400',
  'com.docker.network.bridge.enable_ip_masquerade': 'false',
  'com.docker.network.bridge.host_binding_ipv4': '203.0.113.5',
  'com.docker.network.host_ipv4': '203.0.113.5',
  'com.docker.network.host_ipv6': '2001:db8:6::5',
  'com.docker.network.container_iface_prefix': 'en',
  'com.docker.network.internal': 'true',
  'mynet.isolate': 'false',
  'mynet.vni': '5000',
  'mynet.multicast': 'true',
};
const cluster = (more: Record<string, string>): Record<string, unknown> => ({
  'com.docker.network.generic': { 'mynet.cluster': 'blue', ...more },
});
const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

describe('docs/cluster.md option table', () => {
  const rows = tableRows();

  it('lists every option options.ts reads, and none it does not', () => {
    const listed = rows.map((r) => r.option).filter((o) => !o.startsWith('--'));
    expect(new Set(listed)).toEqual(OPTIONS);
    expect(listed).toHaveLength(OPTIONS.size);
  });

  it('every row that says an option works on a cluster network: taken with a value of its own', () => {
    for (const r of rows.filter((x) => /^works/.test(x.cluster) && SAMPLE[x.option] !== undefined)) {
      const o = parseNetworkOptions(cluster({ [r.option]: SAMPLE[r.option] as string }));
      expect(clusterRefusals(o, {}), r.option).toEqual([]);
    }
  });

  it('every row that says `false` refused (and the gateway modes): refused naming the option', () => {
    const falseRefused = rows.filter((r) => r.cluster.startsWith('`false` refused'));
    expect(falseRefused.map((r) => r.option).sort()).toEqual(['com.docker.network.bridge.enable_icc', 'mynet.dns']);
    for (const r of falseRefused)
      expect(clusterRefusals(parseNetworkOptions(cluster({ [r.option]: 'false' })), {})[0]?.field).toBe(`option ${r.option}`);
    for (const mode of ['routed', 'nat-unprotected']) {
      expect(clusterRefusals(parseNetworkOptions(cluster({ [OPTION_KEYS.gwMode4]: mode })), {})[0]?.field).toBe(
        `option ${OPTION_KEYS.gwMode4}`,
      );
      // The IPv6 gateway mode of a dual-stack network (--ipv6), for the same reason.
      const dual = { ...cluster({ [OPTION_KEYS.gwMode6]: mode }), [OPTION_KEYS.ipv6]: true };
      expect(clusterRefusals(parseNetworkOptions(dual), {})[0]?.field).toBe(`option ${OPTION_KEYS.gwMode6}`);
    }
    expect(clusterRefusals(parseNetworkOptions(cluster({})), { AuxAddresses: { r: '10.77.0.9' } })[0]?.field).toBe(
      'IPv4Data[0].AuxAddresses',
    );
  });

  it('the rows refused everywhere and the cluster-only ones are refused on a local network, naming the option', () => {
    for (const r of rows.filter((x) => x.local.startsWith('refused'))) {
      expect(
        errorOf(() => parseNetworkOptions({ 'com.docker.network.generic': { [r.option]: SAMPLE[r.option] ?? 'true' } })),
        r.option,
      ).toContain(`option ${r.option}`);
    }
  });
});
