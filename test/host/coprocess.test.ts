/**
 * The long-running ip and nft processes (host/coprocess.ts) with the real tools keep one-shot
 * semantics: an ip group stops at its first failing line and names it, an nft line applies whole
 * or not at all, and the next group starts afresh. The spawn counts also show that this host's
 * ip and nft answer the start-up marker as the parser expects (else they would run one-shot).
 * Timeouts, dead processes and tools that answer otherwise are tested with stand-ins in
 * test/unit/host/coprocess.test.ts.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type NftCommand, type NftObject, add, del, elementObj, setObj, tableObj } from '../../src/plan/nft-change.js';
import type { HostOp } from '../../src/plan/step.js';
import { HostCommandError } from '../../src/errors.js';
import { ExecaExecutor } from '../../src/host/execa-executor.js';
import { createNetns, destroyCreated, silentLog as log } from '../helpers/netns.js';

afterEach(destroyCreated);
afterAll(destroyCreated);

const ip = (...args: string[]) => ({ kind: 'ip' as const, args });
const links = async (ns: { run(a: readonly string[]): Promise<string> }): Promise<string[]> =>
  (JSON.parse(await ns.run(['ip', '-j', 'link', 'show'])) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n !== 'lo')
    .sort();

describe('ip coprocess', () => {
  it('runs groups in one process; a failing line is named, later lines do not run, the next group gets a new process', async () => {
    const ns = await createNetns();
    const before = ns.exec.spawns;
    expect(
      await ns.exec.runIpBatch(
        [
          ip('link', 'add', 'mnt-a', 'type', 'bridge'),
          ip('link', 'set', 'dev', 'mnt-a', 'alias', 'a b'),
          ip('link', 'set', 'dev', 'mnt-a', 'up'),
        ],
        log,
      ),
    ).toBeUndefined();
    expect(await ns.exec.runIpBatch([ip('link', 'add', 'mnt-b', 'type', 'bridge')], log)).toBeUndefined();
    expect(ns.exec.spawns - before).toBe(1);
    const failed = await ns.exec.runIpBatch(
      [
        ip('link', 'add', 'mnt-c', 'type', 'bridge'),
        ip('link', 'add', 'mnt-a', 'type', 'bridge'),
        ip('link', 'add', 'mnt-d', 'type', 'bridge'),
      ],
      log,
    );
    expect(failed?.index).toBe(1);
    expect(String(failed?.error)).toMatch(/ip link add mnt-a type bridge: RTNETLINK answers: File exists/);
    expect(await ns.exec.runIpBatch([ip('link', 'add', 'mnt-d', 'type', 'bridge')], log)).toBeUndefined();
    expect(ns.exec.spawns - before).toBe(2);
    expect(await links(ns)).toEqual(['mnt-a', 'mnt-b', 'mnt-c', 'mnt-d']);
    expect(await ns.run(['ip', '-j', 'link', 'show', 'dev', 'mnt-a'])).toContain('"ifalias":"a b"');
  });

  it('a link deleted and made again behind its back is found (ip caches ifindexes): the rest of the group reruns in a fresh process', async () => {
    const ns = await createNetns();
    await ns.exec.runIpBatch([ip('link', 'add', 'mnt-br', 'type', 'bridge'), ip('link', 'set', 'dev', 'mnt-br', 'up')], log);
    await ns.run(['ip', 'link', 'del', 'mnt-br']);
    await ns.run(['ip', 'link', 'add', 'mnt-br', 'type', 'bridge']);
    expect(
      await ns.exec.runIpBatch(
        [
          ip('link', 'add', 'mnt-v', 'master', 'mnt-br', 'type', 'veth', 'peer', 'name', 'mnt-p'),
          ip('link', 'set', 'dev', 'mnt-br', 'alias', 'again'),
        ],
        log,
      ),
    ).toBeUndefined();
    expect(await ns.run(['ip', '-j', 'link', 'show', 'dev', 'mnt-v'])).toContain('"master":"mnt-br"');
  });

  it('an argument ip rejects outright ends the process: the group fails with its words, the next one works', async () => {
    const ns = await createNetns();
    await expect(ns.exec.run(ip('link', 'set', 'dev', 'lo', 'mtu', 'banana'), log)).rejects.toThrow(/mtu/);
    await expect(ns.exec.run(ip('link', 'add', 'mnt-e', 'type', 'bridge'), log)).resolves.toBeUndefined();
    expect(await links(ns)).toEqual(['mnt-e']);
  });
});

describe('nft coprocess', () => {
  it('changes go to one nft process, one line each; a failing change applies nothing of itself', async () => {
    const ns = await createNetns();
    const before = ns.exec.spawns;
    const t = (...commands: NftCommand[]): HostOp => ({ kind: 'nft', table: 'inet mnt_co', commands });
    const s = { name: 's', kind: 'set', type: 'ipv4_addr', interval: false } as const;
    const el = (key: string): NftObject => elementObj('s', [{ key }]);
    await ns.exec.run(t(add(tableObj()), add(setObj(s))), log);
    await ns.exec.run(t(add(el('10.0.0.1'))), log);
    const err = await ns.exec.run(t(add(el('10.0.0.2')), add(elementObj('nosuch', [{ key: '10.0.0.3' }]))), log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostCommandError);
    expect(String(err)).toMatch(/nft -f -: Error: No such file or directory/);
    await ns.exec.run(t(add(el('10.0.0.4')), del(el('10.0.0.1'))), log);
    // One coprocess for every change.
    expect(ns.exec.spawns - before).toBe(1);
    expect(await ns.run(['nft', 'list', 'set', 'inet', 'mnt_co', 's'])).toMatch(/elements = \{ 10\.0\.0\.4 \}/);
  });
});

describe('bridge coprocess', () => {
  const bridge = (...args: string[]) => ({ kind: 'bridge' as const, args });
  it('VXLAN forwarding entries go to one bridge process; a failure is named; a device made again is found', async () => {
    const ns = await createNetns();
    await ns.run(['ip', 'link', 'add', 'mnt-vx', 'type', 'vxlan', 'id', '5000', 'dstport', '4789', 'nolearning']);
    const before = ns.exec.spawns;
    for (let i = 0; i < 20; i++)
      await ns.exec.run(
        bridge(
          'fdb',
          'replace',
          `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`,
          'dev',
          'mnt-vx',
          'dst',
          '198.18.0.9',
          'self',
          'permanent',
        ),
        log,
      );
    expect(ns.exec.spawns - before).toBe(1);
    expect((await ns.run(['bridge', 'fdb', 'show', 'dev', 'mnt-vx'])).match(/dst 198\.18\.0\.9/g)).toHaveLength(20);
    // A refused command fails with the tool's words; the next one still runs on the same process.
    const err = await ns.exec
      .run(bridge('fdb', 'replace', 'not-a-mac', 'dev', 'mnt-vx', 'dst', '198.18.0.9', 'self', 'permanent'), log)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostCommandError);
    expect(String(err)).toMatch(/bridge fdb replace not-a-mac/);
    // An absent entry's delete is fine when absentOk says so; else it fails.
    await ns.exec.run({ ...bridge('fdb', 'del', '02:00:00:00:99:99', 'dev', 'mnt-vx', 'self'), absentOk: true }, log);
    await expect(ns.exec.run(bridge('fdb', 'del', '02:00:00:00:99:99', 'dev', 'mnt-vx', 'self'), log)).rejects.toThrow(
      /No such file or directory/,
    );
    // The device deleted and made again behind the process's back.
    await ns.run(['ip', 'link', 'del', 'mnt-vx']);
    await ns.run(['ip', 'link', 'add', 'mnt-vx', 'type', 'vxlan', 'id', '5000', 'dstport', '4789', 'nolearning']);
    await ns.exec.run(bridge('fdb', 'replace', '02:00:00:00:01:01', 'dev', 'mnt-vx', 'dst', '198.18.0.8', 'self', 'permanent'), log);
    expect(await ns.run(['bridge', 'fdb', 'show', 'dev', 'mnt-vx'])).toContain('02:00:00:00:01:01 dst 198.18.0.8');
  });
});

describe('ExecaExecutor without persistent', () => {
  it('spawns a process per group, as before', async () => {
    const ns = await createNetns();
    const exec = new ExecaExecutor({ netns: ns.name });
    expect(await exec.runIpBatch([ip('link', 'add', 'mnt-f', 'type', 'bridge')], log)).toBeUndefined();
    expect(await exec.runIpBatch([ip('link', 'set', 'dev', 'mnt-f', 'up')], log)).toBeUndefined();
    expect(exec.spawns).toBe(2);
  });
});
