// Issue 25: network policy at scale. Two real plugins side by side, each in its own throwaway
// namespace with one local network of 1 000 endpoints (labels app=a0..a49, tier=t0..t6,
// half=y|n): "none" has no policy, "pol" has 100 policies selecting overlapping subsets (~20 or
// ~140 endpoints each, every endpoint selected by several). Driven in turn, lifecycle by
// lifecycle, so the machine's load (2 shared cores) weighs on both alike. It measures
//   (a) the next endpoint lifecycle (6 requests, p50/p90 inside the plugin), pol / none (goal <= x1.2);
//   (b) applying (and removing) a policy that selects 500 endpoints: the admin request's time, and
//       whether an established allowed TCP connection (an echo every 5 ms) survives, its longest gap;
//   (c) iperf3 TCP throughput between two real namespaced containers, pol / none (goal >= 0.95),
//       the flow allowed by a policy that selects the server.
//   flock /tmp/mynet-tier.lock node bench/policy.mjs     (BENCH_ROUNDS, BENCH_ENDPOINTS, BENCH_TP_SECONDS)
//   BENCH_CPU_PROF=/tmp/prof ...: the pol plugin restarted with --cpu-prof before the lifecycles
// Names: namespaces mnt-mnb3-*, subnet 10.227.0.0/16 (inside the namespaces only).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NO_PORT_ROUTES as ROUTES, goal, lifecycleTimes, median, noPortLifecycle, now, pct, pluginClient, sh, sleep, table } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 100);
const BIG = Number(process.env.BENCH_ENDPOINTS ?? 1000);
const TP_SECONDS = Number(process.env.BENCH_TP_SECONDS ?? 5);
const PROF = process.env.BENCH_CPU_PROF;
const DIST = resolve(process.env.BENCH_DIST ?? 'dist');
const POLICIES = 100;
const id = () => randomBytes(32).toString('hex');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const labelsOf = (i) => ({ 'mynet.label.app': `a${i % 50}`, 'mynet.label.tier': `t${i % 7}`, 'mynet.label.half': i % 2 ? 'y' : 'n' });

/** 99 policies over the filler endpoints, and one that lets the client reach the server (iperf3, echo). */
function policyFile(net) {
  const ps = [];
  for (let k = 0; k < POLICIES - 1; k++) {
    const select = k < 50 ? `{ app: a${k} }` : `{ tier: t${k % 7}, half: ${k % 2 ? 'y' : 'n'} }`;
    ps.push(`name: pol-${k}\nnetwork: ${net}\nselect: ${select}\ningress:\n  - from: [ { app: a${(k + 1) % 50} }, { tier: t${(k + 3) % 7} } ]\n    ports: [ tcp/${8000 + k} ]\n`);
  }
  ps.push(`name: pol-srv\nnetwork: ${net}\nselect: { app: srv }\ningress:\n  - from: [ { app: cli } ]\n    ports: [ tcp/5201, tcp/7000 ]\n`);
  return ps.join('---\n');
}
const halfPolicy = (net) => `name: half\nnetwork: ${net}\nselect: { half: y }\ningress:\n  - from: [ { app: cli } ]\n`;

