/**
 * The nft model (src/plan/nft-model.ts) against the real nft 1.0.6, in throwaway namespaces:
 * what the create script makes is what the doctor expects (no difference), the teardown leaves
 * nothing of that network, and the JSON fixture the unit tier parses is what nft prints for the
 * fixture state. `MNT_WRITE_FIXTURE=1` rewrites test/fixtures/kernel/nft-table.json,
 * iptables-save.txt and iptables-save-raw.txt instead of comparing with them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { nftDifferences } from '../../src/doctor/nft.js';
import { type NetworkRecord, type Snapshot, State } from '../../src/driver/state.js';
import { ensureForwardHook } from '../../src/host/forward-hook.js';
import { type NftTable, parseNftTable } from '../../src/host/nft-json.js';
import { nftNetwork } from '../../src/plan/nft-model.js';
import { baseCommands, networkCommands, networkTeardownCommands } from '../../src/plan/nft-render.js';
import { type PortElement, TABLE, portElementCommands } from '../../src/plan/nft.js';
import { nftScript } from '../../src/plan/nft-text.js';
import type { NftNetwork } from '../../src/plan/nft-model.js';
import type { NftCommand } from '../../src/plan/nft-change.js';
import { guardCommands, guardMemberCommands, guardTeardownCommands } from '../../src/plan/vxlan-firewall.js';
import { FakeNft } from '../helpers/fake-nft.js';
import { portElements } from '../../src/plan/ports.js';
import { parseNetworkOptions } from '../../src/protocol/options.js';
import { type TestNetns, createNetns, destroyCreated, dockerId, silentLog as silent } from '../helpers/netns.js';

afterEach(destroyCreated);
afterAll(destroyCreated);

const FIXTURE = new URL('../fixtures/kernel/nft-table.json', import.meta.url);
const SAVE_FIXTURE = new URL('../fixtures/kernel/iptables-save.txt', import.meta.url);
const RAW_FIXTURE = new URL('../fixtures/kernel/iptables-save-raw.txt', import.meta.url);

const apply = (ns: TestNetns, script: string): Promise<string> => ns.exec.command(['nft', '-f', '-'], silent, script);
// The changes as the executor gives them to nft (plan/nft-text.ts, the one renderer).
const baseScript = (): string => nftScript(TABLE, baseCommands());
const networkScript = (n: NftNetwork): string => nftScript(TABLE, networkCommands(n));
const networkTeardownScript = (n: NftNetwork): string => nftScript(TABLE, networkTeardownCommands(n));
const portElementsScript = (op: 'add' | 'delete', els: readonly PortElement[]): string => nftScript(TABLE, portElementCommands(op, els));
const table = async (ns: TestNetns): Promise<NftTable> => parseNftTable(await ns.run(['nft', '-j', 'list', 'table', 'inet', 'mynet']));

/** A table with its elements sorted: nft lists a hash set in its own order. */
const comparable = (t: NftTable): unknown => ({
  chains: [...t.chains].sort(),
  hooks: Object.fromEntries([...t.hooks].sort()),
  rules: Object.fromEntries([...t.rules].sort()),
  sets: Object.fromEntries([...t.sets].sort()),
  elements: Object.fromEntries([...t.elements].map(([s, els]): [string, string[]] => [s, [...els].sort()]).sort()),
});

function network(generic: Record<string, string>, o: { internal?: boolean; v6?: boolean } = {}): NetworkRecord {
  const id = dockerId();
  const n = Number.parseInt(id.slice(0, 2), 16);
  return {
    id,
    bridge: `mn-${id.slice(0, 12)}`,
    options: parseNetworkOptions({ 'com.docker.network.generic': generic, ...(o.internal ? { 'com.docker.network.internal': true } : {}) }),
    ipv4: [{ pool: `10.${100 + (n % 100)}.${n}.0/24`, gateway: `10.${100 + (n % 100)}.${n}.1/24` }],
    ipv6: o.v6 === false ? [] : [{ pool: `fd00:${n.toString(16)}:1::/64`, gateway: `fd00:${n.toString(16)}:1::1/64` }],
    createdAt: '2026-12-02T00:00:00.000Z',
  };
}

