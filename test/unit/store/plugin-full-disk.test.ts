/**
 * Issue 14 item 4, through the orchestrator: a request whose change cannot be saved (the disk
 * failed a sync, then a snapshot cannot be written) gets an error naming the journal, its host
 * changes are undone, the in-memory state never holds it, and once the disk works the next
 * request is accepted; a restart finds exactly the acknowledged networks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { CreateNetworkRequest } from '../../../src/driver/network.js';
import { FileStore } from '../../../src/store/file-store.js';
import { hexId, silentLog } from '../support.js';
import { FaultyFs } from './faulty-fs.js';
import { testPlugin } from '../../helpers/test-plugin.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'mnt-'));
});
afterEach(() => rm(tmp, { recursive: true, force: true }));

const net = (n: number): CreateNetworkRequest => ({
  NetworkID: hexId(n),
  Options: { 'com.docker.network.generic': {} },
  IPv4Data: [{ Pool: `10.${n}.0.0/24`, Gateway: `10.${n}.0.1/24` }],
  IPv6Data: [],
});
const bridge = (n: number): string => `mn-${hexId(n, 12)}`;

it('refused changes are undone on the host and never applied; acknowledged ones survive a restart', async () => {
  const fs = new FaultyFs();
  const dir = join(tmp, 'state');
  const store = new FileStore({ dir, log: silentLog, fs });
  const state = await store.load();
  const { plugin, exec } = testPlugin({ state, store, now: () => new Date('2026-12-02T00:00:00Z') });
  /** The bridge was made, then deleted again (not only the "remove leftover" step before it). */
  const undone = (n: number): boolean => {
    const made = exec.lines.findIndex((l) => l.startsWith(`ip link add name ${bridge(n)} `));
    return made >= 0 && exec.lines.map((l) => l.startsWith(`ip link del ${bridge(n)} `)).lastIndexOf(true) > made;
  };

  await plugin.createNetwork(net(1), silentLog);

  fs.fail('fdatasyncSync', 'EIO');
  await expect(plugin.createNetwork(net(2), silentLog)).rejects.toThrow(
    /^state journal .*journal\.jsonl not synced: EIO.*mynet refuses changes until a snapshot is written/,
  );
  expect(undone(2)).toBe(true);
  expect(state.networks.has(hexId(2))).toBe(false);

  fs.fail('write', 'ENOSPC');
  await expect(plugin.createNetwork(net(3), silentLog)).rejects.toThrow(/not synced: EIO.*writing a snapshot failed: .*ENOSPC/);
  expect(undone(3)).toBe(true);
  expect(state.networks.has(hexId(3))).toBe(false);

  await plugin.createNetwork(net(4), silentLog);
  expect(fs.pending()).toEqual([]);
  expect([...state.networks.keys()].sort()).toEqual([hexId(1), hexId(4)]);
  await store.close();

  const again = new FileStore({ dir, log: silentLog });
  expect([...(await again.load()).networks.keys()].sort()).toEqual([hexId(1), hexId(4)]);
  await again.close();
});
