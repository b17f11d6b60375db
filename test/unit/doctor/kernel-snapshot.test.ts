/**
 * The snapshot's parsers on what `ip -j addr show group 28014` and `nft list table inet mynet`
 * printed in a real run (test/fixtures/kernel), and what kernelSnapshot asks the host: only links
 * in our group, only our table, and a missing table is "no table", not a failure.
 */
import { describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import { HostCommandError } from '../../../src/errors.js';
import type { ExecaExecutor } from '../../../src/host/execa-executor.js';
import { kernelSnapshot, parseLinks, parseNftTable } from '../../../src/host/kernel-snapshot.js';
import { silentLog } from '../support.js';
import { BR_DUAL, BR_INTERNAL, BR_SNAT, VETH_E1, VETH_E2, VETH_E3, VETH_E4, fixtureText } from './fixture.js';

describe('parseLinks (ip -j addr show group 28014)', () => {
  const links = parseLinks(fixtureText('ip-addr-group.json'));

  it('reads every link of the group, and skips the {} iproute2 prints for links outside it', () => {
    // The real output starts with {} (lo, which is not in the group).
    expect((JSON.parse(fixtureText('ip-addr-group.json')) as object[])[0]).toEqual({});
    expect([...links.keys()].sort()).toEqual([BR_INTERNAL, BR_DUAL, BR_SNAT, VETH_E3, VETH_E4, VETH_E1, VETH_E2].sort());
  });

  it('a bridge: MTU, up, its global addresses (link-local ones left out), no master', () => {
    expect(links.get(BR_DUAL)).toEqual({ name: BR_DUAL, mtu: 1500, up: true, addrs: ['10.201.0.1/24', 'fd00:201::1/64'] });
    expect(links.get(BR_SNAT)).toEqual({ name: BR_SNAT, mtu: 1400, up: true, addrs: ['10.201.1.1/24'] });
  });

  it('a host veth: its master', () => {
    expect(links.get(VETH_E1)).toEqual({ name: VETH_E1, master: BR_DUAL, mtu: 1500, up: true, addrs: [] });
    expect(links.get(VETH_E3)?.master).toBe(BR_SNAT);
  });

  it('a link that is down, and an empty answer', () => {
    const down = JSON.stringify([{ ifname: 'mn-x', flags: ['BROADCAST', 'MULTICAST'], mtu: 9000, group: '28014' }]);
    expect(parseLinks(down).get('mn-x')).toEqual({ name: 'mn-x', mtu: 9000, up: false, addrs: [] });
    // NO-CARRIER (a bridge with no port) is still administratively up.
    const nocarrier = JSON.stringify([{ ifname: 'mn-y', flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'], mtu: 1500 }]);
    expect(parseLinks(nocarrier).get('mn-y')?.up).toBe(true);
    expect(parseLinks('').size).toBe(0);
    expect(parseLinks('[{}]').size).toBe(0);
  });
});

describe('parseNftTable (nft list table inet mynet)', () => {
  const t = parseNftTable(fixtureText('nft-table.txt'));

  it('reads every chain, base and per network', () => {
    expect([...t.chains].sort()).toEqual([
      'egress-07ce26eaa35e', 'egress-a16ea39fe89d', 'egress-ae428ef4fcd8', 'forward',
      'ingress-07ce26eaa35e', 'ingress-a16ea39fe89d', 'ingress-ae428ef4fcd8', 'localnet', 'output', 'postrouting', 'prerouting',
    ]);
  });

  it('reads elements as nft prints them, joined across the lines nft wraps them on', () => {
    expect(t.elements.get('pub4')).toEqual(['127.0.0.1 . tcp . 8081 : 10.201.0.3 . 80']);
    expect(t.elements.get('pub4any')).toEqual(['tcp . 8080 : 10.201.0.2 . 80', 'udp . 5353 : 10.201.0.2 . 53', 'tcp . 8443 : 10.201.1.2 . 443']);
    expect(t.elements.get('pub6any')).toEqual(['tcp . 8080 : fd00:201::10 . 80', 'udp . 5353 : fd00:201::10 . 53']);
    expect(t.elements.get('egress')).toEqual([`"${BR_SNAT}" : jump egress-ae428ef4fcd8`, `"${BR_DUAL}" : jump egress-a16ea39fe89d`, `"${BR_INTERNAL}" : jump egress-07ce26eaa35e`]);
    expect(t.elements.get('subnets4')).toEqual(['10.201.0.0/24', '10.201.1.0/24', '10.201.2.0/24']);
    expect(t.elements.get('masq6')).toEqual(['fd00:201::/64']);
    expect(t.elements.get('snat4')).toEqual(['10.201.1.0/24 : 198.51.100.7']);
  });

  it('lists empty maps and sets as empty, and does not read the anonymous sets in rules', () => {
    expect(t.elements.get('pub6')).toEqual([]);
    expect(t.elements.get('snat6')).toEqual([]);
    expect([...t.elements.keys()].sort()).toEqual(['egress', 'ingress', 'masq4', 'masq6', 'pub4', 'pub4any', 'pub6', 'pub6any', 'snat4', 'snat6', 'subnets4', 'subnets6']);
    expect([...t.elements.values()].flat().some((e) => e.includes('docker0'))).toBe(false);
  });

  it('an empty table', () => {
    const empty = parseNftTable('table inet mynet {\n\tcomment "owned by mynet; do not edit"\n}\n');
    expect(empty.chains.size).toBe(0);
    expect(empty.elements.size).toBe(0);
  });
});

/** A stand-in for the executor's command(): canned answers by program, every argv recorded. */
function fakeExec(answers: Record<string, string | Error>): { exec: ExecaExecutor; argv: string[][] } {
  const argv: string[][] = [];
  const exec = {
    command(a: readonly string[], _log: Logger): Promise<string> {
      argv.push([...a]);
      const r = answers[a[0] as string];
      if (r === undefined) return Promise.reject(new Error(`unexpected command ${a.join(' ')}`));
      return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    },
  };
  return { exec: exec as unknown as ExecaExecutor, argv };
}

describe('kernelSnapshot', () => {
  it('asks for our group\'s links, our table and the filter table, and nothing else', async () => {
    const { exec, argv } = fakeExec({ ip: fixtureText('ip-addr-group.json'), nft: fixtureText('nft-table.txt'), 'iptables-save': fixtureText('iptables-save.txt') });
    const k = await kernelSnapshot(exec, silentLog);
    expect(argv).toEqual([
      ['ip', '-j', 'addr', 'show', 'group', '28014'],
      ['nft', 'list', 'table', 'inet', 'mynet'],
      ['iptables-save', '-t', 'filter'],
    ]);
    expect(k.links.size).toBe(7);
    expect(k.nft?.chains.has('forward')).toBe(true);
    expect(k.hook).toMatchObject({ chain: true, rules: true, jump: true });
  });

  it('a table that does not exist is reported as none', async () => {
    const gone = new HostCommandError(['nft', 'list', 'table', 'inet', 'mynet'], 1, 'Error: No such file or directory\nlist table inet mynet\n                ^^^^^');
    const { exec } = fakeExec({ ip: '[{}]', nft: gone, 'iptables-save': '*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n' });
    const k = await kernelSnapshot(exec, silentLog);
    expect(k.nft).toBeUndefined();
    expect(k.links.size).toBe(0);
    expect(k.hook).toMatchObject({ chain: false, jump: false });
  });

  it('any other failure of nft fails the snapshot (the doctor must not read "gone" into "cannot tell")', async () => {
    const denied = new HostCommandError(['nft', 'list', 'table', 'inet', 'mynet'], 1, 'Error: Operation not permitted');
    const { exec } = fakeExec({ ip: '[]', nft: denied, 'iptables-save': '' });
    await expect(kernelSnapshot(exec, silentLog)).rejects.toBe(denied);
  });
});
