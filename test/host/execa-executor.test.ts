/**
 * The real executor's own guarantees: a hung command is killed at the timeout (so a request
 * fails instead of hanging dockerd), and failures carry the command and the kernel's words.
 */
import { pino, type Logger } from 'pino';
import { add, chainObj, tableObj } from '../../src/plan/nft-change.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HostCommandError } from '../../src/errors.js';
import { ExecaExecutor } from '../../src/host/execa-executor.js';
import { createNetns, destroyCreated, silentLog as log } from '../helpers/netns.js';

afterEach(destroyCreated);
afterAll(destroyCreated);

async function expectTimeout(exec: ExecaExecutor): Promise<void> {
  const started = performance.now();
  const err = await exec.command(['sleep', '5'], log).then(
    () => undefined,
    (e: unknown) => e,
  );
  const ms = performance.now() - started;
  expect(err).toBeInstanceOf(HostCommandError);
  expect((err as HostCommandError).code).toBe('HOST_COMMAND_FAILED');
  expect((err as HostCommandError).message).toBe('sleep 5: timed out');
  expect(ms).toBeLessThan(2000);
}

describe('ExecaExecutor', () => {
  it('kills a hung command at the timeout and throws HostCommandError "timed out"', async () => {
    await expectTimeout(new ExecaExecutor({ timeoutMs: 200 }));
  });

  it('kills a hung command inside a namespace too (ip netns exec execs the command in place)', async () => {
    const ns = await createNetns();
    await expectTimeout(new ExecaExecutor({ netns: ns.name, timeoutMs: 200 }));
  });

  it('names the command and the kernel message on failure, and treats a missing link as deleted', async () => {
    const ns = await createNetns();
    const err = await ns.exec.command(['ip', 'link', 'set', 'dev', 'mnt-nosuch', 'up'], log).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HostCommandError);
    expect((err as HostCommandError).message).toMatch(/^ip link set dev mnt-nosuch up: .*(Cannot find device|does not exist)/);
    await expect(ns.exec.run({ kind: 'link-del', name: 'mnt-nosuch' }, log)).resolves.toBeUndefined();
  });

  it("with coprocesses, this host's ip and nft pass the start-up probe: no warning, one process each, a failure still named", async () => {
    const ns = await createNetns();
    const warnings: unknown[] = [];
    const warnLog: Logger = pino({ level: 'warn' }, { write: (s: string) => void warnings.push(JSON.parse(s)) });
    const exec = new ExecaExecutor({ netns: ns.name, persistent: true });
    try {
      await exec.run({ kind: 'nft', table: 'inet mnt_probe', commands: [add(tableObj())] }, warnLog);
      await exec.run({ kind: 'nft', table: 'inet mnt_probe', commands: [add(chainObj('c'))] }, warnLog);
      await expect(exec.run({ kind: 'nft', table: 'inet mnt_nosuch', commands: [add(chainObj('c'))] }, warnLog)).rejects.toThrow(
        /^nft -f -: Error: No such file or directory/,
      );
      expect(await exec.runIpBatch([{ kind: 'ip', args: ['link', 'add', 'mnt-probe', 'type', 'bridge'] }], warnLog)).toBeUndefined();
      expect(await exec.runIpBatch([{ kind: 'ip', args: ['link', 'set', 'dev', 'mnt-probe', 'up'] }], warnLog)).toBeUndefined();
      expect(warnings).toEqual([]);
      expect(exec.spawns).toBe(2);
    } finally {
      exec.close();
    }
  });

  it('refuses to delete a link without our mark', async () => {
    const ns = await createNetns();
    await ns.run(['ip', 'link', 'add', 'name', 'mnt-notours', 'type', 'bridge']);
    await expect(ns.exec.run({ kind: 'link-del', name: 'mnt-notours' }, log)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(ns.run(['ip', 'link', 'show', 'dev', 'mnt-notours'])).resolves.toContain('mnt-notours');
  });
});
