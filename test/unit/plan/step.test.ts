import { describe, expect, it } from 'vitest';
import { type HostPlan, planResources, renderOp, renderPlan, resourcesOf } from '../../../src/plan/step.js';
import { add, chainObj, elementObj, ruleObj, tableObj } from '../../../src/plan/nft-change.js';
import { nftOp } from '../../../src/plan/nft.js';

const el = (set: string, key: string, value?: string): ReturnType<typeof add> =>
  add(elementObj(set, [value === undefined ? { key } : { key, value }]));

describe('renderOp / renderPlan', () => {
  it('renders every kind of op on its own terms', () => {
    expect(renderOp({ kind: 'ip', args: ['link', 'set', 'dev', 'x', 'up'] })).toBe('ip link set dev x up');
    expect(renderOp({ kind: 'ip', args: ['link', 'del', 'dev', 'x'], absentOk: true })).toBe('ip link del dev x  [absent ok]');
    expect(renderOp({ kind: 'link-del', name: 'mn-1' })).toBe('ip link del mn-1  [if ours; absent ok]');
    expect(renderOp(nftOp([add(tableObj())]))).toBe('nft -f - <<\nadd table inet mynet\n>>');
    expect(renderOp({ kind: 'sysctl', key: 'net/ipv4/ip_forward', value: '1' })).toBe('sysctl net/ipv4/ip_forward=1');
    expect(renderOp({ kind: 'forward-hook', action: 'ensure' })).toBe('forward-hook ensure');
    expect(renderOp({ kind: 'forward-hook', action: 'remove' })).toBe('forward-hook remove');
  });

  it('renders a plan with comments and undo lines', async () => {
    const plan: HostPlan = [
      { what: 'enable forwarding', run: { kind: 'sysctl', key: 'net/ipv4/ip_forward', value: '1' } },
      {
        what: 'make a thing',
        run: { kind: 'ip', args: ['link', 'add', 'name', 'x', 'type', 'dummy'] },
        undo: { kind: 'link-del', name: 'x' },
      },
      { what: 'load rules', run: { kind: 'nft', table: 'inet t', commands: [add(tableObj())] } },
    ];
    await expect(renderPlan(plan)).toMatchFileSnapshot('../../golden/plan-render-sample.txt');
    expect(renderPlan([])).toBe('');
  });
});

describe('resourcesOf: what each op touches, as typed keys', () => {
  it('ip: names after dev/name/master, addresses of addr add/del, groups; alias text is never a name', () => {
    expect(
      resourcesOf({
        kind: 'ip',
        args: [
          'link',
          'add',
          'name',
          'mnh1',
          'mtu',
          '1500',
          'group',
          '28014',
          'master',
          'mn-a',
          'up',
          'type',
          'veth',
          'peer',
          'name',
          'mnc1',
        ],
      }),
    ).toEqual(['link:mnh1', 'group:28014', 'link:mn-a', 'link:mnc1']);
    expect(resourcesOf({ kind: 'ip', args: ['addr', 'add', 'fd00::1/64', 'dev', 'mn-a', 'nodad'] })).toEqual(['link:mn-a', 'addr:fd00::1']);
    expect(resourcesOf({ kind: 'ip', args: ['link', 'set', 'dev', 'mnh1', 'alias', 'mynet net:dev ep:name'] })).toEqual(['link:mnh1']);
    expect(resourcesOf({ kind: 'ip', args: ['link', 'del', 'mnh2'], absentOk: true })).toEqual(['link:mnh2']);
  });

  it('link ops, conntrack, sysctl, the hook', () => {
    expect(resourcesOf({ kind: 'link-del', name: 'mn-a' })).toEqual(['link:mn-a']);
    expect(resourcesOf({ kind: 'link-retire', name: 'mnh1' })).toEqual(['link:mnh1']);
    expect(resourcesOf({ kind: 'link-reap', name: 'mnh1' })).toEqual(['link:mnh1']);
    expect(resourcesOf({ kind: 'conntrack-flush', address: '10.0.0.1' })).toEqual(['addr:10.0.0.1']);
    expect(resourcesOf({ kind: 'conntrack-flush-ports', udp: [5353, 5354], sctp: [9] })).toEqual([
      'port:udp/5353',
      'port:udp/5354',
      'port:sctp/9',
    ]);
    const held = { proto: 'tcp', address: '0.0.0.0', port: 8080, hostIp: '' } as const;
    expect(resourcesOf({ kind: 'port-hold', sockets: [held] })).toEqual(['port:tcp/8080']);
    expect(resourcesOf({ kind: 'port-release', sockets: [held] })).toEqual(['port:tcp/8080']);
    expect(resourcesOf({ kind: 'sysctl', key: 'net/ipv4/conf/mn-a.b/route_localnet', value: '1' })).toEqual([
      'sysctl:net/ipv4/conf/mn-a.b/route_localnet',
      'link:mn-a.b',
    ]);
    expect(resourcesOf({ kind: 'sysctl', key: 'net/ipv4/ip_forward', value: '1' })).toEqual(['sysctl:net/ipv4/ip_forward']);
    expect(resourcesOf({ kind: 'forward-hook', action: 'ensure' })).toEqual(['hook']);
  });

  it('nft: read from the typed objects: quoted interface names, bare addresses (not subnets), published ports', () => {
    const r = resourcesOf(
      nftOp([el('pub4any', 'tcp . 8080', '10.1.0.2 . 80'), el('egress', '"mn-a"', 'jump egress-a'), el('masq4', '10.1.0.0/24')]),
    );
    expect(r.sort()).toEqual(['addr:10.1.0.2', 'link:mn-a', 'port:tcp/8080']);
    // A rule names interfaces in quotes; a chain names nothing.
    const rule = { text: 'oifname { "mn-b", "br-*" } drop', id: 'x' };
    expect(resourcesOf(nftOp([add(chainObj('egress-a')), add(ruleObj('egress-a', rule))])).sort()).toEqual(['link:br-*', 'link:mn-b']);
  });

  it('keys of different kinds never meet: an address is not a link of the same text, 10.0.0.1 is not 10.0.0.12', () => {
    const a = planResources([{ what: 'x', run: { kind: 'conntrack-flush', address: '10.0.0.1' } }]);
    const b = planResources([
      { what: 'y', run: nftOp([el('pub4any', 'tcp . 1', '10.0.0.12 . 1')]) },
      { what: 'z', run: { kind: 'link-del', name: '10.0.0.1' } },
    ]);
    expect([...a].filter((k) => b.has(k))).toEqual([]);
  });
});
