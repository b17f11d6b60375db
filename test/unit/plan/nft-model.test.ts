/**
 * The nft model (src/plan/nft-model.ts) and its scripts (nft-render.ts): each family follows its
 * own gateway mode, rules carry their fingerprints, the forward chain marks before it drops, and
 * the teardown removes what the create script made plus NAT elements an older mynet left.
 */
import { describe, expect, it } from 'vitest';
import type { NetworkRecord } from '../../../src/driver/state.js';
import { BASE_CHAINS, FORWARD_MARK, networkObjects, nftNetwork } from '../../../src/plan/nft-model.js';
import { baseCommands, networkCommands, networkTeardownCommands } from '../../../src/plan/nft-render.js';
import { nftScript } from '../../../src/plan/nft-text.js';
import { TABLE } from '../../../src/rules/nft-names.js';
import type { NftNetwork } from '../../../src/plan/nft-model.js';

// The changes as nft is given them (plan/nft-text.ts, the one renderer).
const baseScript = (): string => nftScript(TABLE, baseCommands());
const networkScript = (n: NftNetwork): string => nftScript(TABLE, networkCommands(n));
const networkTeardownScript = (n: NftNetwork): string => nftScript(TABLE, networkTeardownCommands(n));
import { parseNetworkOptions } from '../../../src/protocol/options.js';

const ID = 'ab'.repeat(32);
function record(generic: Record<string, string> = {}, o: { internal?: boolean } = {}): NetworkRecord {
  return {
    id: ID,
    bridge: 'mn-abababababab',
    options: parseNetworkOptions({ 'com.docker.network.generic': generic, ...(o.internal ? { 'com.docker.network.internal': true } : {}) }),
    ipv4: [{ pool: '10.9.0.0/24', gateway: '10.9.0.1/24' }],
    // Not in canonical form on purpose: nft prints it back compressed.
    ipv6: [{ pool: 'fd00:0009:0000::/64', gateway: 'fd00:9::1/64' }],
    createdAt: '2026-12-02T00:00:00.000Z',
  };
}
const mode4 = (m: string): Record<string, string> => ({ 'com.docker.network.bridge.gateway_mode_ipv4': m });
const mode6 = (m: string): Record<string, string> => ({ 'com.docker.network.bridge.gateway_mode_ipv6': m });
const sets = (r: NetworkRecord): string[] =>
  networkObjects(nftNetwork(r)).elements.map((e) => `${e.set} ${e.key}${e.value ? ` : ${e.value}` : ''}`);
const ingress = (r: NetworkRecord): string[] => (networkObjects(nftNetwork(r)).chains[1]?.rules ?? []).map((x) => x.text);

describe('gateway modes apply to their own family (issue 15.8)', () => {
  it('nat on both (default): both masqueraded, no direct access', () => {
    expect(sets(record())).toEqual(expect.arrayContaining(['masq4 10.9.0.0/24', 'masq6 fd00:9::/64']));
    expect(ingress(record())).toEqual(['ct status dnat accept', 'drop']);
  });

  it('gateway_mode_ipv4=routed: IPv4 not masqueraded and directly reachable; IPv6 still masqueraded', () => {
    const r = record(mode4('routed'));
    expect(sets(r)).toContain('masq6 fd00:9::/64');
    expect(sets(r).some((s) => s.startsWith('masq4'))).toBe(false);
    expect(ingress(r)).toEqual(['ct status dnat accept', 'meta nfproto ipv4 iifgroup != 28014 accept', 'drop']);
  });

  it('gateway_mode_ipv6=routed: IPv6 not masqueraded and directly reachable; IPv4 still masqueraded', () => {
    const r = record(mode6('routed'));
    expect(sets(r)).toContain('masq4 10.9.0.0/24');
    expect(sets(r).some((s) => s.startsWith('masq6'))).toBe(false);
    expect(ingress(r)).toEqual(['ct status dnat accept', 'meta nfproto ipv6 iifgroup != 28014 accept', 'drop']);
  });

  it('nat-unprotected on both: masqueraded and directly reachable, one rule for both families', () => {
    const r = record({ ...mode4('nat-unprotected'), ...mode6('nat-unprotected') });
    expect(sets(r)).toEqual(expect.arrayContaining(['masq4 10.9.0.0/24', 'masq6 fd00:9::/64']));
    expect(ingress(r)).toEqual(['ct status dnat accept', 'iifgroup != 28014 accept', 'drop']);
  });

  it('host_ipv4/6 SNAT per family; enable_ip_masquerade=false turns both off; internal has neither NAT nor direct access', () => {
    expect(sets(record({ 'com.docker.network.host_ipv6': 'fd00::7' }))).toEqual(
      expect.arrayContaining(['masq4 10.9.0.0/24', 'snat6 fd00:9::/64 : fd00::7']),
    );
    expect(sets(record({ 'com.docker.network.bridge.enable_ip_masquerade': 'false' })).filter((s) => /^(masq|snat)/.test(s))).toEqual([]);
    const internal = record(mode4('routed'), { internal: true });
    expect(sets(internal).filter((s) => /^(masq|snat)/.test(s))).toEqual([]);
    expect(ingress(internal)).toEqual(['ct status dnat accept', 'drop']);
  });
});

