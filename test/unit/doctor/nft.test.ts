/**
 * The doctor's nft part (src/doctor/nft.ts) on the real `nft -j` capture (test/fixtures/kernel):
 * base chains compared by hook and by their rules' fingerprints, per-network chains by their
 * rules, a chain an older mynet left, and a kernel that prints an address in another form.
 */
import { nftScript } from '../../../src/plan/nft-text.js';
import { describe, expect, it } from 'vitest';
import { nftDifferences } from '../../../src/doctor/nft.js';
import { type Snapshot, State } from '../../../src/driver/state.js';
import type { NftTable } from '../../../src/host/nft-json.js';
import { BR_DUAL, E1, cleanKernel, fixtureState, fixtureText } from './fixture.js';

const table = (): NftTable => cleanKernel().nft as NftTable;
const edit = (t: NftTable, e: Partial<{ [K in keyof NftTable]: NftTable[K] }>): NftTable => ({ ...t, ...e });
const found = (t: NftTable): string[] => nftDifferences(fixtureState(), t).map((d) => `${d.kind} ${d.object}: ${d.detail}`);
const scripts = (t: NftTable): string =>
  nftDifferences(fixtureState(), t)
    .flatMap((d) => d.fix.flatMap((s) => (s.run.kind === 'nft' ? [nftScript(s.run.table, s.run.commands)] : [])))
    .join('\n');

describe('nftDifferences', () => {
  it('the real capture of the fixture state: nothing', () => {
    expect(found(table())).toEqual([]);
  });

  it('a base chain flushed (its rules gone): drift, repaired by the base script', () => {
    const t = edit(table(), { rules: new Map(table().rules).set('localnet', []) });
    expect(found(t)).toEqual(['drift nft chain localnet: its rules are not as mynet writes them']);
    expect(scripts(t)).toContain('add rule inet mynet localnet iifgroup 28014 ip daddr 127.0.0.0/8 drop comment');
  });

  it('a rule of ours rewritten by hand (its fingerprint no longer matches), or one added: drift', () => {
    const fw = [...(table().rules.get('firewall') ?? [])];
    expect(found(edit(table(), { rules: new Map(table().rules).set('firewall', ['', ...fw.slice(1)]) }))).toEqual([
      'drift nft chain firewall: its rules are not as mynet writes them',
    ]);
    expect(found(edit(table(), { rules: new Map(table().rules).set('firewall', [...fw, '']) }))).toHaveLength(1);
  });

  it('a base chain hooked at another priority: drift naming both', () => {
    const hooks = new Map(table().hooks).set('firewall', { type: 'filter', hook: 'forward', prio: 0, policy: 'accept' });
    expect(found(edit(table(), { hooks }))).toEqual([
      'drift nft chain firewall: hooks filter forward at priority 0, policy accept, not filter forward at priority -10, policy accept',
    ]);
  });

  it('the forward chain of an older mynet still there: drift, removed by the base script', () => {
    const t = edit(table(), { chains: new Set([...table().chains, 'forward']) });
    expect(found(t)).toEqual(['drift nft chain forward: was left by an older mynet']);
    expect(scripts(t)).toContain('delete chain inet mynet forward');
  });

  it('a base set gone: missing', () => {
    const sets = new Map(table().sets);
    sets.delete('snat6');
    expect(found(edit(table(), { sets }))).toEqual(['missing nft map snat6: is missing']);
  });

  it("a network chain whose rules drifted: that network's firewall is programmed again", () => {
    const rules = new Map(table().rules).set('ingress-a16ea39fe89d', []);
    const ds = nftDifferences(fixtureState(), edit(table(), { rules }));
    expect(ds.map((d) => `${d.kind} ${d.object}: ${d.detail}`)).toEqual([
      `drift firewall of ${BR_DUAL}: the rules of ingress-a16ea39fe89d are not as mynet writes them`,
    ]);
    expect(ds[0]?.fix.map((s) => s.what)).toEqual([`program the firewall of ${BR_DUAL}`]);
  });

  it('addresses written in another form than nft prints them back compare equal (no repair forever)', () => {
    const snap = JSON.parse(fixtureText('state.json')) as {
      endpoints: { id: string; addressV6?: string }[];
      networks: { ipv6: { pool: string }[] }[];
    };
    const e1 = snap.endpoints.find((e) => e.id === E1);
    if (!e1) throw new Error('fixture has no e1');
    e1.addressV6 = 'fd00:0201:0:0::10/64';
    for (const n of snap.networks) for (const s6 of n.ipv6) s6.pool = s6.pool.replace('fd00:201::', 'fd00:0201:0000::');
    expect(nftDifferences(State.fromSnapshot(snap as unknown as Snapshot), table())).toEqual([]);
  });

  it("a network's chains that no record knows: orphans, each removed with the map element that jumps to it", () => {
    const gone = 'f00dfeedbeef';
    const el = `"mn-${gone}" : jump egress-${gone}`;
    const t = edit(table(), {
      chains: new Set([...table().chains, `egress-${gone}`, `ingress-${gone}`, 'egress-notours']),
      elements: new Map(table().elements).set('egress', [...(table().elements.get('egress') ?? []), el]),
    });
    const d = nftDifferences(fixtureState(), t);
    expect(d.map((x) => `${x.kind} ${x.object}: ${x.detail}`)).toEqual([
      `orphan nft chain egress-${gone}: in mynet's table but no record has network ${gone}`,
      `orphan nft chain ingress-${gone}: in mynet's table but no record has network ${gone}`,
    ]);
    expect(d[0]?.fix.map((s) => (s.run.kind === 'nft' ? nftScript(s.run.table, s.run.commands) : ''))).toEqual([
      [
        `delete element inet mynet egress { "mn-${gone}" }`,
        `flush chain inet mynet egress-${gone}`,
        `delete chain inet mynet egress-${gone}`,
      ].join('\n'),
    ]);
    expect(d[1]?.fix.map((s) => (s.run.kind === 'nft' ? nftScript(s.run.table, s.run.commands) : ''))).toEqual([
      `flush chain inet mynet ingress-${gone}\ndelete chain inet mynet ingress-${gone}`,
    ]);
  });

  it('with no networks: no base differences, the table is judged only for orphans', () => {
    const none = nftDifferences(new State(), edit(table(), { rules: new Map() }));
    expect(none.every((d) => d.kind === 'orphan')).toBe(true);
  });
});
