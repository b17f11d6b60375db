// Shared pieces of the benchmarks: run commands, start dockerd and the plugin if needed.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...opts }).trim();
export const trySh = (cmd, args) => { try { return sh(cmd, args); } catch (e) { return `ERR ${e.stderr ?? e.message}`; } };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => Number(process.hrtime.bigint()) / 1e6;
export const IMAGE = 'mynet-test/busybox:latest';

// Temporary directories (logs, state, the image's root) go when the benchmark exits; set
// BENCH_KEEP=1 to keep them for a post-mortem.
const temps = [];
const tempDir = (prefix) => { const d = mkdtempSync(join(tmpdir(), prefix)); temps.push(d); return d; };
process.on('exit', () => { if (!process.env.BENCH_KEEP) for (const d of temps) rmSync(d, { recursive: true, force: true }); });

const answers = (path) => new Promise((res) => {
  const c = createConnection(path);
  c.once('connect', () => { c.destroy(); res(true); });
  c.once('error', () => res(false));
});

export async function ensureDockerd() {
  try { sh('docker', ['version']); return null; } catch { /* not running: start one below */ }
  const log = openSync(join(tempDir('mnt-bench-'), 'dockerd.log'), 'a');
  const p = spawn('dockerd', ['--pidfile', '/var/run/docker.pid'], { stdio: ['ignore', log, log], detached: true });
  for (let i = 0; i < 120; i++) { try { sh('docker', ['version']); return p; } catch { await sleep(500); } }
  throw new Error('dockerd did not start');
}

export function ensureImage() {
  try { sh('docker', ['image', 'inspect', IMAGE]); return; } catch { /* build it below */ }
  const root = tempDir('mnt-bbroot-');
  sh('mkdir', ['-p', `${root}/bin`, `${root}/www`]);
  sh('cp', ['/bin/busybox', `${root}/bin/busybox`]);
  for (const a of sh('/bin/busybox', ['--list']).split('\n')) if (a && a !== 'busybox') sh('ln', ['-s', 'busybox', `${root}/bin/${a}`]);
  execFileSync('sh', ['-c', `echo mynet-e2e > ${root}/www/index.html && tar -C ${root} -c . | docker import -c 'CMD ["/bin/sh"]' - ${IMAGE}`]);
}

/** Starts the plugin (node dist/main.js) unless one already answers; returns a stop function. */
export async function ensurePlugin(env = {}) {
  const sock = '/run/docker/plugins/mynet.sock';
  if (await answers(sock)) return { stop: async () => {}, logFile: undefined };
  if (!existsSync('dist/main.js')) sh('npx', ['tsc', '-p', 'tsconfig.build.json']);
  const dir = tempDir('mnt-bench-');
  const logFile = join(dir, 'plugin.log');
  const out = openSync(logFile, 'a');
  const p = spawn(process.execPath, ['dist/main.js'], { env: { ...process.env, MYNET_STATE_DIR: join(dir, 'state'), ...env }, stdio: ['ignore', out, out] });
  for (let i = 0; i < 200 && !(await answers(sock)); i++) await sleep(25);
  return { logFile, stop: async () => { p.kill('SIGTERM'); await new Promise((r) => p.once('exit', r)); } };
}

/**
 * Records one figure against its goal for the summary bench/all.mjs prints (BENCH_GOALS names the
 * file it collects them in; a script run alone just prints its own table).
 */
export function goal(figure, mynet, bridge, target, met) {
  if (process.env.BENCH_GOALS) appendFileSync(process.env.BENCH_GOALS, `${JSON.stringify({ figure, mynet, bridge, target, met })}\n`);
}

export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
export const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };

export function table(headers, rows) {
  const all = [headers, ...rows].map((r) => r.map(String));
  const w = headers.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r, k) => r.map((c, i) => c.padEnd(w[i])).join('  ') + (k === 0 ? `\n${w.map((n) => '-'.repeat(n)).join('  ')}` : '')).join('\n');
}

/**
 * A client of one plugin's sockets, as dockerd and the mynet command talk to it: `call` POSTs a
 * protocol request (rejecting on a non-200 answer), `adminGet` reads the admin socket,
 * `processes` sums mynet_host_processes_total (lines containing `command`, e.g.
 * 'command="conntrack"'), `rss` reads a pid's resident memory in MiB.
 */
export function pluginClient(sock, admin, agent) {
  const call = (path, body) => new Promise((resolve, reject) => {
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
  const adminGet = (path) => new Promise((resolve, reject) => {
    request({ socketPath: admin, path }, (res) => { let t = ''; res.on('data', (d) => (t += d)); res.on('end', () => resolve(t)); }).on('error', reject).end();
  });
  const processes = async (command = '') => (await adminGet('/metrics')).split('\n').filter((l) => l.startsWith('mynet_host_processes_total') && l.includes(command)).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
  return { call, adminGet, answers: () => answers(sock), processes, rss };
}

export const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

/** The six requests dockerd sends for a container started and stopped with no published port (bench/scale-ab.mjs, bench/policy.mjs). */
export const NO_PORT_ROUTES = ['CreateEndpoint', 'Join', 'ProgramExternalConnectivity', 'RevokeExternalConnectivity', 'Leave', 'DeleteEndpoint'];
export async function noPortLifecycle(call, NetworkID, EndpointID, Address, Options = {}) {
  await call('/NetworkDriver.CreateEndpoint', { NetworkID, EndpointID, Interface: { Address, AddressIPv6: '', MacAddress: '' }, Options });
  await call('/NetworkDriver.Join', { NetworkID, EndpointID, SandboxKey: '/var/run/docker/netns/x', Options: {} });
  await call('/NetworkDriver.ProgramExternalConnectivity', { NetworkID, EndpointID, Options: { 'com.docker.network.portmap': [] } });
  await call('/NetworkDriver.RevokeExternalConnectivity', { NetworkID, EndpointID });
  await call('/NetworkDriver.Leave', { NetworkID, EndpointID });
  await call('/NetworkDriver.DeleteEndpoint', { NetworkID, EndpointID });
}

/**
 * From a plugin's request logs (`logs`: files), the lifecycles of the endpoints `ids` (12-digit
 * prefixes): each one's time inside the plugin (the sum of its requests) and the p50 per route.
 */
export function lifecycleTimes(logs, ids, routes = NO_PORT_ROUTES) {
  const want = new Set(ids);
  const lines = logs.flatMap((f) => readFileSync(f, 'utf8').split('\n')).filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l)).filter((l) => want.has(l.endpointId));
  const sum = new Map();
  for (const l of lines) sum.set(l.endpointId, (sum.get(l.endpointId) ?? 0) + l.ms);
  const per = Object.fromEntries(routes.map((r) => [r, median(lines.filter((l) => l.route === `/NetworkDriver.${r}`).map((l) => l.ms))]));
  return { sums: [...sum.values()], per };
}