describe('the forward chain (issue 14.7)', () => {
  const fw = BASE_CHAINS.find((c) => c.name === 'firewall');

  it("hooks forward before iptables filter FORWARD (priority 0), and marks our links' packets before any verdict", () => {
    expect(fw?.hook).toEqual({ type: 'filter', hook: 'forward', prio: -10 });
    expect(fw?.rules.map((r) => r.text)).toEqual([
      'iifgroup 28014 meta mark set meta mark | 0x00001000',
      'oifgroup 28014 meta mark set meta mark | 0x00001000',
      'ct state established,related accept',
      'iifname vmap @egress',
      'oifname vmap @ingress',
    ]);
    expect(FORWARD_MARK).toBe(0x1000);
  });

  it('the base script removes the forward chain an older mynet hooked at priority filter (priorities cannot change in place)', () => {
    const s = baseScript();
    expect(s).toContain('add chain inet mynet forward\nflush chain inet mynet forward\ndelete chain inet mynet forward');
    expect(s).toContain('add chain inet mynet firewall { type filter hook forward priority -10; policy accept; }');
  });
});

describe('rendering', () => {
  it('every rule carries its fingerprint as its comment; equal text, equal fingerprint; different text, different', () => {
    const ids = BASE_CHAINS.flatMap((c) => c.rules.map((r) => r.id));
    for (const c of BASE_CHAINS)
      for (const r of c.rules) expect(baseScript()).toContain(`add rule inet mynet ${c.name} ${r.text} comment "${r.id}"`);
    expect(ids.every((id) => /^[0-9a-f]{12}$/.test(id))).toBe(true);
    const texts = BASE_CHAINS.flatMap((c) => c.rules.map((r) => r.text));
    expect(new Set(ids).size).toBe(new Set(texts).size);
  });

  it('the network script makes both chains and every element, subnets in canonical form', () => {
    expect(networkScript(nftNetwork(record()))).toMatchInlineSnapshot(`
      "add chain inet mynet egress-abababababab
      flush chain inet mynet egress-abababababab
      add rule inet mynet egress-abababababab ct status dnat accept comment "0ecd6d4d8ee0"
      add rule inet mynet egress-abababababab oifname "mn-abababababab" accept comment "bb6191cc8758"
      add rule inet mynet egress-abababababab oifgroup 28014 drop comment "f78886f41bc3"
      add rule inet mynet egress-abababababab oifname { "docker0", "docker_gwbridge", "br-*" } drop comment "01b092eb35d6"
      add rule inet mynet egress-abababababab return comment "7187f0675eb3"
      add chain inet mynet ingress-abababababab
      flush chain inet mynet ingress-abababababab
      add rule inet mynet ingress-abababababab ct status dnat accept comment "0ecd6d4d8ee0"
      add rule inet mynet ingress-abababababab drop comment "d90ee9ccf6be"
      add element inet mynet egress { "mn-abababababab" : jump egress-abababababab }
      add element inet mynet ingress { "mn-abababababab" : jump ingress-abababababab }
      add element inet mynet subnets4 { 10.9.0.0/24 }
      add element inet mynet subnets6 { fd00:9::/64 }
      add element inet mynet masq4 { 10.9.0.0/24 }
      add element inet mynet masq6 { fd00:9::/64 }"
    `);
  });

  it("the teardown removes every element the network has, and the NAT elements of the other modes (an older mynet's), then its chains", () => {
    const t = networkTeardownScript(nftNetwork(record(mode6('routed'))));
    expect(t).toMatchInlineSnapshot(`
      "add chain inet mynet egress-abababababab
      flush chain inet mynet egress-abababababab
      add chain inet mynet ingress-abababababab
      flush chain inet mynet ingress-abababababab
      add map inet mynet egress { type ifname : verdict; }
      add map inet mynet ingress { type ifname : verdict; }
      add set inet mynet masq4 { type ipv4_addr; flags interval; }
      add set inet mynet masq6 { type ipv6_addr; flags interval; }
      add map inet mynet snat4 { type ipv4_addr : ipv4_addr; flags interval; }
      add map inet mynet snat6 { type ipv6_addr : ipv6_addr; flags interval; }
      add set inet mynet subnets4 { type ipv4_addr; flags interval; }
      add set inet mynet subnets6 { type ipv6_addr; flags interval; }
      add element inet mynet egress { "mn-abababababab" : jump egress-abababababab }
      delete element inet mynet egress { "mn-abababababab" }
      add element inet mynet ingress { "mn-abababababab" : jump ingress-abababababab }
      delete element inet mynet ingress { "mn-abababababab" }
      add element inet mynet subnets4 { 10.9.0.0/24 }
      delete element inet mynet subnets4 { 10.9.0.0/24 }
      add element inet mynet subnets6 { fd00:9::/64 }
      delete element inet mynet subnets6 { fd00:9::/64 }
      add element inet mynet masq4 { 10.9.0.0/24 }
      delete element inet mynet masq4 { 10.9.0.0/24 }
      add element inet mynet snat4 { 10.9.0.0/24 : 0.0.0.0 }
      delete element inet mynet snat4 { 10.9.0.0/24 }
      add element inet mynet masq6 { fd00:9::/64 }
      delete element inet mynet masq6 { fd00:9::/64 }
      add element inet mynet snat6 { fd00:9::/64 : :: }
      delete element inet mynet snat6 { fd00:9::/64 }
      delete chain inet mynet egress-abababababab
      delete chain inet mynet ingress-abababababab"
    `);
  });
});
