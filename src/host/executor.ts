/**
 * The one place plans are run. `applyPlan` runs steps in order; if one fails it undoes the steps
 * already done, in reverse, and throws a HostPlanError naming the failed step, the command and
 * the kernel's message. `applyAll` is the teardown mode: every step runs whatever failed
 * before it (deletes have no undo, so stopping would leave the object half removed), and the
 * error lists each step that failed. Consecutive `ip` steps go to the kernel in one `ip -batch`
 * process, because a process per command costs milliseconds and a plan is often several commands.
 */
import type { Logger } from 'pino';
import { HostPlanError, HostTeardownError, messageOf } from '../errors.js';
import type { HostOp, HostPlan, HostStep } from '../plan/step.js';
import { renderOp } from '../plan/step.js';

export type IpOp = Extract<HostOp, { kind: 'ip' }>;

export interface Executor {
  run(op: HostOp, log: Logger): Promise<void>;
  /**
   * Runs several `ip` commands in one process, stopping at the first failure.
   * Resolves with the index of the op that failed and its error, or undefined when all succeeded.
   */
  runIpBatch(ops: readonly IpOp[], log: Logger): Promise<{ index: number; error: unknown } | undefined>;
}

const batchable = (s: HostStep): boolean => s.run.kind === 'ip' && !s.run.absentOk;

export async function applyPlan(exec: Executor, plan: HostPlan, log: Logger): Promise<void> {
  const done: HostStep[] = [];
  let i = 0;
  while (i < plan.length) {
    const step = plan[i] as HostStep;
    let j = i + 1;
    if (batchable(step)) while (j < plan.length && batchable(plan[j] as HostStep)) j++;
    const group = plan.slice(i, j);
    let failed: { index: number; error: unknown } | undefined;
    if (group.length > 1) {
      failed = await exec.runIpBatch(
        group.map((s) => s.run as IpOp),
        log,
      );
    } else {
      try {
        await exec.run(step.run, log);
      } catch (error) {
        failed = { index: 0, error };
      }
    }
    if (failed) {
      done.push(...group.slice(0, failed.index));
      const bad = group[failed.index] as HostStep;
      const undoFailures = await undoSteps(exec, done, log);
      log.error({ step: bad.what, err: failed.error, undoFailures }, 'host plan failed');
      throw new HostPlanError(bad.what, failed.error, undoFailures);
    }
    done.push(...group);
    i = j;
  }
}

/**
 * Runs every step of a teardown plan, in order, going on past failures; throws a
 * HostTeardownError naming each failed step when any failed. Nothing is undone.
 */
export async function applyAll(exec: Executor, plan: HostPlan, log: Logger): Promise<void> {
  const failures: { step: string; error: string }[] = [];
  let i = 0;
  while (i < plan.length) {
    let j = i + 1;
    if (batchable(plan[i] as HostStep)) while (j < plan.length && batchable(plan[j] as HostStep)) j++;
    if (j - i > 1) {
      // A batch stops at its first failure: the rest of the group runs as a batch of its own.
      const failed = await exec.runIpBatch(
        plan.slice(i, j).map((s) => s.run as IpOp),
        log,
      );
      if (!failed) {
        i = j;
        continue;
      }
      const bad = plan[i + failed.index] as HostStep;
      failures.push({ step: bad.what, error: messageOf(failed.error) });
      log.error({ step: bad.what, err: failed.error }, 'teardown step failed; going on');
      i += failed.index + 1;
      continue;
    }
    const step = plan[i] as HostStep;
    try {
      await exec.run(step.run, log);
    } catch (err) {
      failures.push({ step: step.what, error: messageOf(err) });
      log.error({ step: step.what, err }, 'teardown step failed; going on');
    }
    i = j;
  }
  if (failures.length) throw new HostTeardownError(failures, plan.length);
}

/** Undoes `done` in reverse. Never throws: each failure is logged and returned. */
export async function undoSteps(exec: Executor, done: readonly HostStep[], log: Logger): Promise<string[]> {
  const failures: string[] = [];
  for (const step of [...done].reverse()) {
    if (!step.undo) continue;
    try {
      await exec.run(step.undo, log);
    } catch (err) {
      log.error({ err, undo: renderOp(step.undo) }, 'undo failed');
      failures.push(`${renderOp(step.undo)}: ${messageOf(err)}`);
    }
  }
  return failures;
}

/** Undo ops of a whole plan that has run (e.g. when saving state failed afterwards). */
export const undoPlan = (exec: Executor, plan: HostPlan, log: Logger): Promise<string[]> => undoSteps(exec, plan, log);
