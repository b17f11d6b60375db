/**
 * Failure injection for the host tier: wraps the real executor and makes the Nth host op after
 * `arm(n)` fail as if the kernel had refused it, without running it. Ops before it run for real
 * (including inside an `ip -batch` group, which is split at the failing op), and so do the undo
 * ops that follow, so what is checked is the real rollback on the real kernel.
 */
import type { Logger } from 'pino';
import { HostCommandError } from '../../src/errors.js';
import type { Executor, IpOp } from '../../src/host/executor.js';
import { type HostOp, renderOp } from '../../src/plan/step.js';

export const INJECTED = 'RTNETLINK answers: injected failure';

export function argvOf(op: HostOp): string[] {
  if (op.kind === 'ip') return ['ip', ...op.args];
  if (op.kind === 'link-del') return ['ip', 'link', 'del', 'dev', op.name];
  // Other kinds as a plan rendering shows them (first line), e.g. "forward-hook ensure".
  return (renderOp(op).split('\n')[0] ?? op.kind).trim().split(/\s+/);
}

export class FailingExecutor implements Executor {
  /** Ops seen since arm(), in order, whether they ran or were failed. */
  readonly seen: HostOp[] = [];
  private failAt = 0;

  constructor(private readonly inner: Executor) {}

  /** Fail the nth op (1-based) from now on; 0 disarms. */
  arm(n: number): void {
    this.failAt = n;
    this.seen.length = 0;
  }

  private fails(): boolean {
    return this.failAt > 0 && this.seen.length === this.failAt;
  }

  async run(op: HostOp, log: Logger): Promise<void> {
    this.seen.push(op);
    if (this.fails()) throw new HostCommandError(argvOf(op), 2, INJECTED);
    return this.inner.run(op, log);
  }

  async runIpBatch(ops: readonly IpOp[], log: Logger): Promise<{ index: number; error: unknown } | undefined> {
    for (let k = 0; k < ops.length; k++) {
      this.seen.push(ops[k] as IpOp);
      if (!this.fails()) continue;
      const before = k > 0 ? await this.inner.runIpBatch(ops.slice(0, k), log) : undefined;
      return before ?? { index: k, error: new HostCommandError(argvOf(ops[k] as IpOp), 2, INJECTED) };
    }
    return this.inner.runIpBatch(ops, log);
  }
}
