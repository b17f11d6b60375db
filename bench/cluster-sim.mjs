// Issue 17, beyond this machine by simulation: N simulated hosts (N = 5, 10, 25, 50), each with
// the cluster logic mynet runs (dist/cluster: its own EtcdKv gRPC client, ClusterStore, the
// followers of the endpoint records and of the address claims, as multihost/plane.ts) against
// one real etcd, and 10 000 endpoints on one cluster network. What
// each host would program into its kernel (dist/plan/vxlan.js remoteEntrySteps and
// removeEntrySteps) is recorded, not run: a forwarding and a neighbour table per host, kept
// from the steps' arguments. Every etcd request is counted by a wrapper around the Kv.
//
// Measured per N: creation of 10 000 endpoints (claimAddress + publishEndpoint, 64 in flight,
// from every host in turn) while N hosts follow, until every host holds all of them; then 100
// new endpoints one at a time, each from a random host, timed from the publish until the last
// host has recorded its entries (convergence); etcd requests and watch events per change; one
// full lifecycle as the plugin runs it (claimAny on the followed claims), and claimAny without
// them (a list of every claim); a host (re)starting on 10 000 endpoints;
// the heap of a host's followers holding 10 000. The growth law is fitted over N at the end.
//
//   node bench/cluster-sim.mjs          (BENCH_SIM_HOSTS=5,10 BENCH_SIM_ENDPOINTS=2000 for less)
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ClusterStore } from '../dist/cluster/cluster-store.js';
import { EtcdKv } from '../dist/cluster/etcd-kv.js';
import { keys } from '../dist/cluster/keys.js';
import { macFromIPv4 } from '../dist/plan/link.js';
import { remoteEntrySteps, removeEntrySteps } from '../dist/plan/vxlan.js';
import { startEtcd } from './etcd.mjs';
import { goal, median, now, pct, sleep, table } from './lib.mjs';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const heapMiB = async () => { for (let i = 0; i < 3; i++) { gc(); await sleep(20); } return process.memoryUsage().heapUsed / 2 ** 20; };
const rssMiB = () => process.memoryUsage().rss / 2 ** 20;
/** CPU seconds a process has used (user + system), from /proc. */
const cpuS = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };

const HOSTS = (process.env.BENCH_SIM_HOSTS ?? '5,10,25,50').split(',').map(Number);
const ENDPOINTS = Number(process.env.BENCH_SIM_ENDPOINTS ?? 10_000);
const PROBES = 100;
const IN_FLIGHT = 64;
const NETWORK_ID = 'f'.repeat(64); // the local network id only names the device in the steps

/** Counts every request a Kv makes, the bytes of what it reads, and the watch events it gets. */
function counting(kv) {
  const c = { requests: {}, readBytes: 0, watchEvents: 0, watchMessages: 0, eventMs: 0 };
  const count = (op) => { c.requests[op] = (c.requests[op] ?? 0) + 1; };
  const size = (it) => (it ? it.key.length + it.value.length : 0);
  return {
    counts: c,
    total: () => Object.values(c.requests).reduce((a, b) => a + b, 0),
    kv: {
      get: async (k) => { count('get'); const it = await kv.get(k); c.readBytes += size(it); return it; },
      list: async (p) => { count('list'); const l = await kv.list(p); for (const it of l.items) c.readBytes += size(it); return l; },
      createAll: (e) => { count('txn'); return kv.createAll(e); },
      put: (k, v) => { count('put'); return kv.put(k, v); },
      putIfAt: (k, v, r) => { count('txn'); return kv.putIfAt(k, v, r); },
      deleteIfAt: (k, r) => { count('txn'); return kv.deleteIfAt(k, r); },
      deleteIfValue: (k, v) => { count('txn'); return kv.deleteIfValue(k, v); },
      watch: (p, rev, h) => {
        count('watch');
        return kv.watch(p, rev, { onBroken: h.onBroken, onEvents: (evs) => {
          // The follower's whole work for a watch message: mirror, record checks, the steps.
          const t = now();
          c.watchMessages++;
          c.watchEvents += evs.length;
          h.onEvents(evs);
          c.eventMs += now() - t;
        } });
      },
      lease: (ttl, lost) => { count('lease'); return kv.lease(ttl, lost); },
      close: () => kv.close(),
    },
  };
}

