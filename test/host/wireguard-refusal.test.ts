/**
 * Issue 24, at network create, with real plugin processes and a real etcd: a host that may not
 * or cannot encrypt (MYNET_WIREGUARD=off; the default `kernel` on a kernel without WireGuard,
 * such as this machine's) is refused with what to install or set, and writes no definition to
 * etcd; MYNET_WIREGUARD=userspace with wireguard-go installed creates it, encrypted in etcd.
 * Names: mnt-ng-ref-*; 198.18.160.0/24 exists only inside these namespaces.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { createNetns, destroyCreated, type TestNetns } from '../helpers/netns.js';
import { createNetwork, type DockerHost, prepareNetwork, removeNetwork } from './dockerd-moves.js';
import { refusal } from './plugin-client.js';
import { PluginProcess } from './plugin-process.js';

const TAG = 'mnt-ng-ref-';
const ETCD = '198.18.160.254';
let dir: string;
let etcd: TestEtcd;
let ns: TestNetns;
const plugins: PluginProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), TAG));
  ns = await createNetns({ prefix: TAG });
  await ns.run(['ip', 'link', 'add', `${TAG}ul`, 'type', 'veth', 'peer', 'name', `${TAG}ue`]);
  await ns.run(['ip', 'addr', 'add', '198.18.160.1/24', 'dev', `${TAG}ul`]);
  await ns.run(['ip', 'addr', 'add', `${ETCD}/24`, 'dev', `${TAG}ue`]);
  for (const l of [`${TAG}ul`, `${TAG}ue`]) await ns.run(['ip', 'link', 'set', l, 'up']);
  etcd = await startEtcd({ netns: ns.name, host: ETCD, dirPrefix: `${TAG}etcd-`, ...(existsSync('/dev/shm') && { baseDir: '/dev/shm' }) });
}, 60_000);

afterAll(async () => {
  for (const p of plugins) await p.stop();
  // A test that failed before removing its network: deleting the interface ends its wireguard-go.
  if (ns && (await ns.run(['ip', '-j', 'link', 'show'])).includes(`"${TAG}w"`)) await ns.run(['ip', 'link', 'del', `${TAG}w`]);
  await etcd?.destroy();
  await destroyCreated();
  rmSync(dir, { recursive: true, force: true });
});

async function host(label: string, wireguard: string): Promise<DockerHost> {
  const p = new PluginProcess(() => ns.name, join(dir, label), {
    MYNET_ETCD_ENDPOINTS: etcd.endpoint,
    MYNET_NODE_NAME: `${TAG}${label}`,
    MYNET_NODE_ADDRESS: '198.18.160.1',
    MYNET_WIREGUARD: wireguard,
    MYNET_WIREGUARD_INTERFACE: `${TAG}w`,
    MYNET_DNS_LISTEN: '127.0.0.153:53',
    MYNET_LOG_LEVEL: 'info',
  });
  plugins.push(p);
  await p.start();
  return { label, address: '198.18.160.1', ns, socket: p.socket };
}

describe('an encrypted network at create (real plugins, real etcd)', () => {
  it('refused with what to set when WireGuard is off, or the kernel has none and user space is not allowed; nothing in etcd', async () => {
    const off = await host('off', 'off');
    const spec = { subnet: '10.216.1.0/24', cluster: 'ngsecure', options: { 'mynet.encrypt': 'wireguard' } };
    const r = await refusal((await prepareNetwork(off, spec)).create());
    expect(r.err).toMatch(
      /option mynet\.encrypt: this host cannot encrypt \(MYNET_WIREGUARD=off\); set MYNET_WIREGUARD=kernel or userspace/,
    );
    const kernel = await host('kernel', 'kernel');
    if (existsSync('/sys/module/wireguard')) {
      expect((await createNetwork(kernel, { ...spec, cluster: 'ngkernel' })).id).toMatch(/^[0-9a-f]{64}$/);
    } else {
      const k = await refusal((await prepareNetwork(kernel, { ...spec, subnet: '10.216.2.0/24' })).create());
      expect(k.err).toMatch(/this kernel has no WireGuard .*set MYNET_WIREGUARD=userspace .*wireguard-go/);
    }
    expect([...(await etcd.get('/mynet/v1/networks/')).keys()]).toEqual(
      existsSync('/sys/module/wireguard') ? ['/mynet/v1/networks/ngkernel'] : [],
    );
  });

  it('MYNET_WIREGUARD=userspace with wireguard-go installed: created, encrypted in etcd, MTU 1500 - 60 - 50', async () => {
    const user = await host('user', 'userspace');
    const net = await createNetwork(user, { subnet: '10.216.3.0/24', cluster: 'nguser', options: { 'mynet.encrypt': 'wireguard' } });
    expect((await etcd.get('/mynet/v1/networks/nguser')).get('/mynet/v1/networks/nguser')).toMatchObject({
      encrypt: 'wireguard',
      mtu: 1390,
    });
    // The last encrypted network removed takes the interface, and so wireguard-go, with it (a
    // plugin stopped with it still up left a wireguard-go process behind the test's namespace).
    await removeNetwork(net);
    expect(
      await ns.run(['ip', 'link', 'show', `${TAG}w`]).then(
        () => 'present',
        () => 'gone',
      ),
    ).toBe('gone');
  });
});
