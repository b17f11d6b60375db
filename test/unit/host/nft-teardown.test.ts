/**
 * A teardown's nft script when mynet's table is already gone (`nft delete table inet mynet`,
 * `nft flush ruleset`): nft refuses the whole script ("No such file or directory"), and the
 * executor counts an op with `absentTableOk` as done exactly when the table is really absent. A stand-in
 * `nft` first on PATH plays the kernel: `nft -f -` always fails as nft does on a missing table,
 * and `nft list table` answers from a file the test creates or removes.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HostCommandError } from '../../../src/errors.js';
import { ExecaExecutor } from '../../../src/host/execa-executor.js';
import { nftOp, nftTeardown } from '../../../src/plan/nft.js';
import { chainObj, destroy } from '../../../src/plan/nft-change.js';
import { silentLog as log } from '../../helpers/netns.js';

const NFT = `#!/bin/sh
if [ "$1" = list ]; then
  if [ -e "$MNT_FAKENFT/table" ]; then echo 'table inet mynet {'; echo '}'; exit 0; fi
  echo 'Error: No such file or directory' >&2
  echo "list table $3 $4" >&2
  exit 1
fi
cat > /dev/null
echo 'Error: Could not process rule: No such file or directory' >&2
echo 'add chain inet mynet egress-abababababab' >&2
exit 1
`;

let dir: string;
const path = process.env.PATH;
const change = [destroy(chainObj('egress-abababababab'))];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mnt-nftgone-'));
  await mkdir(join(dir, 'bin'));
  await writeFile(join(dir, 'bin', 'nft'), NFT);
  await chmod(join(dir, 'bin', 'nft'), 0o755);
  process.env.PATH = `${join(dir, 'bin')}:${path ?? ''}`;
  process.env.MNT_FAKENFT = dir;
});
afterAll(async () => {
  process.env.PATH = path;
  delete process.env.MNT_FAKENFT;
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await rm(join(dir, 'table'), { force: true });
});

describe('an nft teardown when the table is gone', () => {
  it('counts as done when the table is absent', async () => {
    await expect(new ExecaExecutor().run(nftTeardown(change), log)).resolves.toBeUndefined();
  });

  it('fails as before when the table is there: the failure is about something else', async () => {
    await writeFile(join(dir, 'table'), '');
    const err = await new ExecaExecutor().run(nftTeardown(change), log).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HostCommandError);
    expect((err as HostCommandError).stderr).toContain('No such file or directory');
  });

  it('a change that is no teardown (no absentTableOk) still fails on a missing table', async () => {
    const err = await new ExecaExecutor().run(nftOp(change), log).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HostCommandError);
  });
});
