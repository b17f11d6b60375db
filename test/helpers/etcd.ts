/**
 * A private etcd for the host tier: its own data directory (/tmp/mnt-etcd-*), client and peer
 * URLs on loopback ports picked free at start, stopped by its pid. The binary is MYNET_TEST_ETCD,
 * else `etcd` on PATH, else the one scripts/install-deps.sh unpacked (Debian's etcd-server,
 * never installed as a service). No etcd binary is a failure, not a skip: run install-deps.
 *
 *   const etcd = await startEtcd();  ...  await etcd.stop({ keepData: true }); await etcd.restart();
 *   afterAll(() => etcd.destroy());
 *
 * With `netns`, etcd runs inside that (test-made) namespace and listens on `host` there, on
 * 2379/2380 (the namespace is private, so the ports are free): other namespaces reach it over
 * their links, as hosts reach an etcd on the network. The test process itself is outside, so
 * health and `get` go through curl run in the namespace.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

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

/** Files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate. */
export interface TestPki {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Another CA, which signed none of the above. */
  readonly otherCa: string;
}

function makePki(dir: string): TestPki {
  const f = (n: string): string => join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  const ca = (name: string): void => ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`));
  const leaf = (name: string, ext: string): void => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    writeFileSync(f(`${name}.ext`), ext);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('mnt-ca.pem'), '-CAkey', f('mnt-ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
  };
  ca('mnt-ca');
  ca('mnt-other-ca');
  leaf('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'extendedKeyUsage=clientAuth\n');
  return { ca: f('mnt-ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key'), otherCa: f('mnt-other-ca.pem') };
}

const execFileP = promisify(execFile);

/** curl inside a namespace (the test process cannot reach an address that lives only there). */
async function curlIn(netns: string, args: readonly string[]): Promise<string> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', netns, 'curl', '-sS', '--max-time', '2', ...args]);
  return stdout;
}

function healthy(url: string, pki: TestPki | undefined, netns?: string): Promise<boolean> {
  if (netns) return curlIn(netns, [`${url}/health`]).then((b) => b.includes('"health":"true"'), () => false);
  if (!pki) {
    return fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then(
      async (r) => r.ok && ((await r.json()) as { health?: string }).health === 'true',
      () => false,
    );
  }
  return new Promise((resolve) => {
    const req = request(`${url}/health`, { ca: readFileSync(pki.ca), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey), timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export class TestEtcd {
  private child: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly dir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    /** With TLS: https clients must show a certificate of this CA. */
    readonly pki?: TestPki,
    /** The namespace etcd runs in (undefined: the test's own) and the address it listens on. */
    readonly netns?: string,
    readonly host = '127.0.0.1',
  ) {}

  get endpoint(): string {
    return `${this.pki ? 'https' : 'http'}://${this.host}:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  static async start(o: EtcdOptions = {}): Promise<TestEtcd> {
    if (o.netns && o.tls) throw new Error('etcd in a namespace: TLS is not supported here (the certificates name 127.0.0.1)');
    const dir = mkdtempSync(join(o.baseDir ?? tmpdir(), o.dirPrefix ?? 'mnt-etcd-'));
    const e = o.netns
      ? new TestEtcd(dir, 2379, 2380, undefined, o.netns, o.host ?? '127.0.0.1')
      : new TestEtcd(dir, await freePort(), await freePort(), o.tls ? makePki(dir) : undefined);
    await e.restart();
    return e;
  }

  /** Starts etcd (again) on the same ports and data directory; resolves when it answers /health. */
  async restart(): Promise<void> {
    if (this.child) throw new Error('etcd is already running');
    const peer = `http://${this.host}:${this.peerPort}`;
    // `ip netns exec` execs etcd in place: the child's pid is etcd's, for stop, freeze and kill.
    const argv = [etcdBinary(), 
      '--name', 'mnt', '--data-dir', join(this.dir, 'data'),
      '--listen-client-urls', this.endpoint, '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `mnt=${peer}`,
      '--initial-cluster-state', 'new', '--logger', 'zap', '--log-level', 'warn',
      ...(this.pki ? ['--cert-file', this.pki.serverCert, '--key-file', this.pki.serverKey, '--trusted-ca-file', this.pki.ca, '--client-cert-auth'] : []),
    ];
    const [cmd, ...args] = this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv;
    const child = spawn(cmd as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
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
      if (await healthy(this.endpoint, this.pki, this.netns)) return;
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

  /**
   * The keys under `prefix` and their values (parsed JSON), read with etcd's JSON gateway
   * (POST /v3/kv/range) from inside its namespace: what the test checks the plugins wrote.
   */
  async get(prefix: string): Promise<Map<string, unknown>> {
    if (!this.netns) throw new Error('get() is for an etcd in a namespace; use an EtcdKv otherwise');
    const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
    const end = Buffer.from(prefix);
    end[end.length - 1] = (end[end.length - 1] as number) + 1; // the range end of a prefix
    const body = JSON.stringify({ key: b64(prefix), range_end: b64(end) });
    const out = JSON.parse(await curlIn(this.netns, ['-X', 'POST', '-d', body, `${this.endpoint}/v3/kv/range`])) as { kvs?: { key: string; value: string }[]; error?: string };
    if (out.error) throw new Error(`etcd range ${prefix}: ${out.error}`);
    const dec = (s: string): string => Buffer.from(s, 'base64').toString();
    return new Map((out.kvs ?? []).map((kv) => [dec(kv.key), JSON.parse(dec(kv.value)) as unknown]));
  }

  async destroy(): Promise<void> {
    this.thaw();
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface EtcdOptions {
  readonly tls?: boolean;
  /** Run inside this namespace (one the test made), listening on `host` (default 127.0.0.1). */
  readonly netns?: string;
  readonly host?: string;
  /** Of the data directory (default mnt-etcd-), made in `baseDir` (default tmpdir()). */
  readonly dirPrefix?: string;
  /** Where the data directory is made, e.g. /dev/shm: etcd's fsyncs then cost nothing. */
  readonly baseDir?: string;
}

export const startEtcd = (o: EtcdOptions = {}): Promise<TestEtcd> => TestEtcd.start(o);
