/**
 * The real executor: argv only (execa, never a shell), a timeout on every command so a hung
 * command fails the request instead of hanging dockerd, and an optional network namespace so
 * the host tests can run the same code inside throwaway namespaces.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { ExecaError } from 'execa';
import type { Logger } from 'pino';
import { HostCommandError, PluginError } from '../errors.js';
import { parseIp, sameIp } from '../ip/address.js';
import { MYNET_GROUP, RETIRED_GROUP } from '../plan/link-names.js';
import type { HostOp } from '../plan/step.js';
import { Coprocess, CoprocessUnusable, type GroupResult } from './coprocess.js';
import { loadExeca } from './load-execa.js';
import type { Executor, IpOp } from './executor.js';
import { ensureForwardHook, removeForwardHook } from './forward-hook.js';
import { type NftRunDeps, runNft } from './nft-run.js';
import { sysfsLinkGroup } from './sysfs-link.js';
import type { PortHolder } from './port-holder.js';

export interface ExecaExecutorOptions {
  /** Run everything inside this named network namespace (tests). */
  readonly netns?: string;
  readonly timeoutMs?: number;
  /** Called after every process with its argv and duration (metrics, benchmarks). */
  readonly onCommand?: (argv: readonly string[], ms: number, ok: boolean) => void;
  /**
   * Where the host's /proc/sys/net is. A managed plugin's /proc/sys is read-only (runc), so its
   * manifest bind-mounts the host's /proc/sys/net elsewhere instead of asking for CAP_SYS_ADMIN.
   */
  readonly procSysNet?: string;
  /**
   * Send ip and nft commands to long-running `ip -batch -` / `nft -i` processes instead of one
   * process per plan (host/coprocess.ts). The plugin turns it on; tests choose. A tool whose
   * marker answer the coprocess does not understand runs one-shot instead (a warning, once).
   */
  readonly persistent?: boolean;
  /** Called when a process is started, one-shot or coprocess (metrics: processes per lifecycle). */
  readonly onSpawn?: (command: string) => void;
  /**
   * Runs port-hold / port-release (host/port-holder.ts) in this process's namespace. Without
   * it (tests running the plugin's code outside the namespace they test) nothing is held.
   */
  readonly holder?: PortHolder;
  /**
   * Called when the kernel refuses a bridge port because the bridge has all its ports taken
   * (BR_MAX_PORTS, "Exchange full"); resolves once retired veths, which stay on their bridge
   * (down) until their reap after the answer, are deleted. The refused command is tried once more.
   */
  readonly whenBridgeFull?: () => Promise<void>;
}

/** What a stale ifindex looks like to ip (see ipGroup). */
const STALE = /No such device|Cannot find device|does not exist|unknown ifindex/i;
const ABSENT = /Cannot find device|does not exist|No such device|No such file or directory|not found/i;
/** A bridge with every port taken (EXFULL): see whenBridgeFull. */
const FULL = /Exchange full/;
const bridgeFull = (err: unknown): boolean => err instanceof HostCommandError && FULL.test(err.stderr);

export class ExecaExecutor implements Executor {
  private readonly timeoutMs: number;
  private oneShots = 0;
  private ipCo: Coprocess | undefined;
  private nftCo: Coprocess | undefined;
  private bridgeCo: Coprocess | undefined;
  /** Tools whose coprocess turned out unusable on this host: they run one-shot from then on. */
  private readonly oneShotOnly = new Set<'ip' | 'nft' | 'bridge'>();

