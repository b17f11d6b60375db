/**
 * The managed plugin for the e2e tier, made the way a user makes it: `make base-images`,
 * `make plugin` (the real Dockerfile), `make plugin-install`, `make plugin-push` to a registry
 * this helper runs on 127.0.0.1. Everything lives in one `mnt-pkg-*` temp dir (bundle, state,
 * admin socket dir, registry storage) and is removed by `cleanup()`, failures included: plugins,
 * the image built, the build stage's cache images, the registry process. The base images
 * (mynet-base/*) are kept: they are a cache, remade only when missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { SOCKET, socketAnswers } from './plugin.js';
import { sleep, waitFor } from './sh.js';

export const ROOT = resolve(import.meta.dirname, '../../..');
/** The managed plugin's name as `make plugin-install` creates it, and the driver name it gets. */
export const PLUGIN = 'mynet';
export const DRIVER = 'mynet:latest';
/** A DOCKER_CONFIG directory whose cli-plugins/ holds compose v2 (scripts/engines.sh fetch). */
export const COMPOSE_V2 = process.env.MNT_COMPOSE_V2 || '/var/cache/mynet-engines/compose-v2';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** Runs a command with extra environment; never throws for a non-zero exit. */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  const r = await execa(cmd, args, {
    reject: false,
    timeout: opts.timeoutMs ?? 120_000,
    cwd: opts.cwd ?? ROOT,
    env: { LC_ALL: 'C', ...opts.env },
    all: false,
  });
  return { stdout: String(r.stdout).trim(), stderr: String(r.stderr).trim(), exitCode: r.exitCode ?? -1 };
}

/** The same, throwing with the command's output (the tail of it) when it fails. */
export async function runOk(cmd: string, args: readonly string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.exitCode !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-60).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.exitCode}):\n${tail}`);
  }
  return r.stdout;
}

/** Times a step and prints it, so a run's log shows where the minutes go. */
export async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    console.log(`[packaging] ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

/**
 * The tests never touch a mynet they did not start: no legacy plugin may answer on its socket,
 * and no managed plugin named mynet (or …/mynet:tag) may be installed. Two mynets would manage
 * the same firewall table and links.
 */
export async function assertNoOtherMynet(): Promise<void> {
  if (await socketAnswers(SOCKET)) throw new Error(`a legacy mynet answers on ${SOCKET}; stop it before running the packaging tests`);
  const names = (await runOk('docker', ['plugin', 'ls', '--format', '{{.Name}}'])).split('\n').filter(Boolean);
  const ours = names.filter((n) => /(^|\/)mynet:[^/]*$/.test(n));
  if (ours.length)
    throw new Error(
      `a managed mynet plugin is installed (${ours.join(', ')}); remove it (docker plugin disable -f, rm) before running the packaging tests`,
    );
}

/** A free TCP port on 127.0.0.1 (for the registry, published ports). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

export interface Registry {
  /** host:port, on 127.0.0.1 (dockerd treats 127.0.0.0/8 as an insecure registry). */
  readonly address: string;
  tags(repo: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** Debian's docker-registry on 127.0.0.1:<free port>, storing under `dir`. */
export async function startRegistry(dir: string): Promise<Registry> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  mkdirSync(join(dir, 'data'), { recursive: true });
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${address}\n`,
  );
  const log = openSync(join(dir, 'registry.log'), 'a');
  const proc: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', log, log] });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const spawnFailed = new Promise<never>((_, rej) =>
    proc.once('error', (err) => rej(new Error(`cannot run docker-registry (apt-get install docker-registry): ${err.message}`))),
  );
  const get = async (path: string): Promise<Response> => fetch(`http://${address}${path}`, { signal: AbortSignal.timeout(2000) });
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(5000).then(() => proc.kill('SIGKILL'))]);
    }
  };
  try {
    await Promise.race([
      spawnFailed,
      waitFor('the registry to answer', async () => (await get('/v2/').catch(() => undefined))?.status === 200, 15_000, 100),
    ]);
  } catch (err) {
    await stop();
    throw new Error(`${String(err)}\n${readFileSync(join(dir, 'registry.log'), 'utf8')}`);
  }
  return {
    address,
    async tags(repo) {
      const r = await get(`/v2/${repo}/tags/list`);
      return r.status === 200 ? (((await r.json()) as { tags?: string[] }).tags ?? []) : [];
    },
    stop,
  };
}

