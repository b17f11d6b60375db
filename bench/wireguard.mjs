// Issue 24: encrypted cluster networks (WireGuard) against plain ones, on the same namespaced
// hosts: two hosts on an underlay bridge (198.18.192.0/24, MTU 1500), one etcd on the underlay
// (198.18.192.254), a real plugin per host (node dist/main.js) with MYNET_WIREGUARD=userspace
// (wireguard-go: this machine's kernel has no WireGuard), driven over its socket as dockerd
// drives it. Measured:
//  - TCP throughput a container on A -> one on B, encrypted vs plain (iperf3, one stream,
//    interleaved rounds, median);
//  - the lifecycle of a network on A, encrypted vs plain (create, a container in and out,
//    delete), interleaved, while another encrypted network keeps the interface up (goal <= x1.2);
//  - convergence of a new peer: from host B's plugin started (then its network and container
//    made, as a user would) until A's interface holds B's peer and a ping from B's container to
//    A's passes; and from B's network made again (its interface brought up anew) until the same.
// Names: mnt-mnw2-* namespaces, mnw2* links, interfaces mnw2bw<k> (wireguard-go's control socket
// is per machine); container subnets in 10.221.0.0/16.
//
//   flock /tmp/mynet-tier.lock node bench/wireguard.mjs    (BENCH_WG_SECONDS, BENCH_WG_ROUNDS, BENCH_WG_LIFECYCLES)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyAll, intoContainer, iperf, netns, underlay } from './cluster-lab.mjs';
import { startEtcd } from './etcd.mjs';
import { goal, median, now, pluginClient, sh, sleep, table } from './lib.mjs';

const SECONDS = Number(process.env.BENCH_WG_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_WG_ROUNDS ?? 3);
const LIFECYCLES = Number(process.env.BENCH_WG_LIFECYCLES ?? 20);
const CONV_ROUNDS = Number(process.env.BENCH_WG_CONV_ROUNDS ?? 5);
const TAG = 'mnw2';
const PREFIX = '198.18.192';
const ETCD_ADDR = `${PREFIX}.254`;
const hexId = () => randomBytes(32).toString('hex');
const bare = (cidr) => cidr.split('/')[0];
const wgIf = (k) => `${TAG}bw${k}`;
const dir = mkdtempSync(join(tmpdir(), 'mnt-mnw2-bench-'));

try { sh('iperf3', ['--version']); } catch { throw new Error('iperf3 is missing: run scripts/install-deps.sh'); }

const ul = underlay({ tag: TAG });
const etcdNs = netns('etcd', { tag: TAG });
ul.plug(etcdNs, ETCD_ADDR);
const etcd = await startEtcd({ host: ETCD_ADDR, netns: etcdNs.name });

const hostNs = [0, 1].map((k) => {
  const ns = netns(`h${k}`, { tag: TAG });
  return { ns, address: ul.plug(ns, `${PREFIX}.${k + 1}`) };
});

