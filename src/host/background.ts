/**
 * Host steps that run after the answer. Deleting a veth costs the kernel ~20 ms (it waits for
 * RCU readers to let go of the device), which dockerd would otherwise wait for on every
 * container stop; forgetting conntrack flows is a process of its own. Nothing the answer
 * promises depends on either. Steps run one at a time, in order, on their own executor (so
 * they never queue in front of the next request's commands). A plan that touches something
 * with work pending (the sets of plan/step.ts resourcesOf meet) waits for it first; restore,
 * the doctor and shutdown wait for all.
 * A crash loses the queue: restore removes leftover links of ours at start; stale flows expire.
 */
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { type HostPlan, type HostStep, type Resource, planResources, resourcesOf } from '../plan/step.js';
import type { Executor } from './executor.js';

export class Background {
  private tail: Promise<void> = Promise.resolve();
  /** What queued steps touch, with how many steps touch it. */
  private readonly pending = new Map<Resource, number>();
  /** Queued steps (the size of the queue, whatever they touch). */
  private queued = 0;
  private readonly waiters: (() => void)[] = [];
  /** The reaps folded into the reap that is queued and not started yet: what they touch, how many. */
  private queuedReap: { keys: Resource[]; steps: number } | undefined;

  constructor(
    private readonly exec: Executor,
    private readonly onFailure?: (step: HostStep, err: unknown) => void,
  ) {}

  get size(): number {
    return this.queued;
  }

  enqueue(steps: readonly HostStep[], log: Logger): void {
    for (const step of steps) {
      const keys = resourcesOf(step.run);
      for (const k of keys) this.pending.set(k, (this.pending.get(k) ?? 0) + 1);
      this.queued++;
      // One reap deletes every retired link: a reap already waiting its turn covers this one.
      if (step.run.kind === 'link-reap' && this.queuedReap) {
        this.queuedReap.keys.push(...keys);
        this.queuedReap.steps++;
        continue;
      }
      const covered = { keys: [] as Resource[], steps: 0 };
      if (step.run.kind === 'link-reap') this.queuedReap = covered;
      this.tail = this.tail.then(async () => {
        if (this.queuedReap === covered) this.queuedReap = undefined; // running: later ones queue anew
        try {
          await this.exec.run(step.run, log);
        } catch (err) {
          // The reconciler finds what is left (a leftover link); say so now, with the request's ids.
          log.error({ step: step.what, err: messageOf(err) }, 'background step failed');
          this.onFailure?.(step, err);
        } finally {
          this.queued -= 1 + covered.steps;
          for (const k of [...keys, ...covered.keys]) {
            const left = (this.pending.get(k) ?? 1) - 1;
            if (left > 0) this.pending.set(k, left);
            else this.pending.delete(k);
          }
          for (const w of this.waiters.splice(0)) w();
        }
      });
    }
  }

  /** Whether `plan` touches something with queued work (then it must wait for it). */
  touches(plan: HostPlan): boolean {
    if (this.pending.size === 0 || plan.length === 0) return false;
    for (const r of planResources(plan)) if (this.pending.has(r)) return true;
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