/** One test file's packaging work: a temp dir, the Makefile's variables, and cleanup. */
export class Packaging {
  readonly dir: string;
  readonly bundle: string;
  readonly stateDir: string;
  readonly adminDir: string;
  /** The image `make plugin` builds; removed by cleanup. */
  readonly image: string;
  private readonly plugins = new Set<string>();
  private readonly registries: Registry[] = [];

  constructor(tag: string) {
    this.dir = mkdtempSync(join(tmpdir(), `mnt-pkg-${tag}-`));
    this.bundle = join(this.dir, 'plugin');
    this.stateDir = join(this.dir, 'state');
    this.adminDir = join(this.dir, 'admin');
    this.image = `mnt-pkg-rootfs:${tag}`;
  }

  /** The Makefile's variables: everything in the temp dir, debug logs, no tmpfiles.d entry. */
  vars(extra: Record<string, string> = {}): string[] {
    const v: Record<string, string> = {
      PLUGIN_DIR: this.bundle,
      PLUGIN_IMAGE: this.image,
      STATE_DIR: this.stateDir,
      ADMIN_DIR: this.adminDir,
      PLUGIN_SETTINGS: 'MYNET_LOG_LEVEL=debug',
      // The image this run built once for every engine (scripts/plugin-prebuild.sh): loaded, not built again.
      ...(process.env.MNT_PLUGIN_IMAGE_TAR && { PLUGIN_IMAGE_TAR: process.env.MNT_PLUGIN_IMAGE_TAR }),
      ...extra,
    };
    return Object.entries(v).map(([k, val]) => `${k}=${val}`);
  }

  /** `make <target>` with this file's variables; fails with make's output. */
  async make(target: string, extra: Record<string, string> = {}, timeoutMs = 600_000): Promise<string> {
    if (target === 'plugin-install') this.plugins.add(PLUGIN);
    const r = await run('make', ['-s', target, ...this.vars(extra)], { timeoutMs, env: { TMPFILES: 'no' } });
    const out = `${r.stdout}\n${r.stderr}`;
    for (const line of out.split('\n')) if (/^(plugin|base-image): /.test(line)) console.log(`[packaging]   ${line}`);
    if (r.exitCode !== 0) throw new Error(`make ${target} failed (${r.exitCode}):\n${out.trim().split('\n').slice(-80).join('\n')}`);
    return out;
  }

  /** Remembers a plugin made outside make (docker plugin install) for cleanup. */
  track(plugin: string): void {
    this.plugins.add(plugin);
  }

  async registry(): Promise<Registry> {
    const r = await startRegistry(join(this.dir, 'registry'));
    this.registries.push(r);
    return r;
  }

  /** The plugin's full id (its socket is /run/docker/plugins/<id>/mynet.sock on the host). */
  async pluginId(name = PLUGIN): Promise<string> {
    return runOk('docker', ['plugin', 'inspect', name, '--format', '{{.Id}}']);
  }

  /** Removes the plugins, the image and its build cache, the registries and the temp dir. */
  async cleanup(): Promise<void> {
    const errors: string[] = [];
    for (const p of this.plugins) {
      if ((await run('docker', ['plugin', 'inspect', p])).exitCode !== 0) continue;
      await run('docker', ['plugin', 'disable', '-f', p]);
      const r = await run('docker', ['plugin', 'rm', '-f', p]);
      if (r.exitCode !== 0) errors.push(`docker plugin rm ${p}: ${r.stderr}`);
    }
    this.plugins.clear();
    for (const r of this.registries) await r.stop();
    this.registries.length = 0;
    await run('docker', ['rmi', '-f', this.image]);
    // The Dockerfile labels its build stage; its untagged images are only a cache.
    await run('docker', ['image', 'prune', '-f', '--filter', 'label=io.mynet.stage=build']);
    rmSync(this.dir, { recursive: true, force: true });
    if (errors.length) throw new Error(errors.join('\n'));
  }
}