/** Host k's plugin process, answering on its socket. */
async function startHost(k) {
  const { ns, address } = hostNs[k];
  const name = `mnt-mnw2-h${k}`;
  const sock = join(dir, `${name}.sock`);
  const logFile = join(dir, `${name}.log`);
  const env = {
    ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: join(dir, `${name}.admin.sock`), MYNET_STATE_DIR: join(dir, `${name}.state`),
    MYNET_LOG_LEVEL: 'info', MYNET_ETCD_ENDPOINTS: etcd.endpoint, MYNET_NODE_NAME: name, MYNET_NODE_ADDRESS: address,
    MYNET_WIREGUARD: 'userspace', MYNET_WIREGUARD_INTERFACE: wgIf(k), DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`,
  };
  const proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, 'dist/main.js'], { env, stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')] });
  const client = pluginClient(sock, join(dir, `${name}.admin.sock`), new Agent({ keepAlive: true, maxSockets: 1 }));
  for (let i = 0; !(await client.answers()); i++) {
    if (proc.exitCode !== null || i > 2000) throw new Error(`plugin ${name} did not start (log: ${logFile})`);
    await sleep(5);
  }
  await client.call('/Plugin.Activate');
  return { k, ns, name, address, proc, logFile, ...client };
}

async function createNetwork(h, pool, cluster, encrypt) {
  const p = await h.call('/IpamDriver.RequestPool', { AddressSpace: 'LocalDefault', Pool: pool, SubPool: '', Options: {}, V6: false });
  const gw = await h.call('/IpamDriver.RequestAddress', { PoolID: p.PoolID, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  const id = hexId();
  const generic = { 'mynet.cluster': cluster, ...(encrypt ? { 'mynet.encrypt': 'wireguard' } : {}) };
  await h.call('/NetworkDriver.CreateNetwork', {
    NetworkID: id, Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': generic },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: p.Pool, Gateway: gw.Address }], IPv6Data: [],
  });
  return { id, poolId: p.PoolID, gateway: gw.Address };
}
async function deleteNetwork(h, net) {
  await h.call('/NetworkDriver.DeleteNetwork', { NetworkID: net.id });
  await h.call('/IpamDriver.ReleaseAddress', { PoolID: net.poolId, Address: bare(net.gateway) });
  await h.call('/IpamDriver.ReleasePool', { PoolID: net.poolId });
}
async function endpoint(h, net) {
  const a = await h.call('/IpamDriver.RequestAddress', { PoolID: net.poolId, Address: '', Options: {} });
  const id = hexId();
  await h.call('/NetworkDriver.CreateEndpoint', { NetworkID: net.id, EndpointID: id, Interface: { Address: a.Address, AddressIPv6: '', MacAddress: '' }, Options: {} });
  const join_ = await h.call('/NetworkDriver.Join', { NetworkID: net.id, EndpointID: id, SandboxKey: `/var/run/docker/netns/${id.slice(0, 12)}`, Options: {} });
  return { id, address: a.Address, join: join_, net };
}
async function removeEndpoint(h, e) {
  await h.call('/NetworkDriver.Leave', { NetworkID: e.net.id, EndpointID: e.id });
  await h.call('/NetworkDriver.DeleteEndpoint', { NetworkID: e.net.id, EndpointID: e.id });
  await h.call('/IpamDriver.ReleaseAddress', { PoolID: e.net.poolId, Address: bare(e.address) });
}
/** A container (a namespace) on h's network, as dockerd plugs one in. */
async function container(h, net, role) {
  const c = netns(role, { tag: TAG });
  const e = await endpoint(h, net);
  intoContainer(h.ns, c, e.join.InterfaceName.SrcName, e.address, bare(e.join.Gateway ?? net.gateway));
  return { ...c, ip: bare(e.address), e };
}
const pings = (from, ip) => { try { from.run('busybox', 'ping', '-c', '1', '-W', '1', ip); return true; } catch { return false; } };
async function until(what, ok, ms = 20_000) {
  const end = now() + ms;
  while (!ok()) { if (now() > end) throw new Error(`timed out: ${what}`); await sleep(10); }
  return now();
}
/** Whether A's interface holds h's current public key (read from h's own interface: never the private one). */
const holdsPeerOf = (a, h) => () => {
  let key;
  try { key = h.ns.run('wg', 'show', wgIf(h.k), 'public-key'); } catch { return false; } // not up yet
  return a.ns.run('wg', 'show', wgIf(a.k), 'endpoints').includes(key);
};


const hosts = [];
const rows = [];
try {
  const A = await startHost(0);
  hosts.push(A);
  const encA = await createNetwork(A, '10.221.2.0/24', 'mnw2enc', true);
  const plainA = await createNetwork(A, '10.221.1.0/24', 'mnw2plain', false);
  const ea = await container(A, encA, 'ea');
  const pa = await container(A, plainA, 'pa');

  // Convergence of a new peer, first sample: B's plugin started for the first time.
  const t0 = now();
  const B = await startHost(1);
  hosts.push(B);
  let encB = await createNetwork(B, '10.221.2.0/24', 'mnw2enc', true);
  let eb = await container(B, encB, 'eb');
  const tPeer = await until("A's interface holds B's peer", holdsPeerOf(A, B));
  const tPing = await until("B's container pings A's", () => pings(eb, ea.ip));
  const first = { peer: tPeer - t0, ping: tPing - t0 };
  // Then B's network made again: its interface goes with the last encrypted network and comes back.
  const again = [];
  for (let i = 0; i < CONV_ROUNDS; i++) {
    await removeEndpoint(B, eb.e); eb.destroy();
    await deleteNetwork(B, encB);
    await until("A drops B's peer", () => !A.ns.run('wg', 'show', wgIf(0), 'endpoints').includes('\t'));
    const s = now();
    encB = await createNetwork(B, '10.221.2.0/24', 'mnw2enc', true);
    eb = await container(B, encB, 'eb');
    const p = await until("A's interface holds B's peer", holdsPeerOf(A, B));
    const q = await until("B's container pings A's", () => pings(eb, ea.ip));
    again.push({ peer: p - s, ping: q - s });
  }

  const plainB = await createNetwork(B, '10.221.1.0/24', 'mnw2plain', false);
  const pb = await container(B, plainB, 'pb');
  await until("A's plain container reaches B's", () => pings(pa, pb.ip));
  const enc = [];
  const plain = [];
  for (let r = 0; r < ROUNDS; r++) { enc.push(await iperf(ea, eb, SECONDS)); plain.push(await iperf(pa, pb, SECONDS)); }

  // Lifecycles on A, interleaved; encA keeps A's interface up, as on a host in use.
  const life = async (encrypt, pool, cluster) => {
    const s = now();
    const n = await createNetwork(A, pool, cluster, encrypt);
    await removeEndpoint(A, await endpoint(A, n));
    await deleteNetwork(A, n);
    return now() - s;
  };
  for (let i = 0; i < 3; i++) { await life(true, '10.221.4.0/24', 'mnw2le'); await life(false, '10.221.3.0/24', 'mnw2lp'); } // warm-up
  const le = [];
  const lp = [];
  for (let i = 0; i < LIFECYCLES; i++) { le.push(await life(true, '10.221.4.0/24', 'mnw2le')); lp.push(await life(false, '10.221.3.0/24', 'mnw2lp')); }

  const g = (xs) => median(xs.map((x) => x.gbps));
  const c = (xs) => median(xs.map((x) => x.cpu)).toFixed(0);
  const tpRatio = g(enc) / g(plain);
  const lifeX = median(le) / median(lp);
  rows.push(['TCP A -> B, encrypted (wireguard-go, user space)', `${g(enc).toFixed(2)} Gbit/s`, `sender CPU ${c(enc)}%`]);
  rows.push(['TCP A -> B, plain cluster network (VXLAN)', `${g(plain).toFixed(2)} Gbit/s`, `sender CPU ${c(plain)}%`]);
  rows.push(['  encrypted / plain', tpRatio.toFixed(2), '']);
  rows.push(['network lifecycle on A (create, container in/out, delete), encrypted p50', `${median(le).toFixed(1)} ms`, `${LIFECYCLES} interleaved`]);
  rows.push(['network lifecycle on A, plain p50', `${median(lp).toFixed(1)} ms`, '']);
  rows.push(['  encrypted / plain', `x${lifeX.toFixed(2)}`, 'goal <= x1.2']);
  rows.push(["new peer: B's plugin started -> A holds B's peer / a ping passes", `${first.peer.toFixed(0)} / ${first.ping.toFixed(0)} ms`, "B's network and container made right after its start; polled every 10 ms"]);
  rows.push(["new peer: B's network made again -> A holds B's peer / a ping passes (p50)", `${median(again.map((x) => x.peer)).toFixed(0)} / ${median(again.map((x) => x.ping)).toFixed(0)} ms`, `${CONV_ROUNDS} rounds; max ${Math.max(...again.map((x) => x.ping)).toFixed(0)} ms`]);
  console.log(`\ntwo plugin processes in namespaced hosts, one etcd on the underlay (MTU 1500); iperf3 one stream ${SECONDS} s x ${ROUNDS} rounds interleaved (median)\n`);
  console.log(table(['figure', 'mynet', 'note'], rows));
  goal('24. network lifecycle encrypted / plain (p50)', `${median(le).toFixed(1)} / ${median(lp).toFixed(1)} ms x${lifeX.toFixed(2)}`, '', '<= x1.2', lifeX <= 1.2);
  goal('24. TCP encrypted / plain (wireguard-go)', `${g(enc).toFixed(2)} / ${g(plain).toFixed(2)} Gbit/s`, '', 'measured', true);
} finally {
  for (const h of hosts) { h.proc.kill('SIGTERM'); await new Promise((r) => (h.proc.exitCode !== null ? r() : h.proc.once('exit', r))); }
  // A stopped plugin leaves its interface (as a kernel device would stay); wireguard-go exits with it.
  for (const [k, { ns }] of hostNs.entries()) { try { ns.run('ip', 'link', 'del', 'dev', wgIf(k)); } catch { /* not up */ } }
  await etcd.stop();
  destroyAll();
  if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
}
