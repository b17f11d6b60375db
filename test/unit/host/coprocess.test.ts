/**
 * The long-running ip and nft processes (host/coprocess.ts) against stand-ins written in sh, so
 * no root is needed: every group gets its own process's answer (never one of a process killed
 * before it), a timeout fails the group that timed out, and a tool whose marker answer is not
 * what the parser expects is found at the first start instead of costing a timeout per command.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { add, elementObj } from '../../../src/plan/nft-change.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HostCommandError } from '../../../src/errors.js';
import { Coprocess, CoprocessUnusable } from '../../../src/host/coprocess.js';
import { ExecaExecutor } from '../../../src/host/execa-executor.js';

let dir = '';

/**
 * A stand-in for `ip -o -batch -`: lines "fail ..." fail as ip does (the process exits, naming
 * the line counted from its first), "waitlate" waits until the late answer below was sent, any
 * other line is recorded in $1/ran. The first marker (`link show dev lo`) after $1/stall was
 * made hangs the process; with $2, a child left behind prints that marker's answer $2 s later.
 */
const IP = `n=0
while IFS= read -r line; do
  n=$((n + 1))
  case "$line" in
    'link show dev lo')
      if [ -e "$1/stall" ] && mkdir "$1/stalled" 2>/dev/null; then
        if [ -n "$2" ]; then (sleep "$2"; echo '1: lo: late answer'; touch "$1/late-sent") & fi
        exec sleep 30
      fi
      echo '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536' ;;
    fail*) echo "RTNETLINK answers: $line" >&2; echo "Command failed -:$n" >&2; exit 1 ;;
    waitlate) while [ ! -e "$1/late-sent" ]; do sleep 0.05; done ;;
    die) echo gone >&2; exit 3 ;;
    *) echo "$line" >> "$1/ran" ;;
  esac
done
`;

/**
 * A stand-in for `nft -i`: a line with "fail" gets an error as nft writes it, any other line is
 * recorded in $1/ran. The marker's error is nft 1.0.6's ("Error: ...", the word, a caret line),
 * or with $2 = odd a format the parser does not know (location prefix, no echo). The first marker
 * after $1/stall was made hangs the process.
 */
const NFT = `while IFS= read -r line; do
  case "$line" in
    mnmark*)
      if [ -e "$1/stall" ] && mkdir "$1/stalled" 2>/dev/null; then exec sleep 30; fi
      if [ "$2" = odd ]; then printf '<cmdline>:1:1-%d: Error: syntax error, unexpected string\\n' "\${#line}" >&2
      else printf 'Error: syntax error, unexpected newline, expecting string\\n%s\\n       ^\\n' "$line" >&2; fi ;;
    *fail*) printf 'Error: Could not process rule: No such file or directory\\n%s\\n^^^^\\n' "$line" >&2 ;;
    *) echo "$line" >> "$1/ran" ;;
  esac
done
`;

/**
 * `ip` and `nft` found first on PATH by the executor: their long-running forms answer the
 * marker in a shape the coprocess does not know; their one-shot forms record stdin in $MNT_STANDIN/one-shot.
 */
const BIN_NFT = `#!/bin/sh
if [ "$1" = -i ]; then exec sh "$MNT_STANDIN/nft.sh" "$MNT_STANDIN" odd; fi
cat >> "$MNT_STANDIN/one-shot"
`;
const BIN_IP = `#!/bin/sh
if [ "$1" = -o ]; then
  while IFS= read -r line; do echo '[{"ifindex":1,"ifname":"lo"}]'; done
  exit 0
fi
cat >> "$MNT_STANDIN/one-shot"
`;

const lines = async (f: string): Promise<string[]> => (await readFile(join(dir, f), 'utf8').catch(() => '')).split('\n').filter(Boolean);
const ran = (): Promise<string[]> => lines('ran');
const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );
const ipStandIn = (...extra: string[]): Coprocess => new Coprocess('ip', ['sh', join(dir, 'ip.sh'), dir, ...extra], 800);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mnt-coproc-'));
  await writeFile(join(dir, 'ip.sh'), IP);
  await writeFile(join(dir, 'nft.sh'), NFT);
  await mkdir(join(dir, 'bin'));
  await writeFile(join(dir, 'bin', 'nft'), BIN_NFT);
  await writeFile(join(dir, 'bin', 'ip'), BIN_IP);
  await chmod(join(dir, 'bin', 'nft'), 0o755);
  await chmod(join(dir, 'bin', 'ip'), 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  for (const f of ['stall', 'stalled', 'late-sent', 'ran', 'one-shot']) await rm(join(dir, f), { recursive: true, force: true });
});

