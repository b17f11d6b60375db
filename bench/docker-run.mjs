// `docker run --rm` on a mynet network against a network of Docker's bridge driver, interleaved
// (mynet, bridge, mynet, ...), N runs each: medians and their ratio. Then TCP throughput between
// two containers on each (busybox nc piping dd), the data path.
import { spawnSync } from 'node:child_process';
import { ensureDockerd, ensureImage, ensurePlugin, goal, IMAGE, median, now, sh, sleep, table, trySh } from './lib.mjs';

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
  goal(`1. docker run --rm, median of ${RUNS} interleaved (ratio)`, `${m.toFixed(0)} ms`, `${b.toFixed(0)} ms`, '<= 1.05', m / b <= 1.05);
  // Throughput between two running containers, timed inside the client by busybox `time`, so
  // that docker exec's own cost is not counted; TRIALS transfers each, interleaved, median.
  const TRIALS = Number(process.env.BENCH_TRIALS ?? 3);
  const tp = { mynet: [], bridge: [] };
  const made = [];
  try {
    const ends = {};
    for (const d of ['mynet', 'bridge']) {
      const srv = `mnt-bench-tp-srv-${d}`;
      const cli = `mnt-bench-tp-cli-${d}`;
      made.push(srv, cli);
      trySh('docker', ['rm', '-f', srv, cli]);
      sh('docker', ['run', '-d', '--name', srv, '--network', nets[d], IMAGE, 'sleep', '3600']);
      sh('docker', ['run', '-d', '--name', cli, '--network', nets[d], IMAGE, 'sleep', '3600']);
      ends[d] = { srv, cli, ip: sh('docker', ['inspect', srv, '--format', `{{(index .NetworkSettings.Networks "${nets[d]}").IPAddress}}`]) };
    }
    for (let i = 0; i < TRIALS; i++) {
      for (const d of ['mynet', 'bridge']) {
        const { srv, cli, ip } = ends[d];
        // busybox nc closes the connection when its own stdin ends: keep the listener's stdin open.
        sh('docker', ['exec', '-d', srv, 'sh', '-c', 'sleep 3600 | nc -l -p 5001 > /dev/null']);
        await sleep(300);
        const r = spawnSync('docker', ['exec', cli, 'time', 'sh', '-c', `dd if=/dev/zero bs=1M count=${MB} 2>/dev/null | nc ${ip} 5001`], { encoding: 'utf8', timeout: 300_000 });
        const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(r.stderr ?? '');
        if (r.status !== 0 || !m) throw new Error(`throughput on ${d}: exit ${r.status}: ${r.stderr}`);
        tp[d].push((MB * 8 * 1.048576) / (Number(m[1]) * 60 + Number(m[2]))); // Mbit/s
      }
    }
  } finally {
    trySh('docker', ['rm', '-f', ...made]);
  }
  const tm = median(tp.mynet);
  const tb = median(tp.bridge);
  rows.push([`TCP throughput, ${MB} MiB container to container (median of ${TRIALS})`, `${(tm / 1000).toFixed(2)} Gbit/s`, `${(tb / 1000).toFixed(2)} Gbit/s`, (tm / tb).toFixed(3), 'higher is better']);
  goal('7. TCP throughput container to container (ratio)', `${(tm / 1000).toFixed(2)} Gbit/s`, `${(tb / 1000).toFixed(2)} Gbit/s`, '>= 0.95 (a tie)', tm / tb >= 0.95);
} finally {
  trySh('docker', ['network', 'rm', nets.mynet, nets.bridge]);
  await plugin.stop();
  if (dockerd) process.kill(Number(sh('cat', ['/var/run/docker.pid'])), 'SIGTERM');
}
console.log(table(['figure', 'mynet', 'bridge', 'ratio', 'note'], rows));
