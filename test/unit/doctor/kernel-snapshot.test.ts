/**
 * The snapshot's parsers on what `ip -j addr show group 28014` and `nft -j list table inet mynet`
 * printed in a real run (test/fixtures/kernel), and what kernelSnapshot asks the host: only links
 * in our group, only our table, and a missing table is "no table", not a failure.
 */
import { describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import { HostCommandError } from '../../../src/errors.js';
import type { ExecaExecutor } from '../../../src/host/execa-executor.js';
import { kernelSnapshot, parseLinks, parseNftTable } from '../../../src/host/kernel-snapshot.js';
import { silentLog } from '../support.js';
import type { NetworkRecord } from '../../../src/driver/state.js';
import { BASE_CHAINS, networkObjects, nftNetwork } from '../../../src/plan/nft-model.js';
import { BR_DUAL, BR_INTERNAL, BR_SNAT, INTERNAL, VETH_E1, VETH_E2, VETH_E3, VETH_E4, fixtureState, fixtureText } from './fixture.js';

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

describe('parseNftTable (nft -j list table inet mynet, nftables 1.0.6)', () => {
  const t = parseNftTable(fixtureText('nft-table.json'));

  it('reads every chain, base and per network, and the hooks of the base chains as numbers', () => {
    expect([...t.chains].sort()).toEqual([
      'egress-07ce26eaa35e',
      'egress-a16ea39fe89d',
      'egress-ae428ef4fcd8',
      'firewall',
      'ingress-07ce26eaa35e',
      'ingress-a16ea39fe89d',
      'ingress-ae428ef4fcd8',
      'localnet',
      'output',
      'postrouting',
      'prerouting',
    ]);
    // `priority raw` / `filter - 10` come back as numbers: the model writes numbers too.
    expect(t.hooks.get('localnet')).toEqual({ type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' });
    expect(t.hooks.get('firewall')).toEqual({ type: 'filter', hook: 'forward', prio: -10, policy: 'accept' });
    expect(t.hooks.has('egress-a16ea39fe89d')).toBe(false);
  });

  it("reads each chain's rules by their comment, in order: the fingerprints the model wrote", () => {
    const model = networkObjects(nftNetwork(fixtureState().networks.get(INTERNAL) as NetworkRecord));
    expect(t.rules.get('egress-07ce26eaa35e')).toEqual(model.chains[0]?.rules.map((r) => r.id));
    expect(t.rules.get('firewall')).toEqual(BASE_CHAINS.find((c) => c.name === 'firewall')?.rules.map((r) => r.id));
    expect(t.rules.get('firewall')).toHaveLength(5);
  });

  it('reads set and map declarations as the model writes them (concatenations joined with " . ")', () => {
    expect(t.sets.get('pub4')).toEqual({
      kind: 'map',
      type: 'ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service',
      interval: false,
    });
    expect(t.sets.get('egress')).toEqual({ kind: 'map', type: 'ifname : verdict', interval: false });
    expect(t.sets.get('snat4')).toEqual({ kind: 'map', type: 'ipv4_addr : ipv4_addr', interval: true });
    expect(t.sets.get('masq6')).toEqual({ kind: 'set', type: 'ipv6_addr', interval: true });
  });

  it("reads elements in nft's own text: concatenations, quoted names with jump verdicts, prefixes, interval map data", () => {
    expect(t.elements.get('pub4')).toEqual(['127.0.0.1 . tcp . 8081 : 10.201.0.3 . 80']);
    expect([...(t.elements.get('pub4any') ?? [])].sort()).toEqual([
      'tcp . 8080 : 10.201.0.2 . 80',
      'tcp . 8443 : 10.201.1.2 . 443',
      'udp . 5353 : 10.201.0.2 . 53',
    ]);
    expect([...(t.elements.get('pub6any') ?? [])].sort()).toEqual(['tcp . 8080 : fd00:201::10 . 80', 'udp . 5353 : fd00:201::10 . 53']);
    expect([...(t.elements.get('egress') ?? [])].sort()).toEqual([
      `"${BR_INTERNAL}" : jump egress-07ce26eaa35e`,
      `"${BR_DUAL}" : jump egress-a16ea39fe89d`,
      `"${BR_SNAT}" : jump egress-ae428ef4fcd8`,
    ]);
    expect([...(t.elements.get('subnets4') ?? [])].sort()).toEqual(['10.201.0.0/24', '10.201.1.0/24', '10.201.2.0/24']);
    expect(t.elements.get('masq6')).toEqual(['fd00:201::/64']);
    expect(t.elements.get('snat4')).toEqual(['10.201.1.0/24 : 198.51.100.7']);
  });

  it('lists empty maps and sets as empty, and does not read the anonymous sets in rules', () => {
    expect(t.elements.get('pub6')).toEqual([]);
    expect(t.elements.get('snat6')).toEqual([]);
    expect([...t.elements.keys()].sort()).toEqual([
      'egress',
      'ingress',
      'masq4',
      'masq6',
      'pub4',
      'pub4any',
      'pub6',
      'pub6any',
      'snat4',
      'snat6',
      'subnets4',
      'subnets6',
    ]);
    expect([...t.elements.values()].flat().some((e) => e.includes('docker0'))).toBe(false);
  });

  it('ranges, single addresses, wrapped elements and verdicts other than jump', () => {
    const json = JSON.stringify({
      nftables: [
        {
          set: {
            name: 's',
            type: 'ipv4_addr',
            flags: ['interval'],
            elem: [
              '10.0.0.1',
              { range: ['10.0.0.5', '10.0.0.9'] },
              { elem: { val: { prefix: { addr: '10.1.0.0', len: 16 } }, comment: 'x' } },
            ],
          },
        },
        {
          map: {
            name: 'v',
            type: 'ifname',
            map: 'verdict',
            elem: [
              ['a', { accept: null }],
              ['b', { goto: { target: 'c' } }],
            ],
          },
        },
        { rule: { chain: 'nochain', expr: [] } },
      ],
    });
    const p = parseNftTable(json);
    expect(p.elements.get('s')).toEqual(['10.0.0.1', '10.0.0.5-10.0.0.9', '10.1.0.0/16']);
    expect(p.elements.get('v')).toEqual(['"a" : accept', '"b" : goto c']);
    expect(p.rules.get('nochain')).toEqual(['']);
    expect(() => parseNftTable(JSON.stringify({ nftables: [{ set: { name: 's', type: 'x', elem: [{ weird: 1 }] } }] }))).toThrow(
      /does not know/,
    );
  });

  it("a counter map's data as the model writes it, quoted (nft -j prints the counter's name bare)", () => {
    // Captured from nftables 1.0.6: `map m { type ipv4_addr : counter; elements = { 10.222.9.2 : "c1" } }`.
    const json =
      '{"nftables": [{"counter": {"family": "inet", "name": "c1", "table": "t", "handle": 1, "packets": 0, "bytes": 0}}, {"map": {"family": "inet", "name": "m", "table": "t", "type": "ipv4_addr", "handle": 2, "map": "counter", "elem": [["10.222.9.2", "c1"]]}}]}';
    const p = parseNftTable(json);
    expect(p.sets.get('m')).toEqual({ kind: 'map', type: 'ipv4_addr : counter', interval: false });
    expect(p.elements.get('m')).toEqual(['10.222.9.2 : "c1"']);
  });

  it('an empty table', () => {
    const empty = parseNftTable(
      '{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "mynet", "handle": 1}}]}',
    );
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
      const r = answers[a[0] === 'iptables-save' && a.includes('raw') ? 'iptables-save -t raw' : (a[0] as string)];
      if (r === undefined) return Promise.reject(new Error(`unexpected command ${a.join(' ')}`));
      return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    },
  };
  return { exec: exec as unknown as ExecaExecutor, argv };
}

describe('kernelSnapshot', () => {
  it("asks for our group's links, our table, the filter table and the raw table, and nothing else", async () => {
    const { exec, argv } = fakeExec({
      ip: fixtureText('ip-addr-group.json'),
      nft: fixtureText('nft-table.json'),
      'iptables-save': fixtureText('iptables-save.txt'),
      'iptables-save -t raw': fixtureText('iptables-save-raw.txt'),
    });
    const k = await kernelSnapshot(exec, silentLog);
    expect(argv).toEqual([
      ['ip', '-d', '-j', 'addr', 'show', 'group', '28014'],
      ['nft', '-j', 'list', 'table', 'inet', 'mynet'],
      ['iptables-save', '-t', 'filter'],
      ['iptables-save', '-t', 'raw'],
    ]);
    expect(k.links.size).toBe(7);
    expect(k.nft?.chains.has('firewall')).toBe(true);
    expect(k.hook).toMatchObject({ chain: true, rules: true, jump: true, guard: true });
  });

  it('a table that does not exist is reported as none', async () => {
    const gone = new HostCommandError(
      ['nft', 'list', 'table', 'inet', 'mynet'],
      1,
      'Error: No such file or directory\nlist table inet mynet\n                ^^^^^',
    );
    const { exec } = fakeExec({
      ip: '[{}]',
      nft: gone,
      'iptables-save': '*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n',
      'iptables-save -t raw': '*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n',
    });
    const k = await kernelSnapshot(exec, silentLog);
    expect(k.nft).toBeUndefined();
    expect(k.links.size).toBe(0);
    expect(k.hook).toMatchObject({ chain: false, jump: false, guard: false });
  });

  it('any other failure of nft fails the snapshot (the doctor must not read "gone" into "cannot tell")', async () => {
    const denied = new HostCommandError(['nft', 'list', 'table', 'inet', 'mynet'], 1, 'Error: Operation not permitted');
    const { exec } = fakeExec({ ip: '[]', nft: denied, 'iptables-save': '' });
    await expect(kernelSnapshot(exec, silentLog)).rejects.toBe(denied);
  });
});

describe('kernelSnapshot: the VXLAN devices’ entries', () => {
  const vxlanLink = (ifname: string) => ({
    ifname,
    mtu: 1450,
    flags: ['UP'],
    group: '28014',
    linkinfo: { info_kind: 'vxlan', info_data: { id: 42, local: '198.18.0.1', port: 4789, learning: false, proxy: false } },
    addr_info: [],
  });

  it('one fdb and one neighbour listing for every device, split by device (not two processes per cluster network)', async () => {
    const argv: string[][] = [];
    const answers: Record<string, string> = {
      'ip -d': JSON.stringify([vxlanLink('mnxaaaaaaaaaaaa'), vxlanLink('mnxbbbbbbbbbbbb')]),
      nft: fixtureText('nft-table.json'),
      'iptables-save': fixtureText('iptables-save.txt'),
      'iptables-save -t raw': fixtureText('iptables-save-raw.txt'),
      bridge: JSON.stringify([
        { mac: '02:42:0a:00:00:02', ifname: 'mnxaaaaaaaaaaaa', dst: '198.18.0.2', state: 'permanent' },
        { mac: '00:00:00:00:00:00', ifname: 'mnxaaaaaaaaaaaa', dst: '198.18.0.3', state: 'permanent' },
        { mac: '02:42:0a:00:00:09', ifname: 'mnxbbbbbbbbbbbb', dst: '198.18.0.3', state: 'permanent' },
        { mac: '33:33:00:00:00:01', ifname: 'eth0', state: 'permanent' },
      ]),
      'ip -j': JSON.stringify([
        { dst: '10.0.0.2', dev: 'mnxaaaaaaaaaaaa', lladdr: '02:42:0a:00:00:02' },
        { dst: '10.9.0.9', dev: 'mnxbbbbbbbbbbbb', lladdr: '02:42:0a:00:00:09' },
        { dst: '192.0.2.1', dev: 'eth0', lladdr: '02:00:00:00:00:01' },
      ]),
    };
    const exec = {
      command(a: readonly string[]): Promise<string> {
        argv.push([...a]);
        const key =
          a[0] === 'ip' ? `ip ${a[1]}` : a[0] === 'iptables-save' && a.includes('raw') ? 'iptables-save -t raw' : (a[0] as string);
        const r = answers[key];
        return r === undefined ? Promise.reject(new Error(`unexpected command ${a.join(' ')}`)) : Promise.resolve(r);
      },
    } as unknown as ExecaExecutor;
    const k = await kernelSnapshot(exec, silentLog);
    expect(argv.filter((a) => a[0] === 'bridge' || a.includes('neigh'))).toEqual([
      ['bridge', '-j', 'fdb', 'show'],
      ['ip', '-j', 'neigh', 'show'],
    ]);
    expect(k.entries?.get('mnxaaaaaaaaaaaa')).toEqual({
      fdb: new Map([['02:42:0a:00:00:02', '198.18.0.2']]),
      neigh: new Map([['10.0.0.2', '02:42:0a:00:00:02']]),
      flood: new Set(['198.18.0.3']),
    });
    expect(k.entries?.get('mnxbbbbbbbbbbbb')).toEqual({
      fdb: new Map([['02:42:0a:00:00:09', '198.18.0.3']]),
      neigh: new Map([['10.9.0.9', '02:42:0a:00:00:09']]),
      flood: new Set(),
    });
    expect([...(k.entries?.keys() ?? [])].sort()).toEqual(['mnxaaaaaaaaaaaa', 'mnxbbbbbbbbbbbb']);
  });
});
