// Issue 14.1: the memory of mynet's DNS server (in its own process, as in the plugin) under a
// local client that pipelines queries over TCP and never reads an answer, against the same
// process idle. Loopback only (127.0.0.157), stops by itself after BENCH_FLOOD_SECONDS (20).
// The client reconnects whenever the server closes it, as a hostile one would.
//   node bench/dns-flood.mjs                 # the server built in dist/ (npm run build)
//   BENCH_DNS_DIST=/tmp/old/dist node bench/dns-flood.mjs   # another build, e.g. the old code
//   BENCH_DNS_TCP='{"maxQueries":1e9}' node bench/dns-flood.mjs  # limits for startDnsServer
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { sleep, table } from './lib.mjs';

const DIST = resolve(process.env.BENCH_DNS_DIST ?? 'dist');
const SECONDS = Number(process.env.BENCH_FLOOD_SECONDS ?? 20);
const HOST = '127.0.0.157';
const PORT = 5354;

const SERVER = `
const { startDnsServer } = await import('${DIST}/dns/server.js');
const { NameTable } = await import('${DIST}/dns/records.js');
const { pino } = await import('${process.cwd()}/node_modules/pino/pino.js');
const t = new NameTable('mynet', [{ id: 'c', name: 'web', networks: [{ networkId: 'n', networkName: 'net', ipv4: '10.60.0.2', aliases: [] }] }]);
await startDnsServer({ listen: { host: '${HOST}', port: ${PORT} }, table: () => t, log: pino({ level: 'silent' }), tcp: ${process.env.BENCH_DNS_TCP ?? '{}'} });
console.log('ready');
`;
const server = spawn(process.execPath, ['--input-type=module', '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

const q = (() => {
  const labels = ['web', 'net', 'mynet'].map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  const m = Buffer.concat([h, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
  return Buffer.concat([Buffer.from([0, m.length]), m]);
})();
const burst = Buffer.concat(Array.from({ length: 2000 }, () => q));

let stop = false;
let connections = 0;
let sentMb = 0;
// One connection at a time; queries as fast as the kernel takes them (the client's own queue
// stays small: it waits for 'drain'), answers never read.
const flood = () => new Promise((done) => {
  connections++;
  const c = connect(PORT, HOST);
  c.pause();
  const push = () => {
    for (let more = true; more && !stop; ) {
      more = c.write(burst);
      sentMb += burst.length / 1e6;
    }
    if (stop) c.destroy();
  };
  c.on('connect', push);
  c.on('drain', push);
  c.on('error', () => undefined);
  c.on('close', done);
});

try {
  await new Promise((ok, fail) => {
    server.stdout.once('data', ok);
    server.once('exit', () => fail(new Error('the DNS server did not start')));
  });
  await sleep(1000);
  const idle = rssMb();
  const t0 = Date.now();
  const clients = (async () => { while (!stop) await flood(); })();
  let peak = idle;
  const samples = [];
  while (Date.now() - t0 < SECONDS * 1000) {
    await sleep(250);
    if (server.exitCode !== null) throw new Error(`the DNS server exited (${server.exitCode}) under the flood`);
    peak = Math.max(peak, rssMb());
    if (samples.length < Math.floor((Date.now() - t0) / 5000)) samples.push(rssMb().toFixed(0));
  }
  const last = rssMb();
  stop = true;
  await clients;
  console.log(table(['server', 'RSS idle (MB)', `RSS peak in ${SECONDS} s (MB)`, 'RSS at the end (MB)', 'every 5 s', 'client connections', 'queries the server took (MB)'], [
    [DIST, idle.toFixed(1), peak.toFixed(1), last.toFixed(1), samples.join(' '), String(connections), sentMb.toFixed(0)],
  ]));
} finally {
  server.kill();
}
