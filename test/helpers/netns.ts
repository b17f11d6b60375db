/**
 * Throwaway network namespaces for the host tier. Each test makes its own namespaces
 * (`mnt-<random hex>`), runs the real executor inside them (`ExecaExecutor({ netns, persistent })`, which
 * prefixes `ip -n` / `ip netns exec`), and removes them afterwards. Only namespaces made here are
 * ever deleted, by the exact names recorded when they were made; nothing in this file touches the
 * root namespace's links or firewall.
 *
 *   afterEach(destroyCreated)   // every test, even a failing one
 *   afterAll(destroyCreated)    // safety net for the file
 *
 * and, as a last resort, a synchronous `exit` handler deletes whatever is still recorded.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { pino, type Logger } from 'pino';
import { HostCommandError } from '../../src/errors.js';
import { ExecaExecutor } from '../../src/host/execa-executor.js';

export const silentLog: Logger = pino({ level: 'silent' });

export const NETNS_PREFIX = 'mnt-';

/** Names of the namespaces this test run made and has not deleted yet, with their executors. */
const created = new Map<string, ExecaExecutor>();

export interface NetnsDump {
  /** `ip -j -d link`, sorted by name, without ifindex, MACs, statistics or timers. */
  readonly links: unknown[];
  /** `ip -j addr`, sorted by name, without ifindex, MACs or lifetimes. */
  readonly addrs: unknown[];
  /** `iptables-save` without `#` lines, counters zeroed. */
  readonly iptables: string;
  readonly ip6tables: string;
  /** `nft -s list ruleset` (stateless: no counter values). */
  readonly nft: string;
}

export interface TestNetns {
  readonly name: string;
  /** The real executor, confined to this namespace. */
  readonly exec: ExecaExecutor;
  /** Runs argv inside the namespace and returns stdout; throws HostCommandError on failure. */
  run(argv: readonly string[]): Promise<string>;
  /** Like run, but answers whether the command succeeded instead of throwing. */
  succeeds(argv: readonly string[]): Promise<boolean>;
  dump(): Promise<NetnsDump>;
  destroy(): Promise<void>;
}

export const randomHex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** A Docker-shaped id: 64 lowercase hex. */
export const dockerId = (): string => randomHex(32);

/**
 * `prefix` (default NETNS_PREFIX) lets a test name its namespaces by its own tag; `name` makes one
 * of an exact name again (a host "rebooted": the same namespace name, nothing left inside).
 */
export async function createNetns(o: { prefix?: string; name?: string } = {}): Promise<TestNetns> {
  const name = o.name ?? `${o.prefix ?? NETNS_PREFIX}${randomHex(5)}`;
  if (!name.startsWith(NETNS_PREFIX)) throw new Error(`namespace ${name}: test namespaces start with ${NETNS_PREFIX}`);
  await execa('ip', ['netns', 'add', name]);
  // Persistent, as the plugin runs it: ip and nft go to coprocesses inside the namespace.
  const exec = new ExecaExecutor({ netns: name, persistent: true });
  created.set(name, exec);
  const run = (argv: readonly string[]): Promise<string> => exec.command(argv, silentLog);
  await run(['ip', 'link', 'set', 'dev', 'lo', 'up']);
  return {
    name,
    exec,
    run,
    succeeds: async (argv) => {
      try {
        await run(argv);
        return true;
      } catch (err) {
        if (err instanceof HostCommandError) return false;
        throw err;
      }
    },
    dump: () => dumpNetns(run),
    destroy: () => destroyNetns(name),
  };
}

async function destroyNetns(name: string): Promise<void> {
  const exec = created.get(name);
  if (!exec) return; // never delete a namespace this run did not make
  exec.close(); // a coprocess inside would keep the namespace alive
  await execa('ip', ['netns', 'del', name], { reject: false });
  created.delete(name);
}