/** One simulated host: its own gRPC client and store, its follower, its recorded kernel tables. */
function makeHost(i, endpoint) {
  const etcdKv = new EtcdKv({ endpoints: [endpoint] });
  const counted = counting(etcdKv);
  const name = `mnt-mhb-h${i}`;
  const host = { i, name, etcdKv, counted, store: new ClusterStore(counted.kv, { name, address: `198.18.30.${(i % 250) + 1}` }), fdb: new Map(), neigh: new Map(), steps: 0, programMs: 0, seen: new Map(), watched: new Set() };
  return host;
}

/** What the kernel would hold after the steps (bridge fdb replace/del, ip neigh replace/del). */
function record(h, steps) {
  for (const s of steps) {
    const a = s.run.args;
    h.steps++;
    if (s.run.kind === 'bridge' && a[1] === 'replace') h.fdb.set(a[2], a[a.indexOf('dst') + 1]);
    else if (s.run.kind === 'bridge' && a[1] === 'del') h.fdb.delete(a[2]);
    else if (a[1] === 'replace') h.neigh.set(a[2], a[a.indexOf('lladdr') + 1]);
    else if (a[1] === 'del') h.neigh.delete(a[2]);
  }
}

function follow(h, cluster) {
  h.follower = h.store.followEndpoints(cluster, {
    onChanges: (changes) => {
      const t = now();
      for (const c of changes) {
        if (c.endpoint.node === h.name) continue;
        record(h, c.type === 'put' ? remoteEntrySteps(NETWORK_ID, c.endpoint) : removeEntrySteps(NETWORK_ID, c.endpoint));
        if (c.type === 'put' && h.watched.has(c.endpoint.id)) h.seen.set(c.endpoint.id, t);
      }
      h.programMs += now() - t;
    },
    onProblem: (p) => { throw new Error(`record refused: ${p}`); },
  });
  // As the plugin does (multihost/plane.ts): the claims are followed too, so claimAny needs no list.
  h.claims = h.store.followPrefix(keys.addresses(cluster));
}
const synced = (h) => Promise.all([h.follower.synced(), h.claims.synced()]);
const stopFollowing = (h) => Promise.all([h.follower.stop(), h.claims.stop()]);

const ipOf = (n) => `10.${80 + Math.floor(n / 65536)}.${Math.floor(n / 256) % 256}.${n % 256}`; // within 10.80.0.0/12
const id = () => randomBytes(32).toString('hex');
const until = async (what, ok, ms = 120_000) => {
  const end = Date.now() + ms;
  while (!ok()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(2); }
};
const sumReq = (hosts) => hosts.reduce((a, h) => a + h.counted.total(), 0);
const sumEvents = (hosts) => hosts.reduce((a, h) => a + h.counted.counts.watchEvents, 0);

