// Queries per second of mynet's DNS server against dnsmasq serving the same names from a hosts
// file, on loopback, with the same load generator (a separate node process keeping a window of
// queries in flight over UDP). Both servers get one core's worth of the same 2-core machine.
// Rounds alternate mynet, dnsmasq (BENCH_DNS_ROUNDS, default 3): the median of each is the figure.
// Beside queries per second, each server's CPU time per answered query (from /proc/<pid>/stat):
// a loaded machine moves the first, much less the second.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { goal, median, sleep, table } from './lib.mjs';

// dnsmasq comes from Debian's dnsmasq-base (scripts/install-deps.sh installs it).
if (spawnSync('dnsmasq', ['--version']).error) {
  console.error('bench/dns: dnsmasq is not installed (apt-get install dnsmasq-base, or make deps)');
  process.exit(1);
}
const NAMES = Number(process.env.BENCH_DNS_NAMES ?? 200);
const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_DNS_ROUNDS ?? 3);
// utime + stime of a process, in ms (clock ticks of 10 ms, as on every Linux Debian ships).
const cpuMs = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const dir = mkdtempSync(join(tmpdir(), 'mnt-bench-dns-'));
const names = Array.from({ length: NAMES }, (_, i) => ({ name: `c${i}`, ip: `10.60.${i >> 8}.${i & 255}` }));

const LOAD = `
const dgram = require('dgram');
const [host, port, zone, n, seconds] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
const q = (id, name) => { const l = name.split('.').map((x) => Buffer.concat([Buffer.from([x.length]), Buffer.from(x)]));
  const h = Buffer.alloc(12); h.writeUInt16BE(id, 0); h.writeUInt16BE(0x0100, 2); h.writeUInt16BE(1, 4);
  return Buffer.concat([h, ...l, Buffer.from([0, 0, 1, 0, 1])]); };
let ok = 0, sent = 0, id = 0; const WINDOW = 64; const end = Date.now() + Number(seconds) * 1000;
const send = () => { if (Date.now() > end) return; const i = sent++ % Number(n); s.send(q(++id & 0xffff, 'c' + i + (zone ? '.' + zone : '')), Number(port), host); };
s.on('message', (m) => { if ((m.readUInt16BE(2) & 0xf) === 0 && m.readUInt16BE(6) > 0) ok++; send(); });
for (let i = 0; i < WINDOW; i++) send();
setInterval(() => { for (let i = 0; i < 8; i++) send(); }, 50).unref(); // replace lost queries
setTimeout(() => { console.log(JSON.stringify({ qps: ok / Number(seconds) })); process.exit(0); }, Number(seconds) * 1000 + 300);
`;
const load = (host, port, zone) => new Promise((resolve) => {
  const p = spawn(process.execPath, ['-e', LOAD, host, String(port), zone, String(NAMES), String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.on('exit', () => resolve(JSON.parse(out).qps));
});

const SERVER = `
const { startDnsServer } = await import('${process.cwd()}/dist/dns/server.js');
const { NameTable } = await import('${process.cwd()}/dist/dns/records.js');
const { pino } = await import('${process.cwd()}/node_modules/pino/pino.js');
const names = ${JSON.stringify(names)};
const t = new NameTable('mynet', names.map((x, i) => ({ id: String(i), name: x.name, networks: [{ networkId: 'n', networkName: 'net', ipv4: x.ip, aliases: [] }] })));
await startDnsServer({ listen: { host: '127.0.0.155', port: 5353 }, table: () => t, log: pino({ level: 'silent' }) });
`;
writeFileSync(join(dir, 'hosts'), names.map((x) => `${x.ip} ${x.name}.net.mynet`).join('\n') + '\n');
const mynet = spawn(process.execPath, ['--input-type=module', '-e', SERVER], { stdio: 'inherit' });
// A server that dies (its address taken, say) fails the run instead of leaving the other running.
const died = (what) => (code) => { if (code !== null && code !== 0) console.error(`bench/dns: ${what} exited with ${code}`); };
mynet.on('exit', died('the mynet DNS server'));
const dnsmasq = spawn('dnsmasq', ['--keep-in-foreground', '--no-resolv', '--no-hosts', `--addn-hosts=${join(dir, 'hosts')}`, '--listen-address=127.0.0.156', '--bind-interfaces', '--port=5353', '--cache-size=1000', '--user=root', '--pid-file='], { stdio: 'inherit' });
dnsmasq.on('exit', died('dnsmasq'));
try {
  await sleep(800);
  if (mynet.exitCode !== null || dnsmasq.exitCode !== null) throw new Error('a DNS server did not start');
  const rounds = { mynet: [], dnsmasq: [] };
  const measure = async (who, pid, host) => {
    const c0 = cpuMs(pid);
    const qps = await load(host, 5353, 'net.mynet');
    rounds[who].push({ qps, usPerQuery: ((cpuMs(pid) - c0) * 1000) / Math.max(1, qps * SECONDS) });
  };
  for (let r = 0; r < ROUNDS; r++) {
    await measure('mynet', mynet.pid, '127.0.0.155');
    await measure('dnsmasq', dnsmasq.pid, '127.0.0.156');
  }
  const m = median(rounds.mynet.map((x) => x.qps));
  const d = median(rounds.dnsmasq.map((x) => x.qps));
  const mc = median(rounds.mynet.map((x) => x.usPerQuery));
  const dc = median(rounds.dnsmasq.map((x) => x.usPerQuery));
  console.log(table(['server', `queries/s (A, UDP, 64 in flight), median of ${ROUNDS}`, 'each round', 'ratio to dnsmasq', 'CPU µs per query'], [
    ['mynet', m.toFixed(0), rounds.mynet.map((x) => x.qps.toFixed(0)).join(' '), (m / d).toFixed(2), mc.toFixed(1)],
    ['dnsmasq (hosts file)', d.toFixed(0), rounds.dnsmasq.map((x) => x.qps.toFixed(0)).join(' '), '1.00', dc.toFixed(1)],
  ]));
  goal('DNS queries/s against dnsmasq (issue 26: at least as many)', `${m.toFixed(0)}/s, ${mc.toFixed(1)} µs CPU each`, `dnsmasq ${d.toFixed(0)}/s, ${dc.toFixed(1)} µs`, '>= 1.0 of dnsmasq', m / d >= 1.0);
} finally {
  mynet.kill();
  dnsmasq.kill();
  rmSync(dir, { recursive: true, force: true });
}
