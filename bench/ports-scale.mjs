// Publishing many ports at the protocol level (issue 14.2): the plugin (node dist/main.js) in a
// throwaway network namespace, driven over its unix socket as dockerd drives it. For `-P` with
// 100, 4 000 and 20 000 exposed TCP ports (HostPort 0: ephemeral ports chosen by the plugin) and
// for `-p 10000-20000:10000-20000/udp` (10 001 exact UDP ports):
//  - ProgramExternalConnectivity as the client sees it, and the plugin's own time (request log);
//  - the same for RevokeExternalConnectivity;
//  - the processes the plugin started before the answer, and the conntrack processes after it;
//  - a doctor run (GET /doctor, what the reconcile loop does) with the ports published;
//  - sockets held (file descriptors) and RSS with the ports published.
// Each figure is also given as a ratio to 100 ports. BENCH_PORT_SCALE=100,4000,20000 chooses.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goal, now, sh, sleep, table, pluginClient } from './lib.mjs';

const COUNTS = (process.env.BENCH_PORT_SCALE ?? '100,4000,20000').split(',').map(Number);
const ns = `mnt-bench-ps-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'mnt-bench-ps-'));
const sock = join(dir, 'p.sock');
const admin = join(dir, 'admin.sock');
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const id = () => randomBytes(32).toString('hex');

const { call, adminGet, answers, processes, rss } = pluginClient(sock, admin, agent);
const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const fdLimit = (pid) => /Max open files\s+(\d+)\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8')).slice(1, 3).join('/');

const logFile = join(dir, 'plugin.log');
let proc;
async function start() {
  proc = spawn('ip', ['netns', 'exec', ns, process.execPath, 'dist/main.js'], {
    env: { ...process.env, MYNET_SOCKET: sock, MYNET_ADMIN_SOCKET: admin, MYNET_STATE_DIR: join(dir, 'state'), MYNET_LOG_LEVEL: process.env.MYNET_LOG_LEVEL ?? 'info', MYNET_DNS_LISTEN: '', MYNET_RECONCILE_INTERVAL: '3600' },
    stdio: ['ignore', openSync(logFile, 'a'), 'inherit'],
  });
  while (!(await answers())) await sleep(5);
  await call('/Plugin.Activate');
}
const logLines = () => readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const pluginMs = (route, endpoint) => logLines().filter((l) => l.msg === 'request' && l.route === route && l.endpointId === endpoint.slice(0, 12)).map((l) => l.ms).pop();
const unheldWarnings = () => logLines().filter((l) => typeof l.unheld === 'number').reduce((a, l) => a + l.unheld, 0);
/** Waits until the background queue is empty (the doctor waits for it; 'none' repairs nothing; it adds its own kernel reads). */
const drained = () => adminGet('/doctor');

const NET = id();
const cases = [
  ...COUNTS.map((n) => ({ name: `-P, ${n} exposed TCP ports`, n, portmap: Array.from({ length: n }, (_, i) => ({ Proto: 6, IP: '', Port: 1 + i, HostIP: '', HostPort: 0, HostPortEnd: 0 })) })),
  { name: '-p 10000-20000:10000-20000/udp', n: 10001, portmap: Array.from({ length: 10001 }, (_, i) => ({ Proto: 17, IP: '', Port: 10000 + i, HostIP: '', HostPort: 10000 + i, HostPortEnd: 10000 + i })) },
];
const rows = [];
sh('ip', ['netns', 'add', ns]);
try {
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await start();
  await call('/NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ AddressSpace: 'x', Pool: '10.65.0.0/16', Gateway: '10.65.0.1/16' }], IPv6Data: [] });
  const base = {};
  let k = 2;
  for (const c of cases) {
    const ep = id();
    await call('/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: ep, Interface: { Address: `10.65.0.${k++}/16`, AddressIPv6: '', MacAddress: '' }, Options: {} });
    await call('/NetworkDriver.Join', { NetworkID: NET, EndpointID: ep, SandboxKey: '/var/run/docker/netns/x', Options: {} });
    const fd0 = fds(proc.pid);
    const p0 = await processes();
    const c0 = await processes('command="conntrack"');
    const unheld0 = unheldWarnings();
    let t0 = now();
    await call('/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: ep, Options: { 'com.docker.network.portmap': c.portmap } });
    const program = now() - t0;
    const pAnswer = (await processes()) - p0;
    // The doctor waits for the background queue (conntrack after the answer) before its own
    // kernel reads; timed on its own as the reconcile loop's cost with these ports published.
    await drained();
    t0 = now();
    await drained();
    const doctor = now() - t0;
    const pDone = (await processes('command="conntrack"')) - c0;
    const held = fds(proc.pid) - fd0;
    const mem = rss(proc.pid);
    const unheld = unheldWarnings() - unheld0;
    t0 = now();
    await call('/NetworkDriver.RevokeExternalConnectivity', { NetworkID: NET, EndpointID: ep });
    const revoke = now() - t0;
    await drained();
    await call('/NetworkDriver.Leave', { NetworkID: NET, EndpointID: ep });
    await call('/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: ep });
    const inside = pluginMs('/NetworkDriver.ProgramExternalConnectivity', ep);
    const r = { program, inside, doctor, revoke };
    if (c.n === 100) Object.assign(base, r);
    const ratio = (x, b) => (b ? ` (x${(x / b).toFixed(1)})` : '');
    rows.push([
      c.name,
      `${program.toFixed(0)} ms${c.n === 100 ? '' : ratio(program, base.program)}`,
      `${inside.toFixed(0)} ms${c.n === 100 ? '' : ratio(inside, base.inside)}`,
      `${doctor.toFixed(0)} ms`,
      `${pAnswer} / ${pDone}`,
      `${revoke.toFixed(0)} ms${c.n === 100 ? '' : ratio(revoke, base.revoke)}`,
      `${held}${unheld ? ` (${unheld} not held)` : ''}`,
      `${mem.toFixed(0)} MiB`,
    ]);
    if (c.n !== 100) goal(`14.2 publish ${c.name}: plugin time (ratio to 100)`, `${inside.toFixed(0)} ms${ratio(inside, base.inside)}`, '', '(reported)', true);
    console.error(`done ${c.name}`);
  }
  console.error(`file descriptor limit (soft/hard) of the plugin: ${fdLimit(proc.pid)}`);
} finally {
  if (proc && proc.exitCode === null) { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); }
  sh('ip', ['netns', 'del', ns]);
  if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
}
console.log(table(['request', 'Program (client)', 'Program (plugin)', 'doctor with them', 'processes at answer / conntrack until done', 'Revoke (client)', 'sockets held', 'RSS'], rows));