async function runCluster(n, etcd, heapBase) {
  const cluster = `mhb-n${n}-${Date.now().toString(36)}`;
  const t0 = now();
  const hosts = Array.from({ length: n }, (_, i) => makeHost(i, etcd.endpoint));
  let def;
  for (const h of hosts) def = await h.store.defineNetwork({ cluster, subnet: '10.80.0.0/12', mtu: 1450 });
  const clientsRss = rssMiB();
  for (const h of hosts) follow(h, cluster);
  await Promise.all(hosts.map(synced));
  const setupMs = now() - t0;

  // 10 000 endpoints, created from every host in turn, 64 in flight, while every host follows.
  const remoteOf = (h, total, mine) => total - mine;
  const mine = new Array(n).fill(0);
  let next = 2; // 10.80.0.1 is the gateway
  const reqBefore = sumReq(hosts);
  const cpu0 = cpuS(etcd.pid);
  const tc = now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < ENDPOINTS + 2) {
      const k = next++;
      const h = hosts[k % n];
      mine[h.i]++;
      const claim = await h.store.claimAddress(def, ipOf(k));
      await h.store.publishEndpoint({ cluster, id: id(), address: claim.address, mac: macFromIPv4(`${claim.address}/12`), name: `c${k}` });
    }
  }));
  const writtenMs = now() - tc;
  await until('every host to hold every endpoint and claim', () => hosts.every((h) => h.fdb.size === remoteOf(h, ENDPOINTS, mine[h.i]) && h.claims.mirror.size === ENDPOINTS));
  const fannedMs = now() - tc;
  const etcdCpuMsPerCreate = ((cpuS(etcd.pid) - cpu0) * 1000) / ENDPOINTS;
  const createReq = (sumReq(hosts) - reqBefore) / ENDPOINTS;
  await sleep(200);

  // New endpoints one at a time: publish on a random host, until the last other host has it.
  const conv = [];
  const fromAnswer = [];
  const perChange = { requests: [], events: [] };
  for (let p = 0; p < PROBES; p++) {
    const h = hosts[Math.floor(Math.random() * n)];
    const k = ENDPOINTS + 2 + p;
    const eid = id();
    for (const o of hosts) o.watched.add(eid);
    const r0 = sumReq(hosts);
    const e0 = sumEvents(hosts);
    const s = now();
    const claim = await h.store.claimAddress(def, ipOf(k));
    const p0 = now();
    await h.store.publishEndpoint({ cluster, id: eid, address: claim.address, mac: macFromIPv4(`${claim.address}/12`), name: `p${k}` });
    const answered = now();
    const others = hosts.filter((o) => o !== h);
    await until('the probe on every host', () => others.every((o) => o.seen.has(eid)), 10_000);
    const last = Math.max(...others.map((o) => o.seen.get(eid)));
    conv.push(last - p0);
    fromAnswer.push(last - answered);
    void s;
    await sleep(5); // the publisher's own event, which it skips
    perChange.requests.push(sumReq(hosts) - r0);
    perChange.events.push(sumEvents(hosts) - e0);
    for (const o of hosts) { o.watched.delete(eid); o.seen.delete(eid); }
  }

  // One lifecycle as the plugin runs it: claimAny on the followed claims (one transaction),
  // publish, publish again with the name (Join), withdraw, release. Then claimAny without the
  // followed copy (one list of every claim first), for its cost.
  const lh = hosts[0];
  const candidates = () => (function* () { for (let k = 2; ; k++) yield ipOf(k); })();
  const lr0 = lh.counted.total();
  const known = (key) => lh.claims.mirror.get(key) !== undefined;
  const claim = await lh.store.claimAny(def, candidates(), 16, known);
  const lid = id();
  const mac = macFromIPv4(`${claim.address}/12`);
  await lh.store.publishEndpoint({ cluster, id: lid, address: claim.address, mac });
  await lh.store.publishEndpoint({ cluster, id: lid, address: claim.address, mac, name: 'web' });
  await lh.store.withdrawEndpoint(cluster, lid);
  await lh.store.releaseAddress(cluster, claim.address);
  const lifecycleReq = lh.counted.total() - lr0;
  const lb0 = lh.counted.counts.readBytes;
  const ca = now();
  const listed = await lh.store.claimAny(def, candidates());
  const claimAnyMs = now() - ca;
  const claimAnyBytes = lh.counted.counts.readBytes - lb0;
  await lh.store.releaseAddress(cluster, listed.address);

  // A host (re)starting: list 10 000 records, program them, watch.
  const fresh = makeHost(n, etcd.endpoint);
  const rs = now();
  follow(fresh, cluster);
  await synced(fresh);
  const restartMs = now() - rs;
  const restartBytes = fresh.counted.counts.readBytes;
  await stopFollowing(fresh);
  await fresh.etcdKv.close();

  // Heap: every follower holds 10 000 records; then the recorded kernel tables are dropped.
  const heapAll = await heapMiB();
  for (const h of hosts) { h.fdb.clear(); h.neigh.clear(); }
  const heapFollowers = await heapMiB();
  const programUs = (hosts.reduce((a, h) => a + h.programMs, 0) / hosts.reduce((a, h) => a + h.steps / 2, 0)) * 1000;
  const eventUs = (hosts.reduce((a, h) => a + h.counted.counts.eventMs, 0) / sumEvents(hosts)) * 1000;

  for (const h of hosts) await stopFollowing(h);
  for (const h of hosts) await h.etcdKv.close();
  // What this run left in etcd goes (its endpoints, claims and definition), so the next starts equal.
  const admin = new EtcdKv({ endpoints: [etcd.endpoint] });
  for (const p of [`/mynet/v1/endpoints/${cluster}/`, `/mynet/v1/addresses/${cluster}/`]) await admin.client.delete().prefix(p).exec();
  await admin.client.delete().key(`/mynet/v1/networks/${cluster}`).exec();
  await admin.client.delete().key(`/mynet/v1/vnis/${def.vni}`).exec();
  await admin.close();

  return {
    n, setupMs, clientsRss, writtenMs, fannedMs, createReq, conv, fromAnswer, perChange, lifecycleReq, claimAnyMs, claimAnyBytes, restartMs, restartBytes,
    followerMiB: (heapFollowers - heapBase) / n, kernelMiB: (heapAll - heapFollowers) / n, programUs, eventUs, etcdCpuMsPerCreate,
    eventsPerHostPerChange: median(perChange.events) / n,
  };
}

