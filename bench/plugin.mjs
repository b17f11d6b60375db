// Plugin-side performance, with the plugin in a throwaway network namespace (so it never touches
// this host's links or firewall), driven over its unix socket as dockerd would:
//  - start to the first answer (Plugin.Activate, what dockerd waits for); RSS idle
//  - time per container lifecycle (CreateEndpoint → Join → ProgramExternalConnectivity →
//    Revoke → Leave → DeleteEndpoint), p50/p99, inside the plugin (the sum of its six request
//    times, from its request log) and as the client sees it; host processes spawned per lifecycle
//  - the next lifecycle with 10 vs 1000 endpoints on the network, and with 1000 published ports
//  - the next RequestAddress in a /8 with 1 000 000 addresses taken (state preloaded)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goal, median, now, pct, sh, sleep, table, pluginClient } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 300);
const hex = (n, w = 64) => n.toString(16).padStart(w, '0');
// Endpoint ids as dockerd makes them: random, so that their first 12 hex (the veth names) differ.
const epId = () => randomBytes(32).toString('hex');
const ns = `mnt-bench-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'mnt-bench-'));
const sock = join(dir, 'p.sock');
const admin = join(dir, 'admin.sock');
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

const { call, answers, processes, rss } = pluginClient(sock, admin, agent);
const spawns = () => processes();

let proc;
let logFile;
/** Starts the plugin; resolves with ms to the first Plugin.Activate answer. Its request log goes to logFile. */
async function start(stateDir) {
  logFile = join(dir, `plugin-${now()}.log`);
  const t0 = now();
  proc = spawn('ip', ['netns', 'exec', ns, process.execPath, 'dist/main.js'], {
    env: { ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: admin, MYNET_STATE_DIR: stateDir, MYNET_LOG_LEVEL: 'info' },
    stdio: ['ignore', openSync(logFile, 'a'), 'inherit'],
  });
  while (!(await answers())) await sleep(1);
  await call('/Plugin.Activate');
  return now() - t0;
}
/** The plugin's own time per request (ms) from its request log, by route, each with its endpoint id. */
function requestLog() {
  return readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l));
}
/** Sums the plugin's time over each endpoint's requests (a lifecycle inside the plugin). */
function inPlugin(lines, endpoints) {
  const by = new Map();
  for (const l of lines) if (l.endpointId) by.set(l.endpointId, (by.get(l.endpointId) ?? 0) + l.ms);
  return endpoints.map((e) => by.get(e.slice(0, 12))).filter((x) => x !== undefined);
}
async function stop() { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); }

const NET = hex(0xabc1);
let epSeq = 1;
let lifecycleIds = [];
async function lifecycle(port) {
  const ep = epId();
  lifecycleIds.push(ep);
  epSeq++;
  const ip = `10.64.${(epSeq >> 8) & 255}.${epSeq & 255}/16`;
  const t0 = now();
  await call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: ep, Interface: { Address: ip, AddressIPv6: '', MacAddress: '' }, Options: {} });
  await call('/NetworkDriver.Join', { NetworkID: NET, EndpointID: ep, SandboxKey: '/var/run/docker/netns/x', Options: {} });
  await call('/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: ep, Options: { 'com.docker.network.portmap': port ? [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: port, HostPortEnd: port }] : [] } });
  await call('/NetworkDriver.RevokeExternalConnectivity', { NetworkID: NET, EndpointID: ep });
  await call('/NetworkDriver.Leave', { NetworkID: NET, EndpointID: ep });
  await call('/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: ep });
  return now() - t0;
}
async function endpoint(port) {
  const ep = epId();
  epSeq++;
  const ip = `10.64.${(epSeq >> 8) & 255}.${epSeq & 255}/16`;
  await call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: ep, Interface: { Address: ip }, Options: {} });
  await call('/NetworkDriver.Join', { NetworkID: NET, EndpointID: ep, SandboxKey: 'k', Options: {} });
  if (port) await call('/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: ep, Options: { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: port, HostPortEnd: port }] } });
}
async function sample(n, port) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await lifecycle(port));
  return xs;
}

const rows = [];
sh('ip', ['netns', 'add', ns]);
try {
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  const stateDir = join(dir, 'state');
  const startMs = [];
  for (let i = 0; i < 5; i++) { startMs.push(await start(join(dir, `s${i}`))); await stop(); }
  rows.push(['start to first answer, Plugin.Activate (median of 5)', `${median(startMs).toFixed(0)} ms`, 'goal < 300 ms']);
  goal('6. plugin start to first answer', `${median(startMs).toFixed(0)} ms`, '(in dockerd)', '< 300 ms', median(startMs) < 300);
  await start(stateDir);
  await sleep(500);
  const rssIdle = rss(proc.pid);
  rows.push(['RSS idle', `${rssIdle.toFixed(1)} MiB`, '']);
  await call('/NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'x', Pool: '10.64.0.0/16', Gateway: '10.64.0.1/16' }], IPv6Data: [] });
  await sample(20, 0); // warm-up
  const s0 = await spawns();
  lifecycleIds = [];
  const plain = await sample(ROUNDS, 0);
  const plainIds = lifecycleIds;
  const s1 = await spawns();
  lifecycleIds = [];
  const withPort = await sample(ROUNDS, 30001);
  const portIds = lifecycleIds;
  const s2 = await spawns();
  const log = requestLog();
  const inside = [inPlugin(log, plainIds), inPlugin(log, portIds)];
  const p50p99 = (xs) => `${median(xs).toFixed(2)} / ${pct(xs, 99).toFixed(2)} ms`;
  rows.push(['lifecycle, no port, inside the plugin: p50 / p99', p50p99(inside[0]), 'goal p50 < 10 ms']);
  rows.push(['  as the client sees it (6 round trips)', p50p99(plain), '']);
  rows.push(['  processes per lifecycle', ((s1 - s0) / ROUNDS).toFixed(1), '']);
  rows.push(['lifecycle, one port, inside the plugin: p50 / p99', p50p99(inside[1]), '']);
  rows.push(['  as the client sees it', p50p99(withPort), '']);
  rows.push(['  processes per lifecycle', ((s2 - s1) / ROUNDS).toFixed(1), 'conntrack, after the answer']);
  goal('2. lifecycle inside the plugin, no port: p50 (processes)', `${median(inside[0]).toFixed(2)} ms (${((s1 - s0) / ROUNDS).toFixed(1)})`, '(in dockerd)', 'p50 < 10 ms', median(inside[0]) < 10);
  goal('2. lifecycle inside the plugin, one port: p50 (processes)', `${median(inside[1]).toFixed(2)} ms (${((s2 - s1) / ROUNDS).toFixed(1)})`, '(in dockerd)', 'p50 < 10 ms', median(inside[1]) < 10);
  // Scale: the next lifecycle (no port, and one port) with 10 endpoints on the network, then
  // with 1000 endpoints of which 990 publish a port; inside the plugin, p50 of SCALE_ROUNDS each.
  const SCALE_ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 200);
  const next = async () => {
    const ids = {};
    for (const [k, port] of [['plain', 0], ['port', 30002]]) {
      lifecycleIds = [];
      await sample(SCALE_ROUNDS, port);
      ids[k] = lifecycleIds;
    }
    const l = requestLog();
    return { plain: median(inPlugin(l, ids.plain)), port: median(inPlugin(l, ids.port)) };
  };
  for (let i = 0; i < 10; i++) await endpoint(0);
  const at10 = await next();
  for (let i = 10; i < 1000; i++) await endpoint(40000 + i);
  const rss1000 = rss(proc.pid);
  rows.push(['RSS with 1000 endpoints, 990 ports', `${rss1000.toFixed(1)} MiB`, '']);
  const at1000 = await next();
  const ratio = (a, b) => `${a.toFixed(2)} / ${b.toFixed(2)} ms  (x${(b / a).toFixed(2)})`;
  rows.push(['next lifecycle, no port, at 10 / 1000 endpoints (inside, p50)', ratio(at10.plain, at1000.plain), 'goal <= x1.2']);
  rows.push(['next lifecycle, one port, at 10 / 1000 endpoints and 0 / 990 ports (inside, p50)', ratio(at10.port, at1000.port), 'goal <= x1.2']);
  goal('3. next lifecycle, 1000 vs 10 endpoints', `x${(at1000.plain / at10.plain).toFixed(2)}`, '', '<= x1.2', at1000.plain / at10.plain <= 1.2);
  goal('3. next lifecycle, 990 vs 0 published ports', `x${(at1000.port / at10.port).toFixed(2)}`, '', '<= x1.2', at1000.port / at10.port <= 1.2);
  goal('6. RSS idle / with 1000 endpoints', `${rssIdle.toFixed(1)} / ${rss1000.toFixed(1)} MiB`, '', '(reported)', true);
  await stop();

  // IPAM: preload a /8 pool with 1 000 000 addresses taken, then time RequestAddress over the socket.
  const ipamDir = join(dir, 'ipam');
  mkdirSync(ipamDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(ipamDir, 'state.json'), JSON.stringify({ version: 1, seq: 0, networks: [], endpoints: [], pools: [{ id: 'p8', space: 'mynet-local', pool: '10.0.0.0/8', family: 4, options: {}, taken: [['10.0.0.1', '10.15.66.64']], cursor: '10.15.66.64' }] }));
  await start(ipamDir);
  await sleep(500); // restore and the first doctor check are done
  const ipam = [];
  const floor = [];
  for (let i = 0; i < 300; i++) {
    let t0 = now();
    await call('/IpamDriver.GetCapabilities', {});
    floor.push(now() - t0);
    t0 = now();
    await call('/IpamDriver.RequestAddress', { PoolID: 'p8', Address: '', Options: {} });
    ipam.push(now() - t0);
  }
  const ipamInside = requestLog().filter((l) => l.route === '/IpamDriver.RequestAddress').map((l) => l.ms);
  rows.push(['RequestAddress in a /8 with 1 000 000 taken, inside the plugin (p50, incl. fsync)', `${median(ipamInside).toFixed(2)} ms`, 'goal < 1 ms']);
  rows.push(['  as the client sees it (p50) / any request\'s round trip (GetCapabilities)', `${median(ipam).toFixed(2)} / ${median(floor).toFixed(2)} ms`, '']);
  goal('5. RequestAddress in a /8 with 10^6 taken, inside (client)', `${median(ipamInside).toFixed(2)} ms (${median(ipam).toFixed(2)})`, '', '< 1 ms', median(ipamInside) < 1);
  await stop();
} finally {
  if (proc && proc.exitCode === null) await stop();
  sh('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
}
console.log(table(['figure', 'mynet', 'note'], rows));