const stateOf = (nets: readonly NetworkRecord[]): State => {
  const s = new State();
  for (const n of nets) s.networks.set(n.id, n);
  return s;
};

describe('the model against real nft', () => {
  it('the fixture state, rendered and applied, prints what test/fixtures/kernel/nft-table.json holds', async () => {
    const ns = await createNetns();
    const state = State.fromSnapshot(
      JSON.parse(readFileSync(new URL('../fixtures/kernel/state.json', import.meta.url), 'utf8')) as Snapshot,
    );
    const ports = [...state.endpoints.values()].flatMap((e) => portElements(e, e.ports));
    await apply(
      ns,
      [baseScript(), ...[...state.networks.values()].map((n) => networkScript(nftNetwork(n))), portElementsScript('add', ports)].join('\n'),
    );
    const json = await ns.run(['nft', '-j', 'list', 'table', 'inet', 'mynet']);
    if (process.env.MNT_WRITE_FIXTURE === '1') writeFileSync(FIXTURE, `${JSON.stringify(JSON.parse(json), null, 1)}\n`);
    expect(comparable(parseNftTable(json))).toEqual(comparable(parseNftTable(readFileSync(FIXTURE, 'utf8'))));
    expect(nftDifferences(state, parseNftTable(json))).toEqual([]);
    // The FORWARD hook of the same run, as iptables-save prints it (kernel-snapshot reads it).
    await ensureForwardHook(ns.exec, silent);
    const save = await ns.run(['iptables-save', '-t', 'filter']);
    const body = (t: string): string =>
      t
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('\n');
    if (process.env.MNT_WRITE_FIXTURE === '1') writeFileSync(SAVE_FIXTURE, save);
    expect(body(save)).toBe(body(readFileSync(SAVE_FIXTURE, 'utf8')));
    const raw = await ns.run(['iptables-save', '-t', 'raw']);
    if (process.env.MNT_WRITE_FIXTURE === '1') writeFileSync(RAW_FIXTURE, raw);
    expect(body(raw)).toBe(body(readFileSync(RAW_FIXTURE, 'utf8')));
  });

  it.each<{ name: string; generic: Record<string, string>; internal?: boolean }>([
    { name: 'defaults, dual stack', generic: {} },
    { name: 'v4 routed, v6 nat', generic: { 'com.docker.network.bridge.gateway_mode_ipv4': 'routed' } },
    {
      name: 'v4 nat-unprotected, v6 routed, no ICC, not isolated',
      generic: {
        'com.docker.network.bridge.gateway_mode_ipv4': 'nat-unprotected',
        'com.docker.network.bridge.gateway_mode_ipv6': 'routed',
        'com.docker.network.bridge.enable_icc': 'false',
        'mynet.isolate': 'false',
      },
    },
    {
      name: 'SNAT to host addresses of both families',
      generic: { 'com.docker.network.host_ipv4': '203.0.113.7', 'com.docker.network.host_ipv6': 'fd00:ff::7' },
    },
    { name: 'no masquerade', generic: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' } },
    { name: 'internal', generic: {}, internal: true },
  ])('$name: create → the doctor finds nothing → teardown leaves only the base', async ({ generic, internal }) => {
    const ns = await createNetns();
    await apply(ns, baseScript());
    const empty = comparable(await table(ns));
    // A neighbour network stays throughout: the teardown must leave it whole.
    const other = network({});
    const n = network(generic, { internal: internal ?? false });
    await apply(ns, `${baseScript()}\n${networkScript(nftNetwork(other))}`);
    const withOther = comparable(await table(ns));
    await apply(ns, `${baseScript()}\n${networkScript(nftNetwork(n))}`);
    expect(nftDifferences(stateOf([other, n]), await table(ns))).toEqual([]);
    // Applying again changes nothing (every script is idempotent).
    await apply(ns, `${baseScript()}\n${networkScript(nftNetwork(n))}`);
    expect(nftDifferences(stateOf([other, n]), await table(ns))).toEqual([]);

    await apply(ns, networkTeardownScript(nftNetwork(n)));
    expect(comparable(await table(ns))).toEqual(withOther);
    expect(nftDifferences(stateOf([other]), await table(ns))).toEqual([]);
    // A second teardown of what is gone succeeds and changes nothing.
    await apply(ns, networkTeardownScript(nftNetwork(n)));
    await apply(ns, networkTeardownScript(nftNetwork(other)));
    expect(comparable(await table(ns))).toEqual(empty);
  });

  it("a network's chains that no record knows are orphans, and their repair removes them (and the map elements jumping to them) on the real nft", async () => {
    const ns = await createNetns();
    const kept = network({});
    const lost = network({});
    await apply(ns, `${baseScript()}\n${networkScript(nftNetwork(kept))}\n${networkScript(nftNetwork(lost))}`);
    const withBoth = await table(ns);
    const orphans = nftDifferences(stateOf([kept]), withBoth);
    expect(orphans.map((d) => `${d.kind} ${d.object}`)).toEqual([
      `orphan nft chain egress-${lost.id.slice(0, 12)}`,
      `orphan nft chain ingress-${lost.id.slice(0, 12)}`,
    ]);
    // Each repair on its own, as `mynet doctor --fix` runs them.
    for (const d of orphans)
      for (const step of d.fix) if (step.run.kind === 'nft') await apply(ns, nftScript(step.run.table, step.run.commands));
    const after = await table(ns);
    expect([...after.chains].filter((c) => c.includes(lost.id.slice(0, 12)))).toEqual([]);
    expect(
      [...(after.elements.get('egress') ?? []), ...(after.elements.get('ingress') ?? [])].filter((e) => e.includes(lost.id.slice(0, 12))),
    ).toEqual([]);
    expect(nftDifferences(stateOf([kept]), after)).toEqual([]);
  });

  it('a table written by the previous mynet (forward chain at priority filter) is brought to the new shape by the base script', async () => {
    const ns = await createNetns();
    await apply(
      ns,
      [
        'add table inet mynet',
        'add chain inet mynet forward { type filter hook forward priority filter; policy accept; }',
        'add rule inet mynet forward ct state established,related accept',
      ].join('\n'),
    );
    const n = network({});
    const before = await table(ns);
    expect(nftDifferences(stateOf([n]), before).map((d) => `${d.kind} ${d.object}`)).toContain('drift nft chain forward');
    await apply(ns, `${baseScript()}\n${networkScript(nftNetwork(n))}`);
    const after = await table(ns);
    expect(after.chains.has('forward')).toBe(false);
    expect(nftDifferences(stateOf([n]), after)).toEqual([]);
  });
});

describe('the fake nft of the unit tier agrees with nft', () => {
  it('a create / guard / member change / teardown sequence leaves the same table in both, step by step', async () => {
    const ns = await createNetns();
    const fake = new FakeNft();
    const a = nftNetwork(network({}));
    const b = nftNetwork(network({ 'com.docker.network.bridge.enable_icc': 'false' }, { v6: false }));
    const g = { networkId: a.id, vni: 5141, peers: ['198.18.141.2'] };
    const steps: NftCommand[][] = [
      [...baseCommands(), ...networkCommands(a)],
      [...baseCommands(), ...networkCommands(b)],
      guardCommands(g),
      guardMemberCommands(a.id, ['198.18.141.3'], ['198.18.141.2']),
      networkTeardownCommands(b),
      guardTeardownCommands(a.id),
    ];
    for (const c of steps) {
      await apply(ns, nftScript(TABLE, c));
      fake.apply(TABLE, c);
      expect(comparable(fake.dump(TABLE) as NftTable)).toEqual(comparable(await table(ns)));
    }
  });
});