describe('ip coprocess after a timeout (issue 14.6)', () => {
  it('the group that timed out fails "timed out"; the next groups get their own results, not the killed process\'s exit', async () => {
    const co = ipStandIn();
    try {
      expect(await co.run(['add a'])).toEqual({});
      await writeFile(join(dir, 'stall'), '');
      const started = performance.now();
      const err = await co.run(['add b']).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HostCommandError);
      expect((err as HostCommandError).message).toMatch(/^sh .*ip\.sh .*: timed out$/);
      expect(performance.now() - started).toBeLessThan(3000);
      // A group that ran is done (it must not be rolled back for the killed process's exit) ...
      expect(await co.run(['add c'])).toEqual({});
      // ... and a failing one fails at its own line.
      expect(await co.run(['add d', 'fail e', 'add f'])).toEqual({ failed: { index: 1, stderr: 'RTNETLINK answers: fail e' } });
      expect(await co.run(['add g'])).toEqual({});
      expect(await ran()).toEqual(['add a', 'add b', 'add c', 'add d', 'add g']);
    } finally {
      co.close();
    }
  });

  it('groups queued behind one that times out each get their own result: the done one done, the failing one failed', async () => {
    const co = ipStandIn();
    try {
      expect(await co.run(['add a'])).toEqual({});
      await writeFile(join(dir, 'stall'), '');
      const show = (p: Promise<unknown>): Promise<unknown> =>
        p.then(
          (r) => r,
          (e: unknown) => String(e),
        );
      // Queued back to back, as the plugin's groups are.
      const [stalled, done, failing] = await Promise.all([show(co.run(['add b'])), show(co.run(['add c'])), show(co.run(['fail d']))]);
      expect(stalled).toMatch(/: timed out$/);
      expect(done).toEqual({});
      expect(failing).toEqual({ failed: { index: 0, stderr: 'RTNETLINK answers: fail d' } });
    } finally {
      co.close();
    }
  });

  it("a killed process's late answer is not taken for the next group's: a failed group is never reported done", async () => {
    const co = ipStandIn('1.2');
    try {
      expect(await co.run(['add a'])).toEqual({});
      await writeFile(join(dir, 'stall'), '');
      await expect(co.run(['add b'])).rejects.toThrow(/timed out/);
      // The next group waits in its new process until the killed one's late "1: lo:" was sent.
      expect(await co.run(['waitlate', 'fail c'])).toEqual({ failed: { index: 1, stderr: 'RTNETLINK answers: fail c' } });
      expect(await exists(join(dir, 'late-sent'))).toBe(true);
      expect(await co.run(['add d'])).toEqual({});
    } finally {
      co.close();
    }
  });
});

describe('ip coprocess', () => {
  it('a process that stalls at start fails the group "timed out" (nothing of it sent); the next group probes again and runs', async () => {
    const co = ipStandIn();
    try {
      await writeFile(join(dir, 'stall'), '');
      await expect(co.run(['add a'])).rejects.toThrow(/: timed out$/);
      expect(await co.run(['add b'])).toEqual({});
      expect(await ran()).toEqual(['add b']);
      expect(co.spawns).toBe(2);
    } finally {
      co.close();
    }
  });

  it('a process that exits in a group fails it with its words; the next group gets a new process', async () => {
    const co = ipStandIn();
    try {
      expect(await co.run(['add a'])).toEqual({});
      const err = await co.run(['add b', 'die']).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HostCommandError);
      expect((err as HostCommandError).message).toMatch(/ip\.sh .*: gone$/);
      expect(await co.run(['add c'])).toEqual({});
      expect(co.spawns).toBe(2);
    } finally {
      co.close();
    }
  });

  it('a tool that answers the start-up marker with something else is unusable at once, and stays so; nothing of a group is sent', async () => {
    const co = new Coprocess('ip', ['sh', '-c', 'while read -r l; do echo "lo: UP"; done'], 10_000);
    const started = performance.now();
    const err = await co.run(['link add mnt-x type dummy']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CoprocessUnusable);
    expect((err as Error).message).toMatch(/answered the marker with "lo: UP"/);
    expect(performance.now() - started).toBeLessThan(5000);
    await expect(co.run(['link add mnt-y type dummy'])).rejects.toBeInstanceOf(CoprocessUnusable);
    expect(co.spawns).toBe(1);
  });

  it('a tool that exits at the start-up marker is unusable, naming its words', async () => {
    const co = new Coprocess('ip', ['sh', '-c', 'echo "Option -batch is unknown" >&2; exit 255'], 10_000);
    await expect(co.run(['link add mnt-x type dummy'])).rejects.toThrow(/exited at the marker: Option -batch is unknown/);
  });
});

