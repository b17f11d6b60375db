// Scale with running containers: the next `docker run --rm` on a network that already has 10
// running containers, then 200, for a mynet network and a bridge network side by side: its wall
// time for both drivers, and for mynet the plugin's own time for that container's lifecycle (the
// sum of its requests' times, from the plugin's request log). The issue's goal is that mynet's
// cost at scale stays within 1.2x of its cost when small; the wall time also carries dockerd's
// and containerd's own growth with running containers, which the bridge driver shows as well.
import { readFileSync } from 'node:fs';
import { ensureDockerd, ensureImage, ensurePlugin, goal, IMAGE, median, now, sh, table, trySh } from './lib.mjs';

const SMALL = Number(process.env.BENCH_SMALL ?? 10);
const LARGE = Number(process.env.BENCH_LARGE ?? 200);
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const dockerd = await ensureDockerd();
ensureImage();
const plugin = await ensurePlugin({ MYNET_LOG_LEVEL: 'info' });
/** The plugin's time (ms) for each endpoint's requests, summed, from its request log. */
function pluginLifecycles() {
  const by = new Map();
  if (!plugin.logFile) throw new Error('bench/containers: a mynet plugin already runs; stop it, so that the benchmark starts its own and reads its request log');
  for (const l of readFileSync(plugin.logFile, 'utf8').split('\n')) {
    if (!l.includes('"msg":"request"')) continue;
    const j = JSON.parse(l);
    if (j.endpointId) by.set(j.endpointId, (by.get(j.endpointId) ?? 0) + j.ms);
  }
  return by;
}
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
  const before = new Set(pluginLifecycles().keys());
  for (let i = 0; i < RUNS; i++) {
    for (const d of ['mynet', 'bridge']) {
      const t0 = now();
      sh('docker', ['run', '--rm', '--network', nets[d], IMAGE, 'true']);
      t[d].push(now() - t0);
    }
  }
  const inside = [...pluginLifecycles()].filter(([id]) => !before.has(id)).map(([, ms]) => ms);
  return { mynet: median(t.mynet), bridge: median(t.bridge), plugin: median(inside) };
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
  rows.push([`${LARGE} vs ${SMALL} running, wall time`, (large.mynet / small.mynet).toFixed(3), (large.bridge / small.bridge).toFixed(3), '']);
  rows.push([`plugin's time for the next lifecycle, ${SMALL} / ${LARGE} running (goal <= x1.2)`, `${small.plugin.toFixed(2)} / ${large.plugin.toFixed(2)} ms (x${(large.plugin / small.plugin).toFixed(2)})`, '(in dockerd)', '']);
  goal(`3. plugin's time for the next docker run, ${LARGE} vs ${SMALL} running`, `x${(large.plugin / small.plugin).toFixed(2)}`, '', '<= x1.2', large.plugin / small.plugin <= 1.2);
  goal(`3. next docker run wall time, ${LARGE} vs ${SMALL} running (dockerd included)`, `x${(large.mynet / small.mynet).toFixed(2)}`, `x${(large.bridge / small.bridge).toFixed(2)}`, '(reported)', true);
  console.error(`(filling to ${LARGE} containers each took ${fillS} s)`);
} finally {
  const all = [...running.mynet, ...running.bridge];
  for (let i = 0; i < all.length; i += 50) trySh('docker', ['rm', '-f', ...all.slice(i, i + 50)]);
  trySh('docker', ['network', 'rm', nets.mynet, nets.bridge]);
  await plugin.stop();
  if (dockerd) process.kill(Number(sh('cat', ['/var/run/docker.pid'])), 'SIGTERM');
}
console.log(table(['figure', 'mynet', 'bridge', 'ratio'], rows));
