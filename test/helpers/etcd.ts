/**
 * A private etcd for the host tier: its own data directory (/tmp/mnt-etcd-*), client and peer
 * URLs on loopback ports picked free at start, stopped by its pid. The binary is MYNET_TEST_ETCD,
 * else `etcd` on PATH, else the one scripts/install-deps.sh unpacked (Debian's etcd-server,
 * never installed as a service). No etcd binary is a failure, not a skip: run install-deps.
 *
 *   const etcd = await startEtcd();  ...  await etcd.stop({ keepData: true }); await etcd.restart();
 *   afterAll(() => etcd.destroy());
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const CACHE = join(process.env.MYNET_ETCD_CACHE ?? '/var/cache/mynet-tests/etcd', 'usr/bin/etcd');

export function etcdBinary(): string {
  const candidates = [process.env.MYNET_TEST_ETCD, ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'etcd')), CACHE];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not this one; try the next candidate
    }
  }
  throw new Error(`no etcd binary (MYNET_TEST_ETCD, PATH, ${CACHE}): run scripts/install-deps.sh`);
}

/** A port the kernel says is free now (closed again at once; etcd binds it right after). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export class TestEtcd {
  private child: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly dir: string,
    readonly clientPort: number,
    readonly peerPort: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  static async start(): Promise<TestEtcd> {
    const e = new TestEtcd(mkdtempSync(join(tmpdir(), 'mnt-etcd-')), await freePort(), await freePort());
    await e.restart();
    return e;
  }

  /** Starts etcd (again) on the same ports and data directory; resolves when it answers /health. */
  async restart(): Promise<void> {
    if (this.child) throw new Error('etcd is already running');
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(etcdBinary(), [
      '--name', 'mnt', '--data-dir', join(this.dir, 'data'),
      '--listen-client-urls', this.endpoint, '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `mnt=${peer}`,
      '--initial-cluster-state', 'new', '--logger', 'zap', '--log-level', 'warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    running.add(child);
    child.stderr?.on('data', (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-4000);
    });
    child.once('exit', () => {
      running.delete(child);
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (!this.child) throw new Error(`etcd exited at start: ${this.log}`);
      try {
        const r = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1000) });
        if (r.ok && ((await r.json()) as { health?: string }).health === 'true') return;
      } catch {
        // not up yet; poll again until the deadline
      }
      if (Date.now() > deadline) throw new Error(`etcd did not become healthy in 20 s: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops etcd by its pid (SIGKILL: a crash, SIGTERM: a clean stop) and waits for the exit. */
  async stop(o: { signal?: NodeJS.Signals; keepData?: boolean } = {}): Promise<void> {
    const c = this.child;
    if (c) {
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill(o.signal ?? 'SIGKILL');
      await exited;
    }
    if (!o.keepData) rmSync(join(this.dir, 'data'), { recursive: true, force: true });
  }

  /** Freezes etcd (SIGSTOP): it holds its sockets but answers nothing, as a hung server. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async destroy(): Promise<void> {
    this.thaw();
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const startEtcd = (): Promise<TestEtcd> => TestEtcd.start();
