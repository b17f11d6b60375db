import { describe, expect, it } from 'vitest';
import { HostPlanError, HostTeardownError } from '../../src/errors.js';
import type { CreateNetworkRequest } from '../../src/driver/network.js';
import { State } from '../../src/driver/state.js';
import type { LinkOwner } from '../../src/decision.js';
import { Background } from '../../src/host/background.js';
import { hookStatus } from '../../src/host/forward-hook.js';
import type { KernelSnapshot } from '../../src/host/kernel-snapshot.js';
import type { MarkedLink } from '../../src/host/probe.js';
import { RecordingExecutor } from '../helpers/recording-executor.js';
import { hexId, silentLog } from './support.js';
import { testPlugin } from '../helpers/test-plugin.js';
import { waitUntil } from '../helpers/wait.js';

/** A kernel holding these links of ours (up, MTU 1500, no addresses), no nft table, no hook. */
const kernelWith = (links: readonly MarkedLink[]): KernelSnapshot => ({
  links: new Map(links.filter((l) => !l.retired).map((l) => [l.name, { name: l.name, mtu: 1500, up: true, addrs: [] }])),
  nft: undefined,
  hook: hookStatus('*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n'),
});
const mark = (name: string, alias?: string): MarkedLink => ({ name, retired: false, ...(alias ? { alias } : {}) });

function setup(opts: { links?: MarkedLink[]; owner?: LinkOwner } = {}) {
  return testPlugin({
    linkOwner: () => Promise.resolve(opts.owner ?? 'absent'),
    ourLinks: () => Promise.resolve(opts.links ?? []),
    snapshot: () => Promise.resolve(kernelWith(opts.links ?? [])),
    now: () => new Date('2024-06-11T10:00:00Z'),
  });
}

const net = (n: number): CreateNetworkRequest => ({
  NetworkID: hexId(n),
  Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
  IPv4Data: [{ AddressSpace: 'x', Pool: `10.${n}.0.0/24`, Gateway: `10.${n}.0.1/24` }],
  IPv6Data: [],
});
const bridgeOf = (n: number): string => `mn-${hexId(n, 12)}`;

describe('Plugin: decide → host → save → apply', () => {
  it('a successful create runs the plan, saves, then applies', async () => {
    const { state, store, exec, plugin } = setup();
    await expect(plugin.createNetwork(net(1), silentLog)).resolves.toEqual({});
    expect(state.networks.get(hexId(1))?.bridge).toBe(bridgeOf(1));
    expect(store.committed).toHaveLength(1);
    expect(exec.lines.some((l) => l.startsWith(`ip link add name ${bridgeOf(1)} `))).toBe(true);
  });

  it('a failed host step is rolled back and nothing is saved or applied', async () => {
    const { state, store, exec, plugin } = setup();
    exec.failWhen = (op) => op.kind === 'ip' && op.args.includes('up'); // "bring up bridge"
    const err = await plugin.createNetwork(net(1), silentLog).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostPlanError);
    expect((err as HostPlanError).message).toMatch(/^bring up bridge .*; rolled back$/);
    expect(state.networks.size).toBe(0);
    expect(store.committed).toHaveLength(0);
    // The bridge that was made is deleted again.
    const made = exec.lines.findIndex((l) => l.startsWith(`ip link add name ${bridgeOf(1)} `));
    const deleted = exec.lines.map((l) => l.startsWith(`ip link del ${bridgeOf(1)} `)).lastIndexOf(true);
    expect(made, 'the bridge was made').toBeGreaterThanOrEqual(0);
    expect(deleted).toBeGreaterThan(made);
  });

  it('a failed save undoes the whole host plan and leaves the state as it was', async () => {
    const { state, store, exec, plugin } = setup();
    store.failNext = true;
    await expect(plugin.createNetwork(net(1), silentLog)).rejects.toThrow(/injected store failure/);
    expect(state.networks.size).toBe(0);
    const undone = exec.lines.slice(exec.lines.findIndex((l) => l === 'forward-hook ensure') + 1);
    expect(undone.some((l) => l.startsWith(`ip link del ${bridgeOf(1)} `))).toBe(true);
    // The first network's hook goes away with it.
    expect(undone).toContain('forward-hook remove');
  });

  it('a failure does not stop the queue: later requests run', async () => {
    const { state, exec, plugin } = setup();
    exec.failAt = 2;
    const results = await Promise.allSettled([plugin.createNetwork(net(1), silentLog), plugin.createNetwork(net(2), silentLog)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect([...state.networks.keys()]).toEqual([hexId(2)]);
  });

  it('a foreign link under the bridge name is refused before anything is run', async () => {
    const { exec, plugin } = setup({ owner: 'foreign' });
    await expect(plugin.createNetwork(net(1), silentLog)).rejects.toThrow(/not created by mynet/);
    expect(exec.calls).toHaveLength(0);
  });

  it('IPAM and driver calls share one state', async () => {
    const { state, plugin } = setup();
    const { PoolID, Pool } = await plugin.requestPool({ Pool: '' }, silentLog);
    expect(Pool).toBe('10.200.0.0/24');
    const gw = await plugin.requestAddress(
      { PoolID, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } },
      silentLog,
    );
    expect(gw.Address).toBe('10.200.0.1/24');
    await plugin.releaseAddress({ PoolID, Address: '10.200.0.1' }, silentLog);
    await plugin.releasePool({ PoolID }, silentLog);
    expect(state.pools.size).toBe(0);
  });
});

