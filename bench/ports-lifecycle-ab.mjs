// The one-port lifecycle of bench/plugin.mjs (CreateEndpoint, Join, ProgramExternalConnectivity
// publishing one TCP port, Revoke, Leave, DeleteEndpoint), for two builds of the plugin side by
// side, interleaved lifecycle by lifecycle so that the machine's load weighs on both alike:
// BENCH_DIST_A (default: another checkout's dist/, e.g. the commit before) against BENCH_DIST_B
// (default: this checkout's dist/). Each plugin runs in its own throwaway namespace. Prints the
// p50 inside the plugin (its request log) of the whole lifecycle and of Program/Revoke alone.
//   BENCH_DIST_A=/tmp/mnt-old/dist node bench/ports-lifecycle-ab.mjs
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createConnection } from 'node:net';
import { median, now, sh, sleep, table } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 300);
const dists = { A: resolve(process.env.BENCH_DIST_A ?? '../mnt-old/dist'), B: resolve(process.env.BENCH_DIST_B ?? 'dist') };
const id = () => randomBytes(32).toString('hex');

function side(name) {
  const ns = `mnt-bench-ab${name}-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), `mnt-bench-ab${name}-`));
  const sock = join(dir, 'p.sock');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const logFile = join(dir, 'plugin.log');
  const s = { name, ns, dir, sock, logFile, proc: undefined, net: id(), seq: 1, ids: [] };
  s.call = (path, body) => new Promise((res, rej) => {
    const data = JSON.stringify(body ?? {});
    const req = request({ socketPath: sock, path, method: 'POST', agent, headers: { 'Content-Length': Buffer.byteLength(data) } }, (r) => {
      const c = [];
      r.on('data', (d) => c.push(d));
      r.on('end', () => (r.statusCode === 200 ? res(JSON.parse(Buffer.concat(c).toString())) : rej(new Error(`${name} ${path}: ${Buffer.concat(c)}`))));
    });
    req.on('error', rej);
    req.end(data);
  });
  s.start = async () => {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    s.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, join(dists[name], 'main.js')], {
      env: { ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: join(dir, 'admin.sock'), MYNET_STATE_DIR: join(dir, 'state'), MYNET_LOG_LEVEL: 'info', MYNET_DNS_LISTEN: '' },
      stdio: ['ignore', openSync(logFile, 'a'), 'inherit'],
    });
    const answers = () => new Promise((r) => { const c = createConnection(sock); c.once('connect', () => { c.destroy(); r(true); }); c.once('error', () => r(false)); });
    while (!(await answers())) await sleep(5);
    await s.call('/NetworkDriver.CreateNetwork', { NetworkID: s.net, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'x', Pool: '10.64.0.0/16', Gateway: '10.64.0.1/16' }], IPv6Data: [] });
  };
  s.lifecycle = async (port) => {
    const ep = id();
    s.ids.push(ep.slice(0, 12));
    s.seq++;
    const NetworkID = s.net;
    await s.call('/NetworkDriver.CreateEndpoint', { NetworkID, EndpointID: ep, Interface: { Address: `10.64.${(s.seq >> 8) & 255}.${s.seq & 255}/16`, AddressIPv6: '', MacAddress: '' }, Options: {} });
    await s.call('/NetworkDriver.Join', { NetworkID, EndpointID: ep, SandboxKey: '/var/run/docker/netns/x', Options: {} });
    await s.call('/NetworkDriver.ProgramExternalConnectivity', { NetworkID, EndpointID: ep, Options: { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: port, HostPortEnd: port }] } });
    await s.call('/NetworkDriver.RevokeExternalConnectivity', { NetworkID, EndpointID: ep });
    await s.call('/NetworkDriver.Leave', { NetworkID, EndpointID: ep });
    await s.call('/NetworkDriver.DeleteEndpoint', { NetworkID, EndpointID: ep });
  };
  s.figures = (ids) => {
    const want = new Set(ids);
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l)).filter((l) => want.has(l.endpointId));
    const sum = new Map();
    for (const l of lines) sum.set(l.endpointId, (sum.get(l.endpointId) ?? 0) + l.ms);
    const route = (r) => median(lines.filter((l) => l.route === r).map((l) => l.ms));
    return { lifecycle: median([...sum.values()]), program: route('/NetworkDriver.ProgramExternalConnectivity'), revoke: route('/NetworkDriver.RevokeExternalConnectivity') };
  };
  s.stop = async () => {
    if (s.proc && s.proc.exitCode === null) { s.proc.kill('SIGTERM'); await new Promise((r) => s.proc.once('exit', r)); }
    sh('ip', ['netns', 'del', ns]);
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  };
  return s;
}

const A = side('A');
const B = side('B');
try {
  await A.start();
  await B.start();
  for (let i = 0; i < 20; i++) { await A.lifecycle(30001); await B.lifecycle(30001); } // warm-up
  A.ids = []; B.ids = [];
  const t0 = now();
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate who goes first, so neither always follows the other's background work.
    for (const s of i % 2 ? [A, B] : [B, A]) await s.lifecycle(30001);
  }
  const [a, b] = [A.figures(A.ids), B.figures(B.ids)];
  const row = (what, k) => [what, `${a[k].toFixed(2)} ms`, `${b[k].toFixed(2)} ms`, (b[k] / a[k]).toFixed(2)];
  console.log(`${ROUNDS} interleaved one-port lifecycles each in ${((now() - t0) / 1000).toFixed(0)} s; A = ${dists.A}, B = ${dists.B}`);
  console.log(table(['p50 inside the plugin', 'A', 'B', 'B / A'], [row('lifecycle, one port (6 requests)', 'lifecycle'), row('ProgramExternalConnectivity', 'program'), row('RevokeExternalConnectivity', 'revoke')]));
} finally {
  await A.stop();
  await B.stop();
}