const etcd = await startEtcd();
const rows = [];
try {
  const heapBase = await heapMiB();
  // Cost of the clients themselves: 50 gRPC channels, each answering one request.
  const rss0 = rssMiB();
  const probe = Array.from({ length: 50 }, () => new EtcdKv({ endpoints: [etcd.endpoint] }));
  const c0 = now();
  await Promise.all(probe.map((k) => k.get('/mynet/v1/nodes/none')));
  const clientMs = now() - c0;
  const clientRss = (rssMiB() - rss0) / 50;
  for (const k of probe) await k.close();
  console.log(`50 EtcdKv clients (one gRPC channel each): first request of all ${clientMs.toFixed(0)} ms, ~${clientRss.toFixed(2)} MiB RSS each`);
  for (const n of HOSTS) {
    const r = await runCluster(n, etcd, heapBase);
    rows.push(r);
    console.log(`N=${n}: ${ENDPOINTS} endpoints written in ${(r.writtenMs / 1000).toFixed(1)} s, on every host after ${(r.fannedMs / 1000).toFixed(1)} s; convergence p50 ${median(r.conv).toFixed(1)} ms p99 ${pct(r.conv, 99).toFixed(1)} ms`);
  }
} finally {
  await etcd.stop();
}

const f = (x, d = 1) => x.toFixed(d);
console.log(`\n${ENDPOINTS} endpoints on one cluster network, N simulated hosts in one process (kernel steps recorded), one etcd 3.4 on this machine\n`);
console.log(table(
  ['hosts', 'creates/s, all hosts hold (written)', 'etcd req / create', 'etcd CPU / create', 'converge p50 / p99', 'after answer p50', 'req / change', 'watch events / host / change', 'host work / event', 'lifecycle req', 'host restart (list)', 'follower heap'],
  rows.map((r) => [r.n, `${f(ENDPOINTS / (r.fannedMs / 1000), 0)} (${f(ENDPOINTS / (r.writtenMs / 1000), 0)})`, f(r.createReq, 2), `${f(r.etcdCpuMsPerCreate, 3)} ms`, `${f(median(r.conv))} / ${f(pct(r.conv, 99))} ms`, `${f(median(r.fromAnswer))} ms`,
    median(r.perChange.requests), f(r.eventsPerHostPerChange, 2), `${f(r.eventUs)} us`, r.lifecycleReq, `${f(r.restartMs, 0)} ms, ${f(r.restartBytes / 2 ** 20, 1)} MiB`, `${f(r.followerMiB, 2)} MiB (+${f(r.kernelMiB, 2)} tables)`]),
));

