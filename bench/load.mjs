// Load: CONNS concurrent connections (default 100) running endpoint lifecycles (CreateEndpoint,
// Join, ProgramExternalConnectivity, Revoke, Leave, DeleteEndpoint) against one plugin in a
// throwaway network namespace, for at least BENCH_SECONDS (default 60) and until BENCH_LIFECYCLES
// (default 12 000) are done after a warm-up of BENCH_WARMUP (default 2 000) at the same load (at
// most BENCH_MAX_SECONDS, default 400). Prints errors (the goal is 0), lifecycles, p50/p99, RSS
// after 1 000 and after 10 000 lifecycles (goal: within 10%), the heap kept after full
// collections (mynet_process_heap_live_bytes: what a leak would grow), and the plugin's open file
// descriptors at start and end (goal: no growth). RSS is sampled every 100 ms and the live heap
// every second; "after N" is the median of the samples over the next 2 000 lifecycles (~25 s),
// since V8 grows and shrinks its heap by tens of per cent within seconds and one sample would
// decide nothing. The warm-up is there because V8 sizes its heap to the load during the first
// minute (its young generation grows from 1 to 16 MB semi-spaces); RSS before the load is printed.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goal, median, now, pct, sh, sleep, table } from './lib.mjs';

const CONNS = Number(process.env.BENCH_CONNS ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const LIFECYCLES = Number(process.env.BENCH_LIFECYCLES ?? 12_000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2000);
const MAX_SECONDS = Number(process.env.BENCH_MAX_SECONDS ?? 400);
const ns = `mnt-load-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'mnt-load-'));
const sock = join(dir, 'p.sock');
const id = () => randomBytes(32).toString('hex');
const NET = id();

function call(agent, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request({ socketPath: sock, path, method: 'POST', agent, headers: { 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      let t = '';
      res.on('data', (d) => (t += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(t)) : reject(new Error(`${path} ${res.statusCode}: ${t}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}
const answers = () => new Promise((res) => { const c = createConnection(sock); c.once('connect', () => { c.destroy(); res(true); }); c.once('error', () => res(false)); });
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const adminSock = join(dir, 'admin.sock');
/** mynet_process_heap_live_bytes in MiB, from the admin socket's /metrics. */
const liveHeap = () => new Promise((resolve, reject) => {
  request({ socketPath: adminSock, path: '/metrics' }, (res) => {
    let t = '';
    res.on('data', (d) => (t += d));
    res.on('end', () => resolve(Number(/^mynet_process_heap_live_bytes (\S+)$/m.exec(t)?.[1] ?? NaN) / 1048576));
  }).on('error', reject).end();
});

