// Issue 17 with the real plugin: three hosts as network namespaces on an underlay bridge
// (198.18.30.0/24), one real etcd on the underlay (198.18.30.254, in its own namespace), a
// plugin process per host (node dist/main.js, its own sockets, state and node name), driven over
// its socket as dockerd drives it. Measured:
//  - an endpoint lifecycle (RequestAddress, CreateEndpoint, Join, Leave, DeleteEndpoint,
//    ReleaseAddress) on a cluster network against one on a local network of the same host,
//    interleaved (goal: cluster <= 2x local, p50 < 20 ms);
//  - convergence: from host A's CreateEndpoint answer until host B's kernel holds the endpoint's
//    forwarding and neighbour entries, seen by `bridge monitor fdb` and `ip monitor neigh` in B
//    (events, no polling) (goal p50 < 100 ms, p99 < 500 ms); a ping across once, to show the
//    entries carry traffic;
//  - both again with 1000 endpoints over the 3 hosts (goal: <= x1.2 of at 10).
//
//   flock /tmp/mynet-tier.lock node bench/cluster-plugin.mjs     (BENCH_CP_ROUNDS, BENCH_CP_ENDPOINTS)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { destroyAll, intoContainer, netns, underlay, UNDERLAY_PREFIX } from './cluster-lab.mjs';
import { startEtcd } from './etcd.mjs';
import { goal, median, now, pct, pluginClient, sleep, table } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_CP_ROUNDS ?? 100);
const CONV_ROUNDS = Number(process.env.BENCH_CP_CONV_ROUNDS ?? 60);
const MANY = Number(process.env.BENCH_CP_ENDPOINTS ?? 1000);
const CLUSTER = `mhb${Date.now().toString(36)}`;
const CLUSTER_POOL = '10.77.0.0/16';
const LOCAL_POOL = '10.79.0.0/16';
const ETCD_ADDR = `${UNDERLAY_PREFIX}.254`;
const hexId = () => randomBytes(32).toString('hex');
const bare = (cidr) => cidr.split('/')[0];
const dir = mkdtempSync(join(tmpdir(), 'mnt-mhb-plugin-'));

const ul = underlay();
const etcdNs = netns('etcd');
ul.plug(etcdNs, ETCD_ADDR);
const etcd = await startEtcd({ host: ETCD_ADDR, netns: etcdNs.name });

