// `docker run -d -P` on images that EXPOSE 100, 4 000 and 20 000 TCP ports (issue 14.2), on a
// mynet network: the wall time of `docker run` and of `docker rm -f`, and the plugin's own time
// for ProgramExternalConnectivity (its request log). Each image is made with
// `docker import -c 'EXPOSE ...'` from the busybox image's root. BENCH_EXPOSE=100,4000 chooses;
// BENCH_EXPOSE_BRIDGE=100 also runs those counts on Docker's bridge driver (35 ms a port there).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ensureDockerd, ensureImage, ensurePlugin, goal, IMAGE, now, sh, table, trySh } from './lib.mjs';

const COUNTS = (process.env.BENCH_EXPOSE ?? '100,4000,20000').split(',').map(Number);
const BRIDGE = new Set((process.env.BENCH_EXPOSE_BRIDGE ?? '100').split(',').filter(Boolean).map(Number));

const programMs = (logFile) => {
  if (!logFile) return undefined;
  const ms = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('ProgramExternalConnectivity') && l.includes('"msg":"request"')).map((l) => JSON.parse(l).ms);
  return ms[ms.length - 1];
};

const dockerd = await ensureDockerd();
ensureImage();
const plugin = await ensurePlugin({ MYNET_LOG_LEVEL: 'info' });
const nets = { mynet: 'mnt-bench-expose-mynet', bridge: 'mnt-bench-expose-bridge' };
trySh('docker', ['network', 'create', '-d', 'mynet', '--subnet', '10.78.0.0/24', nets.mynet]);
trySh('docker', ['network', 'create', '-d', 'bridge', '--subnet', '10.78.1.0/24', nets.bridge]);
const rows = [];
const images = [];
try {
  let base;
  for (const n of COUNTS) {
    const image = `mnt-bench/expose-${n}:latest`;
    images.push(image);
    // The busybox image's root, with n EXPOSEd ports (1000/tcp ...).
    // One EXPOSE per 2 000 ports: an argument is at most 128 KiB (MAX_ARG_STRLEN).
    const changes = [];
    for (let i = 0; i < n; i += 2000) changes.push('-c', `EXPOSE ${Array.from({ length: Math.min(2000, n - i) }, (_, j) => `${1000 + i + j}/tcp`).join(' ')}`);
    execFileSync('sh', ['-c', `c=$(docker create ${IMAGE}) && docker export $c | docker import "$@" -c 'CMD ["/bin/sh"]' - ${image} >/dev/null && docker rm $c >/dev/null`, 'sh', ...changes], { stdio: 'inherit' });
    for (const driver of BRIDGE.has(n) ? ['mynet', 'bridge'] : ['mynet']) {
      const name = `mnt-bench-expose-${driver}-${n}`;
      trySh('docker', ['rm', '-f', name]);
      const t0 = now();
      sh('docker', ['run', '-d', '--name', name, '--network', nets[driver], '-P', image, 'sleep', '600'], { timeout: 600_000 });
      const run = now() - t0;
      const inside = driver === 'mynet' ? programMs(plugin.logFile) : undefined;
      const published = sh('docker', ['inspect', '-f', '{{len .NetworkSettings.Ports}}', name]);
      const t1 = now();
      sh('docker', ['rm', '-f', name], { timeout: 600_000 });
      const rm = now() - t1;
      if (driver === 'mynet' && n === 100) base = { run, inside };
      const ratio = (x, b) => (b && n !== 100 ? ` (x${(x / b).toFixed(1)})` : '');
      rows.push([`${n}`, driver, `${run.toFixed(0)} ms${driver === 'mynet' ? ratio(run, base?.run) : ''}`, inside === undefined ? 'n/a' : `${inside.toFixed(0)} ms${ratio(inside, base?.inside)}`, `${rm.toFixed(0)} ms`, published]);
      if (driver === 'mynet' && n !== 100) goal(`14.2 docker run -P with ${n} EXPOSEs (plugin time, ratio to 100)`, `${run.toFixed(0)} ms (${inside?.toFixed(0)} ms${ratio(inside, base?.inside)})`, '', '(reported)', true);
      console.error(`done: ${rows[rows.length - 1].join('  ')}`);
    }
  }
} finally {
  trySh('docker', ['network', 'rm', nets.mynet, nets.bridge]);
  for (const i of images) trySh('docker', ['rmi', i]);
  await plugin.stop();
  if (dockerd) process.kill(Number(sh('cat', ['/var/run/docker.pid'])), 'SIGTERM');
}
console.log(table(['EXPOSEs', 'driver', 'docker run -d -P', 'plugin: ProgramExternalConnectivity', 'docker rm -f', 'ports in docker inspect'], rows));
