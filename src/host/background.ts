/**
 * Host steps that run after the answer. Deleting a veth costs the kernel ~20 ms (it waits for
 * RCU readers to let go of the device), which dockerd would otherwise wait for on every
 * container stop; forgetting conntrack flows is a process of its own. Nothing the answer
 * promises depends on either. Steps run one at a time, in order, on their own executor (so
 * they never queue in front of the next request's commands). A plan that names a link or
 * address with work pending waits for it first; restore, the doctor and shutdown wait for all.
 * A crash loses the queue: restore removes leftover links of ours at start; stale flows expire.
 */
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import type { HostOp, HostPlan, HostStep } from '../plan/step.js';
import { renderOp } from '../plan/step.js';
import type { Executor } from './executor.js';

const keyOf = (op: HostOp): string => {
  switch (op.kind) {
    case 'link-del':
    case 'link-reap':
      return op.name;
    case 'conntrack-flush':
      return op.address;
    default:
      return renderOp(op);
  }
};

export class Background {
  private tail: Promise<void> = Promise.resolve();
  /** Keys (link names, addresses) of queued steps, with how many steps name them. */
  private readonly pending = new Map<string, number>();
  private readonly waiters: (() => void)[] = [];
  /** Keys covered by the reap that is queued and not started yet. */
  private queuedReap: string[] | undefined;

  constructor(
    private readonly exec: Executor,
    private readonly onFailure?: (step: HostStep, err: unknown) => void,
  ) {}

  get size(): number {
    let n = 0;
    for (const c of this.pending.values()) n += c;
    return n;
  }

  enqueue(steps: readonly HostStep[], log: Logger): void {
    for (const step of steps) {
      const key = keyOf(step.run);
      this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
      // One reap deletes every retired link: a reap already waiting its turn covers this one.
      if (step.run.kind === 'link-reap' && this.queuedReap) {
        this.queuedReap.push(key);
        continue;
      }
      const covered: string[] = [];
      if (step.run.kind === 'link-reap') this.queuedReap = covered;
      this.tail = this.tail.then(async () => {
        if (this.queuedReap === covered) this.queuedReap = undefined; // running: later ones queue anew
        try {
          await this.exec.run(step.run, log);
        } catch (err) {
          // The doctor finds what is left (an orphan link); say so now, with the request's ids.
          log.error({ step: step.what, err: messageOf(err) }, 'background step failed');
          this.onFailure?.(step, err);
        } finally {
          for (const k of [key, ...covered]) {
            const left = (this.pending.get(k) ?? 1) - 1;
            if (left > 0) this.pending.set(k, left);
            else this.pending.delete(k);
          }
          for (const w of this.waiters.splice(0)) w();
        }
      });
    }
  }

  /** Whether `plan` names something with queued work (then it must wait for it). */
  touches(plan: HostPlan): boolean {
    if (this.pending.size === 0 || plan.length === 0) return false;
    // Whole words only: 10.0.0.1 must not match 10.0.0.12, nor mnh1 mnh12.
    const words = new Set(plan.flatMap((s) => [renderOp(s.run), s.undo ? renderOp(s.undo) : '']).join(' ').split(/[\s,{}()[\]"';=@]+/));
    for (const key of this.pending.keys()) if (words.has(key)) return true;
    return false;
  }

  /** Resolves when fewer than `n` steps are queued (back-pressure without waiting for all). */
  async below(n: number): Promise<void> {
    while (this.size >= n) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Resolves when everything queued so far has run. */
  idle(): Promise<void> {
    return this.tail;
  }
}
