/**
 * The golden matrix (issue 15.2): the rules and elements the model gives a dual-stack network
 * for every combination of internal × icc × isolate × masquerade × gateway_mode_ipv4 ×
 * gateway_mode_ipv6 × host_ipv4/6, pinned in test/golden/nft-matrix.txt. A change of any rule
 * shows there as a reviewable diff (`npx vitest run --project unit test/unit/plan/nft-matrix.test.ts -u`).
 */
import { describe, expect, it } from 'vitest';
import type { NetworkRecord } from '../../../src/driver/state.js';
import { networkObjects, nftNetwork } from '../../../src/plan/nft-model.js';
import { parseNetworkOptions } from '../../../src/protocol/options.js';

const MODES = ['nat', 'nat-unprotected', 'routed'] as const;
const BOOL = [false, true] as const;

interface Combo {
  internal: boolean;
  icc: boolean;
  isolate: boolean;
  masquerade: boolean;
  gw4: (typeof MODES)[number];
  gw6: (typeof MODES)[number];
  hostIp: boolean;
}

function* combos(): Generator<Combo> {
  for (const internal of BOOL)
    for (const icc of BOOL)
      for (const isolate of BOOL)
        for (const masquerade of BOOL) {
          for (const gw4 of MODES)
            for (const gw6 of MODES) for (const hostIp of BOOL) yield { internal, icc, isolate, masquerade, gw4, gw6, hostIp };
        }
}

function record(c: Combo): NetworkRecord {
  const generic: Record<string, string> = {
    'com.docker.network.bridge.enable_icc': String(c.icc),
    'mynet.isolate': String(c.isolate),
    'com.docker.network.bridge.enable_ip_masquerade': String(c.masquerade),
    'com.docker.network.bridge.gateway_mode_ipv4': c.gw4,
    'com.docker.network.bridge.gateway_mode_ipv6': c.gw6,
    ...(c.hostIp ? { 'com.docker.network.host_ipv4': '203.0.113.7', 'com.docker.network.host_ipv6': 'fd00:ff::7' } : {}),
  };
  return {
    id: 'cd'.repeat(32),
    bridge: 'mn-cdcdcdcdcdcd',
    options: parseNetworkOptions({ 'com.docker.network.generic': generic, ...(c.internal ? { 'com.docker.network.internal': true } : {}) }),
    ipv4: [{ pool: '10.9.0.0/24', gateway: '10.9.0.1/24' }],
    ipv6: [{ pool: 'fd00:9::/64', gateway: 'fd00:9::1/64' }],
    createdAt: '2026-12-02T00:00:00.000Z',
  };
}

const label = (c: Combo): string =>
  `internal=${c.internal} icc=${c.icc} isolate=${c.isolate} masquerade=${c.masquerade} gw4=${c.gw4} gw6=${c.gw6} host_ip=${c.hostIp}`;

function render(c: Combo): string {
  const o = networkObjects(nftNetwork(record(c)));
  return [
    `## ${label(c)}`,
    ...o.chains.map((ch) => `${ch.name.replace(/-.*/, '')}: ${ch.rules.map((r) => r.text).join(' ; ')}`),
    `elements: ${o.elements
      .filter((e) => !['egress', 'ingress'].includes(e.set))
      .map((e) => `${e.set} ${e.key}${e.value ? ` : ${e.value}` : ''}`)
      .join(' ; ')}`,
  ].join('\n');
}

describe('the nft model over the options matrix', () => {
  const all = [...combos()];

  it('covers every combination (2^5 × 3 × 3 = 288)', () => {
    expect(all).toHaveLength(288);
    expect(new Set(all.map(label)).size).toBe(288);
  });

  it('renders the rules pinned in test/golden/nft-matrix.txt', async () => {
    await expect(`${all.map(render).join('\n\n')}\n`).toMatchFileSnapshot('../../golden/nft-matrix.txt');
  });

  it('invariants over every combination: internal never NATs nor opens, routed never masquerades its family, nat never opens it', () => {
    for (const c of all) {
      const n = nftNetwork(record(c));
      for (const [f, mode] of [
        [n.v4, c.gw4],
        [n.v6, c.gw6],
      ] as const) {
        expect(f.masquerade, label(c)).toBe(!c.internal && c.masquerade && mode !== 'routed');
        expect(f.directAccess, label(c)).toBe(!c.internal && mode !== 'nat');
      }
      const o = networkObjects(n);
      const ingress = o.chains[1]?.rules.map((r) => r.text) ?? [];
      expect(ingress.at(-1), label(c)).toBe('drop');
      if (c.internal)
        expect(
          o.elements.some((e) => /^(masq|snat)/.test(e.set)),
          label(c),
        ).toBe(false);
    }
  });
});
