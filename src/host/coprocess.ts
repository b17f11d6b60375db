/**
 * Long-running `ip -batch -` and `nft -i` processes fed over stdin. Spawning a process per host
 * command costs 3–6 ms here (the plugin forks, the tool loads its libraries); a coprocess pays
 * that once. After each group of commands we send a marker command and wait for its trace:
 *  - ip: `link show dev lo`, whose one-line answer ("1: lo: ...", lo is always ifindex 1) ip
 *    flushes after each command. ip without -force exits at the first failing line, naming it
 *    ("Command failed -:N", N counted from the process's first line), which keeps `ip -batch`'s
 *    all-before-the-failure semantics; the next group starts a new process.
 *  - nft: an unparseable word `mnmarkN`, whose error (echoing the word) nft writes to stderr
 *    after everything before it has run. nft -i runs each line as one transaction and goes on
 *    after a failure, so a group is always one line: all of it applies or none.
 *  - bridge (`bridge -force -batch -`, for VXLAN forwarding entries): `fdb show dev mnmarkN`, a
 *    device that does not exist, whose error (`Cannot find device "mnmarkN"`) comes after
 *    everything before it has run; -force goes on after a failure, so a group is one line, as
 *    with nft. A one-shot `bridge` lists every link of the namespace when it starts (6 ms with
 *    600 links), which the long-running one pays once.
 * Every group has a timeout: the process is killed and the group fails, as with a one-shot command.
 *
 * Each process has its own state (buffers, lines written, the group waiting on it). A process
 * killed at a timeout may still deliver output and will deliver its exit; those events belong to
 * a group that has already failed, so they are dropped instead of being read as the answer of
 * whichever group waits next (issue 14.6: a failed `ip link add` reported done, a done one rolled
 * back).
 *
 * The first process is probed with a lone marker before any command is sent. If the tool answers
 * but not in the shape above (another nft error format, another ip), the coprocess would wait for
 * the timeout on every group; instead every run rejects with CoprocessUnusable and the executor
 * runs that tool one-shot. Nothing of a group has been sent when that happens.
 */
import type { ResultPromise } from 'execa';
import { loadExeca } from './load-execa.js';
import { HostCommandError } from '../errors.js';

export interface GroupResult {
  /** For ip: the failing line's index within the group and the kernel's words; undefined: all ran. */
  readonly failed?: { readonly index: number; readonly stderr: string };
}

/** The tool's answer to the marker is not what this file parses; none of the group was sent. */
export class CoprocessUnusable extends Error {
  constructor(
    readonly argv: readonly string[],
    reason: string,
  ) {
    super(`${argv.join(' ')}: ${reason}`);
    this.name = 'CoprocessUnusable';
  }
}

type Dialect = 'ip' | 'nft' | 'bridge';

interface Waiter {
  readonly resolve: (r: GroupResult) => void;
  readonly reject: (e: Error) => void;
  readonly firstLine: number;
  readonly lines: number;
  readonly marker: number;
  /** The start-up probe: an unrecognised answer makes the coprocess unusable. */
  readonly probe: boolean;
}

/** One process and everything read from or waited on it. */
interface Child {
  readonly proc: ResultPromise;
  out: string;
  err: string;
  /** Lines written to this process so far (ip numbers failures from its first line). */
  written: number;
  waiter: Waiter | undefined;
}

/** How long a probe's answer may stay unrecognised after its first output (nft writes its error in pieces). */
const PROBE_GRACE_MS = 150;

export class Coprocess {
  private child: Child | undefined;
  private markers = 0;
  private probed = false;
  private unusable: CoprocessUnusable | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  /** Processes started (metrics, benchmarks). */
  spawns = 0;

  constructor(
    private readonly dialect: Dialect,
    private readonly argv: readonly string[],
    private readonly timeoutMs: number,
    private readonly onSpawn?: () => void,
  ) {}

  /**
   * Runs `lines` (ip: one command each; nft: exactly one line) after the groups before it.
   * Rejects with CoprocessUnusable (nothing sent) when the tool's marker answer is not understood.
   */
  run(lines: readonly string[]): Promise<GroupResult> {
    const go = (): Promise<GroupResult> => this.runNow(lines);
    const r = this.tail.then(go, go);
    this.tail = r.catch(() => undefined);
    return r;
  }

  /** The pid of the running process, if one runs (it lives in the namespace it was started in). */
  get pid(): number | undefined {
    return this.child?.proc.pid;
  }

  /** Ends the process (tests, shutdown); a group still waiting on it fails. */
  close(): void {
    const c = this.child;
    if (!c) return;
    this.retire(c);
    c.waiter?.reject(new HostCommandError(this.argv, undefined, 'closed before finishing'));
    c.waiter = undefined;
  }

  /** From here on nothing this process does is read: it is no longer the current one. */
  private retire(c: Child): void {
    if (this.child === c) this.child = undefined;
    c.proc.stdin?.end();
    c.proc.kill('SIGKILL');
  }

