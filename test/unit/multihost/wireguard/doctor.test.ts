/**
 * The WireGuard part of the doctor (multihost/wireguard/doctor.ts), pure: the interface's peers against
 * the peers believed from etcd. A peer missing, one with a wrong endpoint or allowed-ips, one
 * holding an old key, and one no record knows are each a difference with the `wg` steps that
 * repair it; an interface without mynet's alias is listed and never touched; without a
 * judgement (etcd not followed) nothing is compared.
 */
import { describe, expect, it } from 'vitest';
import { wireguardDifferences } from '../../../../src/multihost/wireguard/doctor.js';
import { type ObservedPeer, parseWgShow } from '../../../../src/multihost/wireguard/peer-plan.js';
import type { Judged, PeerRecord } from '../../../../src/multihost/wireguard/peer-record.js';
import { WIREGUARD_ALIAS } from '../../../../src/plan/link-names.js';
import { renderPlan } from '../../../../src/plan/step.js';

const IF = 'mnw2-w0';
const KB = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=';
const KC = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=';
const KOLD = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=';
const KX = 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=';
const ours = { present: true, alias: WIREGUARD_ALIAS } as const;

const peer = (node: string, publicKey: string, n: number): PeerRecord => ({
  v: 1,
  node,
  publicKey,
  port: 51820,
  underlay: `198.18.191.${n}`,
  tunnel: `100.82.191.${n}`,
  updatedAt: '2026-12-07T07:00:00.000Z',
});
const B = peer('b', KB, 2);
const C = peer('c', KC, 3);
const judged = (...peers: PeerRecord[]): Judged => ({ peers, refused: [] });
const held = (p: PeerRecord): ObservedPeer => ({ endpoint: `${p.underlay}:${p.port}`, allowedIps: [`${p.tunnel}/32`] });

describe('the WireGuard peers against etcd (multihost/wireguard/doctor.ts)', () => {
  it('peers as etcd says: no difference', () => {
    expect(
      wireguardDifferences(
        IF,
        ours,
        judged(B, C),
        new Map([
          [KB, held(B)],
          [KC, held(C)],
        ]),
      ),
    ).toEqual([]);
  });

  it('a peer missing, one with wrong allowed-ips and endpoint, one no record knows: each with its repair', () => {
    const observed = parseWgShow(`${KB}\t198.18.191.9:51820\n${KX}\t(none)\n`, `${KB}\t100.127.0.1/32\n${KX}\t100.82.191.77/32\n`);
    const d = wireguardDifferences(IF, ours, judged(B, C), observed);
    expect(d.map((x) => [x.kind, x.object])).toEqual([
      ['drift', `wireguard ${IF} peer of node b`],
      ['missing', `wireguard ${IF} peer of node c`],
      ['orphan', `wireguard ${IF} peer ${KX.slice(0, 8)}…`],
    ]);
    expect(d[0]?.detail).toBe('endpoint 198.18.191.9:51820, not 198.18.191.2:51820, allowed-ips 100.127.0.1/32, not 100.82.191.2/32');
    expect(renderPlan(d[0]?.fix ?? [])).toContain(
      `wg set ${IF} peer ${KB} endpoint 198.18.191.2:51820 allowed-ips 100.82.191.2/32 persistent-keepalive 25`,
    );
    expect(renderPlan(d[1]?.fix ?? [])).toContain(`wg set ${IF} peer ${KC} endpoint 198.18.191.3:51820`);
    expect(renderPlan(d[2]?.fix ?? [])).toContain(`wg set ${IF} peer ${KX} remove`);
    expect(d.every((x) => x.fix.every((s) => s.run.kind === 'wg'))).toBe(true);
  });

  it("a peer holding a key etcd no longer names (a missed rotation) is that peer's drift: the old key out, the new in", () => {
    const d = wireguardDifferences(IF, ours, judged(B), new Map([[KOLD, held(B)]]));
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ kind: 'drift', object: `wireguard ${IF} peer of node b` });
    expect(d[0]?.detail).toBe(`holds key ${KOLD.slice(0, 8)}…, not ${KB.slice(0, 8)}… (etcd's)`);
    expect((d[0]?.fix ?? []).map((s) => s.run)).toEqual([
      { kind: 'wg', args: ['set', IF, 'peer', KOLD, 'remove'] },
      {
        kind: 'wg',
        args: ['set', IF, 'peer', KB, 'endpoint', '198.18.191.2:51820', 'allowed-ips', '100.82.191.2/32', 'persistent-keepalive', '25'],
      },
    ]);
  });

  it("an interface of that name without mynet's alias is someone else's: listed, nothing compared or touched", () => {
    for (const alias of [undefined, 'wg of the operator']) {
      const d = wireguardDifferences(IF, { present: true, alias }, judged(B), new Map([[KX, held(C)]]));
      expect(d).toHaveLength(1);
      expect(d[0]).toMatchObject({ kind: 'orphan', object: `wireguard ${IF}`, fix: [] });
      expect(d[0]?.detail).toMatch(/not mynet's, not compared and not touched/);
    }
  });

  it('etcd not followed (no judgement): nothing compared, so nothing removed; the interface gone is said so', () => {
    expect(wireguardDifferences(IF, ours, undefined, new Map([[KX, held(C)]]))).toEqual([]);
    const gone = wireguardDifferences(IF, { present: false }, judged(B), new Map());
    expect(gone).toMatchObject([{ kind: 'missing', object: `wireguard ${IF}`, fix: [] }]);
  });

  it('a refused record is listed with its reason, with no repair (the doctor cannot fix the writer)', () => {
    const j: Judged = { peers: [B], refused: [{ record: C, reason: 'not-member', detail: 'node c has no presence record' }] };
    const d = wireguardDifferences(IF, ours, j, new Map([[KB, held(B)]]));
    expect(d).toEqual([
      {
        kind: 'orphan',
        object: `wireguard ${IF} record of node c`,
        detail: 'refused (not-member): node c has no presence record',
        fix: [],
      },
    ]);
  });
});
