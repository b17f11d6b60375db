/**
 * Several "Docker hosts" on this machine for the multi-host e2e tests (issue 17), made as
 * ../shared/docs/multihost.md §4 describes. Each host is:
 *   - a network namespace (`mnt-<tag>-<id>-<name>`) with one veth (eth0) on an underlay bridge,
 *     which lives in a namespace of its own (`mnt-<tag>-<id>-ul`), on `<subnet>.0/24`;
 *   - a dockerd in that namespace and in a private mount namespace, with its own data root, exec
 *     root, pid file, socket and config file (`{}`: /etc/docker/daemon.json is not read), and its
 *     own plugin directory bound over /run/docker/plugins, where legacy plugin discovery is
 *     hard-coded: that daemon finds its own mynet there and no other. /sys is remounted for the
 *     namespace and the cgroup hierarchy bound back (without that dockerd finds no devices cgroup);
 *   - a resolv.conf bound over /etc/resolv.conf with `nameserver 127.0.0.153` and then the host's
 *     "real" resolver, 127.0.0.154 (a test may start a stand-in there: upstream-dns.ts): dockerd's
 *     embedded DNS forwards what it does not know to the *host's* nameservers, a loopback one from
 *     the daemon's own namespace, where mynet's DNS listens. (`docker run --dns 127.0.0.153` does
 *     not work: dockerd asks a nameserver given with --dns from the container's namespace.)
 *   - a mynet plugin (node dist/main.js) in that namespace, with MYNET_SOCKET in the host's plugin
 *     directory, its own state dir and admin socket, DOCKER_HOST at that daemon's socket, and
 *     MYNET_NODE_NAME / MYNET_NODE_ADDRESS / MYNET_ETCD_ENDPOINTS for the cluster;
 * plus, optionally, one etcd in the underlay namespace on `<subnet>.1`, which every host reaches.
 *
 * The engine is the one scripts/engines.sh put first in PATH (dockerd, docker), with the
 * engine's own flags from MNT_DOCKERD_ARGS (the data root, exec root and pid file there belong
 * to the tier's main dockerd and are replaced). The image is the tier's (global-setup.ts), moved
 * with `docker save` from the main dockerd and `docker load` into each host.
 *
 * Everything is under one directory /tmp/mnt-<tag>-<id>, and `destroy()` removes it all, failures
 * included: containers and networks (through the plugin, so it cleans up too), plugins, dockerds,
 * then any process still running from the host's directory (containerd, shims), by pid, then
 * etcd, the namespaces and the directory. The mounts live only in the daemons' mount namespaces.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestEtcd, startEtcd } from '../../helpers/etcd.js';
import { IMAGE } from '../global-setup.js';
import { type PluginHandle, startPlugin } from './plugin.js';
import { Resources } from './resources.js';
import { type RunResult, alive, ok, sh, sleep, waitFor } from './sh.js';

/** Where mynet's DNS listens in each host's namespace (its own loopback). */
export const HOST_DNS = '127.0.0.153';
/** The host's other resolver, after mynet in its resolv.conf (nothing listens unless a test starts one). */
export const HOST_UPSTREAM_DNS = '127.0.0.154';
const PLUGINS = '/run/docker/plugins';

export interface DockerHost {
  /** Its short name ('a') and its node name in the cluster (`mnt-<tag>-<id>-a`). */
  readonly name: string;
  readonly node: string;
  readonly ns: string;
  readonly dir: string;
  /** Its underlay address (eth0 in its namespace). */
  readonly ip: string;
  readonly socket: string;
  /** Its plugin's admin socket (`mynet --socket <it> status`). */
  readonly adminSocket: string;
  readonly plugin: PluginHandle;
  /** Containers and networks made on this host (removed by destroy, or earlier by the test). */
  readonly r: Resources;
  docker(...args: string[]): Promise<RunResult>;
  dockerOk(...args: string[]): Promise<string>;
  /** Runs a command in this host's network namespace. */
  inNs(...argv: string[]): Promise<RunResult>;
  /** The tails of dockerd's and the plugin's logs, for a failing assertion's message. */
  logs(lines?: number): string;
}

export interface Hosts {
  readonly hosts: readonly DockerHost[];
  readonly etcd: TestEtcd | undefined;
  /** The run's id (lowercase hex): names made with it are this run's. */
  readonly id: string;
  destroy(): Promise<void>;
}

export interface HostsOptions {
  /** The test's tag: every name starts with `mnt-<tag>-`. */
  readonly tag: string;
  readonly names: readonly string[];
  /** The first three octets of the underlay /24 (in namespaces only), e.g. '198.18.20'. */
  readonly subnet: string;
  /** Start an etcd on the underlay and point every plugin at it. */
  readonly etcd: boolean;
  /** More plugin settings, for every host. */
  readonly env?: Record<string, string>;
  /** More plugin settings for one host, by its name (after `env`). */
  readonly hostEnv?: Readonly<Record<string, Record<string, string>>>;
}

