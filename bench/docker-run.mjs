// `docker run --rm` on a mynet network against a network of Docker's bridge driver, interleaved
// (mynet, bridge, mynet, ...), N runs each: medians and their ratio. Then TCP throughput between
// two containers on each (busybox nc piping dd), the data path.
import { ensureDockerd, ensureImage, ensurePlugin, IMAGE, median, now, sh, table, trySh } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const MB = Number(process.env.BENCH_MB ?? 512);
const dockerd = await ensureDockerd();
ensureImage();
const plugin = await ensurePlugin({ MYNET_LOG_LEVEL: 'warn' });
const nets = { mynet: 'mnt-bench-run-mynet', bridge: 'mnt-bench-run-bridge' };
trySh('docker', ['network', 'create', '-d', 'mynet', '--subnet', '10.78.0.0/24', nets.mynet]);
trySh('docker', ['network', 'create', '-d', 'bridge', '--subnet', '10.78.1.0/24', nets.bridge]);
const times = { mynet: [], bridge: [] };
const rows = [];
try {
  for (const d of ['mynet', 'bridge']) sh('docker', ['run', '--rm', '--network', nets[d], IMAGE, 'true']); // warm-up
  for (let i = 0; i < RUNS; i++) {
    for (const d of ['mynet', 'bridge']) {
      const t0 = now();
      sh('docker', ['run', '--rm', '--network', nets[d], IMAGE, 'true']);
      times[d].push(now() - t0);
    }
  }
  const m = median(times.mynet);
  const b = median(times.bridge);
  rows.push([`docker run --rm (median of ${RUNS})`, `${m.toFixed(0)} ms`, `${b.toFixed(0)} ms`, (m / b).toFixed(3), 'goal <= 1.05']);
  for (const d of ['mynet', 'bridge']) {
    const srv = `mnt-bench-tp-srv-${d}`;
    trySh('docker', ['rm', '-f', srv]);
    sh('docker', ['run', '-d', '--name', srv, '--network', nets[d], IMAGE, 'sh', '-c', 'nc -l -p 5001 > /dev/null']);
    const ip = sh('docker', ['inspect', srv, '--format', `{{(index .NetworkSettings.Networks "${nets[d]}").IPAddress}}`]);
    const t0 = now();
    sh('docker', ['run', '--rm', '--network', nets[d], IMAGE, 'sh', '-c', `dd if=/dev/zero bs=1M count=${MB} 2>/dev/null | nc ${ip} 5001`], { timeout: 300_000 });
    times[`tp_${d}`] = (MB * 8) / ((now() - t0) / 1000);
    trySh('docker', ['rm', '-f', srv]);
  }
  rows.push([`TCP throughput, ${MB} MiB container to container (incl. docker run)`, `${(times.tp_mynet / 1000).toFixed(2)} Gbit/s`, `${(times.tp_bridge / 1000).toFixed(2)} Gbit/s`, (times.tp_mynet / times.tp_bridge).toFixed(3), 'higher is better']);
} finally {
  trySh('docker', ['network', 'rm', nets.mynet, nets.bridge]);
  await plugin.stop();
  if (dockerd) process.kill(Number(sh('cat', ['/var/run/docker.pid'])), 'SIGTERM');
}
console.log(table(['figure', 'mynet', 'bridge', 'ratio', 'note'], rows));
