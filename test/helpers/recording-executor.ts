/**
 * An Executor for tests: records every op instead of running it, and can be told to fail some.
 * `runIpBatch` runs its ops one by one (as `ip -batch` does, stopping at the first failure) and
 * reports the failing index, exactly like the real executor.
 */
import type { Logger } from 'pino';
import { HostCommandError } from '../../src/errors.js';
import type { Executor, IpOp } from '../../src/host/executor.js';
import { type HostOp, renderOp } from '../../src/plan/step.js';

export interface RecordedOp {
  /** 1-based number of the op since construction or the last clear(). */
  readonly n: number;
  readonly op: HostOp;
  readonly ok: boolean;
  /** Whether it came through runIpBatch. */
  readonly batched: boolean;
}

export interface RecordingExecutorOptions {
  /** Number(s) (1-based, every op counts, undos included) of the op(s) that fail. */
  readonly failAt?: number | readonly number[];
  /** Also fails the ops for which this returns true. */
  readonly failWhen?: (op: HostOp, n: number) => boolean;
  /** stderr of an injected failure. */
  readonly stderr?: string;
}

/** The argv a real executor would have run for an op (for the injected error's message). */
export function argvOf(op: HostOp): string[] {
  if (op.kind === 'ip') return ['ip', ...op.args];
  if (op.kind === 'link-del') return ['ip', 'link', 'del', 'dev', op.name];
  if (op.kind === 'forward-hook') return ['iptables-restore', '-w', '--noflush'];
  // nft, sysctl and any newer kind: the first line renderOp prints, without its annotations.
  const first = renderOp(op).split('\n')[0] ?? '';
  return first.replace(/\s+(<<|\[[^\]]*\])$/, '').split(' ');
}

export class RecordingExecutor implements Executor {
  readonly calls: RecordedOp[] = [];
  /** How many times runIpBatch was called. */
  batches = 0;
  failAt: number | readonly number[] | undefined;
  failWhen: ((op: HostOp, n: number) => boolean) | undefined;
  readonly stderr: string;

  constructor(opts: RecordingExecutorOptions = {}) {
    this.failAt = opts.failAt;
    this.failWhen = opts.failWhen;
    this.stderr = opts.stderr ?? 'RTNETLINK answers: Operation not permitted (injected)';
  }

  /** Every op attempted, in order (failed ones included). */
  get ops(): HostOp[] {
    return this.calls.map((c) => c.op);
  }

  /** Ops as renderOp prints them, one line each. */
  get lines(): string[] {
    return this.calls.map((c) => renderOp(c.op));
  }

  clear(): void {
    this.calls.length = 0;
    this.batches = 0;
  }

  private exec(op: HostOp, batched: boolean): void {
    const n = this.calls.length + 1;
    const listed = typeof this.failAt === 'number' ? [this.failAt] : (this.failAt ?? []);
    const fail = listed.includes(n) || (this.failWhen?.(op, n) ?? false);
    this.calls.push({ n, op, ok: !fail, batched });
    if (fail) throw new HostCommandError(argvOf(op), 2, this.stderr);
  }

  run(op: HostOp, _log: Logger): Promise<void> {
    // A throw inside the executor rejects the promise, as a failed command does.
    return new Promise((resolve) => {
      this.exec(op, false);
      resolve();
    });
  }

  runIpBatch(ops: readonly IpOp[], _log: Logger): Promise<{ index: number; error: unknown } | undefined> {
    this.batches++;
    for (let index = 0; index < ops.length; index++) {
      try {
        this.exec(ops[index] as IpOp, true);
      } catch (error) {
        return Promise.resolve({ index, error });
      }
    }
    return Promise.resolve(undefined);
  }
}
