// Publishing 1, 100 and 1000 ports in one `docker run`, on a mynet network and on a network of
// Docker's bridge driver, in the same dockerd. Prints both side by side: the wall time of
// `docker run -d` and, for mynet, the plugin's own time for ProgramExternalConnectivity.
import { readFileSync } from 'node:fs';
import { ensureDockerd, ensureImage, ensurePlugin, goal, IMAGE, now, sh, table, trySh } from './lib.mjs';

const COUNTS = (process.env.BENCH_PORT_COUNTS ?? '1,100,1000').split(',').map(Number);
const BASE = 20000;

function pluginMs(logFile, since) {
  if (!logFile) return 'n/a';
  const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('ProgramExternalConnectivity') && l.includes('"msg":"request"'));
  const last = lines.slice(since).map((l) => JSON.parse(l).ms);
  return last.length ? last[last.length - 1].toFixed(1) : 'n/a';
}
const logCount = (logFile) => (logFile ? readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('ProgramExternalConnectivity') && l.includes('"msg":"request"')).length : 0);

const dockerd = await ensureDockerd();
ensureImage();
const plugin = await ensurePlugin({ MYNET_LOG_LEVEL: 'info' });
const nets = { mynet: 'mnt-bench-ports-mynet', bridge: 'mnt-bench-ports-bridge' };
trySh('docker', ['network', 'create', '-d', 'mynet', '--subnet', '10.79.0.0/24', nets.mynet]);
trySh('docker', ['network', 'create', '-d', 'bridge', '--subnet', '10.79.1.0/24', nets.bridge]);
const rows = [];
try {
  for (const n of COUNTS) {
    const spec = n === 1 ? `${BASE}:80` : `${BASE}-${BASE + n - 1}:${BASE}-${BASE + n - 1}`;
    const row = [String(n)];
    for (const driver of ['mynet', 'bridge']) {
      const name = `mnt-bench-ports-${driver}-${n}`;
      trySh('docker', ['rm', '-f', name]);
      const before = logCount(plugin.logFile);
      const t0 = now();
      sh('docker', ['run', '-d', '--name', name, '--network', nets[driver], '-p', spec, IMAGE, 'sleep', '600'], { timeout: 600_000 });
      const ms = now() - t0;
      row.push(ms.toFixed(0));
      if (driver === 'mynet') row.push(pluginMs(plugin.logFile, before));
      const t1 = now();
      sh('docker', ['rm', '-f', name], { timeout: 600_000 });
      row.push((now() - t1).toFixed(0));
    }
    rows.push(row);
    goal(`4. docker run -d publishing ${n} port(s)`, `${row[1]} ms`, `${row[4]} ms`, n === 1000 ? '< 1 s' : '(reported)', n === 1000 ? Number(row[1]) < 1000 : true);
    console.error(`done ${n}`);
  }
} finally {
  trySh('docker', ['network', 'rm', nets.mynet, nets.bridge]);
  await plugin.stop();
  if (dockerd) process.kill(Number(sh('cat', ['/var/run/docker.pid'])), 'SIGTERM');
}
console.log(table(['ports', 'mynet run ms', 'mynet plugin ms', 'mynet rm ms', 'bridge run ms', 'bridge rm ms'], rows));
