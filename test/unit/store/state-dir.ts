/**
 * The store tests' shared set-up: a fresh state directory under a `mnt-` temp dir for every test,
 * FileStores opened on it that are closed (and the dir removed) after the test, and a plain
 * network record. Call `stateDir()` once at the top of a test file: it registers the hooks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import type { NetworkRecord } from '../../../src/driver/state.js';
import { parseNetworkOptions } from '../../../src/protocol/options.js';
import { FileStore, type FileStoreOptions } from '../../../src/store/file-store.js';
import { hexId, silentLog } from '../support.js';

export interface StateDir {
  /** This test's state directory (not made yet: the store makes it). */
  readonly dir: () => string;
  /** A FileStore on it, closed after the test. */
  readonly store: (o?: Omit<FileStoreOptions, 'dir' | 'log'>) => FileStore;
}

export function stateDir(): StateDir {
  let tmp = '';
  let dir = '';
  const opened: FileStore[] = [];
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'mnt-'));
    dir = join(tmp, 'state');
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await rm(tmp, { recursive: true, force: true });
  });
  return {
    dir: () => dir,
    store: (o = {}) => {
      const s = new FileStore({ ...o, dir, log: silentLog });
      opened.push(s);
      return s;
    },
  };
}

/** Network `n`: bridge mn-<id>, pool 10.n.0.0/24, default options. */
export const networkRecord = (n: number): NetworkRecord => ({
  id: hexId(n),
  bridge: `mn-${hexId(n, 12)}`,
  options: parseNetworkOptions({}),
  ipv4: [{ pool: `10.${n}.0.0/24`, gateway: `10.${n}.0.1/24` }],
  ipv6: [],
  createdAt: '2024-06-11T10:00:00.000Z',
});