sh('ip', ['netns', 'add', ns]);
let proc;
const rows = [];
try {
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  proc = spawn('ip', ['netns', 'exec', ns, process.execPath, 'dist/main.js'], {
    env: { ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: adminSock, MYNET_STATE_DIR: join(dir, 'state'), MYNET_DNS_LISTEN: '', MYNET_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  while (!(await answers())) await sleep(5);
  const pid = proc.pid; // ip netns exec execs node in place
  const setup = new Agent({ keepAlive: true });
  await call(setup, '/NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'x', Pool: '10.60.0.0/14', Gateway: '10.60.0.1/14' }], IPv6Data: [] });
  const fd0 = fds(pid);
  const rss0 = rss(pid);
  let done = 0;
  let errors = 0;
  const firstErrors = [];
  const lat = [];
  const samples = []; // [lifecycles done, RSS MiB]
  const sampler = setInterval(() => samples.push([done, rss(pid)]), 100);
  const lives = []; // [lifecycles done, live heap MiB], 0 until the first full collection
  const liveSampler = setInterval(() => { const d = done; liveHeap().then((v) => { if (v > 0) lives.push([d, v]); }, (e) => console.error(`bench/load: /metrics: ${e.message}`)); }, 1000);
  const started = now();
  const minUntil = started + SECONDS * 1000;
  const maxUntil = started + MAX_SECONDS * 1000;
  const more = () => now() < maxUntil && (now() < minUntil || done < WARMUP + LIFECYCLES);
  let n = 0;
  async function worker(w) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    while (more()) {
      const k = ++n;
      const ep = { NetworkID: NET, EndpointID: id() };
      const address = `10.${60 + ((k >> 16) & 3)}.${(k >> 8) & 255}.${(k & 255) || 1}/14`;
      const t0 = now();
      try {
        await call(agent, '/NetworkDriver.CreateEndpoint', { ...ep, Interface: { Address: address } });
        await call(agent, '/NetworkDriver.Join', { ...ep, SandboxKey: '/x' });
        await call(agent, '/NetworkDriver.ProgramExternalConnectivity', { ...ep, Options: w % 4 === 0 ? { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 40000 + w, HostPortEnd: 40000 + w }] } : {} });
        await call(agent, '/NetworkDriver.RevokeExternalConnectivity', ep);
        await call(agent, '/NetworkDriver.Leave', ep);
        await call(agent, '/NetworkDriver.DeleteEndpoint', ep);
        if (done >= WARMUP) lat.push(now() - t0);
        done++;
      } catch (e) {
        errors++;
        if (firstErrors.length < 3) firstErrors.push(String(e).slice(0, 200));
      }
    }
    agent.destroy();
  }
  await Promise.all(Array.from({ length: CONNS }, (_, w) => worker(w)));
  const seconds = (now() - started) / 1000;
  clearInterval(sampler);
  clearInterval(liveSampler);
  const after = (xs, k) => { const w = xs.filter(([d]) => d >= WARMUP + k && d < WARMUP + k + 2000).map(([, v]) => v); return w.length ? median(w) : undefined; };
  const rss1k = after(samples, 1000);
  const rss10k = after(samples, 10000);
  const live1k = after(lives, 1000);
  const live10k = after(lives, 10000);
  setup.destroy();
  await sleep(500);
  const fd1 = fds(pid);
  const rssEnd = rss(pid);
  rows.push([`${CONNS} connections for ${seconds.toFixed(0)} s: lifecycles (1 in 4 publishes a port)`, `${done} (${(done / seconds).toFixed(0)}/s; ${WARMUP} of them warm-up)`, '']);
  rows.push(['errors', String(errors), 'goal 0']);
  rows.push(['lifecycle latency p50 / p99 (under this load)', `${median(lat).toFixed(1)} / ${pct(lat, 99).toFixed(1)} ms`, '']);
  rows.push(['RSS before the load', `${rss0.toFixed(1)} MiB`, '']);
  rows.push(['RSS after 1 000 / 10 000 lifecycles (after the warm-up)', `${rss1k?.toFixed(1) ?? '-'} / ${rss10k?.toFixed(1) ?? '-'} MiB${rss1k && rss10k ? ` (${(((rss10k - rss1k) / rss1k) * 100).toFixed(1)}%)` : ''}`, 'goal within 10%']);
  rows.push(['RSS at the end', `${rssEnd.toFixed(1)} MiB`, '']);
  rows.push(['heap kept after full collections, after 1 000 / 10 000', `${live1k?.toFixed(1) ?? '-'} / ${live10k?.toFixed(1) ?? '-'} MiB`, 'what a leak grows']);
  rows.push(['open file descriptors before / after', `${fd0} / ${fd1}`, 'goal: no growth']);
  if (firstErrors.length) console.error(firstErrors.join('\n'));
  const growth = rss1k && rss10k ? (rss10k - rss1k) / rss1k : undefined;
  goal(`load (issue 8): ${CONNS} connections, ${done} lifecycles: errors`, String(errors), '', '0', errors === 0);
  goal('load (issue 8): RSS after 1 000 / 10 000 lifecycles', `${rss1k?.toFixed(1) ?? '-'} / ${rss10k?.toFixed(1) ?? '-'} MiB`, '', 'within 10%', growth !== undefined && Math.abs(growth) <= 0.1);
  const liveGrowth = live1k && live10k ? (live10k - live1k) / live1k : undefined;
  goal('load (issue 8): heap kept after full collections, 1 000 / 10 000', `${live1k?.toFixed(1) ?? '-'} / ${live10k?.toFixed(1) ?? '-'} MiB`, '', 'within 10%', liveGrowth !== undefined && Math.abs(liveGrowth) <= 0.1);
  goal('load (issue 8): open file descriptors before / after', `${fd0} / ${fd1}`, '', 'no growth', fd1 <= fd0);
} finally {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
  sh('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
}
console.log(table(['figure', 'mynet', 'note'], rows));
