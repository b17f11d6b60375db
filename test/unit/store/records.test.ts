/**
 * Issue 14 item 9: values read back from the state files reach nft and `ip -batch` text. A
 * record a request could not have made stops the load (STATE_CORRUPT naming the file, the
 * record and the field; the file kept byte for byte), one test per kind of value, in the
 * snapshot and in the journal. And a property: whatever the checks accept, the host text the
 * plans render from it carries none of the characters that change an ip or nft line.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PluginError } from '../../../src/errors.js';
import { type EndpointRecord, type NetworkRecord, type PoolRecord, State } from '../../../src/driver/state.js';
import { createNetwork, deleteNetwork, networkSteps } from '../../../src/driver/network.js';
import { createEndpoint, deleteEndpoint, endpointSteps, leave } from '../../../src/driver/endpoint.js';
import { networkTeardownCommands, nftOp, portElementCommands } from '../../../src/plan/nft.js';
import { nftScript } from '../../../src/plan/nft-text.js';
import { portElements } from '../../../src/plan/ports.js';
import type { HostOp, HostPlan } from '../../../src/plan/step.js';
import { nftNetwork } from '../../../src/plan/nft-model.js';
import { FileStore } from '../../../src/store/file-store.js';
import { checkEndpointRecord, checkNetworkRecord } from '../../../src/store/records.js';
import { hexId, prng } from '../support.js';
import { stateDir } from './state-dir.js';

const sd = stateDir();
const store = (): FileStore => sd.store();

const NET = hexId(1);
const EP = hexId(2);
const goodNetwork = (): NetworkRecord => {
  const d = createNetwork(
    new State(),
    {
      NetworkID: NET,
      Options: {
        'com.docker.network.enable_ipv6': true,
        'com.docker.network.generic': {
          'com.docker.network.bridge.name': 'mnt-br0',
          'com.docker.network.host_ipv4': '203.0.113.7',
          'com.docker.network.host_ipv6': 'fd00::7',
        },
      },
      IPv4Data: [{ Pool: '10.9.0.0/24', Gateway: '10.9.0.1/24' }],
      IPv6Data: [{ Pool: 'fd00:9::/64', Gateway: 'fd00:9::1/64' }],
    },
    'absent',
    '2026-12-02T00:00:00.000Z',
  );
  return (d.changes[0] as { network: NetworkRecord }).network;
};
const goodEndpoint = (): EndpointRecord => ({
  ...(
    createEndpoint(stateWith(goodNetwork()), {
      NetworkID: NET,
      EndpointID: EP,
      Interface: { Address: '10.9.0.2/24', AddressIPv6: 'fd00:9::2/64' },
    }).changes[0] as { endpoint: EndpointRecord }
  ).endpoint,
  sandboxKey: '/var/run/docker/netns/abc',
  ports: [
    { proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 8080 },
    { proto: 'udp', containerPort: 53, hostIp: '203.0.113.7', hostPort: 5353 },
  ],
});
const goodPool = (): PoolRecord & { taken: [string, string][]; cursor: string } => ({
  id: 'mynet-local/10.9.0.0/24',
  space: 'mynet-local',
  pool: '10.9.0.0/24',
  family: 4,
  options: {},
  taken: [['10.9.0.1', '10.9.0.2']],
  cursor: '10.9.0.2',
});
function stateWith(n: NetworkRecord, e?: EndpointRecord): State {
  const s = new State();
  s.apply([{ op: 'network.put', network: n }, ...(e ? [{ op: 'endpoint.put', endpoint: e } as const] : [])]);
  return s;
}

type Json = Record<string, unknown>;
/** Deep copy with one field (a dotted path, [i] for arrays) set. */
function withField<T>(rec: T, path: string, value: unknown): T {
  const copy = JSON.parse(JSON.stringify(rec)) as Json;
  const keys = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  let o: Json = copy;
  for (const k of keys.slice(0, -1)) o = o[k] as Json;
  o[keys[keys.length - 1] as string] = value;
  return copy as T;
}

