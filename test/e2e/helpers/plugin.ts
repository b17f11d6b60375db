/**
 * Starts the plugin as `make run` does (node dist/main.js on /run/docker/plugins/mynet.sock),
 * with a throwaway state directory. Refuses to run if another mynet already answers on the
 * socket: the tests never touch a plugin they did not start. The multi-host tests (hosts.ts)
 * start one per "host": on that host's socket, inside its network namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sleep, waitFor } from './sh.js';

export const SOCKET = '/run/docker/plugins/mynet.sock';
const ROOT = resolve(import.meta.dirname, '../../..');

export function socketAnswers(path = SOCKET): Promise<boolean> {
  return new Promise((res) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      res(true);
    });
    c.once('error', () => res(false));
  });
}

export interface PluginHandle {
  readonly stateDir: string;
  readonly logFile: string;
  readonly proc: ChildProcess;
  logs(): string;
  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
}

export interface StartOptions {
  readonly stateDir?: string;
  readonly env?: Record<string, string>;
  /** Run `make run` instead of node directly (proves the Makefile target). */
  readonly viaMake?: boolean;
  /** Its socket (MYNET_SOCKET), default SOCKET. */
  readonly socket?: string;
  /** Run inside this network namespace (`ip netns exec`, which execs: the pid stays node's). */
  readonly netns?: string;
}

export async function startPlugin(opts: StartOptions = {}): Promise<PluginHandle> {
  const socket = opts.socket ?? SOCKET;
  if (await socketAnswers(socket)) throw new Error(`a mynet plugin already answers on ${socket}; stop it before running the e2e tests`);
  if (!existsSync(join(ROOT, 'dist/main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first');
  const stateDir = opts.stateDir ?? join(mkdtempSync(join(tmpdir(), 'mnt-e2e-')), 'state');
  const logFile = `${stateDir}.log`;
  const out = openSync(logFile, 'a');
  const env = {
    ...process.env,
    MYNET_STATE_DIR: stateDir,
    MYNET_LOG_LEVEL: 'debug',
    ...(opts.socket && { MYNET_SOCKET: opts.socket }),
    ...opts.env,
  };
  const argv = opts.viaMake ? ['make', '-s', 'run'] : [process.execPath, 'dist/main.js'];
  const [cmd, ...args] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  const proc = spawn(cmd as string, args, { cwd: ROOT, env, stdio: ['ignore', out, out], detached: true });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  // A readiness wait, not a bound: `make run` checks the install and the build first, and the
  // tier runs three engines and the host tier at once on two cores (10 s was missed there).
  await waitFor('the plugin socket', () => socketAnswers(socket), opts.viaMake ? 45_000 : 20_000, 50).catch((err: unknown) => {
    proc.kill('SIGKILL');
    throw new Error(`${String(err)}\n${readFileSync(logFile, 'utf8')}`);
  });
  const signalGroup = (sig: NodeJS.Signals): void => {
    // make runs node with exec, so the group is just the plugin; signal the group either way.
    try {
      process.kill(-(proc.pid as number), sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // ESRCH: it has already exited
    }
  };
  return {
    stateDir,
    logFile,
    proc,
    logs: () => readFileSync(logFile, 'utf8'),
    async stop() {
      signalGroup('SIGTERM');
      const code = await Promise.race([exited, sleep(10_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') {
        signalGroup('SIGKILL');
        throw new Error('plugin did not exit within 10 s of SIGTERM');
      }
      return code;
    },
    async kill() {
      signalGroup('SIGKILL');
      await exited;
    },
  };
}

export function removeStateDir(h: PluginHandle): void {
  if (process.env.MNT_KEEP) return; // MNT_KEEP=1 keeps the state and the plugin's log for a post-mortem
  rmSync(resolve(h.stateDir, '..'), { recursive: true, force: true });
}
