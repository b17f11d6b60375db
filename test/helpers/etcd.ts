/**
 * A private etcd for the host tier: its own data directory (/tmp/mnt-etcd-*), client and peer
 * URLs on loopback ports picked free at start, stopped by its pid. The binary is MYNET_TEST_ETCD,
 * else `etcd` on PATH, else the one scripts/install-deps.sh unpacked (Debian's etcd-server,
 * never installed as a service). No etcd binary is a failure, not a skip: run install-deps.
 *
 *   const etcd = await startEtcd();  ...  await etcd.stop({ keepData: true }); await etcd.restart();
 *   afterAll(() => etcd.destroy());
 *
 * `{ netns, host }` runs it inside a network namespace the test made, on an address there (the
 * e2e tier's underlay: hosts in other namespaces reach it, the test process does not), on
 * etcd's usual ports, since nothing else listens in that namespace; /health is then asked from
 * inside the namespace too.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { waitUntil } from './wait.js';

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
  const ca = (name: string): void =>
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.pem`),
    );
  const leaf = (name: string, ext: string): void => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    writeFileSync(f(`${name}.ext`), ext);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('mnt-ca.pem'),
      '-CAkey',
      f('mnt-ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.pem`),
    );
  };
  ca('mnt-ca');
  ca('mnt-other-ca');
  leaf('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: f('mnt-ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    otherCa: f('mnt-other-ca.pem'),
  };
}

const execFileP = promisify(execFile);

/** /health asked by a node process inside `netns` (plain http only: the e2e tier needs no TLS). */
function healthyIn(netns: string, url: string): Promise<boolean> {
  const script = `fetch(process.argv[1]+'/health',{signal:AbortSignal.timeout(1000)}).then(async(r)=>process.exit(r.ok&&(await r.json()).health==='true'?0:1),()=>process.exit(1))`;
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', netns, process.execPath, '-e', script, url], { timeout: 3000 }, (err) => resolve(err === null));
  });
}