describe('Plugin.deleteNetwork: teardown is best effort and says what failed', () => {
  it('every step runs past a failed one, the error names each failure, the records stay; the retry runs the whole teardown again', async () => {
    const { state, store, exec, plugin } = setup();
    await plugin.createNetwork(net(1), silentLog);
    const eids = [hexId(0xa1), hexId(0xa2)];
    for (const [i, id] of eids.entries())
      await plugin.createEndpoint({ NetworkID: hexId(1), EndpointID: id, Interface: { Address: `10.1.0.${i + 2}/24` } }, silentLog);
    const saved = store.committed.length;
    exec.clear();
    exec.failWhen = (op) => (op.kind === 'link-del' && op.name === `mnh${hexId(0xa1, 12)}`) || op.kind === 'nft';
    const err = await plugin.deleteNetwork({ NetworkID: hexId(1) }, silentLog).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostTeardownError);
    expect((err as HostTeardownError).failures.map((f) => f.step)).toEqual([`delete veth mnh${hexId(0xa1, 12)}`, 'remove the mynet table']);
    // Past the failures: the other veth, the bridge and the hook were still removed.
    expect(exec.lines).toContain(`ip link del mnh${hexId(0xa2, 12)}  [if ours; absent ok]`);
    expect(exec.lines).toContain(`ip link del ${bridgeOf(1)}  [if ours; absent ok]`);
    expect(exec.lines.at(-1)).toBe('forward-hook remove');
    expect(state.networks.size).toBe(1);
    expect(state.endpoints.size).toBe(2);
    expect(store.committed.length).toBe(saved);

    const first = exec.lines;
    exec.clear();
    exec.failWhen = undefined;
    await expect(plugin.deleteNetwork({ NetworkID: hexId(1) }, silentLog)).resolves.toEqual({});
    expect(exec.lines).toEqual(first);
    expect(state.networks.size).toBe(0);
    expect(state.endpoints.size).toBe(0);
  });
});

