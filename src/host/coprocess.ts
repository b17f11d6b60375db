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
 * Every group has a timeout: the process is killed and the group fails, as with a one-shot command.
 */
import type { ResultPromise } from 'execa';
import { loadExeca } from './load-execa.js';
import { HostCommandError } from '../errors.js';

export interface GroupResult {
  /** For ip: the failing line's index within the group and the kernel's words; undefined: all ran. */
  readonly failed?: { readonly index: number; readonly stderr: string };
}

type Dialect = 'ip' | 'nft';

interface Waiter {
  readonly resolve: (r: GroupResult) => void;
  readonly reject: (e: Error) => void;
  readonly firstLine: number;
  readonly lines: number;
  readonly marker: number;
}

export class Coprocess {
  private child: ResultPromise | undefined;
  private out = '';
  private err = '';
  /** Lines written to the current process so far (ip numbers failures from its first line). */
  private written = 0;
  private markers = 0;
  private waiter: Waiter | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  /** Processes started (metrics, benchmarks). */
  spawns = 0;

  constructor(
    private readonly dialect: Dialect,
    private readonly argv: readonly string[],
    private readonly timeoutMs: number,
    private readonly onSpawn?: () => void,
  ) {}

  /** Runs `lines` (ip: one command each; nft: exactly one line) after the groups before it. */
  run(lines: readonly string[]): Promise<GroupResult> {
    const go = (): Promise<GroupResult> => this.runNow(lines);
    const r = this.tail.then(go, go);
    this.tail = r.catch(() => undefined);
    return r;
  }

  /** Ends the process (tests, shutdown). */
  close(): void {
    const c = this.child;
    this.child = undefined;
    if (c) {
      c.stdin?.end();
      c.kill('SIGKILL');
    }
  }

  private start(execa: Awaited<ReturnType<typeof loadExeca>>['execa']): ResultPromise {
    const [cmd, ...args] = this.argv as [string, ...string[]];
    const child = execa(cmd, args, { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false, reject: false, env: { LC_ALL: 'C' } });
    this.spawns++;
    this.onSpawn?.();
    this.out = '';
    this.err = '';
    this.written = 0;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => this.onOut(d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => this.onErr(d));
    child.stdin?.on('error', () => undefined); // EPIPE when it exits; the exit handler reports it
    void child.then((r) => this.onExit(child, r.exitCode, r.signal));
    // The plugin's server keeps the process alive; a coprocess alone must not (tests).
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  }

  private async runNow(lines: readonly string[]): Promise<GroupResult> {
    if (this.dialect === 'nft' && lines.length !== 1) throw new Error('nft coprocess: one line per group');
    if (lines.some((l) => l.includes('\n'))) throw new Error(`${this.dialect} coprocess: a command contains a newline`);
    this.child ??= this.start((await loadExeca()).execa);
    const child = this.child;
    const marker = ++this.markers;
    const markLine = this.dialect === 'ip' ? 'link show dev lo' : `mnmark${marker}`;
    return new Promise<GroupResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.close();
        reject(new HostCommandError(this.argv, undefined, '', { timedOut: true }));
      }, this.timeoutMs);
      this.waiter = {
        firstLine: this.written + 1,
        lines: lines.length,
        marker,
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.written += lines.length + 1;
      child.stdin?.write(`${lines.join('\n')}\n${markLine}\n`);
    });
  }

  private onOut(d: string): void {
    if (this.dialect !== 'ip') return;
    this.out += d;
    // Our commands print nothing; each "1: lo:" line is one marker's answer.
    let nl: number;
    while ((nl = this.out.indexOf('\n')) >= 0) {
      const line = this.out.slice(0, nl);
      this.out = this.out.slice(nl + 1);
      if (line.startsWith('1: lo:')) this.settle({});
    }
  }

  private onErr(d: string): void {
    this.err += d;
    if (this.dialect !== 'nft' || !this.waiter) return;
    // nft's error for the marker: "Error: ...", the marker line echoed, a line of carets.
    const m = new RegExp(`(?:^|\\n)Error: [^\\n]*\\nmnmark${this.waiter.marker}\\n[ ^~]*\\n`).exec(this.err);
    if (!m) return;
    const before = this.err.slice(0, m.index).trim();
    this.err = this.err.slice(m.index + m[0].length);
    this.settle(before ? { failed: { index: 0, stderr: before } } : {});
  }

  private settle(r: GroupResult): void {
    const w = this.waiter;
    this.waiter = undefined;
    this.err = '';
    w?.resolve(r);
  }

  private onExit(child: ResultPromise, code: number | undefined, signal: string | undefined): void {
    if (this.child === child) this.child = undefined;
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    const stderr = this.err.trim();
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