/** Least squares y = a + b x. */
const fit = (xs, ys) => {
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const b = xs.reduce((a, x, k) => a + (x - mx) * (ys[k] - my), 0) / (xs.reduce((a, x) => a + (x - mx) ** 2, 0) || 1);
  return { a: my - b * mx, b, at: (x) => my - b * mx + b * x };
};
const xs = rows.map((r) => r.n);
const conv = fit(xs, rows.map((r) => median(r.conv)));
const cpu = fit(xs, rows.map((r) => r.etcdCpuMsPerCreate));
const big = rows.at(-1);
// What a host holds and receives per endpoint: its record and its address claim (both followed).
const perEndpointBytes = big.restartBytes / ENDPOINTS;
const ev = big.eventsPerHostPerChange;
const followerKiB = (big.followerMiB * 1024) / ENDPOINTS;
console.log(`
claimAny without the followed claims, ${ENDPOINTS} claims: ${f(big.claimAnyMs)} ms, ${f(big.claimAnyBytes / 2 ** 20, 2)} MiB read (one list of every claim)
fits over ${xs.join(', ')} hosts (every simulated host shares this process's CPU and etcd's two cores):
  convergence p50 = ${f(conv.a, 2)} ms + ${f(conv.b, 4)} ms x hosts      -> 500 hosts: ${f(conv.at(500))} ms
  etcd CPU per create = ${f(cpu.a, 3)} ms + ${f(cpu.b * 1000, 2)} us x hosts   -> 500 hosts: ${f(cpu.at(500), 2)} ms (${f(1000 / cpu.at(500), 0)} creates/s per etcd core)

growth law, per new endpoint (E endpoints, N hosts, R new endpoints/s cluster-wide):
  etcd requests:    ${median(big.perChange.requests)} by the host that makes it (claim + put), whatever N or E; a whole lifecycle ${big.lifecycleReq}
  watch events:     ${f(ev, 2)} per host (the claim and the record; ${f(ev, 0)} x N in all), ~${f(perEndpointBytes, 0)} B together: etcd sends ${f(ev, 0)} x N x R events/s
  per host:         ${f(big.eventUs)} us of follower work per event, 2 kernel steps per endpoint
  per host memory:  ${f(followerKiB, 2)} KiB x E (the followed copies); a restart lists E records and E claims (${f(perEndpointBytes, 0)} B per endpoint)
  500 hosts, ${ENDPOINTS} endpoints: ${f(500 * ev, 0)} watch events (~${f((500 * perEndpointBytes) / 1024, 0)} KiB) per new endpoint; at R = 100/s, ${f((500 * 100 * perEndpointBytes) / 2 ** 20, 1)} MiB/s out of etcd and
                    ${f(100 * ev, 0)} events/s (${f((100 * ev * big.eventUs) / 1000, 1)} ms of CPU/s) per host; ${f(followerKiB * ENDPOINTS / 1024, 1)} MiB per host; all 500 restarting at once list ${f((500 * big.restartBytes) / 2 ** 30, 2)} GiB`);

const c50 = rows.find((r) => r.n === 50) ?? big;
goal(`17. sim ${c50.n} hosts, ${ENDPOINTS} endpoints: convergence p50 / p99`, `${f(median(c50.conv))} / ${f(pct(c50.conv, 99))} ms`, '', 'p50 < 100, p99 < 500 ms', median(c50.conv) < 100 && pct(c50.conv, 99) < 500);
goal(`17. sim ${c50.n} hosts: etcd requests / watch events per host, per change`, `${median(c50.perChange.requests)} / ${f(c50.eventsPerHostPerChange, 2)}`, '', '(reported)', true);