/** One host: its namespace, its plugin process, a client of its socket. */
async function startHost(k) {
  const ns = netns(`h${k}`);
  const address = ul.plug(ns, `${UNDERLAY_PREFIX}.${k + 1}`);
  const name = `mnt-mhb-h${k}`;
  const sock = join(dir, `${name}.sock`);
  const admin = join(dir, `${name}.admin.sock`);
  const logFile = join(dir, `${name}.log`);
  const env = {
    ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: admin, MYNET_STATE_DIR: join(dir, `${name}.state`), MYNET_LOG_LEVEL: process.env.BENCH_CP_LOG_LEVEL ?? 'info',
    MYNET_ETCD_ENDPOINTS: etcd.endpoint, MYNET_NODE_NAME: name, MYNET_NODE_ADDRESS: address, DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`,
  };
  const proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, 'dist/main.js'], { env, stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')] });
  const client = pluginClient(sock, admin, new Agent({ keepAlive: true, maxSockets: 1 }));
  for (let i = 0; !(await client.answers()); i++) {
    if (proc.exitCode !== null || i > 2000) throw new Error(`plugin ${name} did not start (log: ${logFile})`);
    await sleep(5);
  }
  await client.call('/Plugin.Activate');
  return { k, ns, name, address, proc, logFile, ...client, nets: {} };
}

/** RequestPool, RequestAddress(gateway), CreateNetwork: the same command on every host. */
async function createNetwork(h, pool, cluster) {
  const p = await h.call('/IpamDriver.RequestPool', { AddressSpace: 'LocalDefault', Pool: pool, SubPool: '', Options: {}, V6: false });
  const gw = await h.call('/IpamDriver.RequestAddress', { PoolID: p.PoolID, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  const id = hexId();
  await h.call('/NetworkDriver.CreateNetwork', {
    NetworkID: id,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': cluster ? { 'mynet.cluster': cluster } : {} },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: p.Pool, Gateway: gw.Address }],
    IPv6Data: [],
  });
  return { id, poolId: p.PoolID, gateway: gw.Address };
}

/** RequestAddress + CreateEndpoint (+ Join): answers the address, MAC and when CreateEndpoint was sent and answered. */
async function endpoint(h, net, join = true) {
  const a = await h.call('/IpamDriver.RequestAddress', { PoolID: net.poolId, Address: '', Options: {} });
  const id = hexId();
  const sent = now();
  const r = await h.call('/NetworkDriver.CreateEndpoint', { NetworkID: net.id, EndpointID: id, Interface: { Address: a.Address, AddressIPv6: '', MacAddress: '' }, Options: {} });
  const answered = now();
  const j = join ? await h.call('/NetworkDriver.Join', { NetworkID: net.id, EndpointID: id, SandboxKey: `/var/run/docker/netns/${id.slice(0, 12)}`, Options: {} }) : undefined;
  return { id, address: a.Address, mac: r.Interface?.MacAddress, sent, answered, join: j, net };
}
async function removeEndpoint(h, e, leave = true) {
  if (leave) await h.call('/NetworkDriver.Leave', { NetworkID: e.net.id, EndpointID: e.id });
  await h.call('/NetworkDriver.DeleteEndpoint', { NetworkID: e.net.id, EndpointID: e.id });
  await h.call('/IpamDriver.ReleaseAddress', { PoolID: e.net.poolId, Address: bare(e.address) });
}
/** The whole lifecycle, as the client sees it. */
async function lifecycle(h, net) {
  const t0 = now();
  const e = await endpoint(h, net);
  await removeEndpoint(h, e);
  return now() - t0;
}

/**
 * Kernel events of one host's VXLAN devices (forwarding and neighbour entries), read as they
 * happen: `waitFor(mac, ip)` resolves with the time both entries for that endpoint were seen.
 */
function monitor(h) {
  const seen = new Map(); // key -> time
  const waiters = [];
  const watch = (argv) => {
    const p = spawn('ip', ['netns', 'exec', h.ns.name, ...argv], { stdio: ['ignore', 'pipe', 'ignore'] });
    createInterface({ input: p.stdout }).on('line', (line) => {
      const t = now();
      if (!/dev mnx/.test(line) || line.startsWith('Deleted')) return;
      const key = line.split(' ')[0].toLowerCase();
      seen.set(key, t);
      for (const w of waiters.splice(0)) w();
    });
    return p;
  };
  const procs = [watch(['bridge', 'monitor', 'fdb']), watch(['ip', 'monitor', 'neigh'])];
  return {
    async waitFor(mac, ip, ms = 5000) {
      const end = now() + ms;
      while (!(seen.has(mac) && seen.has(ip))) {
        if (now() > end) throw new Error(`host ${h.name} did not program ${ip} ${mac} within ${ms} ms`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 50); });
      }
      const t = Math.max(seen.get(mac), seen.get(ip));
      seen.delete(mac);
      seen.delete(ip);
      return t;
    },
    stop: () => { for (const p of procs) p.kill('SIGTERM'); },
  };
}

const hosts = [];
const rows = [];
let monB;
try {
  for (let k = 0; k < 3; k++) hosts.push(await startHost(k));
  const [A, B] = hosts;
  for (const h of hosts) h.nets.cluster = await createNetwork(h, CLUSTER_POOL, CLUSTER);
  A.nets.local = await createNetwork(A, LOCAL_POOL);
  monB = monitor(B);
  await sleep(300);

  // One endpoint on A, in a container, pinged from a container on B: the entries carry traffic.
  const boxA = netns('ca');
  const boxB = netns('cb');
  const eA = await endpoint(A, A.nets.cluster);
  intoContainer(A.ns, boxA, eA.join.InterfaceName.SrcName, eA.address, bare(eA.join.Gateway ?? A.nets.cluster.gateway));
  const eB = await endpoint(B, B.nets.cluster);
  intoContainer(B.ns, boxB, eB.join.InterfaceName.SrcName, eB.address, bare(eB.join.Gateway ?? B.nets.cluster.gateway));
  await monB.waitFor(eA.mac, bare(eA.address));
  const pingOk = (() => { try { boxB.run('busybox', 'ping', '-c', '3', '-W', '1', bare(eA.address)); return true; } catch { return false; } })();
  if (!pingOk) throw new Error(`container on B could not ping ${eA.address} on A over the cluster network`);

  /**
   * Host A's request log from `from` to `to`: per lifecycle, the sum of its six requests' own
   * times (a lifecycle's requests follow one another, so each RequestAddress opens the next one),
   * and the times per request, for the cluster and the local network.
   */
  const insideA = (from, to) => {
    const life = { cluster: [], local: [] };
    const open = { cluster: undefined, local: undefined };
    const byRoute = {};
    for (const l of readFileSync(A.logFile, 'utf8').split('\n')) {
      if (!l.includes('"msg":"request"')) continue;
      const r = JSON.parse(l);
      if (r.time < from || r.time > to) continue;
      const of = (net) => r.networkId === net.id.slice(0, 12) || r.poolId === net.poolId;
      const which = of(A.nets.local) ? 'local' : of(A.nets.cluster) ? 'cluster' : undefined;
      if (!which) continue;
      ((byRoute[r.route] ??= { cluster: [], local: [] })[which]).push(r.ms);
      if (r.route === '/IpamDriver.RequestAddress') open[which] = { ms: 0, n: 0 };
      if (!open[which]) continue;
      open[which].ms += r.ms;
      if (++open[which].n === 6) { life[which].push(open[which].ms); open[which] = undefined; }
    }
    return { life, byRoute };
  };

  /** Lifecycles interleaved cluster/local on A, then convergence samples A -> B. */
  const measure = async (label) => {
    for (let i = 0; i < 10; i++) { await lifecycle(A, A.nets.cluster); await lifecycle(A, A.nets.local); } // warm-up
    const from = Date.now();
    const cl = [];
    const lo = [];
    for (let i = 0; i < ROUNDS; i++) { cl.push(await lifecycle(A, A.nets.cluster)); lo.push(await lifecycle(A, A.nets.local)); }
    const to = Date.now();
    const conv = [];
    const convSent = [];
    for (let i = 0; i < CONV_ROUNDS; i++) {
      const e = await endpoint(A, A.nets.cluster, false);
      const t = await monB.waitFor(e.mac, bare(e.address));
      conv.push(t - e.answered);
      convSent.push(t - e.sent);
      await removeEndpoint(A, e, false);
      await sleep(20); // B has removed the entries before the next sample
    }
    await sleep(200); // the last request lines are written
    return { label, cl, lo, conv, convSent, ...insideA(from, to) };
  };

  const mine = [];
  for (let i = 0; i < 10; i++) { const h = hosts[i % 3]; mine.push([h, await endpoint(h, h.nets.cluster)]); }
  const at10 = await measure('10 endpoints');
  let tm = now();
  const extra = [];
  await Promise.all(hosts.map(async (h) => {
    for (let i = h.k; i < MANY - 10; i += 3) extra.push([h, await endpoint(h, h.nets.cluster)]);
  }));
  const fillS = (now() - tm) / 1000;
  await sleep(2000); // every host has programmed every other's endpoints
  // `ip netns exec` execs node: the child's pid is the plugin's.
  const rssMany = hosts.map((h) => h.rss(h.proc.pid).toFixed(1)).join(' / ');
  const atMany = await measure(`${MANY} endpoints`);
  // Back to 10, and measured again: what changed with the machine over the run, not the endpoints.
  tm = now();
  await Promise.all(hosts.map(async (h) => { for (const [o, e] of extra) if (o === h) await removeEndpoint(h, e); }));
  const emptyS = (now() - tm) / 1000;
  await sleep(2000);
  const back = await measure('10 again');
  const phases = [at10, atMany, back];

  const p = (xs) => `${median(xs).toFixed(2)} / ${pct(xs, 99).toFixed(2)} ms`;
  for (const m of phases) {
    rows.push([`lifecycle, cluster network, ${m.label}: inside A / as the client sees it (p50)`, `${median(m.life.cluster).toFixed(2)} / ${median(m.cl).toFixed(2)} ms`, `p99 ${pct(m.life.cluster, 99).toFixed(2)} / ${pct(m.cl, 99).toFixed(2)} ms`]);
    rows.push([`lifecycle, local network, ${m.label}: inside A / as the client sees it (p50)`, `${median(m.life.local).toFixed(2)} / ${median(m.lo).toFixed(2)} ms`, `p99 ${pct(m.life.local, 99).toFixed(2)} / ${pct(m.lo, 99).toFixed(2)} ms`]);
    rows.push([`  cluster / local`, `x${(median(m.life.cluster) / median(m.life.local)).toFixed(2)} / x${(median(m.cl) / median(m.lo)).toFixed(2)}`, 'goal <= x2']);
    rows.push([`convergence A -> B's kernel, ${m.label}: from A's answer p50 / p99`, p(m.conv), `from A's request ${p(m.convSent)}; ${m.conv.filter((x) => x < 0).length} before the answer`]);
  }
  rows.push([`RSS of the 3 plugins with ${MANY} endpoints`, `${rssMany} MiB`, '']);
  const lifeX = median(atMany.life.cluster) / median(at10.life.cluster);
  const lifeBackX = median(atMany.life.cluster) / median(back.life.cluster);
  const convX = median(atMany.conv) / median(at10.conv);
  const convBackX = median(atMany.conv) / median(back.conv);
  rows.push([`next cluster lifecycle inside A, ${MANY} vs 10 (vs 10 again)`, `x${lifeX.toFixed(2)} (x${lifeBackX.toFixed(2)})`, 'goal <= x1.2']);
  rows.push([`  as the client sees it`, `x${(median(atMany.cl) / median(at10.cl)).toFixed(2)} (x${(median(atMany.cl) / median(back.cl)).toFixed(2)})`, `local network: x${(median(atMany.lo) / median(at10.lo)).toFixed(2)} (x${(median(atMany.lo) / median(back.lo)).toFixed(2)})`]);
  rows.push([`convergence, ${MANY} vs 10 (vs 10 again)`, `x${convX.toFixed(2)} (x${convBackX.toFixed(2)})`, `goal <= x1.2; ${MANY - 10} endpoints made in ${fillS.toFixed(1)} s, removed in ${emptyS.toFixed(1)} s`]);
  console.log(`\nthree plugin processes in namespaced hosts, one etcd 3.4 on the underlay; ${ROUNDS} lifecycles of each network, interleaved; ${CONV_ROUNDS} convergence samples\n`);
  console.log(table(['figure', 'mynet', 'note'], rows));
  const routes = ['/IpamDriver.RequestAddress', '/NetworkDriver.CreateEndpoint', '/NetworkDriver.Join', '/NetworkDriver.Leave', '/NetworkDriver.DeleteEndpoint', '/IpamDriver.ReleaseAddress'];
  const cell = (xs) => (xs?.length ? median(xs).toFixed(2) : '-');
  console.log(`\nhost A's own time per request (its request log, p50 ms), cluster network / local network\n`);
  console.log(table(['request', ...phases.flatMap((m) => [`cluster, ${m.label}`, `local, ${m.label}`])],
    routes.map((r) => [r.split('.')[1], ...phases.flatMap((m) => [cell(m.byRoute[r]?.cluster), cell(m.byRoute[r]?.local)])])));

  const ratio = median(at10.life.cluster) / median(at10.life.local);
  const clientRatio = median(at10.cl) / median(at10.lo);
  goal('17. lifecycle cluster vs local, inside the plugin p50 (client)', `${median(at10.life.cluster).toFixed(2)} / ${median(at10.life.local).toFixed(2)} ms x${ratio.toFixed(2)} (x${clientRatio.toFixed(2)})`, '', '<= x2, p50 < 20 ms', ratio <= 2 && median(at10.life.cluster) < 20);
  goal('17. convergence A -> B kernel, p50 / p99', `${median(at10.conv).toFixed(1)} / ${pct(at10.conv, 99).toFixed(1)} ms`, '', 'p50 < 100, p99 < 500 ms', median(at10.conv) < 100 && pct(at10.conv, 99) < 500);
  goal(`17. next lifecycle / convergence, ${MANY} vs 10 endpoints`, `x${lifeX.toFixed(2)} / x${convX.toFixed(2)}`, '', '<= x1.2', lifeX <= 1.2 && convX <= 1.2);
} finally {
  monB?.stop();
  for (const h of hosts) { h.proc.kill('SIGTERM'); await new Promise((r) => (h.proc.exitCode !== null ? r() : h.proc.once('exit', r))); }
  await etcd.stop();
  destroyAll();
  if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
}