describe('nft coprocess', () => {
  it("a failing line is that group's failure with nft's words; the process goes on", async () => {
    const co = new Coprocess('nft', ['sh', join(dir, 'nft.sh'), dir], 5000);
    try {
      expect(await co.run(['add element inet t s { 10.0.0.1 }'])).toEqual({});
      expect(await co.run(['add element inet t fail { 10.0.0.2 }'])).toEqual({
        failed: {
          index: 0,
          stderr: 'Error: Could not process rule: No such file or directory\nadd element inet t fail { 10.0.0.2 }\n^^^^',
        },
      });
      expect(await co.run(['add element inet t s { 10.0.0.3 }'])).toEqual({});
      expect(await ran()).toEqual(['add element inet t s { 10.0.0.1 }', 'add element inet t s { 10.0.0.3 }']);
      expect(co.spawns).toBe(1);
    } finally {
      co.close();
    }
  });

  it("after a timeout, the next line gets its own result, not the killed process's exit", async () => {
    const co = new Coprocess('nft', ['sh', join(dir, 'nft.sh'), dir], 800);
    try {
      expect(await co.run(['add element inet t s { 10.0.0.1 }'])).toEqual({});
      await writeFile(join(dir, 'stall'), '');
      await expect(co.run(['add element inet t s { 10.0.0.2 }'])).rejects.toThrow(/^sh .*nft\.sh .*: timed out$/);
      expect(await co.run(['add element inet t s { 10.0.0.3 }'])).toEqual({});
      expect((await co.run(['add element inet t fail { 10.0.0.4 }'])).failed?.stderr).toMatch(/^Error: Could not process rule/);
      expect(await ran()).toEqual([
        'add element inet t s { 10.0.0.1 }',
        'add element inet t s { 10.0.0.2 }',
        'add element inet t s { 10.0.0.3 }',
      ]);
      expect(co.spawns).toBe(2);
    } finally {
      co.close();
    }
  });

  it('an nft whose error format the parser does not know is found at the first marker, not after a timeout per command (issue 15.5)', async () => {
    const co = new Coprocess('nft', ['sh', join(dir, 'nft.sh'), dir, 'odd'], 10_000);
    const started = performance.now();
    const err = await co.run(['add element inet t s { 10.0.0.1 }']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CoprocessUnusable);
    expect((err as Error).message).toMatch(/answered the marker with "<cmdline>:1:1-\d+: Error: syntax error/);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(await ran()).toEqual([]);
  });
});

describe('ExecaExecutor with coprocesses the tools do not answer as expected (issue 15.5)', () => {
  const path = process.env.PATH;
  beforeAll(() => {
    process.env.PATH = `${join(dir, 'bin')}:${path ?? ''}`;
    process.env.MNT_STANDIN = dir;
  });
  afterAll(() => {
    process.env.PATH = path;
    delete process.env.MNT_STANDIN;
  });

  interface Warning {
    readonly tool?: string;
    readonly reason?: string;
  }
  const capture = (): { log: Logger; warnings: Warning[] } => {
    const warnings: Warning[] = [];
    const log: Logger = pino({ level: 'warn' }, { write: (s: string) => void warnings.push(JSON.parse(s) as Warning) });
    return { log, warnings };
  };

  it('nft: warns once and runs every script with nft -f, without waiting for a timeout', async () => {
    const { log, warnings } = capture();
    const exec = new ExecaExecutor({ persistent: true, timeoutMs: 10_000 });
    try {
      const started = performance.now();
      await exec.run({ kind: 'nft', table: 'inet t', commands: [add(elementObj('s', [{ key: '10.0.0.1' }]))] }, log);
      await exec.run({ kind: 'nft', table: 'inet t', commands: [add(elementObj('s', [{ key: '10.0.0.2' }]))] }, log);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(await lines('one-shot')).toEqual(['add element inet t s { 10.0.0.1 }', 'add element inet t s { 10.0.0.2 }']);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.tool).toBe('nft');
      expect(warnings[0]?.reason).toMatch(/^nft -i: answered the marker with "<cmdline>/);
      expect(exec.spawns).toBe(3); // the coprocess, once; then one nft -f per script
    } finally {
      exec.close();
    }
  });

  it('ip: warns once and runs every group with ip -batch, without waiting for a timeout', async () => {
    const { log, warnings } = capture();
    const exec = new ExecaExecutor({ persistent: true, timeoutMs: 10_000 });
    try {
      const started = performance.now();
      expect(
        await exec.runIpBatch(
          [
            { kind: 'ip', args: ['link', 'add', 'mnt-a', 'type', 'dummy'] },
            { kind: 'ip', args: ['link', 'set', 'dev', 'mnt-a', 'up'] },
          ],
          log,
        ),
      ).toBeUndefined();
      await exec.run({ kind: 'ip', args: ['link', 'set', 'dev', 'mnt-a', 'alias', 'a b'] }, log);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(await lines('one-shot')).toEqual(['link add mnt-a type dummy', 'link set dev mnt-a up', 'link set dev mnt-a alias "a b"']);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.tool).toBe('ip');
      expect(warnings[0]?.reason).toMatch(/^ip -o -batch -: answered the marker with "\[\{/);
      expect(exec.spawns).toBe(3);
    } finally {
      exec.close();
    }
  });
});
