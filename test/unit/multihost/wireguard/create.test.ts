/**
 * An encrypted cluster network through the orchestrator (issue 24), two hosts on one in-memory
 * etcd: the encryption is part of the recorded definition, a host that cannot encrypt is refused
 * before it writes anything, and the MTU leaves room for WireGuard and VXLAN.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../../src/cluster/keys.js';
import type { ClusterAgent } from '../../../../src/multihost/agent.js';
import type { WireGuardPort } from '../../../../src/multihost/wireguard/port.js';
import { renderOp } from '../../../../src/plan/step.js';
import { type ClusterHost, clusterHost } from '../../../helpers/cluster-host.js';
import { MemoryKv } from '../../../helpers/memory-kv.js';
import { hexId, silentLog as log } from '../../support.js';

async function waitFor(ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not met within 2 s');
}

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const NET = hexId(0xe1);
const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

/** The agent's side of WireGuard (wireguard/lifecycle.ts), recorded: peers are what the test says. */
class FakeWg implements WireGuardPort {
  readonly calls: string[] = [];
  /** Believed peers: underlay address → tunnel address. */
  readonly peers = new Map<string, string>();
  private readonly listeners: (() => void)[] = [];
  readonly iface = 'mnwg-w0';
  readonly judged = { peers: [], refused: [] };
  constructor(
    readonly tunnelAddress: string,
    private readonly refusal?: string,
  ) {}
  ability(): ReturnType<WireGuardPort['ability']> {
    return this.refusal ? { ok: false, refusal: this.refusal } : { ok: true, runner: 'userspace' };
  }
  ensure(): Promise<void> {
    this.calls.push('ensure');
    return Promise.resolve();
  }
  release(): Promise<void> {
    this.calls.push('release');
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  differences(): ReturnType<WireGuardPort['differences']> {
    return Promise.resolve([]);
  }
  tunnelAt(underlay: string): string | undefined {
    return this.peers.get(underlay);
  }
  onPeers(listener: () => void): void {
    this.listeners.push(listener);
  }
  rotate(): ReturnType<WireGuardPort['rotate']> {
    return Promise.reject(new Error('not in these tests'));
  }
  status(): ReturnType<WireGuardPort['status']> {
    return Promise.resolve(undefined);
  }
  /** A peer believed (or forgotten, tunnel undefined), as the etcd watch would make it. */
  peer(underlay: string, tunnel: string | undefined): void {
    if (tunnel === undefined) this.peers.delete(underlay);
    else this.peers.set(underlay, tunnel);
    this.listeners.forEach((f) => f());
  }
}

const CAN = new FakeWg('198.18.170.1');
const CANNOT = new FakeWg('198.18.170.2', 'option mynet.encrypt: this host cannot encrypt: set MYNET_WIREGUARD=userspace');

function host(kv: MemoryKv, name: string, address: string, wireguard?: WireGuardPort): ClusterHost {
  const h = clusterHost(kv, name, address, wireguard ? { wireguard } : {});
  agents.push(h.agent);
  return h;
}

async function create(h: ClusterHost, g: Record<string, string>): Promise<unknown> {
  const pool = await h.plugin.requestPool({ Pool: '10.216.0.0/16' }, log);
  const gw = await h.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
  return h.plugin
    .createNetwork(
      {
        NetworkID: NET,
        Options: { 'com.docker.network.generic': { 'mynet.cluster': 'secure', ...g } },
        IPv4Data: [{ Pool: '10.216.0.0/16', Gateway: gw.Address }],
      },
      log,
    )
    .then(
      () => 'created',
      (e: unknown) => e,
    );
}

const ENCRYPT = { 'mynet.encrypt': 'wireguard' };

describe('encrypted cluster networks at create', () => {
  it('a host that can encrypt records the encryption; MTU 1500 - 60 - 50; VXLAN from the tunnel address', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.160.1', CAN);
    expect(await create(a, ENCRYPT)).toBe('created');
    const def = JSON.parse(kv.data.get(keys.network('secure'))?.value ?? '{}') as Record<string, unknown>;
    expect(def).toMatchObject({ encrypt: 'wireguard', mtu: 1390 });
    expect(a.plugin.state.networks.get(NET)?.cluster).toMatchObject({ encrypt: 'wireguard', local: '198.18.170.1', mtu: 1390 });
    const text = a.exec.calls.map((c) => renderOp(c.op)).join('\n');
    expect(text).toMatch(/type vxlan id \d+ local 198\.18\.170\.1 dstport 4789/);
    expect(text).toMatch(/mtu 1390/);
  });

  it('over an IPv6 underlay: MTU 1500 - 80 - 50; VXLAN from the IPv4 tunnel address; plaintext of either family dropped', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '2001:db8:64::1', new FakeWg('100.64.0.1'));
    expect(await create(a, ENCRYPT)).toBe('created');
    expect(JSON.parse(kv.data.get(keys.network('secure'))?.value ?? '{}')).toMatchObject({ encrypt: 'wireguard', mtu: 1370 });
    expect(a.plugin.state.networks.get(NET)?.cluster).toMatchObject({ local: '100.64.0.1', mtu: 1370 });
    const text = a.exec.calls.map((c) => renderOp(c.op)).join('\n');
    expect(text).toMatch(/type vxlan id \d+ local 100\.64\.0\.1 dstport 4789/);
    // Members are admitted by tunnel address (IPv4); the plaintext drop names no family: in the
    // inet table it takes IPv6 VXLAN from the underlay as it takes IPv4.
    expect(text).toMatch(/type ipv4_addr;/);
    expect(text).toMatch(/add rule inet mynet vxlan-in-\w+ iifname != "mnwg-w0" udp dport 4789 @th,96,24 \d+ counter/);
  });

  it("the plaintext drop is in the network's guard, made before its VXLAN device; the interface comes up with it and goes with the last one", async () => {
    const kv = new MemoryKv();
    const wg = new FakeWg('198.18.170.1');
    const a = host(kv, 'host-a', '198.18.160.1', wg);
    expect(await create(a, ENCRYPT)).toBe('created');
    expect(a.plugin.state.networks.get(NET)?.cluster?.tunnelIf).toBe('mnwg-w0');
    const text = a.exec.calls.map((c) => renderOp(c.op)).join('\n');
    const drop = text.search(/iifname != "mnwg-w0" udp dport 4789 @th,96,24 \d+ counter name vxplain-\w+ drop/);
    expect(drop).toBeGreaterThan(-1);
    expect(drop).toBeLessThan(text.search(/type vxlan id/));
    expect(wg.calls).toEqual(['ensure']);
    await a.plugin.deleteNetwork({ NetworkID: NET }, log);
    expect(wg.calls).toEqual(['ensure', 'release']);
  });

  it("another host's VXLAN entries go to its tunnel address once it is a believed peer, and its VXLAN is admitted from there only", async () => {
    const kv = new MemoryKv();
    const wa = new FakeWg('198.18.170.1');
    const wb = new FakeWg('198.18.170.2');
    const a = host(kv, 'host-a', '198.18.160.1', wa);
    const b = host(kv, 'host-b', '198.18.160.2', wb);
    expect(await create(a, ENCRYPT)).toBe('created');
    expect(await create(b, ENCRYPT)).toBe('created');
    const pool = [...a.plugin.state.pools.keys()][0] as string;
    const ip = (await a.plugin.requestAddress({ PoolID: pool }, log)).Address;
    await a.plugin.createEndpoint({ NetworkID: NET, EndpointID: hexId(0xa1), Interface: { Address: ip } }, log);
    const planeText = async (): Promise<string> => {
      await b.agent.idle();
      return b.plane.calls.map((c) => renderOp(c.op)).join('\n');
    };
    await waitFor(() => (b.agent.planes.get(NET)?.records.size ?? 0) === 1);
    // Not a peer yet: nothing is sent to its underlay address in the clear.
    expect(await planeText()).not.toMatch(/dst 198\.18\.160\.1/);
    wb.peer('198.18.160.1', '198.18.170.1');
    await waitFor(async () => /dst 198\.18\.170\.1/.test(await planeText()));
    const text = await planeText();
    expect(text).not.toMatch(/dst 198\.18\.160\.1/);
    expect(text).toMatch(/add element inet mynet vxpeers-\w+ \{ 198\.18\.170\.1 \}/);
    expect(b.agent.planes.get(NET)?.view().members).toEqual(['198.18.170.1']);
    // The peer gone (its key changed, its presence expired): its entries and admission go.
    wb.peer('198.18.160.1', undefined);
    await waitFor(() => (b.agent.planes.get(NET)?.view().members ?? ['x']).length === 0);
    expect(b.agent.planes.get(NET)?.desired()).toEqual([]);
  });

  it('a host that cannot encrypt is refused with what to install or set, and writes nothing to etcd', async () => {
    const kv = new MemoryKv();
    const b = host(kv, 'host-b', '198.18.160.2', CANNOT);
    const err = await create(b, ENCRYPT);
    expect(err).toMatchObject({
      code: 'INVALID_REQUEST',
      message: expect.stringMatching(/option mynet.encrypt: this host cannot encrypt: set MYNET_WIREGUARD=userspace/) as unknown,
    });
    expect(kv.data.get(keys.network('secure'))).toBeUndefined();
    expect(b.plugin.state.networks.size).toBe(0);
    expect(b.exec.calls).toHaveLength(0);
    // A mynet built without WireGuard at all refuses the same way.
    const c = host(kv, 'host-c', '198.18.160.3');
    expect(await create(c, ENCRYPT)).toMatchObject({
      message: expect.stringMatching(/option mynet.encrypt: this mynet was started without WireGuard/) as unknown,
    });
  });

  it('the encryption is part of the definition: a plain create of an encrypted network is refused, and the other way round', async () => {
    const kv = new MemoryKv();
    const a = host(kv, 'host-a', '198.18.160.1', CAN);
    const b = host(kv, 'host-b', '198.18.160.2', CAN);
    expect(await create(a, ENCRYPT)).toBe('created');
    expect(await create(b, {})).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(
        /encrypted \(wireguard\); this host asked for [^;]*multicast off\. Create it as recorded: --subnet \S+ --gateway \S+ -o mynet\.encrypt=wireguard/,
      ) as unknown,
    });
    expect(b.plugin.state.networks.size).toBe(0);
    const kv2 = new MemoryKv();
    const c = host(kv2, 'host-c', '198.18.160.3', CAN);
    const d = host(kv2, 'host-d', '198.18.160.4', CAN);
    expect(await create(c, {})).toBe('created');
    expect(await create(d, ENCRYPT)).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(/multicast off; this host asked for .*encrypted \(wireguard\)/) as unknown,
    });
  });
});