async function loadError(): Promise<PluginError> {
  try {
    await store().load();
  } catch (err) {
    if (err instanceof PluginError) return err;
    throw err;
  }
  throw new Error('expected the load to fail');
}

const snapshot = (over: { network?: unknown; endpoint?: unknown; pool?: unknown }): string =>
  JSON.stringify({
    version: 1,
    seq: 3,
    networks: [over.network ?? goodNetwork()],
    endpoints: [over.endpoint ?? goodEndpoint()],
    pools: [over.pool ?? goodPool()],
  });

describe('a good state loads', () => {
  it('the base records pass the checks and load', async () => {
    await store().load();
    await writeFile(join(sd.dir(), 'state.json'), snapshot({}));
    const s = await store().load();
    expect(s.networks.get(NET)?.bridge).toBe('mnt-br0');
    expect(s.endpoints.get(EP)?.ports).toHaveLength(2);
  });
});

// One case per kind of value: [record, field path, bad value, what the message must say].
const BAD: ['network' | 'endpoint' | 'pool', string, unknown, RegExp][] = [
  ['network', 'id', `${hexId(1, 20)}#x`, /id: must be a hex id/],
  ['network', 'bridge', 'x#y', /bridge: "x#y" contains "#"/],
  ['network', 'bridge', 'x"y', /bridge: .* contains "\\""/],
  ['network', 'bridge', 'x\\y', /bridge: .* contains "\\\\"/],
  ['network', 'bridge', 'br\nlink del eth0', /bridge: .* contains "\\n"/],
  ['network', 'bridge', 'br\u0000', /bridge: .* contains "\\u0000"/],
  ['network', 'bridge', '-help', /bridge: "-help" is not a valid interface name/],
  ['network', 'bridge', 'a-name-longer-than-15', /bridge: .* is not a valid interface name/],
  ['network', 'options.bridgeName', 'x#y', /options\.bridgeName: "x#y" contains "#"/],
  ['network', 'options.ifacePrefix', 'eth#', /options\.ifacePrefix: "eth#" contains "#"/],
  ['network', 'options.ifacePrefix', 'ETH', /options\.ifacePrefix: "ETH" must be 1-10 lowercase/],
  ['network', 'options.hostIpv4', '203.0.113.7#', /options\.hostIpv4: .* contains "#"/],
  ['network', 'options.hostIpv4', 'fd00::7', /options\.hostIpv4: "fd00::7" is not an IPv4 address/],
  ['network', 'options.hostIpv6', 'fd00::7;flush ruleset', /options\.hostIpv6: .* contains ";"/],
  ['network', 'options.hostBindingIpv4', '0.0.0.0 }', /options\.hostBindingIpv4: .* contains " "/],
  ['network', 'options.mtu', 1400.5, /options\.mtu: 1400.5 is not a whole number/],
  ['network', 'options.mtu', '1400', /options\.mtu: "1400" is not a number/],
  ['network', 'options.mtu', 1000, /options\.mtu: 1000 is below 1280, the IPv6 minimum/],
  ['network', 'options.icc', 'false', /options\.icc: "false" is not true or false/],
  ['network', 'options.gatewayModeIpv4', 'nat; drop', /options\.gatewayModeIpv4: .* is not supported/],
  ['network', 'ipv4[0].pool', '10.9.0.0/24 }', /ipv4\[0\]\.pool: .* contains " "/],
  ['network', 'ipv4[0].pool', 'fd00::/64', /ipv4\[0\]\.pool: fd00::\/64 is not IPv4/],
  ['network', 'ipv4[0].gateway', '10.8.0.1/24', /ipv4\[0\]\.gateway: 10\.8\.0\.1\/24 is not in 10\.9\.0\.0\/24/],
  ['network', 'ipv6[0].gateway', 'fd00:9::1/64#', /ipv6\[0\]\.gateway: .* contains "#"/],
  ['network', 'createdAt', 7, /createdAt: must be a string/],
  ['endpoint', 'id', 'nothex', /id: must be a hex id/],
  ['endpoint', 'networkId', `${NET}\\`, /networkId: must be a hex id/],
  ['endpoint', 'hostIf', 'mnh#1', /hostIf: "mnh#1" contains "#"/],
  ['endpoint', 'containerIf', "mnc'1", /containerIf: .* contains "'"/],
  ['endpoint', 'mac', '02:42:0a:09:00:02#', /mac: .* contains "#"/],
  ['endpoint', 'mac', '03:42:0a:09:00:02', /mac: "03:42:0a:09:00:02" is a multicast address/],
  ['endpoint', 'mac', '02:42:0A:09:00:02', /mac: "02:42:0A:09:00:02" must be lowercase/],
  ['endpoint', 'address', '10.9.0.2/24"', /address: .* contains "\\""/],
  ['endpoint', 'addressV6', '10.9.0.2/24', /addressV6: 10\.9\.0\.2\/24 is not IPv6/],
  ['endpoint', 'sandboxKey', 'x'.repeat(5000), /sandboxKey: must be a string of at most 4096/],
  ['endpoint', 'ports[1].hostIp', '203.0.113.7 . tcp', /ports\[1\]\.hostIp: .* contains " "/],
  ['endpoint', 'ports[0].proto', 'icmp', /ports\[0\]\.proto: "icmp" is not one of tcp, udp, sctp/],
  ['endpoint', 'ports[0].hostPort', 70000, /ports\[0\]\.hostPort: 70000 is not a port number/],
  ['endpoint', 'ports[0].containerPort', '80', /ports\[0\]\.containerPort: "80" is not a port number/],
  ['pool', 'pool', '10.9.0.0/24#', /pool: .* contains "#"/],
  ['pool', 'family', 5, /family: 5 is not 4 or 6/],
  ['pool', 'subPool', '10.8.0.0/25', /subPool: 10\.8\.0\.0\/25 is not inside 10\.9\.0\.0\/24/],
  ['pool', 'options', { k: 1 }, /options\.k: must be a string/],
  ['pool', 'taken[0][1]', 'fd00::1', /taken\[0\]\[1\]: "fd00::1" is not an IPv4 address/],
  ['pool', 'cursor', '10.9.0.2\n', /cursor: .* contains "\\n"/],
];

describe('a bad record in the snapshot stops the load, naming the file, the record and the field', () => {
  for (const [kind, path, value, msg] of BAD) {
    it(`${kind} ${path} = ${JSON.stringify(value).slice(0, 30)}`, async () => {
      await store().load();
      const rec = kind === 'network' ? goodNetwork() : kind === 'endpoint' ? goodEndpoint() : goodPool();
      const file = join(sd.dir(), 'state.json');
      const text = snapshot({ [kind]: withField(rec, path, value) });
      await writeFile(file, text);
      const e = await loadError();
      expect(e.code).toBe('STATE_CORRUPT');
      expect(e.message).toContain(file);
      expect(e.message).toContain(`/${kind}s/0 (id `);
      expect(e.message).toMatch(msg);
      expect(e.message).toMatch(/the file was kept as it is$/);
      expect(await readFile(file, 'utf8')).toBe(text);
    });
  }
});

describe('a bad change in the journal stops the load, naming the file, the line and the field', () => {
  const cases: [string, unknown, RegExp][] = [
    [
      'network.put',
      { op: 'network.put', network: withField(goodNetwork(), 'bridge', 'x#y') },
      /change 0 \(network\.put\): network\.bridge: "x#y" contains "#"/,
    ],
    [
      'endpoint.put',
      { op: 'endpoint.put', endpoint: withField(goodEndpoint(), 'hostIf', 'a\\b') },
      /change 0 \(endpoint\.put\): endpoint\.hostIf: .* contains/,
    ],
    [
      'pool.put',
      { op: 'pool.put', pool: withField(goodPool(), 'pool', 'x') },
      /change 0 \(pool\.put\): pool\.pool: "x" has no prefix length/,
    ],
    ['network.delete', { op: 'network.delete', id: 'x#y' }, /change 0 \(network\.delete\): id: must be a hex id/],
    ['address.take', { op: 'address.take', pool: 'p', address: '10.9.0.3#' }, /change 0 \(address\.take\): address: .* contains "#"/],
    ['an unknown op', { op: 'network.rename', id: NET }, /change 0 \(network\.rename\): op: "network\.rename" is not a known change/],
  ];
  for (const [name, change, msg] of cases) {
    it(name, async () => {
      await store().load();
      const file = join(sd.dir(), 'journal.jsonl');
      const text = `${JSON.stringify({ seq: 1, changes: [{ op: 'network.put', network: goodNetwork() }] })}\n${JSON.stringify({ seq: 2, changes: [change] })}\n`;
      await writeFile(file, text);
      const e = await loadError();
      expect(e.code).toBe('STATE_CORRUPT');
      expect(e.message).toContain(file);
      expect(e.message).toContain('line 2 (entry 2)');
      expect(e.message).toMatch(msg);
      expect(await readFile(file, 'utf8')).toBe(text);
    });
  }
});

/** Every op of the plans a network and its endpoint take, from create to delete. */
function plansOf(n: NetworkRecord, e: EndpointRecord): HostOp[] {
  const st = stateWith(n, e);
  const plans: HostPlan[] = [
    networkSteps(n),
    endpointSteps(n, e),
    [{ what: 'publish', run: nftOp(portElementCommands('add', portElements(e, e.ports))) }],
    leave(st, { NetworkID: n.id, EndpointID: e.id }).plan,
    deleteEndpoint(st, { NetworkID: n.id, EndpointID: e.id }).plan,
    deleteNetwork(st, n.id).plan,
    [{ what: 'teardown', run: nftOp(networkTeardownCommands(nftNetwork(n))) }],
  ];
  return plans.flat().flatMap((s) => [s.run, ...(s.undo ? [s.undo] : [])]);
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f]/;
/** What an ip argument, a link name or a sysctl key may never carry. */
// eslint-disable-next-line no-control-regex
const BAD_WORD = /["'#\\;{}\s\u0000-\u001f\u007f]/;
const ALIAS = /^mynet net:[0-9a-f]{12}( ep:[0-9a-f]{12}| cluster:[a-z0-9-]{1,63})?$/;

function hostTextProblems(ops: readonly HostOp[]): string[] {
  const out: string[] = [];
  for (const op of ops) {
    if (op.kind === 'ip') {
      for (const a of op.args) if (BAD_WORD.test(a) && !ALIAS.test(a)) out.push(`ip arg ${JSON.stringify(a)}`);
    } else if (op.kind === 'nft') {
      for (const line of nftScript(op.table, op.commands).split('\n')) {
        if (/[#\\']/.test(line) || CONTROL.test(line)) out.push(`nft line ${JSON.stringify(line)}`);
        if ((line.match(/"/g) ?? []).length % 2) out.push(`nft line with an odd number of quotes ${JSON.stringify(line)}`);
        // Inside quotes only interface names, our comments, and the Docker bridge wildcard.
        for (const q of line.match(/"[^"]*"/g) ?? [])
          if (!/^"[A-Za-z0-9_.:*-]+"$|^"owned by mynet; do not edit"$|^"net:[0-9a-f]{12} vni:[0-9]{1,8} vxlan from a non-member"$/.test(q))
            out.push(`nft string ${q}`);
      }
    } else if (op.kind === 'sysctl') {
      if (BAD_WORD.test(op.key) || op.key.includes('..') || BAD_WORD.test(op.value)) out.push(`sysctl ${op.key}`);
    } else if ('name' in op) {
      if (BAD_WORD.test(op.name)) out.push(`${op.kind} ${JSON.stringify(op.name)}`);
    } else if (op.kind === 'conntrack-flush') {
      if (BAD_WORD.test(op.address)) out.push(`conntrack ${op.address}`);
    }
  }
  return out;
}

describe('host text rendered from records the checks accept', () => {
  it('golden: the base records render without a character that changes an ip or nft line', () => {
    const ops = plansOf(goodNetwork(), goodEndpoint());
    expect(ops.length).toBeGreaterThan(15);
    expect(hostTextProblems(ops)).toEqual([]);
  });

  it('the check of the property would see each such character (it can fail)', () => {
    const n = { ...goodNetwork(), bridge: 'x#y' };
    // Each finding names the bad value, so a check that flagged something else would not pass.
    expect(hostTextProblems(plansOf(n, goodEndpoint()))).toContainEqual(expect.stringContaining('x#y'));
    expect(hostTextProblems(plansOf({ ...goodNetwork(), bridge: 'a"b' }, goodEndpoint()))).toContainEqual(expect.stringContaining('a\\"b'));
    expect(hostTextProblems(plansOf(goodNetwork(), { ...goodEndpoint(), hostIf: 'a\\b' }))).toContainEqual(
      expect.stringContaining('a\\\\b'),
    );
  });

  it('property: 6 000 mutated records; whatever the checks accept renders clean host text', () => {
    const rnd = prng(20261202);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const HOSTILE = ' "\'#\\;{}@$*\n\t\u0000\u007f,[]()=|&<>%'.split('');
    const PLAIN = 'abcef0123456789_.-:/'.split('');
    const char = (): string => (rnd() < 0.5 ? pick(HOSTILE) : pick(PLAIN));
    const word = (): string => Array.from({ length: 1 + Math.floor(rnd() * 14) }, char).join('');
    const near = (good: string): string => {
      const i = Math.floor(rnd() * (good.length + 1));
      return rnd() < 0.5 ? `${good.slice(0, i)}${char()}${good.slice(i)}` : `${good.slice(0, i)}${char()}${good.slice(i + 1)}`;
    };
    // A cluster network: its stored definition goes into `ip link add ... type vxlan` and nft too.
    const baseNet: NetworkRecord = {
      ...goodNetwork(),
      cluster: {
        name: 'blue',
        subnet: '10.77.0.0/16',
        gateway: '10.77.0.1',
        gatewayMac: '02:aa:bb:cc:dd:ee',
        vni: 5000,
        mtu: 1450,
        local: '198.18.0.1',
      },
    };
    const baseEp = goodEndpoint();
    const netFields = [
      'id',
      'bridge',
      'options.bridgeName',
      'options.ifacePrefix',
      'options.hostIpv4',
      'options.hostIpv6',
      'options.hostBindingIpv4',
      'ipv4[0].pool',
      'ipv4[0].gateway',
      'ipv6[0].pool',
      'ipv6[0].gateway',
      'cluster.name',
      'cluster.local',
      'cluster.gatewayMac',
      'cluster.gateway',
      'cluster.subnet',
      'cluster.vni',
      'cluster.mtu',
    ];
    const epFields = ['id', 'networkId', 'hostIf', 'containerIf', 'mac', 'address', 'addressV6', 'ports[0].hostIp', 'ports[1].hostIp'];
    const get = (o: unknown, path: string): string =>
      String(
        path
          .replace(/\[(\d+)\]/g, '.$1')
          .split('.')
          .reduce((x, k) => (x as Json)[k], o),
      );
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 6_000; i++) {
      let n: NetworkRecord = baseNet;
      let e: EndpointRecord = baseEp;
      for (let m = 0; m < 1 + Math.floor(rnd() * 2); m++) {
        if (rnd() < 0.5) {
          const f = pick(netFields);
          n = withField(n, f, rnd() < 0.7 ? near(get(n, f)) : word());
        } else {
          const f = pick(epFields);
          e = withField(e, f, rnd() < 0.7 ? near(get(e, f)) : word());
        }
      }
      try {
        checkNetworkRecord(n);
        checkEndpointRecord(e);
      } catch (err) {
        expect(err).toBeInstanceOf(PluginError);
        refused++;
        continue;
      }
      accepted++;
      const problems = hostTextProblems(plansOf(n, e));
      expect(problems, JSON.stringify({ n, e }).slice(0, 2000)).toEqual([]);
    }
    // Both sides were exercised: many mutations pass (a dot in a name, another hex digit...).
    expect(accepted).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(3000);
  });
});
