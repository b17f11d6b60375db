/**
 * Three Docker "hosts" on one machine, for the cluster's host tier (issue 17):
 *
 *   underlay namespace: bridge mnt-mhh-ul 198.18.10.254/24, etcd listening on that address
 *   host a/b/c namespaces: mnt-mhh-ul0 198.18.10.1-3/24 (MTU 1500) on that bridge, each with
 *     its own `node dist/main.js` (own sockets, state directory, DNS 127.0.0.153:53 in its
 *     namespace; no dockerd: DOCKER_HOST is a FakeDocker that serves the names the test gives)
 *   a stranger namespace on the same bridge (198.18.10.9), made on demand
 *
 * Every name carries the tag mnt-mhh-; 198.18.10.0/24 exists only inside these namespaces.
 * Another test file running beside it passes its own `tag`, `underlay` (/24) and etcd ports.
 * `destroy` stops the plugins and etcd by their pids, deletes the namespaces and the temp dir.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { createNetns, destroyCreated, type TestNetns } from '../helpers/netns.js';
import { TAG, type DockerHost } from './dockerd-moves.js';
import { FakeDocker } from './fake-docker.js';
import { PluginProcess } from './plugin-process.js';

export const UNDERLAY_BRIDGE = `${TAG}ul`;
export const UNDERLAY_IF = `${TAG}ul0`;
export const ETCD_ADDRESS = '198.18.10.254';
export const STRANGER_ADDRESS = '198.18.10.9';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Host implements DockerHost {
  plugin: PluginProcess;
  private current: TestNetns;

  constructor(
    readonly label: string,
    readonly address: string,
    ns: TestNetns,
    dir: string,
    etcdEndpoint: string,
    extraEnv: Readonly<Record<string, string>>,
    /** The Engine API the plugin reads names from (the host tier has no dockerd). */
    readonly docker: FakeDocker,
    readonly tag: string = TAG,
  ) {
    this.current = ns;
    this.plugin = new PluginProcess(() => this.current.name, dir, {
      MYNET_DNS_LISTEN: '127.0.0.153:53',
      DOCKER_HOST: `unix://${docker.socket}`,
      MYNET_ETCD_ENDPOINTS: etcdEndpoint,
      MYNET_NODE_NAME: this.nodeName,
      MYNET_NODE_ADDRESS: address,
      MYNET_LOG_LEVEL: 'info',
      ...extraEnv,
    });
  }

  get nodeName(): string {
    return `${this.tag}${this.label}`;
  }

  get ns(): TestNetns {
    return this.current;
  }

  get socket(): string {
    return this.plugin.socket;
  }

  /** After a reboot the host has a new namespace of the same name. */
  replaceNamespace(ns: TestNetns): void {
    this.current = ns;
  }
}

export interface ClusterOptions {
  readonly hosts?: number;
  /** More plugin settings for every host (e.g. MYNET_RECONCILE_INTERVAL). */
  readonly env?: Readonly<Record<string, string>>;
  /** More plugin settings for one host, by its label ('a', 'b', ...), after `env`. */
  readonly hostEnv?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The prefix of every name made (default TAG, mnt-mhh-). */
  readonly tag?: string;
  /** The underlay's first three octets (default 198.18.10): hosts .1.., etcd .254, stranger .9. */
  readonly underlay?: string;
  /** etcd's client and peer ports in its namespace (default 2379, 2380). */
  readonly etcdPorts?: readonly [number, number];
  /**
   * An IPv6-only underlay instead (issue 23): its /64's prefix ("2001:db8:62::"), hosts ::1..,
   * etcd ::fe, stranger ::9, and no IPv4 address on it at all.
   */
  readonly underlay6?: string;
}

export class Cluster {
  readonly hosts: Host[] = [];
  private constructor(
    readonly dir: string,
    readonly underlay: TestNetns,
    readonly etcd: TestEtcd,
    readonly tag: string,
    readonly net: string,
    /** The underlay is IPv6 (`net` is then a /64's prefix). */
    readonly v6 = false,
  ) {}

  /** The underlay address ending in `n` (an octet, or an IPv6 group), with its prefix length. */
  at(n: number | string): string {
    return this.v6 ? `${this.net}${typeof n === 'number' ? n.toString(16) : n}` : `${this.net}.${n}`;
  }

  private get plen(): number {
    return this.v6 ? 64 : 24;
  }

  get etcdAddress(): string {
    return this.at(this.v6 ? 'fe' : 254);
  }

  /** The underlay interface's name in each host's namespace. */
  get underlayIf(): string {
    return `${this.tag}ul0`;
  }

  get strangerAddress(): string {
    return this.at(9);
  }