  constructor(private readonly opts: ExecaExecutorOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Processes started so far, coprocesses included. */
  get spawns(): number {
    return this.oneShots + (this.ipCo?.spawns ?? 0) + (this.nftCo?.spawns ?? 0) + (this.bridgeCo?.spawns ?? 0);
  }

  /** Ends the coprocesses (shutdown, tests); the next command starts them again. */
  close(): void {
    this.ipCo?.close();
    this.nftCo?.close();
    this.bridgeCo?.close();
  }

  private coprocess(kind: 'ip' | 'nft' | 'bridge'): Coprocess {
    const ns = this.opts.netns;
    if (kind === 'bridge') {
      const argv = ['bridge', '-force', '-batch', '-'];
      return (this.bridgeCo ??= new Coprocess('bridge', ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv, this.timeoutMs, () =>
        this.opts.onSpawn?.('bridge'),
      ));
    }
    if (kind === 'ip') {
      return (this.ipCo ??= new Coprocess(
        'ip',
        ns ? ['ip', '-n', ns, '-o', '-batch', '-'] : ['ip', '-o', '-batch', '-'],
        this.timeoutMs,
        () => this.opts.onSpawn?.('ip'),
      ));
    }
    return (this.nftCo ??= new Coprocess('nft', ns ? ['ip', 'netns', 'exec', ns, 'nft', '-i'] : ['nft', '-i'], this.timeoutMs, () =>
      this.opts.onSpawn?.('nft'),
    ));
  }

  /**
   * Runs `lines` on the tool's coprocess; undefined when the tool runs one-shot here, because the
   * coprocess is off or its marker answer was not understood (then said once, and for good).
   */
  private async onCoprocess(kind: 'ip' | 'nft' | 'bridge', lines: readonly string[], log: Logger): Promise<GroupResult | undefined> {
    if (!this.opts.persistent || this.oneShotOnly.has(kind)) return undefined;
    try {
      return await this.coprocess(kind).run(lines);
    } catch (err) {
      if (!(err instanceof CoprocessUnusable)) throw err;
      if (!this.oneShotOnly.has(kind)) {
        this.oneShotOnly.add(kind);
        log.warn(
          { tool: kind, reason: err.message },
          `${kind}: its answers are not what the long-running process expects; running ${kind} once per command from now on (slower, same results)`,
        );
      }
      return undefined;
    }
  }

  /** Runs ip commands on the coprocess, or one-shot; like runIpBatch, stops at the first failure. */
  private async ipGroup(ops: readonly IpOp[], log: Logger, retried = 0): Promise<{ index: number; error: HostCommandError } | undefined> {
    const started = performance.now();
    const r = await this.onCoprocess(
      'ip',
      ops.map((o) => batchLine(o.args)),
      log,
    );
    if (r === undefined) return this.ipBatchOneShot(ops, log);
    const ms = performance.now() - started;
    this.opts.onCommand?.(['ip', '-batch', '-'], ms, !r.failed);
    log.debug({ argv: ['ip', '-batch', '-'], commands: ops.length, ms: Math.round(ms * 100) / 100, coprocess: true }, 'host command');
    if (!r.failed) return undefined;
    const at = r.failed.index;
    // ip caches name → ifindex for its lifetime, so a link deleted and made again since (a
    // repaired bridge, an endpoint id used twice) is "No such device" to a long-lived ip. The
    // lines before `at` ran; run the rest once more in a fresh process, which asks the kernel.
    if (retried === 0 && STALE.test(r.failed.stderr)) {
      this.ipCo?.close();
      const again = await this.ipGroup(ops.slice(at), log, 1);
      return again && { index: at + again.index, error: again.error };
    }
    const op = ops[at] ?? ops[0];
    return { index: at, error: new HostCommandError(['ip', ...(op?.args ?? [])], 1, r.failed.stderr) };
  }

  /** Runs a command (in the namespace, if any) and returns stdout. */
  async command(argv: readonly string[], log: Logger, input?: string): Promise<string> {
    const full = this.opts.netns && argv[0] !== 'ip' ? ['ip', 'netns', 'exec', this.opts.netns, ...argv] : argv;
    const cmd = full[0] as string;
    const args = cmd === 'ip' && this.opts.netns && argv[0] === 'ip' ? ['-n', this.opts.netns, ...full.slice(1)] : full.slice(1);
    const started = performance.now();
    this.oneShots++;
    this.opts.onSpawn?.(argv[0] ?? 'unknown');
    try {
      const { execa } = await loadExeca();
      const r = await execa(cmd, args, {
        input,
        timeout: this.timeoutMs,
        killSignal: 'SIGKILL',
        stripFinalNewline: false,
        env: { LC_ALL: 'C' },
      });
      const ms = performance.now() - started;
      this.opts.onCommand?.(argv, ms, true);
      log.debug({ argv, ms: Math.round(ms * 100) / 100 }, 'host command');
      return r.stdout;
    } catch (e) {
      const err = e as ExecaError;
      const ms = performance.now() - started;
      this.opts.onCommand?.(argv, ms, false);
      const stderr = typeof err.stderr === 'string' ? err.stderr : '';
      log.debug({ argv, ms, exitCode: err.exitCode, stderr }, 'host command failed');
      throw new HostCommandError(argv, err.exitCode, stderr || err.shortMessage, { cause: e, timedOut: err.timedOut });
    }
  }

  async run(op: HostOp, log: Logger): Promise<void> {
    switch (op.kind) {
      case 'ip':
        try {
          await this.ipOne(op, log);
        } catch (err) {
          if (op.absentOk && err instanceof HostCommandError && ABSENT.test(err.stderr)) return;
          throw err;
        }
        return;
      case 'bridge':
        try {
          await this.bridge(op.args, log);
        } catch (err) {
          if (op.absentOk && err instanceof HostCommandError && ABSENT.test(err.stderr)) return;
          throw err;
        }
        return;
      case 'link-del':
        return this.deleteOwnedLink(op.name, log);
      case 'link-retire': {
        const group = await this.linkGroup(op.name, log);
        if (group === undefined || group === RETIRED_GROUP) return;
        if (group !== MYNET_GROUP)
          throw new PluginError('CONFLICT', `refusing to retire link "${op.name}": it does not carry mynet's mark (group ${group})`);
        // Down (the bridge stops forwarding to it and forgets the MACs learnt on it) and out of
        // our group; it leaves the bridge when the reap deletes it, after the answer: taking a
        // port off a bridge costs the kernel more the more ports the bridge has (0.6 ms with 10,
        // 1.6 ms with 1000 here: bench/scale-ab.mjs), and dockerd would wait for it on every
        // `docker rm`. A bridge full of such ports makes room by waiting for the reap (whenBridgeFull).
        return this.run({ kind: 'ip', args: ['link', 'set', 'dev', op.name, 'down', 'group', String(RETIRED_GROUP)], absentOk: true }, log);
      }
      case 'link-reap':
        // Only links we retired are in that group; "No such device" when there are none.
        return this.run({ kind: 'ip', args: ['link', 'del', 'group', String(RETIRED_GROUP)], absentOk: true }, log);
      case 'nft':
        return runNft(this.nftDeps, op, log);
      case 'sysctl':
        return this.sysctl(op.key, op.value, log);
      case 'forward-hook':
        return op.action === 'ensure' ? ensureForwardHook(this, log) : removeForwardHook(this, log);
      case 'conntrack-flush': {
        // A process per unpublished endpoint cost ~10-16 ms of CPU after each answer (issue 26):
        // the table is read here first, and the process runs only when a flow is there to forget.
        const table = await this.conntrackTable(log);
        if (table !== undefined && !answeredBy(table, op.address)) return;
        return this.conntrackFlush(['-f', op.address.includes(':') ? 'ipv6' : 'ipv4', '--reply-src', op.address], log);
      }
      case 'conntrack-flush-ports':
        for (const family of ['ipv4', 'ipv6'] as const) {
          for (const proto of ['udp', 'sctp'] as const) await this.conntrackFlushPorts(family, proto, op[proto], log);
        }
        return;
      case 'port-hold':
        return this.opts.holder?.hold(op.sockets, log);
      case 'port-release':
        return this.opts.holder?.release(op.sockets);
      case 'wg':
        await this.command(['wg', ...op.args], log);
        return;
    }
  }

  /** What host/nft-run.ts needs of this executor. */
  private readonly nftDeps: NftRunDeps = {
    command: (argv, log, input) => this.command(argv, log, input),
    coprocess: (lines, log) => this.onCoprocess('nft', lines, log),
    onCommand: (argv, ms, ok) => this.opts.onCommand?.(argv, ms, ok),
  };

  /** A `bridge` command on the coprocess (VXLAN entries come in bursts), else one-shot. */
  private async bridge(args: readonly string[], log: Logger): Promise<void> {
    const started = performance.now();
    const r =
      this.opts.persistent && unsafeBatchArg(args) === undefined ? await this.onCoprocess('bridge', [batchLine(args)], log) : undefined;
    if (r === undefined) {
      await this.command(['bridge', ...args], log);
      return;
    }
    const ms = performance.now() - started;
    this.opts.onCommand?.(['bridge', '-batch', '-'], ms, !r.failed);
    log.debug({ argv: ['bridge', ...args], ms: Math.round(ms * 100) / 100, coprocess: true }, 'host command');
    if (!r.failed) return;
    // bridge keeps name → ifindex as ip does: a VXLAN device made again since is asked anew.
    if (STALE.test(r.failed.stderr)) {
      this.bridgeCo?.close();
      await this.command(['bridge', ...args], log);
      return;
    }
    throw new HostCommandError(['bridge', ...args], 1, r.failed.stderr);
  }

  /** One ip command; a bridge found full is given its room (whenBridgeFull) and asked once more. */
  private async ipOne(op: IpOp, log: Logger): Promise<void> {
    const once = async (): Promise<void> => {
      if (!this.opts.persistent) {
        await this.command(['ip', ...op.args], log);
        return;
      }
      const failed = await this.ipGroup([op], log);
      if (failed) throw failed.error;
    };
    try {
      await once();
    } catch (err) {
      if (!this.opts.whenBridgeFull || !bridgeFull(err)) throw err;
      log.debug({ argv: ['ip', ...op.args] }, 'bridge full: waiting for retired veths to be deleted');
      await this.opts.whenBridgeFull();
      await once();
    }
  }

  async runIpBatch(ops: readonly IpOp[], log: Logger): Promise<{ index: number; error: unknown } | undefined> {
    // An op ip -batch cannot carry fails as if ip had refused it: the ops before it run, it and
    // the rest do not, so the caller's rollback sees the usual "stopped at index" answer.
    const bad = ops.findIndex((o) => unsafeBatchArg(o.args) !== undefined);
    const runnable = bad < 0 ? ops : ops.slice(0, bad);
    const group = (xs: readonly IpOp[]): Promise<{ index: number; error: HostCommandError } | undefined> =>
      this.opts.persistent ? this.ipGroup(xs, log) : this.ipBatchOneShot(xs, log);
    let failed = runnable.length === 0 ? undefined : await group(runnable);
    if (failed && this.opts.whenBridgeFull && bridgeFull(failed.error)) {
      // The lines before the refused one ran: the rest runs once the retired veths are gone.
      const at = failed.index;
      log.debug({ argv: ['ip', ...(runnable[at]?.args ?? [])] }, 'bridge full: waiting for retired veths to be deleted');
      await this.opts.whenBridgeFull();
      const again = await group(runnable.slice(at));
      failed = again && { index: at + again.index, error: again.error };
    }
    if (failed || bad < 0) return failed;
    const op = ops[bad] as IpOp;
    return { index: bad, error: new IpBatchArgError(unsafeBatchArg(op.args) as string, op.args) };
  }

  /** One `ip -batch -` process for `ops`. */
  private async ipBatchOneShot(ops: readonly IpOp[], log: Logger): Promise<{ index: number; error: HostCommandError } | undefined> {
    const script = ops.map((o) => batchLine(o.args)).join('\n') + '\n';
    try {
      await this.command(['ip', '-batch', '-'], log, script);
      return undefined;
    } catch (error) {
      // ip stops at the first failing line and says "Command failed -:N".
      const m = error instanceof HostCommandError ? /Command failed -:(\d+)/.exec(error.stderr) : null;
      const index = m ? Number(m[1]) - 1 : 0;
      const op = ops[index] ?? ops[0];
      const stderr = error instanceof HostCommandError ? error.stderr.replace(/\n?Command failed -:\d+\s*$/, '') : '';
      return { index, error: new HostCommandError(['ip', ...(op?.args ?? [])], 1, stderr, { cause: error }) };
    }
  }

  /** Deletes a link only when it carries our mark; a missing link counts as deleted. */
  private async deleteOwnedLink(name: string, log: Logger): Promise<void> {
    const group = await this.linkGroup(name, log);
    if (group === undefined) return;
    if (group !== MYNET_GROUP && group !== RETIRED_GROUP) {
      throw new PluginError('CONFLICT', `refusing to delete link "${name}": it does not carry mynet's mark (group ${group})`);
    }
    await this.run({ kind: 'ip', args: ['link', 'del', 'dev', name], absentOk: true }, log);
  }

  /** The link's netdev group, or undefined if there is no such link. */
  async linkGroup(name: string, log: Logger): Promise<number | undefined> {
    if (!this.opts.netns) return sysfsLinkGroup(name);
    try {
      const out = await this.command(['ip', '-j', 'link', 'show', 'dev', name], log);
      const [link] = JSON.parse(out) as { group?: string }[];
      return link?.group === 'default' ? 0 : Number(link?.group ?? 0);
    } catch (err) {
      if (err instanceof HostCommandError && ABSENT.test(err.stderr)) return undefined;
      throw err;
    }
  }

  /**
   * The conntrack table of this executor's namespace (/proc/<pid>/net/nf_conntrack), read
   * without a process: this process's own, or, for a namespace of the tests, that of the nft
   * coprocess running in it. Undefined when it cannot be read here (no coprocess yet, a kernel
   * without the file, no permission): the `conntrack` process then decides, as before.
   */
  private async conntrackTable(log: Logger): Promise<string | undefined> {
    const pid = this.opts.netns ? this.nftCo?.pid : 'self';
    if (pid === undefined) return undefined;
    try {
      return await readFile(`/proc/${pid}/net/nf_conntrack`, 'utf8');
    } catch (err) {
      log.debug({ err, pid }, 'conntrack table not readable in-process; asking conntrack');
      return undefined;
    }
  }

  private async conntrackFlush(filter: readonly string[], log: Logger): Promise<void> {
    try {
      await this.command(['conntrack', '-D', ...filter], log);
    } catch (err) {
      // conntrack exits 1 when no flow matched: nothing to forget.
      if (err instanceof HostCommandError && /0 flow entries have been deleted/.test(err.stderr)) return;
      throw err;
    }
  }

  /**
   * Forgets the flows to many host ports in one pass: with more than a few ports, one listing
   * (`conntrack -L`, parsed here) and a delete only for the ports that have flows, which is
   * usually none; a process per port made a 10 001-port UDP range cost 20 002 processes.
   */
  private async conntrackFlushPorts(family: 'ipv4' | 'ipv6', proto: 'udp' | 'sctp', ports: readonly number[], log: Logger): Promise<void> {
    if (ports.length === 0) return;
    let targets: readonly number[] = ports;
    if (ports.length > FLUSH_WITHOUT_LISTING) {
      const listing = await this.command(['conntrack', '-L', '-f', family, '-p', proto], log);
      targets = portsWithFlows(listing, new Set(ports));
    }
    for (const p of targets) await this.conntrackFlush(['-f', family, '-p', proto, '--orig-port-dst', String(p)], log);
  }

  private async sysctl(key: string, value: string, log: Logger): Promise<void> {
    if (this.opts.netns) {
      // sysctl takes slash-separated keys, which keeps interface names with dots intact.
      await this.command(['sysctl', '-q', '-w', `${key}=${value}`], log);
      return;
    }
    const path = key.startsWith('net/') ? `${this.opts.procSysNet ?? '/proc/sys/net'}/${key.slice(4)}` : `/proc/sys/${key}`;
    try {
      if ((await readFile(path, 'utf8')).trim() === value) return;
      await writeFile(path, value);
      log.debug({ sysctl: key, value }, 'sysctl set');
    } catch (e) {
      throw new HostCommandError(['sysctl', `${key}=${value}`], undefined, (e as Error).message, { cause: e });
    }
  }
}

/** Up to this many ports, a delete each (one process per port) costs less than a listing first. */
const FLUSH_WITHOUT_LISTING = 2;

/**
 * Whether a flow of /proc/net/nf_conntrack is answered by `address` (what `conntrack -D
 * --reply-src` deletes). A line holds the original tuple, then the reply tuple: the second
 * src= is the reply's source ("ipv4 2 udp 17 29 src=A dst=B sport=1 dport=2 src=C dst=A ...").
 * IPv6 addresses are written in full there (2001:0db8:0000:...), so they are compared parsed.
 */
export function answeredBy(table: string, address: string): boolean {
  const want = parseIp(address);
  if (!want) return true; // not an address we can compare: let conntrack decide
  for (const line of table.split('\n')) {
    const first = line.indexOf(' src=');
    const at = first < 0 ? -1 : line.indexOf(' src=', first + 5);
    if (at < 0) continue;
    const end = line.indexOf(' ', at + 5);
    const got = parseIp(line.slice(at + 5, end < 0 ? undefined : end));
    if (got && sameIp(got, want)) return true;
  }
  return false;
}

/**
 * The ports of `wanted` that are the original destination port of a flow in `conntrack -L`
 * output ("udp 17 29 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=8080 ... src=... dport=5000"):
 * the first dport= of a line is the original direction's.
 */
export function portsWithFlows(listing: string, wanted: ReadonlySet<number>): number[] {
  const found = new Set<number>();
  for (const line of listing.split('\n')) {
    const at = line.indexOf(' dport=');
    if (at < 0) continue;
    const port = parseInt(line.slice(at + 7), 10);
    if (wanted.has(port)) found.add(port);
  }
  return [...found].sort((a, b) => a - b);
}

/**
 * An argument that `ip -batch` cannot carry as one word. iproute2 has no escapes: it splits at
 * blanks, takes `"` and `'` as quotes, joins a line ending in `\` to the next and cuts a line
 * at `#` even inside quotes (`alias x#y mtu 1400` ran as `alias x`). Requests and records cannot
 * carry such values (protocol/values.ts checkHostText), so this is the last line of defence:
 * refuse rather than escape, and write nothing to ip. A plain space is the one exception: the
 * ownership alias mynet writes ("mynet net:<id>") has one, and a double-quoted word with no `"`
 * inside is read whole.
 */
export class IpBatchArgError extends PluginError {
  constructor(
    readonly arg: string,
    readonly argv: readonly string[],
  ) {
    super(
      'INTERNAL',
      `refusing to run "ip ${argv.join(' ').slice(0, 120)}": argument ${JSON.stringify(arg.slice(0, 40))} contains a character ip -batch cannot carry (# " ' \\, tabs, newlines, control characters)`,
    );
    this.name = 'IpBatchArgError';
  }
}

// eslint-disable-next-line no-control-regex
const BATCH_UNSAFE = /[#"'\\\u0000-\u001f\u007f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;

/** The first argument `ip -batch` cannot carry as one word (an empty one would vanish), if any. */
const unsafeBatchArg = (args: readonly string[]): string | undefined => args.find((a) => a === '' || BATCH_UNSAFE.test(a));

/** One `ip -batch` line for `args`, or IpBatchArgError naming the argument it cannot carry. */
export function batchLine(args: readonly string[]): string {
  const bad = unsafeBatchArg(args);
  if (bad !== undefined) throw new IpBatchArgError(bad, args);
  return args.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ');
}
