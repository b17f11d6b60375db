/**
 * Issue 24's data plane on real kernels: two "hosts" as namespaces on an underlay (a bridge in a
 * third namespace; 198.18.161.0/24 and tunnel addresses 198.18.170.0/24 exist only inside them),
 * a real etcd, and each host's WireGuardHost (src/multihost/wireguard/host.ts) running
 * wireguard-go in user space: its key made on the host, its record published, its peers
 * programmed from the etcd watch. An encrypted network's VXLAN runs between the tunnel
 * addresses (the device's source and the forwarding entries' destination), MTU 1500 - 60 - 50.
 * It shows: the underlay capture holds no VXLAN and none of the payload sent between the
 * containers; a forged plaintext VXLAN frame for the VNI is dropped; a host that leaves loses its
 * peer on the other. Names: mnt-ng-*; the WireGuard interfaces are deleted before the namespaces
 * (wireguard-go exits with its interface).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdKv } from '../../src/cluster/etcd-kv.js';
import { NodePresence } from '../../src/cluster/presence.js';
import { applyPlan } from '../../src/host/executor.js';
import { WireGuardHost } from '../../src/multihost/wireguard/host.js';
import { nftOp } from '../../src/plan/nft.js';
import { guardCommands, guardFor, plaintextCounter } from '../../src/plan/vxlan-firewall.js';
import { bridgeSteps, macFromIPv4, vethSteps } from '../../src/plan/link.js';
import { containerVethName, defaultBridgeName, hostVethName } from '../../src/plan/link-names.js';
import { remoteEntrySteps, vxlanDeviceSteps, vxlanName } from '../../src/plan/vxlan.js';
import { encryptedClusterMtu } from '../../src/rules/mtu.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { createNetns, destroyCreated, dockerId, randomHex, silentLog, type TestNetns } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { namedCounter, tcpLine } from './cluster-checks.js';

const TAG = 'mnt-ng-';
const VNI = 16_216;
const MTU = encryptedClusterMtu(1500);
const GATEWAY = '10.216.5.1';

interface Host {
  readonly n: number;
  readonly name: string;
  readonly underlay: string;
  readonly tunnel: string;
  readonly iface: string;
  readonly ns: TestNetns;
  readonly box: TestNetns;
  readonly networkId: string;
  readonly ip: string;
  readonly kv: EtcdKv;
  readonly presence: NodePresence;
  readonly wg: WireGuardHost;
  readonly stateDir: string;
}

let etcd: TestEtcd;
let underlay: TestNetns;
let dir: string;
const hosts: Host[] = [];
const until = (what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<number> => waitUntil(what, ok, { ms, every: 50 });

async function quiet(): Promise<TestNetns> {
  const ns = await createNetns({ prefix: TAG });
  await ns.run(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  return ns;
}

async function plug(ns: TestNetns, n: number, address: string): Promise<void> {
  await underlay.run(['ip', 'link', 'add', `${TAG}u${n}`, 'type', 'veth', 'peer', 'name', `${TAG}ul0`, 'netns', ns.name]);
  await underlay.run(['ip', 'link', 'set', `${TAG}u${n}`, 'master', `${TAG}ul`, 'up']);
  await ns.run(['ip', 'addr', 'add', `${address}/24`, 'dev', `${TAG}ul0`]);
  await ns.run(['ip', 'link', 'set', `${TAG}ul0`, 'up']);
}

async function makeHost(n: number): Promise<Host> {
  const ns = await quiet();
  const box = await quiet();
  const address = `198.18.161.${n}`;
  await plug(ns, n, address);
  const networkId = dockerId();
  const endpointId = dockerId();
  const bridge = defaultBridgeName(networkId);
  const tunnel = `198.18.170.${n}`;
  const ip = `10.216.5.${n + 1}`;
  await applyPlan(ns.exec, bridgeSteps({ networkId, name: bridge, mtu: MTU, addresses: [`${GATEWAY}/24`] }), silentLog);
  // The encrypted network's VXLAN device: its source is the tunnel address, not the underlay's.
  // The network's guard, as the plugin makes it before the device: plaintext VXLAN of the VNI dropped.
  const guard = guardFor(networkId, { vni: VNI, tunnelIf: `${TAG}w${n}` }, ['198.18.170.1', '198.18.170.2']);
  await applyPlan(ns.exec, [{ what: 'guard', run: nftOp(guardCommands(guard)) }], silentLog);
  await applyPlan(ns.exec, vxlanDeviceSteps({ networkId, cluster: 'ngsecure', vni: VNI, bridge, local: tunnel, mtu: MTU }), silentLog);
  await applyPlan(
    ns.exec,
    vethSteps({
      networkId,
      endpointId,
      bridge,
      hostIf: hostVethName(endpointId),
      containerIf: containerVethName(endpointId),
      mtu: MTU,
      mac: macFromIPv4(`${ip}/24`),
    }),
    silentLog,
  );
  await ns.run(['ip', 'link', 'set', 'dev', containerVethName(endpointId), 'netns', box.name]);
  await box.run(['ip', 'link', 'set', 'dev', containerVethName(endpointId), 'name', 'eth0']);
  await box.run(['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await box.run(['ip', 'link', 'set', 'eth0', 'up']);
  const kv = new EtcdKv({ endpoints: [etcd.endpoint] });
  const name = `${TAG}h${n}`;
  const presence = new NodePresence(kv, { name, address }, { ttlS: 5 });
  await presence.start();
  const iface = `${TAG}w${n}`;
  const stateDir = mkdtempSync(join(dir, `h${n}-`));
  const wg = new WireGuardHost({
    kv,
    exec: ns.exec,
    command: (argv, log) => ns.exec.command(argv, log),
    log: silentLog,
    node: { name, address },
    stateDir,
    iface,
    port: 51820,
    tunnelCidr: `${tunnel}/24`,
    underlayMtu: 1500,
    runner: 'userspace',
    backoffMs: { first: 100, max: 500 },
  });
  await wg.up();
  return { n, name, underlay: address, tunnel, iface, ns, box, networkId, ip, kv, presence, wg, stateDir };
}

const endpointsOf = async (h: Host): Promise<string> => h.ns.run(['wg', 'show', h.iface, 'endpoints']);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), TAG));
  etcd = await startEtcd({ dirPrefix: `${TAG}etcd-` });
  underlay = await quiet();
  await underlay.run(['ip', 'link', 'add', `${TAG}ul`, 'type', 'bridge']);
  await underlay.run(['ip', 'link', 'set', `${TAG}ul`, 'up']);
  hosts.push(await makeHost(1), await makeHost(2));
  // Each host's VXLAN entries for the other's container: to the peer's tunnel address.
  for (const h of hosts) {
    const o = hosts.find((x) => x !== h) as Host;
    await until(`${h.name} believes ${o.name}'s peer record`, async () => (await h.wg.idle(), h.wg.tunnelOf(o.name) === o.tunnel));
    await applyPlan(
      h.ns.exec,
      remoteEntrySteps(h.networkId, { address: o.ip, mac: macFromIPv4(`${o.ip}/24`), underlay: h.wg.tunnelOf(o.name) as string }),
      silentLog,
    );
  }
}, 90_000);

afterAll(async () => {
  for (const h of hosts) {
    await h.wg.stop();
    await h.presence.stop().catch(() => undefined);
    await h.kv.close();
    // wireguard-go holds its namespace open until its interface goes.
    await h.ns.succeeds(['ip', 'link', 'del', 'dev', h.iface]);
  }
  await destroyCreated();
  await etcd?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('encrypted cluster network: WireGuard between two hosts (wireguard-go)', () => {
  it("each host's key stays on it; its public key, port and addresses are in etcd; the peers come from the watch", async () => {
    const [a, b] = hosts as [Host, Host];
    const records = await a.kv.list('/mynet/v1/wireguard/');
    // The private key: in the state directory, 0600, and nowhere in etcd.
    const privateKey = readFileSync(join(a.stateDir, 'wireguard.key'), 'utf8').trim();
    expect(statSync(join(a.stateDir, 'wireguard.key')).mode & 0o777).toBe(0o600);
    expect(records.items.map((i) => JSON.parse(i.value) as Record<string, unknown>)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ node: a.name, publicKey: a.wg.publicKey, port: 51820, underlay: a.underlay, tunnel: a.tunnel }),
        expect.objectContaining({ node: b.name, publicKey: b.wg.publicKey, port: 51820, underlay: b.underlay, tunnel: b.tunnel }),
      ]),
    );
    // No private key in etcd: nothing there but the two public keys.
    const all = (await a.kv.list('/mynet/')).items.map((i) => i.value).join('\n');
    expect(all.match(/[A-Za-z0-9+/]{43}=/g)?.sort()).toEqual([a.wg.publicKey, b.wg.publicKey].sort());
    expect(all).not.toContain(privateKey);
    expect(await endpointsOf(a)).toContain(`${b.wg.publicKey}\t${b.underlay}:51820`);
    expect(await a.ns.run(['wg', 'show', a.iface, 'allowed-ips'])).toContain(`${b.wg.publicKey}\t${b.tunnel}/32`);
    expect(await a.ns.run(['cat', `/sys/class/net/${a.iface}/mtu`])).toMatch(/^1440\s*$/);
    expect(await a.ns.run(['cat', `/sys/class/net/${vxlanName(a.networkId)}/mtu`])).toMatch(/^1390\s*$/);
  });

  it('the underlay carries WireGuard only: no VXLAN and none of the payload sent between the containers', async () => {
    const [a, b] = hosts as [Host, Host];
    const pcap = join(dir, 'underlay.pcap');
    const capture = execa(
      'ip',
      ['netns', 'exec', underlay.name, 'tcpdump', '--immediate-mode', '-Z', 'root', '-i', `${TAG}u2`, '-nn', '-U', '-w', pcap],
      { reject: false },
    );
    let listening = false;
    capture.stderr?.on('data', (d: Buffer) => (listening ||= d.toString().includes('listening on')));
    try {
      await until('tcpdump is capturing', () => Promise.resolve(listening));
      const payload = `mnt-ng-secret-${randomHex(8)}`;
      expect(await tcpLine(a.box, b.box, b.ip, 5216, payload)).toContain(payload);
      // (Captured on host b's port of the underlay bridge: a bridge device itself sees only what is sent to it.)
      // A full-size packet passes at the network's MTU (1390 - 28 of ICMP and IP) with DF.
      expect(await a.box.succeeds(['busybox', 'ping', '-c', '1', '-W', '2', '-s', String(MTU - 28), b.ip])).toBe(true);
      // tcpdump hands packets over from the kernel's ring in blocks: let the last ones reach the file.
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      capture.kill('SIGINT');
      await capture;
    }
    const bytes = readFileSync(pcap);
    const text = (filter: string[]): Promise<string> => execa('tcpdump', ['-nn', '-r', pcap, ...filter]).then((r) => r.stdout);
    const wgLines = (await text(['udp', 'port', '51820'])).split('\n').filter(Boolean);
    expect(
      wgLines.length,
      `capture: ${bytes.length} bytes; ${(await capture).stderr}; all: ${(await text([])).slice(0, 400)}`,
    ).toBeGreaterThan(4);
    expect(await text(['udp', 'port', '4789'])).toBe('');
    expect(bytes.includes(Buffer.from('mnt-ng-secret-'))).toBe(false);
  });

  it("a forged plaintext VXLAN frame with the network's VNI is dropped before VXLAN sees it", async () => {
    const b = hosts[1] as Host;
    const x = await quiet();
    await plug(x, 9, '198.18.161.9');
    // The stranger speaks plain VXLAN to host b's underlay address, from a member's tunnel address.
    await x.run(['ip', 'addr', 'add', '198.18.170.1/32', 'dev', `${TAG}ul0`]);
    await x.run([
      'ip',
      'link',
      'add',
      `${TAG}fx`,
      'type',
      'vxlan',
      'id',
      String(VNI),
      'local',
      '198.18.170.1',
      'remote',
      b.underlay,
      'dstport',
      '4789',
      'nolearning',
    ]);
    await x.run(['ip', 'addr', 'add', '10.216.5.250/24', 'dev', `${TAG}fx`]);
    await x.run(['ip', 'link', 'set', `${TAG}fx`, 'up']);
    await x.run(['ip', 'neigh', 'replace', b.ip, 'lladdr', macFromIPv4(`${b.ip}/24`), 'dev', `${TAG}fx`, 'nud', 'permanent']);
    const before = await namedCounter(b.ns, 'inet mynet', plaintextCounter(b.networkId));
    expect(await x.succeeds(['busybox', 'ping', '-c', '3', '-W', '1', b.ip])).toBe(false);
    expect(await namedCounter(b.ns, 'inet mynet', plaintextCounter(b.networkId))).toBeGreaterThanOrEqual(before + 3);
  });

  it('a host that leaves (its presence gone) loses its peer on the other host', async () => {
    const [a, b] = hosts as [Host, Host];
    expect(await endpointsOf(a)).toContain(b.wg.publicKey as string);
    await b.presence.stop();
    await until(`${a.name} removes ${b.name}'s peer`, async () => !(await endpointsOf(a)).includes(b.wg.publicKey as string));
    expect(a.wg.last.refused.map((r) => [r.record.node, r.reason])).toEqual([[b.name, 'not-member']]);
    expect(await a.box.succeeds(['busybox', 'ping', '-c', '1', '-W', '1', b.ip])).toBe(false);
  });
});