describe('Plugin.restore (the reconciler with the start-up policy)', () => {
  it('re-creates missing links of stored networks and endpoints, removes leftovers of known records, leaves links of unknown networks', async () => {
    const { store, plugin } = setup();
    await plugin.createNetwork(net(1), silentLog);
    const eid = hexId(0xe1);
    await plugin.createEndpoint({ NetworkID: hexId(1), EndpointID: eid, Interface: { Address: '10.1.0.2/24' } }, silentLog);
    expect(store.committed.length).toBe(2);

    // After a reboot: state remains, links are gone; a retired veth and a veth of the known
    // network for an unknown endpoint (crash leftovers), and a bridge and a veth of a network
    // the state does not know (a wiped state directory looks like that).
    const leftovers = [
      { name: 'mnh0000deadbeef', retired: true },
      mark('mnh0000feedf00d', `mynet net:${hexId(1, 12)} ep:0000feedf00d`),
      mark('mnc0000feedf00d'),
    ];
    const unknown = [
      mark('mn-0000000000aa', 'mynet net:0000000000aa'),
      mark('mnh0000000000ab', 'mynet net:0000000000aa ep:0000000000ab'),
      mark('mnc0000000000ab'),
    ];
    const after = setup({ links: [...leftovers, ...unknown] });
    for (const c of store.committed) after.state.apply(c);
    await after.plugin.restore(silentLog);
    const lines = after.exec.lines;
    expect(lines.some((l) => l.startsWith(`ip link add name ${bridgeOf(1)} `))).toBe(true);
    expect(lines.some((l) => l.startsWith(`ip link add name mnh${eid.slice(0, 12)} `))).toBe(true);
    for (const l of leftovers) expect(lines).toContain(`ip link del ${l.name}  [if ours; absent ok]`);
    for (const l of unknown) expect(lines.join('\n')).not.toContain(l.name);
    expect(lines).toContain('forward-hook ensure');
    expect(after.state.networks.size).toBe(1);
    expect(after.state.endpoints.size).toBe(1);

    // Everything present: nothing is re-created, nothing removed.
    const intact = setup({ links: [mark(bridgeOf(1)), mark(`mnh${eid.slice(0, 12)}`), mark(`mnc${eid.slice(0, 12)}`)] });
    for (const c of store.committed) intact.state.apply(c);
    await intact.plugin.restore(silentLog);
    expect(intact.exec.lines.some((l) => l.startsWith('ip link add'))).toBe(false);
    expect(intact.exec.lines.some((l) => l.startsWith('ip link del'))).toBe(false);
  });

  it('doctor --fix (all) removes what start-up left, and says so per object', async () => {
    const unknown = [mark('mn-0000000000aa', 'mynet net:0000000000aa'), mark('mnh0000000000ab', 'mynet net:0000000000aa ep:0000000000ab')];
    const { exec, plugin } = setup({ links: unknown });
    await plugin.restore(silentLog);
    expect(exec.lines).toEqual([]);
    const listed = await plugin.doctor(silentLog, 'none');
    expect(listed.map((r) => [r.difference.kind, r.difference.object, r.repaired])).toEqual(
      unknown.map((l) => ['orphan', `link ${l.name}`, false]),
    );
    expect(exec.lines).toEqual([]);
    const fixed = await plugin.doctor(silentLog, 'all');
    expect(fixed.map((r) => [r.difference.object, r.repaired])).toEqual(unknown.map((l) => [`link ${l.name}`, true]));
    expect(exec.lines).toEqual(unknown.map((l) => `ip link del ${l.name}  [if ours; absent ok]`));
  });

  it('an endpoint whose network is gone is dropped from the state, through the one commit path', async () => {
    const { state, store, plugin } = setup();
    state.apply([
      {
        op: 'endpoint.put',
        endpoint: { id: hexId(5), networkId: hexId(6), hostIf: 'mnh5', containerIf: 'mnc5', mac: '02:00:00:00:00:05', ports: [] },
      },
    ]);
    await plugin.restore(silentLog);
    expect(state.endpoints.size).toBe(0);
    expect(store.committed).toEqual([[{ op: 'endpoint.delete', id: hexId(5) }]]);
  });
});

describe('Plugin: steps after the answer (host/background.ts)', () => {
  it('DeleteEndpoint retires its veth and answers before the delete runs; a create that needs that veth name waits for it', async () => {
    const state = new State();
    const exec = new RecordingExecutor();
    const later = new RecordingExecutor();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const background = new Background({
      run: async (op, log) => {
        await gate;
        await later.run(op, log);
      },
      runIpBatch: (ops, log) => later.runIpBatch(ops, log),
    });
    const { plugin } = testPlugin({ state, exec, background });
    const eid = hexId(7);
    const ep = { NetworkID: hexId(1), EndpointID: eid, Interface: { Address: '10.1.0.7/24' } };
    await plugin.createNetwork(net(1), silentLog);
    await plugin.createEndpoint(ep, silentLog);
    const before = exec.lines.length;
    await expect(plugin.deleteEndpoint({ NetworkID: hexId(1), EndpointID: eid }, silentLog)).resolves.toEqual({});
    expect(state.endpoints.size).toBe(0);
    expect(background.size).toBe(1);
    // Before the answer the veth only left its bridge; it is deleted after the answer.
    expect(exec.lines.slice(before)).toEqual([
      expect.stringMatching(new RegExp(`^ip link set dev mnh${eid.slice(0, 12)} down group retired`)),
    ]);

    let created = false;
    let waiting = false;
    const idle = background.idle.bind(background);
    background.idle = () => ((waiting = true), idle());
    const again = plugin.createEndpoint(ep, silentLog).then(() => (created = true));
    await waitUntil('the create waits for the queue', () => waiting);
    expect(created).toBe(false); // it names mnh<id>, whose delete is still queued
    release();
    await again;
    expect(later.lines[0]).toMatch(/^ip link del group retired/);
    expect(background.size).toBe(0);
    await plugin.drain();
  });
});