/** Deletes every namespace this test run made and still holds. For afterEach and afterAll. */
export async function destroyCreated(): Promise<void> {
  for (const name of [...created.keys()]) await destroyNetns(name);
}

process.once('exit', () => {
  for (const [name, exec] of created) {
    exec.close();
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      // already gone; nothing else to do at exit
    }
  }
});

const MAC = /\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b/gi;
/**
 * Fields that differ between two otherwise identical states: indexes, counters, clocks, and a
 * bridge's offload limits (tso/gso/gro max), which the kernel raises when a port with larger
 * limits is attached and does not lower again when the port goes (seen on 6.x: a bridge's
 * tso_max_size went 65536 -> 524280 after one veth came and went).
 */
// `tentative`: an IPv6 address still in duplicate address detection (a second or so after its
// link came up); a dump taken meanwhile differs from one taken later by this flag alone (seen
// twice in ports.test's before/after comparison).
const NOISE =
  /^(ifindex|link_index|link_netnsid|stats|stats64|valid_life_time|preferred_life_time|tentative|.*_timer|[tg][sr]o(_ipv4)?_max_(size|segs))$/;

/** Drops noisy keys and masks MAC addresses (also inside bridge ids), recursively. */
export function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (!NOISE.test(k)) out[k] = normalize(x);
    return out;
  }
  return typeof v === 'string' ? v.replace(MAC, '<mac>') : v;
}

const byName = (a: unknown, b: unknown): number =>
  String((a as { ifname?: string }).ifname).localeCompare(String((b as { ifname?: string }).ifname));

const cleanSave = (text: string): string =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'))
    .join('\n');

async function dumpNetns(run: (argv: readonly string[]) => Promise<string>): Promise<NetnsDump> {
  const [links, addrs, iptables, ip6tables, nft] = await Promise.all([
    run(['ip', '-j', '-d', 'link', 'show']),
    run(['ip', '-j', 'addr', 'show']),
    run(['iptables-save']),
    run(['ip6tables-save']),
    run(['nft', '-s', 'list', 'ruleset']),
  ]);
  return {
    links: (normalize(JSON.parse(links || '[]')) as unknown[]).sort(byName),
    addrs: (normalize(JSON.parse(addrs || '[]')) as unknown[]).sort(byName),
    iptables: cleanSave(iptables),
    ip6tables: cleanSave(ip6tables),
    nft: nft.replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0'),
  };
}

/** One link as `ip -j -d link show dev NAME` reports it, or undefined when there is none. */
export async function linkInfo(ns: TestNetns, name: string): Promise<LinkJson | undefined> {
  try {
    const [link] = JSON.parse(await ns.run(['ip', '-j', '-d', 'link', 'show', 'dev', name])) as LinkJson[];
    return link;
  } catch (err) {
    // "No such device": the name still resolved, but the link went before ip asked for it (a
    // delete running at the same time, e.g. the plugin's background reap): absent as well.
    if (err instanceof HostCommandError && /does not exist|No such device/.test(err.stderr)) return undefined;
    throw err;
  }
}

/** The addresses on a link (`ip -j addr show dev NAME`), as "addr/len". */
export async function addrsOf(ns: TestNetns, name: string): Promise<AddrJson[]> {
  const [link] = JSON.parse(await ns.run(['ip', '-j', 'addr', 'show', 'dev', name])) as { addr_info?: AddrJson[] }[];
  return link?.addr_info ?? [];
}

export interface LinkJson {
  readonly ifindex: number;
  readonly ifname: string;
  readonly flags: readonly string[];
  readonly mtu: number;
  readonly group: string;
  readonly address: string;
  readonly master?: string;
  readonly ifalias?: string;
  readonly operstate: string;
  readonly linkinfo?: { readonly info_kind?: string; readonly info_slave_kind?: string };
}

export interface AddrJson {
  readonly family: 'inet' | 'inet6';
  readonly local: string;
  readonly prefixlen: number;
  readonly scope: string;
  readonly nodad?: boolean;
}
