/**
 * One real plugin process (`node dist/main.js`) inside a namespace, as mynet runs on a host:
 * its own sockets, state directory and DNS address, its log in a file (for failure reports).
 * Started with `ip netns exec`, which execs node in place, so the child's pid is the plugin's:
 * `kill9` is a real crash, `stop` a clean SIGTERM. Only this process is ever signalled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { answersOn } from './plugin-client.js';

const ROOT = resolve(import.meta.dirname, '../..');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Processes started here and still running: killed at exit if a test forgot (by their pid). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export class PluginProcess {
  private child: ChildProcess | undefined;
  readonly socket: string;
  readonly adminSocket: string;
  readonly stateDir: string;
  readonly logFile: string;
  /** How many times it was started (a restart after a kill counts). */
  starts = 0;
  /** Settings that replace the constructor's from the next start on (a host renamed). */
  readonly overrides: Record<string, string> = {};

  constructor(
    /** The namespace it runs in (looked up at each start: a rebooted host has a new one of the same name). */
    private readonly netns: () => string,
    readonly dir: string,
    private readonly env: Readonly<Record<string, string>>,
    /** Node's own flags before main.js (a module hook, say). */
    private readonly nodeArgs: readonly string[] = [],
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.socket = join(dir, 'mynet.sock');
    this.adminSocket = join(dir, 'admin.sock');
    this.stateDir = join(dir, 'state');
    this.logFile = join(dir, 'plugin.log');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts it and waits (bounded) until both sockets answer. */
  async start(): Promise<void> {
    if (this.alive) throw new Error(`plugin in ${this.netns()} is already running (pid ${this.pid})`);
    const log = openSync(this.logFile, 'a');
    // Only the settings named here: nothing of the test runner's environment leaks in.
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      MYNET_SOCKET: this.socket,
      MYNET_ADMIN_SOCKET: this.adminSocket,
      MYNET_STATE_DIR: this.stateDir,
      ...this.env,
      ...this.overrides,
    };
    const child = spawn('ip', ['netns', 'exec', this.netns(), process.execPath, ...this.nodeArgs, join(ROOT, 'dist/main.js')], {
      env,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.child = child;
    this.starts++;
    running.add(child);
    child.once('exit', () => running.delete(child));
    for (let i = 0; i < 400; i++) {
      if (!this.alive) throw new Error(`plugin in ${this.netns()} exited at start: ${this.logTail()}`);
      if ((await answersOn(this.socket, '/Plugin.Activate')) && (await answersOn(this.adminSocket, '/version', 'GET'))) return;
      await sleep(25);
    }
    throw new Error(`plugin in ${this.netns()} did not answer in 10 s: ${this.logTail()}`);
  }

  /** SIGKILL: no drain, no save, sockets left behind, as a crash or a power cut. */
  async kill9(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** SIGTERM and wait (it drains and saves); SIGKILL after 10 s. Its exit code (null: killed, or not running). */
  async stop(): Promise<number | null> {
    const c = this.child;
    if (!c || !this.alive) return null;
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    const code = await this.signal('SIGTERM');
    clearTimeout(timer);
    return code;
  }

  private async signal(sig: NodeJS.Signals): Promise<number | null> {
    const c = this.child;
    if (!c || !this.alive) return null;
    const gone = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    c.kill(sig);
    return gone;
  }

  /** The last lines of its log (JSON lines from pino), for a failure's message. */
  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch (err) {
      return `(no log: ${(err as Error).message})`;
    }
  }

  /** Log lines at warn or above (pino levels 40+), for "no error was logged" checks. */
  problems(): string[] {
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter((l) => /"level":(4|5|6)\d/.test(l));
  }
}
