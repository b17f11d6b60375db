// The next lifecycle (no port) on a network with 10 endpoints and on one with 1000, with the two
// plugins running side by side and driven in turn, lifecycle by lifecycle: the machine's load
// (2 shared cores, other test suites) then weighs on both alike, and the ratio 1000 / 10 is read
// from the same minutes. With two builds (BENCH_DIST_A, BENCH_DIST_B) it runs four plugins, A at
// 10 and at 1000, B at 10 and at 1000, all interleaved, so a change is measured against the
// build before it in the same minutes too.
//   node bench/scale-ab.mjs                                        # this checkout's dist/ alone
//   BENCH_DIST_A=/tmp/old/dist node bench/scale-ab.mjs             # A: the build before, B: dist/
//   BENCH_CPU_PROF=/tmp/prof node bench/scale-ab.mjs               # each plugin restarted with
//     --cpu-prof once its endpoints exist: the profiles hold the measured lifecycles (and a restore)
// Each plugin runs in its own throwaway network namespace (mnt-npb-*). Prints p50 inside the
// plugin (its request log) per lifecycle and per request, the ratios, and the load average.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NO_PORT_ROUTES as ROUTES, goal, lifecycleTimes, median, noPortLifecycle, now, pluginClient, sh, sleep, table } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const BIG = Number(process.env.BENCH_ENDPOINTS ?? 1000);
const PROF = process.env.BENCH_CPU_PROF;
const builds = process.env.BENCH_DIST_A ? { A: resolve(process.env.BENCH_DIST_A), B: resolve(process.env.BENCH_DIST_B ?? 'dist') } : { B: resolve(process.env.BENCH_DIST_B ?? 'dist') };
const id = () => randomBytes(32).toString('hex');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

function side(build, size) {
  const name = `${build}${size}`;
  const ns = `mnt-npb-${name}-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), `mnt-npb-${name}-`));
  const sock = join(dir, 'p.sock');
  const c = pluginClient(sock, join(dir, 'admin.sock'), new Agent({ keepAlive: true, maxSockets: 1 }));
  const s = { name, build, size, ns, dir, proc: undefined, logs: [], net: id(), seq: 1, ids: [] };
  s.start = async (prof) => {
    const logFile = join(dir, `plugin-${s.logs.length}.log`);
    s.logs.push(logFile);
    const flags = prof ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
    s.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, ...flags, join(builds[build], 'main.js')], {
      env: { ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: join(dir, 'admin.sock'), MYNET_STATE_DIR: join(dir, 'state'), MYNET_LOG_LEVEL: 'info', MYNET_DNS_LISTEN: '' },
      stdio: ['ignore', openSync(logFile, 'a'), 'inherit'],
    });
    while (!(await c.answers())) await sleep(5);
    await c.call('/Plugin.Activate');
  };
  s.stop = async () => {
    if (s.proc && s.proc.exitCode === null) { s.proc.kill('SIGTERM'); await new Promise((r) => s.proc.once('exit', r)); }
  };
  const address = () => { s.seq++; return `10.64.${(s.seq >> 8) & 255}.${s.seq & 255}/16`; };
  s.create = async () => {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await s.start(false);
    await c.call('/NetworkDriver.CreateNetwork', { NetworkID: s.net, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'x', Pool: '10.64.0.0/16', Gateway: '10.64.0.1/16' }], IPv6Data: [] });
  };
  // An endpoint that stays, as a running container's does (made, joined).
  s.endpoint = async () => {
    const EndpointID = id();
    await c.call('/NetworkDriver.CreateEndpoint', { NetworkID: s.net, EndpointID, Interface: { Address: address() }, Options: {} });
    await c.call('/NetworkDriver.Join', { NetworkID: s.net, EndpointID, SandboxKey: 'k', Options: {} });
  };
  s.lifecycle = async () => {
    const EndpointID = id();
    s.ids.push(EndpointID.slice(0, 12));
    await noPortLifecycle(c.call, s.net, EndpointID, address());
  };
  /** p50 inside the plugin of the lifecycles in `ids`: whole, and per request. */
  s.figures = () => {
    const { sums, per } = lifecycleTimes(s.logs, s.ids);
    return { lifecycle: median(sums), per };
  };
  s.remove = async () => {
    await s.stop();
    sh('ip', ['netns', 'del', ns]);
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  };
  return s;
}

const sides = Object.keys(builds).flatMap((b) => [side(b, 10), side(b, BIG)]);
try {
  for (const s of sides) await s.create();
  const t0 = now();
  // Filled in turn, so every plugin's journal and kernel grow over the same minutes.
  for (let i = 0; i < BIG; i++) for (const s of sides) if (i < s.size) await s.endpoint();
  console.log(`${BIG} endpoints made in ${((now() - t0) / 1000).toFixed(1)} s`);
  if (PROF) for (const s of sides) { await s.stop(); await s.start(true); }
  for (let i = 0; i < 20; i++) for (const s of sides) await s.lifecycle(); // warm-up
  for (const s of sides) s.ids = [];
  const loadBefore = load();
  const t1 = now();
  for (let i = 0; i < ROUNDS; i++) {
    // A different order every round, so that no plugin always follows another's background work.
    const order = sides.map((_, k) => sides[(k + i) % sides.length]);
    for (const s of order) await s.lifecycle();
  }
  const loadAfter = load();
  const f = Object.fromEntries(sides.map((s) => [s.name, s.figures()]));
  console.log(`${ROUNDS} interleaved lifecycles per plugin in ${((now() - t1) / 1000).toFixed(0)} s; load average before ${loadBefore}, after ${loadAfter}`);
  for (const [b, dist] of Object.entries(builds)) console.log(`  ${b} = ${dist}`);
  const rows = [];
  for (const b of Object.keys(builds)) {
    const [small, big] = [f[`${b}10`], f[`${b}${BIG}`]];
    rows.push([`${b}: lifecycle, no port (6 requests)`, small.lifecycle.toFixed(2), big.lifecycle.toFixed(2), `x${(big.lifecycle / small.lifecycle).toFixed(2)}`]);
    for (const r of ROUTES) rows.push([`${b}:   ${r}`, small.per[r].toFixed(2), big.per[r].toFixed(2), `x${(big.per[r] / small.per[r]).toFixed(2)}`]);
  }
  console.log(table(['p50 inside the plugin, ms', '10 endpoints', `${BIG} endpoints`, 'ratio'], rows));
  const last = Object.keys(builds).pop();
  const ratio = f[`${last}${BIG}`].lifecycle / f[`${last}10`].lifecycle;
  goal(`3. next lifecycle, ${BIG} vs 10 endpoints, side by side`, `x${ratio.toFixed(2)}`, '', '<= x1.2', ratio <= 1.2);
} finally {
  for (const s of sides) await s.remove().catch((err) => console.error(`${s.name}: ${err.message}`));
}
