/**
 * Starting, stopping and restarting a dockerd that the tests own, through its pidfile, so a test
 * can restart it and the global teardown still stops the one that is running at the end.
 * scripts/engines.sh picks the engine: its bin directory first in PATH (dockerd, docker-proxy,
 * docker), and MNT_DOCKERD_ARGS / MNT_DOCKERD_PIDFILE for the data root, exec root, pidfile and
 * the production flag that engine runs with. Without them: the dockerd in PATH, as installed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, sh, sleep, waitFor } from './sh.js';

const PIDFILE = process.env.MNT_DOCKERD_PIDFILE || '/var/run/docker.pid';
const ARGS = (process.env.MNT_DOCKERD_ARGS ?? '').split(/\s+/).filter(Boolean);

/** Which engine the tier runs on, as scripts/engines.sh names it (empty: the one installed). */
export const ENGINE = process.env.MNT_ENGINE ?? '';
const LOG_PREFIX = 'mnt-dockerd-';

export async function dockerAnswers(): Promise<boolean> {
  return (await sh('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 })).exitCode === 0;
}

export async function startDockerd(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), LOG_PREFIX));
  const log = openSync(join(dir, 'dockerd.log'), 'a');
  const args = ARGS.includes('--pidfile') ? ARGS : ['--pidfile', PIDFILE, ...ARGS];
  spawn('dockerd', args, { stdio: ['ignore', log, log], detached: true }).unref();
  await waitFor('dockerd to answer', dockerAnswers, 60_000, 500);
}

export async function stopDockerd(): Promise<void> {
  const pid = Number(readFileSync(PIDFILE, 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 200 && alive(pid); i++) await sleep(100);
  if (alive(pid)) throw new Error(`dockerd ${pid} did not stop within 20 s`);
  // Its log was only for a post-mortem of this run (MNT_KEEP=1 keeps it). A restart and the global
  // teardown stop dockerd from different processes, so the directories are found by their prefix.
  if (!process.env.MNT_KEEP) {
    for (const d of readdirSync(tmpdir())) if (d.startsWith(LOG_PREFIX)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  }
}

export async function restartDockerd(owned: boolean): Promise<void> {
  if (!owned) {
    throw new Error(
      'this test restarts dockerd, and the dockerd running here was not started by the tests: stop it (the e2e tier then starts its own) and run again',
    );
  }
  await stopDockerd();
  await startDockerd();
}
