import { describe, expect, it } from 'vitest';
import { HostCommandError, HostPlanError, HostTeardownError } from '../../../src/errors.js';
import { add, del, destroy, tableObj } from '../../../src/plan/nft-change.js';
import { nftOp } from '../../../src/plan/nft.js';
import { applyAll, applyPlan, undoPlan, undoSteps } from '../../../src/host/executor.js';
import { type HostPlan, type HostStep, renderOp } from '../../../src/plan/step.js';
import { RecordingExecutor } from '../../helpers/recording-executor.js';
import { silentLog } from '../support.js';

/** Step n: `ip link add name lN type dummy`, undone by deleting lN. */
const ipStep = (n: number): HostStep => ({
  what: `make l${n}`,
  run: { kind: 'ip', args: ['link', 'add', 'name', `l${n}`, 'type', 'dummy'] },
  undo: { kind: 'link-del', name: `l${n}` },
});
const ipPlan = (count: number): HostStep[] => Array.from({ length: count }, (_, i) => ipStep(i + 1));

async function planError(p: Promise<unknown>): Promise<HostPlanError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HostPlanError) return err;
    throw err;
  }
  throw new Error('expected a HostPlanError');
}

describe('applyPlan', () => {
  it('runs every step in order; consecutive ip steps go in one batch', async () => {
    const exec = new RecordingExecutor();
    const plan: HostPlan = [
      { what: 'leftover', run: { kind: 'link-del', name: 'l1' } },
      ...ipPlan(3),
      { what: 'hook', run: { kind: 'forward-hook', action: 'ensure' } },
      { what: 'absent ok', run: { kind: 'ip', args: ['link', 'del', 'x'], absentOk: true } },
      ipStep(4),
    ];
    await applyPlan(exec, plan, silentLog);
    expect(exec.ops).toEqual(plan.map((s) => s.run));
    expect(exec.batches).toBe(1); // the three ip steps; a lone ip step or an absentOk one runs alone
    expect(exec.calls.map((c) => c.batched)).toEqual([false, true, true, true, false, false, false]);
  });

  it('an empty plan does nothing', async () => {
    const exec = new RecordingExecutor();
    await applyPlan(exec, [], silentLog);
    expect(exec.calls).toEqual([]);
  });

  for (const failAt of [1, 2, 3, 4]) {
    it(`a failure at step ${failAt} undoes steps ${failAt - 1}..1 in reverse and says "rolled back"`, async () => {
      const exec = new RecordingExecutor({ failAt });
      const plan = ipPlan(4);
      const err = await planError(applyPlan(exec, plan, silentLog));
      const ran = plan.slice(0, failAt).map((s) => s.run);
      const undone = plan
        .slice(0, failAt - 1)
        .reverse()
        .map((s) => s.undo);
      expect(exec.ops).toEqual([...ran, ...undone]);
      expect(err.step).toBe(`make l${failAt}`);
      expect(err.code).toBe('HOST_COMMAND_FAILED');
      expect(err.undoFailures).toEqual([]);
      expect(err.message.startsWith(`make l${failAt}: ip link add name l${failAt} type dummy: RTNETLINK answers`), err.message).toBe(true);
      expect(err.message.endsWith('rolled back')).toBe(true);
      expect(err.cause).toBeInstanceOf(HostCommandError);
    });
  }

  it('a failing single (non-batched) step is rolled back too, across batches', async () => {
    const plan: HostPlan = [
      ...ipPlan(2),
      { what: 'load rules', run: nftOp([add(tableObj())]), undo: nftOp([destroy(tableObj())]) },
      { what: 'hook', run: { kind: 'forward-hook', action: 'ensure' } },
    ];
    const exec = new RecordingExecutor({ failAt: 4 });
    const err = await planError(applyPlan(exec, plan, silentLog));
    expect(err.step).toBe('hook');
    expect(exec.lines.slice(4)).toEqual([
      'nft -f - <<\nadd table inet mynet\ndelete table inet mynet\n>>',
      'ip link del l2  [if ours; absent ok]',
      'ip link del l1  [if ours; absent ok]',
    ]);
    expect(err.message).toMatch(/^hook: iptables-restore -w --noflush: .*; rolled back$/);
  });

  it('steps without an undo are skipped when rolling back', async () => {
    const plan: HostPlan = [ipStep(1), { what: 'mark', run: { kind: 'ip', args: ['link', 'set', 'l1', 'alias', 'x'] } }, ipStep(3)];
    const exec = new RecordingExecutor({ failAt: 3 });
    await planError(applyPlan(exec, plan, silentLog));
    expect(exec.lines.slice(3)).toEqual(['ip link del l1  [if ours; absent ok]']);
  });

  it('a failing undo gives "rollback incomplete" naming it, and the other undos still run', async () => {
    // ops: 1, 2, 3, 4 (fails), undo 3, undo 2 (fails), undo 1
    const exec = new RecordingExecutor({ failAt: [4, 6] });
    const err = await planError(applyPlan(exec, ipPlan(4), silentLog));
    expect(exec.lines.slice(4)).toEqual([
      'ip link del l3  [if ours; absent ok]',
      'ip link del l2  [if ours; absent ok]',
      'ip link del l1  [if ours; absent ok]',
    ]);
    expect(exec.calls.map((c) => c.ok)).toEqual([true, true, true, false, true, false, true]);
    expect(err.undoFailures).toHaveLength(1);
    expect(err.undoFailures[0]).toMatch(/^ip link del l2 {2}\[if ours; absent ok\]: /);
    expect(err.message).toMatch(/^make l4: .*; rollback incomplete: ip link del l2/);
    expect(err.message).not.toMatch(/rolled back$/);
  });
});