  static async start(o: ClusterOptions = {}): Promise<Cluster> {
    const tag = o.tag ?? TAG;
    const v6 = o.underlay6 !== undefined;
    const net = o.underlay6 ?? o.underlay ?? '198.18.10';
    const bridge = `${tag}ul`;
    const dir = mkdtempSync(join(tmpdir(), tag));
    const underlay = await createNetns({ prefix: `${tag}ul-` });
    await underlay.run(['ip', 'link', 'add', bridge, 'type', 'bridge']);
    // A bridge without a MAC of its own takes the lowest of its ports': a rebooted host's new
    // veth would change the MAC behind etcd's address, and every host's ARP entry for etcd would
    // point at nothing for seconds (seen: a lease grant timing out right after a reboot).
    await underlay.run(['ip', 'link', 'set', 'dev', bridge, 'address', '02:6d:68:68:00:fe']);
    const etcdAt = v6 ? `${net}fe` : `${net}.254`;
    // nodad: an IPv6 address is usable at once, not after a second of duplicate detection.
    await underlay.run(['ip', 'addr', 'add', `${etcdAt}/${v6 ? 64 : 24}`, 'dev', bridge, ...(v6 ? ['nodad'] : [])]);
    await underlay.run(['ip', 'link', 'set', bridge, 'up']);
    // etcd's data on tmpfs: every claim is a raft commit with an fsync, and on a machine whose
    // disk is busy with other work an fsync can stall past the plugin's 3 s budget.
    const etcd = await startEtcd({
      netns: underlay.name,
      host: v6 ? `[${etcdAt}]` : etcdAt,
      dirPrefix: `${tag}etcd-`,
      ...(o.etcdPorts && { ports: o.etcdPorts }),
      ...(existsSync('/dev/shm') && { baseDir: '/dev/shm' }),
    });
    const c = new Cluster(dir, underlay, etcd, tag, net, v6);
    const labels = ['a', 'b', 'c', 'd', 'e'].slice(0, o.hosts ?? 3);
    for (const [i, label] of labels.entries()) {
      const ns = await createNetns({ prefix: `${tag}${label}-` });
      const address = c.at(i + 1);
      await c.plug(ns, address);
      mkdirSync(join(dir, label), { recursive: true, mode: 0o700 });
      const docker = await FakeDocker.start(join(dir, label, 'docker.sock'));
      c.hosts.push(new Host(label, address, ns, join(dir, label), etcd.endpoint, { ...o.env, ...o.hostEnv?.[label] }, docker, tag));
    }
    try {
      await Promise.all(c.hosts.map((h) => h.plugin.start()));
    } catch (err) {
      // The caller never gets the cluster to destroy: etcd and the namespaces would outlive the test.
      await c.destroy();
      throw err;
    }
    return c;
  }

  /** A veth from the underlay bridge into `ns` (mnt-mhh-ul0 there), addressed and up. */
  async plug(ns: TestNetns, address: string): Promise<void> {
    const n = address.split(/[.:]/).at(-1) as string;
    const outer = `${this.tag}u${n}`;
    // A rebooted host's old veth went with its namespace; nothing of that name is left here.
    await this.underlay.run([
      'ip',
      'link',
      'add',
      outer,
      'mtu',
      '1500',
      'type',
      'veth',
      'peer',
      'name',
      this.underlayIf,
      'mtu',
      '1500',
      'netns',
      ns.name,
    ]);
    await this.underlay.run(['ip', 'link', 'set', outer, 'master', `${this.tag}ul`, 'up']);
    await ns.run(['ip', 'addr', 'add', `${address}/${this.plen}`, 'dev', this.underlayIf, ...(this.v6 ? ['nodad'] : [])]);
    await ns.run(['ip', 'link', 'set', this.underlayIf, 'up']);
  }

  /** A namespace on the underlay that is no member: for VXLAN from a stranger. */
  async stranger(): Promise<TestNetns> {
    const ns = await createNetns({ prefix: `${this.tag}x-` });
    await this.plug(ns, this.strangerAddress);
    return ns;
  }

  /**
   * A host "rebooted": the plugin dies (kill -9), the kernel state goes (the namespace is deleted,
   * with every link, address, route and nft table in it), a fresh namespace of the same name
   * comes up on the underlay with the same address, and the plugin starts with the same state
   * directory. Containers of that host died with it (their namespaces are the caller's to drop).
   */
  async reboot(h: Host): Promise<void> {
    await h.plugin.kill9();
    const name = h.ns.name;
    const inside = (await execa('ip', ['netns', 'pids', name])).stdout.split('\n').filter(Boolean);
    await h.ns.destroy();
    // The veth's underlay end leaves with its peer; wait until the kernel has let go of it.
    const outer = `${this.tag}u${h.address.split(/[.:]/).at(-1) as string}`;
    for (let i = 0; i < 250 && (await this.underlay.succeeds(['ip', 'link', 'show', 'dev', outer])); i++) await sleep(20);
    if (await this.underlay.succeeds(['ip', 'link', 'show', 'dev', outer])) {
      const alive = await Promise.all(
        inside.map(async (pid) => (await execa('ps', ['-o', 'pid=,ppid=,stat=,args=', '-p', pid], { reject: false })).stdout.trim()),
      );
      throw new Error(
        `reboot of ${h.label}: ${outer} still on the underlay 5 s after its namespace was deleted; processes that were in it: ${JSON.stringify(alive.filter(Boolean))}`,
      );
    }
    const ns = await createNetns({ name });
    await this.plug(ns, h.address);
    h.replaceNamespace(ns);
    await h.plugin.start();
  }

  async destroy(): Promise<void> {
    for (const h of this.hosts) await h.plugin.stop();
    for (const h of this.hosts) await h.docker.close();
    await this.etcd.destroy();
    await destroyCreated();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Namespaces of ours (the tag) that still exist: none after destroy. */
export async function leftoverNamespaces(tag = TAG): Promise<string[]> {
  const out = (await execa('ip', ['netns', 'list'])).stdout;
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] as string)
    .filter((n) => n.startsWith(tag));
}

/**
 * A cluster for one test file: started before its tests, each plugin's last problems printed
 * after a failed test, destroyed after the file (no namespace of the tag left). Answers the
 * cluster once started.
 */
export function clusterForFile(o: ClusterOptions & { readonly tag: string }): () => Cluster {
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    cluster = await Cluster.start(o);
  }, 60_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const h of cluster?.hosts ?? [])
      console.error(`--- host ${h.label}: last warnings and errors of its plugin\n${h.plugin.problems().slice(-8).join('\n')}`);
  });
  afterAll(async () => {
    await cluster?.destroy();
    expect(await leftoverNamespaces(o.tag)).toEqual([]);
  });
  return () => {
    if (!cluster) throw new Error('the cluster is not started yet');
    return cluster;
  };
}
