// Scale with running containers: the time of the next `docker run --rm` on a network that already
// has 10 running containers, then 200, for a mynet network and a bridge network side by side.
// The goal is that mynet's cost at scale stays within 1.2x of its cost when small.
import { ensureDockerd, ensureImage, ensurePlugin, goal, IMAGE, median, now, sh, table, trySh } from './lib.mjs';

const SMALL = Number(process.env.BENCH_SMALL ?? 10);
const LARGE = Number(process.env.BENCH_LARGE ?? 200);
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const dockerd = await ensureDockerd();
ensureImage();
const plugin = await ensurePlugin({ MYNET_LOG_LEVEL: 'warn' });
const nets = { mynet: 'mnt-bench-scale-mynet', bridge: 'mnt-bench-scale-bridge' };
const running = { mynet: [], bridge: [] };
const rows = [];

function fill(d, n) {
  while (running[d].length < n) {
    const name = `mnt-bench-scale-${d}-${running[d].length}`;
    running[d].push(name);
    sh('docker', ['run', '-d', '--name', name, '--network', nets[d], IMAGE, 'sleep', '3600']);
  }
}
function nextRuns() {
  const t = { mynet: [], bridge: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const d of ['mynet', 'bridge']) {
      const t0 = now();
      sh('docker', ['run', '--rm', '--network', nets[d], IMAGE, 'true']);
      t[d].push(now() - t0);
    }
  }
  return { mynet: median(t.mynet), bridge: median(t.bridge) };
}

try {
  trySh('docker', ['network', 'create', '-d', 'mynet', '--subnet', '10.77.0.0/22', nets.mynet]);
  trySh('docker', ['network', 'create', '-d', 'bridge', '--subnet', '10.77.4.0/22', nets.bridge]);
  for (const d of ['mynet', 'bridge']) fill(d, SMALL);
  const small = nextRuns();
  const t0 = now();
  for (const d of ['mynet', 'bridge']) fill(d, LARGE);
  const fillS = ((now() - t0) / 1000).toFixed(0);
  const large = nextRuns();
  rows.push([`next docker run --rm, ${SMALL} running (median of ${RUNS})`, `${small.mynet.toFixed(0)} ms`, `${small.bridge.toFixed(0)} ms`, (small.mynet / small.bridge).toFixed(3)]);
  rows.push([`next docker run --rm, ${LARGE} running (median of ${RUNS})`, `${large.mynet.toFixed(0)} ms`, `${large.bridge.toFixed(0)} ms`, (large.mynet / large.bridge).toFixed(3)]);
  rows.push([`${LARGE} vs ${SMALL} running (goal <= 1.2)`, (large.mynet / small.mynet).toFixed(3), (large.bridge / small.bridge).toFixed(3), '']);
  goal(`3. next docker run with ${LARGE} vs ${SMALL} running containers`, `x${(large.mynet / small.mynet).toFixed(2)}`, `x${(large.bridge / small.bridge).toFixed(2)}`, '<= x1.2', large.mynet / small.mynet <= 1.2);
  console.error(`(filling to ${LARGE} containers each took ${fillS} s)`);
} finally {
  const all = [...running.mynet, ...running.bridge];
  for (let i = 0; i < all.length; i += 50) trySh('docker', ['rm', '-f', ...all.slice(i, i + 50)]);
  trySh('docker', ['network', 'rm', nets.mynet, nets.bridge]);
  await plugin.stop();
  if (dockerd) process.kill(Number(sh('cat', ['/var/run/docker.pid'])), 'SIGTERM');
}
console.log(table(['figure', 'mynet', 'bridge', 'ratio'], rows));
