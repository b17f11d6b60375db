/** Commands for the e2e tier: argv only, with the output a failing assertion needs. */
import { execa } from 'execa';
import { waitUntil } from '../../helpers/wait.js';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** Runs a command; never throws for a non-zero exit (tests assert on it). */
export async function sh(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  const r = await execa(cmd, args, { reject: false, timeout: opts.timeoutMs ?? 120_000, input: opts.input, env: { LC_ALL: 'C' } });
  return { stdout: String(r.stdout).trim(), stderr: String(r.stderr).trim(), exitCode: r.exitCode ?? -1 };
}

/** Runs a command and returns stdout; throws with stderr when it fails. */
export async function ok(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await sh(cmd, args, opts);
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.exitCode}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export const docker = (...args: string[]): Promise<RunResult> => sh('docker', args);
export const dockerOk = (...args: string[]): Promise<string> => ok('docker', args);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns true or `ms` passes (test/helpers/wait.ts). */
export async function waitFor(what: string, fn: () => Promise<boolean>, ms = 15_000, every = 200): Promise<void> {
  await waitUntil(what, fn, { ms, every });
}

/** Whether a process of that pid exists (signal 0 checks without sending anything). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
};
