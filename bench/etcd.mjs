// A private etcd for the cluster benchmarks, as test/helpers/etcd.ts starts one for the host
// tier: its own data directory (/tmp/mnt-mhb-etcd-*), stopped by its pid, removed at the end.
// In the root namespace it listens on loopback ports picked free; inside a namespace the
// benchmark made (`netns`), on the address given there (the hosts reach it over the underlay).
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { sleep } from './lib.mjs';

const CACHE = join(process.env.MYNET_ETCD_CACHE ?? '/var/cache/mynet-tests/etcd', 'usr/bin/etcd');

export function etcdBinary() {
  for (const c of [process.env.MYNET_TEST_ETCD, ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'etcd')), CACHE]) {
    if (!c) continue;
    try { accessSync(c, constants.X_OK); return c; } catch { /* not this one */ }
  }
  throw new Error(`no etcd binary (MYNET_TEST_ETCD, PATH, ${CACHE}): run scripts/install-deps.sh`);
}

const freePort = () => new Promise((resolve, reject) => {
  const srv = createServer();
  srv.once('error', reject);
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
});

/**
 * Starts etcd; resolves when /health answers (from inside `netns` when one is given). Its data
 * (and so its write-ahead log, fsynced on every write) goes under BENCH_ETCD_DIR, default the
 * temporary directory; BENCH_ETCD_DIR=/dev/shm shows what the figures owe to the disk's fsync.
 */
export async function startEtcd({ host = '127.0.0.1', netns } = {}) {
  const dir = mkdtempSync(join(process.env.BENCH_ETCD_DIR || tmpdir(), 'mnt-mhb-etcd-'));
  const [cport, pport] = netns ? [2379, 2380] : [await freePort(), await freePort()];
  const endpoint = `http://${host}:${cport}`;
  const peer = `http://${host}:${pport}`;
  const args = ['--name', 'mnt-mhb', '--data-dir', join(dir, 'data'), '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `mnt-mhb=${peer}`, '--initial-cluster-state', 'new',
    '--logger', 'zap', '--log-level', 'warn', '--quota-backend-bytes', String(4 * 1024 ** 3)];
  const argv = netns ? ['ip', ['netns', 'exec', netns, etcdBinary(), ...args]] : [etcdBinary(), args];
  const child = spawn(argv[0], argv[1], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (b) => { log = (log + b).slice(-4000); });
  let exited = false;
  const gone = new Promise((r) => child.once('exit', () => { exited = true; r(); }));
  const kill = () => { if (!exited) child.kill('SIGKILL'); };
  process.once('exit', kill);
  const healthy = async () => {
    if (netns) {
      const r = spawn('ip', ['netns', 'exec', netns, 'curl', '-s', '-m', '1', `${endpoint}/health`], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      r.stdout.on('data', (b) => (out += b));
      await new Promise((res) => r.once('exit', res));
      return out.includes('"health":"true"');
    }
    return new Promise((res) => {
      const req = get(`${endpoint}/health`, { timeout: 1000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => res(b.includes('"health":"true"'))); });
      req.on('error', () => res(false));
      req.on('timeout', () => req.destroy());
    });
  };
  const deadline = Date.now() + 20_000;
  while (!(await healthy())) {
    if (exited) throw new Error(`etcd exited at start: ${log}`);
    if (Date.now() > deadline) { kill(); throw new Error(`etcd did not become healthy in 20 s: ${log}`); }
    await sleep(50);
  }
  return {
    endpoint,
    pid: child.pid,
    dir,
    stop: async () => { kill(); await gone; process.removeListener('exit', kill); rmSync(dir, { recursive: true, force: true }); },
  };
}