describe('applyAll (teardown)', () => {
  const teardown: HostPlan = [
    { what: 'delete veth v1', run: { kind: 'link-del', name: 'v1' } },
    { what: 'set a down', run: { kind: 'ip', args: ['link', 'set', 'dev', 'a', 'down'] } },
    { what: 'set b down', run: { kind: 'ip', args: ['link', 'set', 'dev', 'b', 'down'] } },
    { what: 'set c down', run: { kind: 'ip', args: ['link', 'set', 'dev', 'c', 'down'] } },
    { what: 'remove the firewall', run: { kind: 'nft', table: 'inet x', commands: [del(tableObj())] } },
    { what: 'delete bridge br', run: { kind: 'link-del', name: 'br' } },
  ];

  it('runs every step when none fails', async () => {
    const exec = new RecordingExecutor();
    await applyAll(exec, teardown, silentLog);
    expect(exec.ops).toEqual(teardown.map((s) => s.run));
  });

  it('goes on past failed steps (a lone one and one inside an ip batch), runs the rest, and names each failure', async () => {
    const exec = new RecordingExecutor({ failAt: [1, 3, 5] }); // v1, b (2nd of the batch), the firewall
    const err = await applyAll(exec, teardown, silentLog).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostTeardownError);
    const t = err as HostTeardownError;
    expect(t.failures.map((f) => f.step)).toEqual(['delete veth v1', 'set b down', 'remove the firewall']);
    expect(t.message).toMatch(/^teardown incomplete, 3 of 6 steps failed: delete veth v1: .*; set b down: .*; remove the firewall: /);
    expect(t.code).toBe('HOST_COMMAND_FAILED');
    // Every step ran once, the one after the failed batch member included; nothing was undone.
    expect(exec.ops).toEqual(teardown.map((s) => s.run));
  });
});

describe('undoSteps / undoPlan', () => {
  it('undo a whole plan in reverse, never throwing', async () => {
    const exec = new RecordingExecutor({ failAt: 1 });
    const failures = await undoPlan(exec, ipPlan(3), silentLog);
    expect(exec.lines).toEqual([
      'ip link del l3  [if ours; absent ok]',
      'ip link del l2  [if ours; absent ok]',
      'ip link del l1  [if ours; absent ok]',
    ]);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain(renderOp({ kind: 'link-del', name: 'l3' }));
    expect(await undoSteps(new RecordingExecutor(), [], silentLog)).toEqual([]);
  });
});
