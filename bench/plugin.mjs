// Plugin-side performance, with the plugin in a throwaway network namespace (so it never touches
// this host's links or firewall), driven over its unix socket as dockerd would:
//  - start to socket ready; RSS idle
//  - time per container lifecycle (CreateEndpoint → Join → ProgramExternalConnectivity →
//    Revoke → Leave → DeleteEndpoint), p50/p99, and host processes spawned per lifecycle
//  - the next lifecycle with 10 vs 1000 endpoints on the network, and with 1000 published ports
//  - the next RequestAddress in a /8 with 1 000 000 addresses taken (state preloaded)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { median, now, pct, sh, sleep, table } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 300);
const hex = (n, w = 64) => n.toString(16).padStart(w, '0');
// Endpoint ids as dockerd makes them: random, so that their first 12 hex (the veth names) differ.
const epId = () => randomBytes(32).toString('hex');
const ns = `mnt-bench-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'mnt-bench-'));
const sock = join(dir, 'p.sock');
const admin = join(dir, 'admin.sock');
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function call(path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = request({ socketPath: sock, path, method: 'POST', agent, headers: { 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      const c = [];
      res.on('data', (d) => c.push(d));
      res.on('end', () => {
        const t = Buffer.concat(c).toString();
        if (res.statusCode === 200) resolve(JSON.parse(t)); else reject(new Error(`${path}: ${t}`));
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}
const adminGet = (path) => new Promise((resolve, reject) => {
  request({ socketPath: admin, path }, (res) => { let t = ''; res.on('data', (d) => (t += d)); res.on('end', () => resolve(t)); }).on('error', reject).end();
});
const answers = () => new Promise((res) => { const c = createConnection(sock); c.once('connect', () => { c.destroy(); res(true); }); c.once('error', () => res(false)); });
const spawns = async () => (await adminGet('/metrics')).split('\n').filter((l) => l.startsWith('mynet_host_processes_total')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

let proc;
async function start(stateDir) {
  const t0 = now();
  proc = spawn('ip', ['netns', 'exec', ns, process.execPath, 'dist/main.js'], {
    env: { ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: admin, MYNET_STATE_DIR: stateDir, MYNET_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', process.env.BENCH_LOG ? 'inherit' : 'ignore', 'inherit'],
  });
  while (!(await answers())) await sleep(2);
  return now() - t0;
}
async function stop() { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); }

const NET = hex(0xabc1);
let epSeq = 1;
async function lifecycle(port) {
  const ep = epId();
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
  rows.push(['start to socket ready (median of 5)', `${median(startMs).toFixed(0)} ms`, 'goal < 300 ms']);
  await start(stateDir);
  await sleep(500);
  rows.push(['RSS idle', `${rss(proc.pid).toFixed(1)} MiB`, '']);
  await call('/NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'x', Pool: '10.64.0.0/16', Gateway: '10.64.0.1/16' }], IPv6Data: [] });
  await sample(20, 0); // warm-up
  const s0 = await spawns();
  const plain = await sample(ROUNDS, 0);
  const s1 = await spawns();
  const withPort = await sample(ROUNDS, 30001);
  const s2 = await spawns();
  rows.push(['lifecycle, no port: p50 / p99', `${median(plain).toFixed(2)} / ${pct(plain, 99).toFixed(2)} ms`, 'goal p50 < 10 ms']);
  rows.push(['  processes per lifecycle', ((s1 - s0) / ROUNDS).toFixed(1), '']);
  rows.push(['lifecycle, one port: p50 / p99', `${median(withPort).toFixed(2)} / ${pct(withPort, 99).toFixed(2)} ms`, '']);
  rows.push(['  processes per lifecycle', ((s2 - s1) / ROUNDS).toFixed(1), '']);
  for (let i = 0; i < 10; i++) await endpoint(0);
  const at10 = median(await sample(100, 30002));
  for (let i = 10; i < 1000; i++) await endpoint(i < 1000 ? 40000 + i : 0);
  rows.push(['RSS with 1000 endpoints, 990 ports', `${rss(proc.pid).toFixed(1)} MiB`, '']);
  const at1000 = median(await sample(100, 30002));
  rows.push(['next lifecycle at 10 / 1000 endpoints (p50)', `${at10.toFixed(2)} / ${at1000.toFixed(2)} ms  (x${(at1000 / at10).toFixed(2)})`, 'goal <= x1.2']);
  await stop();

  // IPAM: preload a /8 pool with 1 000 000 addresses taken, then time RequestAddress over the socket.
  const ipamDir = join(dir, 'ipam');
  mkdirSync(ipamDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(ipamDir, 'state.json'), JSON.stringify({ version: 1, seq: 0, networks: [], endpoints: [], pools: [{ id: 'p8', space: 'mynet-local', pool: '10.0.0.0/8', family: 4, options: {}, taken: [['10.0.0.1', '10.15.66.64']], cursor: '10.15.66.64' }] }));
  await start(ipamDir);
  const ipam = [];
  for (let i = 0; i < 200; i++) { const t0 = now(); await call('/IpamDriver.RequestAddress', { PoolID: 'p8', Address: '', Options: {} }); ipam.push(now() - t0); }
  rows.push(['RequestAddress in a /8 with 1 000 000 taken (p50, incl. fsync)', `${median(ipam).toFixed(2)} ms`, 'goal < 1 ms']);
  await stop();
} finally {
  if (proc && proc.exitCode === null) await stop();
  sh('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
}
console.log(table(['figure', 'mynet', 'note'], rows));