/** The engine's own flags, without the main dockerd's data root, exec root and pid file. */
export function engineFlags(args = process.env.MNT_DOCKERD_ARGS ?? ''): string[] {
  const own = new Set(['--data-root', '--exec-root', '--pidfile', '-p', '--host', '-H', '--config-file']);
  const words = args.split(/\s+/).filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    const flag = w.split('=')[0] as string;
    if (own.has(flag)) {
      if (!w.includes('=')) i++; // its value is the next word
      continue;
    }
    out.push(w);
  }
  return out;
}

/** Pids of processes whose command line mentions `dir` (this run's unique directory). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') continue; // exited meanwhile
      throw err;
    }
    if (cmdline.split('\0').some((a) => a.includes(`${dir}/`))) pids.push(Number(e));
  }
  return pids;
}

async function stopPid(pid: number, what: string, ms = 20_000): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (const until = Date.now() + ms; alive(pid) && Date.now() < until;) await sleep(100);
  if (alive(pid)) {
    process.kill(pid, 'SIGKILL');
    throw new Error(`${what} (pid ${pid}) did not stop within ${ms / 1000} s of SIGTERM; killed`);
  }
}

const tail = (file: string, n: number): string =>
  existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n') : '(no log)';

/** Undo steps, run last-first; every one runs, and the errors are reported together. */
class Undo {
  private readonly steps: { what: string; fn: () => Promise<void> | void }[] = [];
  push(what: string, fn: () => Promise<void> | void): void {
    this.steps.push({ what, fn });
  }
  async run(): Promise<void> {
    const errors: string[] = [];
    for (const s of this.steps.splice(0).reverse()) {
      try {
        await s.fn();
      } catch (err) {
        errors.push(`${s.what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (errors.length) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
  }
}

/** The dockerd command line, run as multihost.md §4 says (every step execs: the pid is dockerd's). */
function dockerdScript(dir: string, ns: string): string {
  const dockerd = [
    'dockerd',
    '--data-root',
    `${dir}/data`,
    '--exec-root',
    `${dir}/exec`,
    '--pidfile',
    `${dir}/docker.pid`,
    '-H',
    `unix://${dir}/docker.sock`,
    '--config-file',
    `${dir}/daemon.json`,
    '--bridge=none',
    ...engineFlags(),
  ].join(' ');
  const inner = [
    `mount -t sysfs sysfs /sys`,
    `mount --rbind ${dir}/cg /sys/fs/cgroup`,
    `mount --bind ${dir}/plugins ${PLUGINS}`,
    `mount --bind ${dir}/resolv.conf /etc/resolv.conf`,
    `exec ${dockerd}`,
  ].join(' && ');
  return `mount --rbind /sys/fs/cgroup ${dir}/cg && exec nsenter --net=/run/netns/${ns} sh -c '${inner}'`;
}

async function startHost(
  o: HostsOptions,
  id: string,
  top: string,
  i: number,
  ul: string,
  image: string,
  etcd: TestEtcd | undefined,
  undo: Undo,
): Promise<DockerHost> {
  const name = o.names[i] as string;
  const node = `mnt-${o.tag}-${id}-${name}`;
  const ns = node;
  const dir = join(top, name);
  const ip = `${o.subnet}.${11 + i}`;
  for (const d of ['cg', 'plugins', 'data', 'exec', 'state']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'daemon.json'), '{}\n');
  writeFileSync(join(dir, 'resolv.conf'), `nameserver ${HOST_DNS}\nnameserver ${HOST_UPSTREAM_DNS}\n`);

  await ok('ip', ['netns', 'add', ns]);
  undo.push(`ip netns del ${ns}`, async () => void (await ok('ip', ['netns', 'del', ns])));
  await ok('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  // The veth's underlay end is named for the host, inside the underlay namespace.
  await ok('ip', ['-n', ul, 'link', 'add', 'name', `to-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await ok('ip', ['-n', ul, 'link', 'set', `to-${name}`, 'master', 'br0', 'up']);
  await ok('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await ok('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);

  const socket = join(dir, 'docker.sock');
  const daemon = ['-H', `unix://${socket}`];
  const docker = (...args: string[]): Promise<RunResult> => sh('docker', [...daemon, ...args]);
  const dockerOk = (...args: string[]): Promise<string> => ok('docker', [...daemon, ...args]);
  const dockerdLog = join(dir, 'dockerd.log');
  const log = openSync(dockerdLog, 'a');
  const proc = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', dockerdScript(dir, ns)], {
    stdio: ['ignore', log, log],
    detached: true,
  });
  proc.unref();
  const pid = proc.pid as number;
  undo.push(`the processes left under ${dir}`, () => {
    const left = processesUnder(dir);
    for (const p of left) process.kill(p, 'SIGKILL');
    if (left.length) throw new Error(`processes still ran from ${dir} after dockerd stopped: ${left.join(', ')} (killed)`);
  });
  undo.push(`dockerd of ${name}`, () => stopPid(pid, `dockerd of ${name}`));
  await waitFor(
    `dockerd of ${name} to answer`,
    async () => {
      if (!alive(pid)) throw new Error(`dockerd of ${name} exited at start:\n${tail(dockerdLog, 30)}`);
      return (await docker('version', '--format', '{{.Server.Version}}')).exitCode === 0;
    },
    60_000,
    200,
  );
  await dockerOk('load', '-q', '-i', image);

  const r = new Resources(`${o.tag}-${name}`, daemon);
  const adminSocket = join(dir, 'admin.sock');
  const plugin = await startPlugin({
    netns: ns,
    socket: join(dir, 'plugins', 'mynet.sock'),
    stateDir: join(dir, 'state'),
    env: {
      MYNET_ADMIN_SOCKET: adminSocket,
      DOCKER_HOST: `unix://${socket}`,
      MYNET_DNS_LISTEN: `${HOST_DNS}:53`,
      MYNET_NODE_NAME: node,
      MYNET_NODE_ADDRESS: ip,
      ...(etcd && { MYNET_ETCD_ENDPOINTS: etcd.endpoint }),
      ...o.env,
      ...o.hostEnv?.[name],
    },
  });
  undo.push(`plugin of ${name}`, async () => {
    const code = await plugin.stop();
    if (code !== 0) throw new Error(`the plugin of ${name} exited with ${code}:\n${tail(plugin.logFile, 20)}`);
  });
  // Before the plugin stops: every container and network of this daemon is this run's.
  undo.push(`containers and networks of ${name}`, async () => {
    await r.cleanup();
    const ids = (await dockerOk('ps', '-aq')).split('\n').filter(Boolean);
    if (ids.length) await dockerOk('rm', '-f', ...ids);
    const nets = (await dockerOk('network', 'ls', '--filter', 'driver=mynet', '-q')).split('\n').filter(Boolean);
    for (const n of nets) await dockerOk('network', 'rm', n);
  });
  return {
    name,
    node,
    ns,
    dir,
    ip,
    socket,
    adminSocket,
    plugin,
    r,
    docker,
    dockerOk,
    inNs: (...argv) => sh('ip', ['netns', 'exec', ns, ...argv]),
    logs: (n = 40) => `--- dockerd of ${name}:\n${tail(dockerdLog, n)}\n--- plugin of ${name}:\n${tail(plugin.logFile, n)}`,
  };
}

export async function startHosts(o: HostsOptions): Promise<Hosts> {
  const id = randomBytes(3).toString('hex');
  const top = join(tmpdir(), `mnt-${o.tag}-${id}`);
  const undo = new Undo();
  mkdirSync(top);
  undo.push(`rm -rf ${top}`, () => {
    if (!process.env.MNT_KEEP) rmSync(top, { recursive: true, force: true }); // MNT_KEEP=1 keeps the logs
  });
  try {
    // The bind target of every host's plugin directory (dockerd makes it too; removed if we did).
    if (!existsSync(PLUGINS)) {
      mkdirSync(PLUGINS, { recursive: true });
      undo.push(`rmdir ${PLUGINS}`, () => {
        try {
          rmdirSync(PLUGINS);
        } catch (err) {
          // A dockerd started meanwhile uses it now (a plugin socket is in it): it stays.
          if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw err;
        }
      });
    }
    const ul = `mnt-${o.tag}-${id}-ul`;
    await ok('ip', ['netns', 'add', ul]);
    undo.push(`ip netns del ${ul}`, async () => void (await ok('ip', ['netns', 'del', ul])));
    await ok('ip', ['-n', ul, 'link', 'set', 'lo', 'up']);
    // Its own MAC: a bridge without one takes its lowest port's, which changes as hosts come and go (etcd's ARP entries go stale).
    await ok('ip', ['-n', ul, 'link', 'add', 'br0', 'address', '02:00:c6:12:14:01', 'type', 'bridge']);
    await ok('ip', ['-n', ul, 'addr', 'add', `${o.subnet}.1/24`, 'dev', 'br0']);
    await ok('ip', ['-n', ul, 'link', 'set', 'br0', 'up']);
    let etcd: TestEtcd | undefined;
    if (o.etcd) {
      const e = await startEtcd({ netns: ul, host: `${o.subnet}.1` });
      etcd = e;
      undo.push('etcd', () => e.destroy());
    }
    const image = join(top, 'image.tar');
    await ok('docker', ['save', '-o', image, IMAGE]);
    const hosts: DockerHost[] = [];
    for (let i = 0; i < o.names.length; i++) hosts.push(await startHost(o, id, top, i, ul, image, etcd, undo));
    return { hosts, etcd, id, destroy: () => undo.run() };
  } catch (err) {
    await undo.run().catch((e: unknown) => console.error(String(e)));
    throw err;
  }
}