  private start(execa: Awaited<ReturnType<typeof loadExeca>>['execa']): Child {
    const [cmd, ...args] = this.argv as [string, ...string[]];
    const proc = execa(cmd, args, { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false, reject: false, env: { LC_ALL: 'C' } });
    this.spawns++;
    this.onSpawn?.();
    const c: Child = { proc, out: '', err: '', written: 0, waiter: undefined };
    // A process that is no longer the current one has nothing to say to anyone waiting now.
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (this.child === c) this.onOut(c, d);
    });
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (this.child === c) this.onErr(c, d);
    });
    proc.stdin?.on('error', () => undefined); // EPIPE when it exits; the exit handler reports it
    void proc.then((r) => {
      if (this.child === c) this.onExit(c, r.exitCode, r.signal);
    });
    // The plugin's server keeps the process alive; a coprocess alone must not (tests).
    proc.unref();
    for (const s of [proc.stdin, proc.stdout, proc.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    return c;
  }

  private async runNow(lines: readonly string[]): Promise<GroupResult> {
    if (this.dialect !== 'ip' && lines.length !== 1) throw new Error(`${this.dialect} coprocess: one line per group`);
    if (lines.some((l) => l.includes('\n'))) throw new Error(`${this.dialect} coprocess: a command contains a newline`);
    if (this.unusable) throw this.unusable;
    const { execa } = await loadExeca();
    // One timeout for the group, the start-up probe included.
    const deadline = performance.now() + this.timeoutMs;
    let c = this.child;
    if (!c) {
      c = this.child = this.start(execa);
      if (!this.probed) {
        await this.send(c, [], deadline, true);
        this.probed = true;
        // It may have exited since answering; its events are no longer read, so use a new one.
        if (this.child !== c) c = this.child = this.start(execa);
      }
    }
    return this.send(c, lines, deadline, false);
  }

  /** Writes `lines` and the marker to `c` and waits for the marker's answer until `deadline`. */
  private send(c: Child, lines: readonly string[], deadline: number, probe: boolean): Promise<GroupResult> {
    const marker = ++this.markers;
    const markLine =
      this.dialect === 'ip' ? 'link show dev lo' : this.dialect === 'bridge' ? `fdb show dev mnmark${marker}` : `mnmark${marker}`;
    return new Promise<GroupResult>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          if (c.waiter !== w) return;
          c.waiter = undefined;
          this.retire(c);
          reject(new HostCommandError(this.argv, undefined, '', { timedOut: true }));
        },
        Math.max(0, deadline - performance.now()),
      );
      const w: Waiter = {
        firstLine: c.written + 1,
        lines: lines.length,
        marker,
        probe,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      c.waiter = w;
      c.written += lines.length + 1;
      c.proc.stdin?.write(`${[...lines, markLine].join('\n')}\n`);
    });
  }

  private onOut(c: Child, d: string): void {
    if (this.dialect !== 'ip') return this.probeHeard(c);
    c.out += d;
    // Our commands print nothing; each "1: lo:" line is one marker's answer.
    let nl: number;
    while ((nl = c.out.indexOf('\n')) >= 0) {
      const line = c.out.slice(0, nl);
      c.out = c.out.slice(nl + 1);
      if (line.startsWith('1: lo:')) this.settle(c, {});
      else this.probeHeard(c, line);
    }
  }

  private onErr(c: Child, d: string): void {
    c.err += d;
    const w = c.waiter;
    if (this.dialect === 'ip' || !w) return;
    // nft's error for the marker: "Error: ...", the marker line echoed, a line of carets;
    // bridge's: the missing device named, then the line it failed at.
    const m =
      this.dialect === 'nft'
        ? new RegExp(`(?:^|\\n)Error: [^\\n]*\\nmnmark${w.marker}\\n[ ^~]*\\n`).exec(c.err)
        : new RegExp(`(?:^|\\n)Cannot find device "mnmark${w.marker}"\\nCommand failed -:\\d+\\n`).exec(c.err);
    if (!m) return this.probeHeard(c);
    const before = c.err
      .slice(0, m.index)
      .replace(/\n?Command failed -:\d+\s*$/, '')
      .trim();
    c.err = c.err.slice(m.index + m[0].length);
    this.settle(c, before ? { failed: { index: 0, stderr: before } } : {});
  }

  /**
   * The probe got output that is not (yet) the marker's answer. A line of ip that is not the
   * answer settles it at once; nft's error comes in pieces, so it gets a short grace time.
   */
  private probeHeard(c: Child, line?: string): void {
    const w = c.waiter;
    if (!w?.probe) return;
    if (line !== undefined) return this.refuse(c, w, `answered the marker with "${line}"`);
    setTimeout(() => {
      if (c.waiter === w) this.refuse(c, w, `answered the marker with "${(c.err.trim() || c.out.trim()).slice(0, 200)}"`);
    }, PROBE_GRACE_MS).unref();
  }

  private refuse(c: Child, w: Waiter, reason: string): void {
    c.waiter = undefined;
    this.retire(c);
    this.unusable = new CoprocessUnusable(this.argv, reason);
    w.reject(this.unusable);
  }

  private settle(c: Child, r: GroupResult): void {
    const w = c.waiter;
    c.waiter = undefined;
    c.err = '';
    w?.resolve(r);
  }

  private onExit(c: Child, code: number | undefined, signal: string | undefined): void {
    this.child = undefined;
    const w = c.waiter;
    if (!w) return;
    c.waiter = undefined;
    const stderr = c.err.trim();
    if (w.probe) {
      this.unusable = new CoprocessUnusable(this.argv, `exited at the marker: ${stderr || `exit code ${code ?? signal ?? '?'}`}`);
      w.reject(this.unusable);
      return;
    }
    // ip stops at the first failing line and names it; map it back into the group.
    const m = /Command failed -:(\d+)\s*$/.exec(stderr);
    const index = m ? Number(m[1]) - w.firstLine : -1;
    if (this.dialect === 'ip' && index >= 0 && index < w.lines) {
      w.resolve({ failed: { index, stderr: stderr.replace(/\n?Command failed -:\d+\s*$/, '') } });
      return;
    }
    w.reject(new HostCommandError(this.argv, code, stderr || `exited${signal ? ` on ${signal}` : ''} before finishing`));
  }
}
