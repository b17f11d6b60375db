/**
 * Issue 14 item 9, last line of defence: `ip -batch` has no escapes and cuts a line at `#` even
 * inside quotes, so an argument it cannot carry is refused (IpBatchArgError naming it) and
 * nothing is written to ip. A stand-in `ip` on PATH records every start and its input.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecaExecutor, IpBatchArgError, batchLine } from '../../../src/host/execa-executor.js';
import { silentLog } from '../support.js';

let dir: string;
let path: string | undefined;
const record = (): string => join(dir, 'ip-input');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mnt-ipbatch-'));
  writeFileSync(join(dir, 'ip'), `#!/bin/sh\necho "ip $*" >> "${join(dir, 'ip-input')}"\ncat >> "${join(dir, 'ip-input')}"\n`);
  chmodSync(join(dir, 'ip'), 0o755);
  path = process.env.PATH;
  process.env.PATH = `${dir}${delimiter}${path ?? ''}`;
});
afterAll(() => {
  process.env.PATH = path;
  rmSync(dir, { recursive: true, force: true });
});

const ALIAS = ['link', 'set', 'dev', 'mnh0', 'alias', 'x#y'];

describe('ip -batch arguments', () => {
  it.each(['x#y', '"x#y"', 'a"b', "a'b", 'a\\b', 'a\tb', 'a\u00a0b', 'a\nb', 'a\u0000b', ''])(
    '%j is refused, naming the argument',
    (arg) => {
      expect(() => batchLine(['link', 'set', 'dev', 'mnh0', 'alias', arg])).toThrow(IpBatchArgError);
      expect(() => batchLine(['link', 'set', 'dev', 'mnh0', 'alias', arg])).toThrow(`argument ${JSON.stringify(arg)}`);
    },
  );

  it("plain words pass unquoted; a word with plain spaces (mynet's own alias) is double-quoted, as ip reads it whole", () => {
    expect(batchLine(['link', 'set', 'dev', 'mnh0', 'alias', 'mynet:net=ab12,ep=cd34', 'mtu', '1400'])).toBe(
      'link set dev mnh0 alias mynet:net=ab12,ep=cd34 mtu 1400',
    );
    expect(batchLine(['link', 'set', 'dev', 'mn-ab12', 'alias', 'mynet net:ab12'])).toBe('link set dev mn-ab12 alias "mynet net:ab12"');
  });

  it('a batch with a # argument runs the ops before it, then stops there; nothing of it reaches ip', async () => {
    rmSync(record(), { force: true });
    const exec = new ExecaExecutor();
    const failed = await exec.runIpBatch(
      [
        { kind: 'ip', args: ['link', 'show'] },
        { kind: 'ip', args: ALIAS },
        { kind: 'ip', args: ['link', 'show', 'lo'] },
      ],
      silentLog,
    );
    expect(failed?.index).toBe(1);
    expect(failed?.error).toBeInstanceOf(IpBatchArgError);
    expect(readFileSync(record(), 'utf8')).toBe('ip -batch -\nlink show\n');
  });

  it('persistent: a single op, or a batch led by one, with a # argument is refused before any ip starts', async () => {
    rmSync(record(), { force: true });
    const exec = new ExecaExecutor({ persistent: true });
    await expect(exec.run({ kind: 'ip', args: ALIAS }, silentLog)).rejects.toBeInstanceOf(IpBatchArgError);
    expect(
      await exec.runIpBatch(
        [
          { kind: 'ip', args: ALIAS },
          { kind: 'ip', args: ['link', 'show', 'lo'] },
        ],
        silentLog,
      ),
    ).toMatchObject({ index: 0 });
    exec.close();
    expect(exec.spawns).toBe(0);
    expect(existsSync(record())).toBe(false);
  });
});