function healthy(url: string, pki: TestPki | undefined): Promise<boolean> {
  if (!pki) {
    return fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then(
      async (r) => r.ok && ((await r.json()) as { health?: string }).health === 'true',
      () => false,
    );
  }
  return new Promise((resolve) => {
    const req = request(
      `${url}/health`,
      { ca: readFileSync(pki.ca), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey), timeout: 1000 },
      (res) => {
        let body = '';
        res.on('data', (b: Buffer) => (body += b.toString()));
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
      },
    );
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
    /** The namespace it runs in and its address there (undefined: this namespace, 127.0.0.1). */
    readonly netns?: string,
    readonly host = '127.0.0.1',
    private readonly args: readonly string[] = [],
  ) {}

  get endpoint(): string {
    return `${this.pki ? 'https' : 'http'}://${this.host}:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  static async start(o: EtcdOptions = {}): Promise<TestEtcd> {
    if (o.netns && o.tls) throw new Error('etcd in a namespace is plain http only (its health check has no client certificate)');
    const dir = mkdtempSync(join(o.baseDir ?? tmpdir(), o.dirPrefix ?? 'mnt-etcd-'));
    const [client, peer] = o.ports ?? (o.netns ? [2379, 2380] : [await freePort(), await freePort()]);
    const e = new TestEtcd(dir, client, peer, o.tls ? makePki(dir) : undefined, o.netns, o.host, o.args);
    await e.restart();
    return e;
  }

  /** Starts etcd (again) on the same ports and data directory; resolves when it answers /health. */
  async restart(): Promise<void> {
    if (this.child) throw new Error('etcd is already running');
    const peer = `http://${this.host}:${this.peerPort}`;
    // `ip netns exec` execs etcd, so the child's pid is etcd's own (stop and freeze signal it).
    const [cmd, pre]: [string, string[]] = this.netns ? ['ip', ['netns', 'exec', this.netns, etcdBinary()]] : [etcdBinary(), []];
    const child = spawn(
      cmd,
      [
        ...pre,
        '--name',
        'mnt',
        '--data-dir',
        join(this.dir, 'data'),
        '--listen-client-urls',
        this.endpoint,
        '--advertise-client-urls',
        this.endpoint,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `mnt=${peer}`,
        '--initial-cluster-state',
        'new',
        '--logger',
        'zap',
        '--log-level',
        'warn',
        ...(this.pki
          ? ['--cert-file', this.pki.serverCert, '--key-file', this.pki.serverKey, '--trusted-ca-file', this.pki.ca, '--client-cert-auth']
          : []),
        ...this.args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    running.add(child);
    child.stderr?.on('data', (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-4000);
    });
    child.once('exit', () => {
      running.delete(child);
      if (this.child === child) this.child = undefined;
    });
    const up = async (): Promise<boolean> => {
      if (!this.child) throw new Error(`etcd exited at start: ${this.log}`);
      return this.netns ? healthyIn(this.netns, this.endpoint) : healthy(this.endpoint, this.pki);
    };
    await waitUntil('etcd to become healthy', up, { ms: 20_000, every: 50, show: () => this.log });
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
   * One call of etcd's JSON gateway (POST /v3/kv/<op>) by curl inside its namespace (the test
   * process cannot reach it there); an answer with an error fails naming `what`.
   */
  private async gateway<T extends { error?: string }>(op: 'range' | 'put', body: object, what: string): Promise<T> {
    if (!this.netns) throw new Error(`${op} is for an etcd in a namespace; use an EtcdKv otherwise`);
    const { stdout } = await execFileP('ip', [
      'netns',
      'exec',
      this.netns,
      'curl',
      '-sS',
      '--max-time',
      '2',
      '-X',
      'POST',
      '-d',
      JSON.stringify(body),
      `${this.endpoint}/v3/kv/${op}`,
    ]);
    const out = JSON.parse(stdout) as T;
    if (out.error) throw new Error(`etcd ${op} ${what}: ${out.error}`);
    return out;
  }

  /** The keys under `prefix` and their values (parsed JSON): what a test checks the plugins wrote. */
  async get(prefix: string): Promise<Map<string, unknown>> {
    const end = Buffer.from(prefix);
    end[end.length - 1] = (end[end.length - 1] as number) + 1; // the range end of a prefix
    const out = await this.gateway<{ kvs?: { key: string; value: string }[]; error?: string }>(
      'range',
      { key: b64(prefix), range_end: b64(end) },
      prefix,
    );
    const dec = (x: string): string => Buffer.from(x, 'base64').toString();
    return new Map((out.kvs ?? []).map((kv) => [dec(kv.key), JSON.parse(dec(kv.value)) as unknown]));
  }

  /** Writes `value` under `key` as an operator's etcdctl would (a record without a field, forged). */
  async put(key: string, value: string): Promise<void> {
    await this.gateway('put', { key: b64(key), value: b64(value) }, key);
  }

  async destroy(): Promise<void> {
    this.thaw();
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const b64 = (x: string | Buffer): string => Buffer.from(x).toString('base64');

export interface EtcdOptions {
  readonly tls?: boolean;
  /** Run inside this network namespace (made by the test) ... */
  readonly netns?: string;
  /** ... listening on this address of it. */
  readonly host?: string;
  /** Of the data directory (default mnt-etcd-), made in `baseDir` (default tmpdir()). */
  readonly dirPrefix?: string;
  /** Where the data directory is made, e.g. /dev/shm: etcd's fsyncs then cost nothing. */
  readonly baseDir?: string;
  /** Client and peer ports (default: 2379/2380 in a namespace, free ones otherwise). */
  readonly ports?: readonly [number, number];
  /** More etcd flags, e.g. `--grpc-keepalive-min-time=1s` for a test of the client's keepalive. */
  readonly args?: readonly string[];
}

export const startEtcd = (o: EtcdOptions = {}): Promise<TestEtcd> => TestEtcd.start(o);