function side(name) {
  const ns = `mnt-mnb3-${name}-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), `mnt-mnb3-${name}-`));
  const sock = join(dir, 'p.sock');
  const admin = join(dir, 'admin.sock');
  const c = pluginClient(sock, admin, new Agent({ keepAlive: true, maxSockets: 1 }));
  const s = { name, ns, dir, proc: undefined, logs: [], net: id(), seq: 1, ids: [], boxes: [] };
  const run = (...argv) => sh('ip', ['netns', 'exec', ns, ...argv]);
  s.start = async (prof) => {
    const logFile = join(dir, `plugin-${s.logs.length}.log`);
    s.logs.push(logFile);
    const flags = prof ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
    s.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, ...flags, join(DIST, 'main.js')], {
      env: { ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: admin, MYNET_STATE_DIR: join(dir, 'state'), MYNET_LOG_LEVEL: 'info', MYNET_DNS_LISTEN: '' },
      stdio: ['ignore', openSync(logFile, 'a'), 'inherit'],
    });
    while (!(await c.answers())) await sleep(5);
    await c.call('/Plugin.Activate');
  };
  s.stop = async () => {
    if (s.proc && s.proc.exitCode === null) { s.proc.kill('SIGTERM'); await new Promise((r) => s.proc.once('exit', r)); }
  };
  s.admin = (method, path, body = '') => new Promise((res, rej) => {
    const req = request({ socketPath: admin, path, method, headers: { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) } }, (r) => {
      let t = '';
      r.on('data', (d) => (t += d));
      r.on('end', () => (r.statusCode === 200 ? res(t) : rej(new Error(`${name} ${method} ${path}: ${t}`))));
    });
    req.on('error', rej);
    req.end(body);
  });
  const address = () => { s.seq++; return `10.227.${(s.seq >> 8) & 255}.${s.seq & 255}/16`; };
  s.create = async () => {
    sh('ip', ['netns', 'add', ns]);
    run('ip', 'link', 'set', 'lo', 'up');
    await s.start(false);
    await c.call('/NetworkDriver.CreateNetwork', { NetworkID: s.net, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'x', Pool: '10.227.0.0/16', Gateway: '10.227.0.1/16' }], IPv6Data: [] });
  };
  /** An endpoint that stays, as a running container's does (made, joined); answers Join's reply. */
  s.endpoint = async (Options, Address = address()) => {
    const EndpointID = id();
    await c.call('/NetworkDriver.CreateEndpoint', { NetworkID: s.net, EndpointID, Interface: { Address }, Options });
    return c.call('/NetworkDriver.Join', { NetworkID: s.net, EndpointID, SandboxKey: 'k', Options: {} });
  };
  /** A real container: a namespace of ours given the endpoint's veth end, as dockerd does. */
  s.box = async (role, app, cidr) => {
    const j = await s.endpoint({ 'mynet.label.app': app, 'mynet.label.half': 'y' }, cidr);
    const box = { name: `mnt-mnb3-${name}${role}-${process.pid}`, ip: cidr.split('/')[0] };
    sh('ip', ['netns', 'add', box.name]);
    s.boxes.push(box.name);
    box.run = (...argv) => sh('ip', ['netns', 'exec', box.name, ...argv]);
    box.run('sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    box.run('ip', 'link', 'set', 'lo', 'up');
    run('ip', 'link', 'set', 'dev', j.InterfaceName.SrcName, 'netns', box.name);
    box.run('ip', 'link', 'set', 'dev', j.InterfaceName.SrcName, 'name', 'eth0');
    box.run('ip', 'addr', 'add', cidr, 'dev', 'eth0');
    box.run('ip', 'link', 'set', 'eth0', 'up');
    return box;
  };
  s.lifecycle = async () => {
    const EndpointID = id();
    s.ids.push(EndpointID.slice(0, 12));
    await noPortLifecycle(c.call, s.net, EndpointID, address(), labelsOf(s.seq));
  };
  /** p50 and p90 inside the plugin of the lifecycles in `ids`, and p50 per request. */
  s.figures = () => {
    const { sums, per } = lifecycleTimes(s.logs, s.ids);
    return { p50: median(sums), p90: pct(sums, 90), per };
  };
  s.remove = async () => {
    await s.stop();
    for (const b of [...s.boxes, ns]) sh('ip', ['netns', 'del', b]);
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  };
  return s;
}

// The echo stream of (b): the client writes a byte every 5 ms on one connection and notes the
// longest wait for an echo; on SIGTERM it prints what it saw. An error or a reset ends it early.
const ECHO_SERVER = `require('net').createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(7000, process.argv[1])`;
const ECHO_CLIENT = `const c = require('net').connect(7000, process.argv[1]); let sent = 0, got = 0, last = 0, gap = 0, err = '';
c.on('connect', () => { last = Date.now(); setInterval(() => { c.write('x'); sent++; }, 5); });
c.on('data', (d) => { const t = Date.now(); gap = Math.max(gap, t - last); last = t; got += d.length; });
c.on('error', (e) => { err = e.message; }); c.on('close', () => { if (!err) err = 'closed'; });
process.on('SIGTERM', () => { console.log(JSON.stringify({ sent, got, gap, err })); process.exit(0); });`;

async function echoDuring(pol, srv, cli, work) {
  const server = spawn('ip', ['netns', 'exec', srv.name, process.execPath, '-e', ECHO_SERVER, srv.ip], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 200 && !srv.run('busybox', 'netstat', '-ltn').includes(':7000'); i++) await sleep(20);
    const client = spawn('ip', ['netns', 'exec', cli.name, process.execPath, '-e', ECHO_CLIENT, srv.ip], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    client.stdout.on('data', (d) => (out += d));
    const exited = new Promise((r) => client.once('exit', r));
    await sleep(500);
    const r = await work();
    await sleep(500);
    client.kill('SIGTERM');
    await exited;
    return { ...r, echo: JSON.parse(out) };
  } finally {
    server.kill('SIGTERM');
  }
}

async function iperf(from, to) {
  const srv = spawn('ip', ['netns', 'exec', to.name, 'iperf3', '-s', '-1', '-B', to.ip], { stdio: 'ignore' });
  const exited = new Promise((r) => srv.once('exit', r));
  try {
    for (let i = 0; i < 100 && !to.run('busybox', 'netstat', '-ltn').includes(':5201'); i++) await sleep(20);
    const out = JSON.parse(from.run('iperf3', '-c', to.ip, '-t', String(TP_SECONDS), '-O', '1', '-J'));
    return out.end.sum_received.bits_per_second / 1e9;
  } finally {
    srv.kill('SIGTERM');
    await exited;
  }
}

const none = side('none');
const pol = side('pol');
const sides = [none, pol];
try {
  for (const s of sides) await s.create();
  for (const s of sides) {
    s.srv = await s.box('s', 'srv', '10.227.200.1/16');
    s.cli = await s.box('c', 'cli', '10.227.200.2/16');
  }
  const t0 = now();
  for (let i = 0; i < BIG; i++) for (const s of sides) await s.endpoint(labelsOf(i));
  console.log(`${BIG} endpoints made on each plugin in ${((now() - t0) / 1000).toFixed(1)} s`);
  let t = now();
  await pol.admin('POST', '/policies', policyFile(pol.net));
  console.log(`${POLICIES} policies applied in one request in ${(now() - t).toFixed(0)} ms`);

  // (c) first, on a quiet plugin: 3 rounds interleaved.
  const tp = { none: [], pol: [] };
  for (let i = 0; i < 3; i++) for (const s of i % 2 ? [pol, none] : [none, pol]) tp[s.name].push(await iperf(s.cli, s.srv));

  // (b) 3 applies and removals of the 500-endpoint policy, an echo stream running through each.
  const applies = [];
  const removes = [];
  const echoes = [];
  for (let i = 0; i < 3; i++) {
    const r = await echoDuring(pol, pol.srv, pol.cli, async () => {
      t = now();
      await pol.admin('POST', '/policies', halfPolicy(pol.net));
      const apply = now() - t;
      const selects = JSON.parse(await pol.admin('GET', '/policies')).policies.find((p) => p.name === 'half');
      t = now();
      await pol.admin('DELETE', '/policies/half');
      return { apply, remove: now() - t, selects };
    });
    applies.push(r.apply);
    removes.push(r.remove);
    echoes.push(r.echo);
    if (i === 0) console.log(`the policy "half" selects ${r.selects.selects.length} endpoints (mynet policy ls)`);
  }

  // (a) the lifecycles, interleaved.
  if (PROF) { await pol.stop(); await pol.start(true); }
  for (let i = 0; i < 10; i++) for (const s of sides) await s.lifecycle(); // warm-up
  for (const s of sides) s.ids = [];
  const loadBefore = load();
  const t1 = now();
  for (let i = 0; i < ROUNDS; i++) for (const s of i % 2 ? [pol, none] : [none, pol]) await s.lifecycle();
  const f = { none: none.figures(), pol: pol.figures() };
  console.log(`\n${ROUNDS} interleaved lifecycles per plugin in ${((now() - t1) / 1000).toFixed(0)} s; load average before ${loadBefore}, after ${load()}; dist = ${DIST}\n`);
  const ratio = f.pol.p50 / f.none.p50;
  const rows = [
    ['(a) lifecycle p50 (6 requests)', f.none.p50.toFixed(2), f.pol.p50.toFixed(2), `x${ratio.toFixed(2)}`],
    ['(a) lifecycle p90', f.none.p90.toFixed(2), f.pol.p90.toFixed(2), `x${(f.pol.p90 / f.none.p90).toFixed(2)}`],
    ...ROUTES.map((r) => [`      ${r} p50`, f.none.per[r].toFixed(2), f.pol.per[r].toFixed(2), `x${(f.pol.per[r] / f.none.per[r]).toFixed(2)}`]),
  ];
  console.log(table([`ms inside the plugin, ${BIG} endpoints`, '0 policies', `${POLICIES} policies`, 'ratio'], rows));
  const [g0, g1] = [median(tp.none), median(tp.pol)];
  console.log(`\n(c) iperf3 TCP ${TP_SECONDS} s, median of 3: ${g0.toFixed(2)} Gbit/s without policy, ${g1.toFixed(2)} with ${POLICIES} (allowed flow), ratio ${(g1 / g0).toFixed(2)}`);
  const cut = echoes.filter((e) => e.err || e.got < e.sent - 2);
  console.log(`(b) apply of a policy selecting ${BIG / 2} endpoints: ${applies.map((x) => x.toFixed(0)).join(', ')} ms (remove: ${removes.map((x) => x.toFixed(0)).join(', ')} ms)`);
  console.log(`    established TCP echo through each: ${echoes.map((e) => `${e.got}/${e.sent} echoed, longest gap ${e.gap} ms${e.err ? `, ${e.err}` : ''}`).join('; ')}`);
  goal(`25. next lifecycle, ${POLICIES} policies vs none, ${BIG} endpoints`, `x${ratio.toFixed(2)}`, '', '<= x1.2', ratio <= 1.2);
  goal('25. TCP throughput of an allowed flow, policies / none', (g1 / g0).toFixed(2), '', '>= 0.95', g1 / g0 >= 0.95);
  goal(`25. apply a policy selecting ${BIG / 2} endpoints (p50 ms), flow kept`, `${median(applies).toFixed(0)} ms`, '', 'no cut', cut.length === 0);
} finally {
  for (const s of sides) await s.remove().catch((err) => console.error(`${s.name}: ${err.message}`));
}
