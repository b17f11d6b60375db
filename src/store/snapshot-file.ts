/**
 * Writes `state.json` atomically: a temp file beside it, written whole (writes may be short on
 * a full disk), fsynced, renamed over the old one, then the directory fsynced so the rename
 * itself is durable. On any failure before the rename the temp file is removed: on a full disk
 * a partial temp file would otherwise keep holding the space the next try (or the journal)
 * needs. The old snapshot stays as it was until the rename.
 */
import { constants } from 'node:fs';
import { dirname } from 'node:path';
import { PluginError, messageOf } from '../errors.js';
import type { StoreFs } from './store-fs.js';

export async function writeSnapshotFile(fs: StoreFs, path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  let fd: number | undefined;
  try {
    fd = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    let done = 0;
    while (done < data.length) {
      const n = await fs.write(fd, data, done, data.length - done, done);
      if (n <= 0) throw new Error(`write stored nothing after ${done} of ${data.length} bytes`);
      done += n;
    }
    await fs.fsync(fd);
    const closing = fd;
    fd = undefined;
    await fs.close(closing);
    await fs.rename(tmp, path);
  } catch (err) {
    const cleanup = await removeTemp(fs, tmp, fd);
    throw new PluginError(
      'STATE_IO',
      `state file ${path}: cannot be written: ${messageOf(err)}${cleanup}; the previous snapshot is unchanged`,
      { cause: err },
    );
  }
  try {
    fsyncDir(fs, dirname(path));
  } catch (err) {
    throw new PluginError('STATE_IO', `state file ${path}: renamed into place but its directory could not be synced: ${messageOf(err)}`, {
      cause: err,
    });
  }
}

/** Closes and removes a failed temp file; returns what could not be done, for the error message. */
async function removeTemp(fs: StoreFs, tmp: string, fd: number | undefined): Promise<string> {
  const problems: string[] = [];
  if (fd !== undefined) await fs.close(fd).catch((e: unknown) => problems.push(`closing ${tmp}: ${messageOf(e)}`));
  await fs.unlink(tmp).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`removing ${tmp}: ${messageOf(e)}`);
  });
  return problems.length ? ` (and ${problems.join('; ')})` : '';
}

/** A rename is durable only once the directory entry is on disk. */
function fsyncDir(fs: StoreFs, dir: string): void {
  const fd = fs.openSync(dir, constants.O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
