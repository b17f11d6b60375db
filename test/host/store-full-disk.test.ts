/**
 * Issue 14 item 4: a full disk, for real. The state directory is on a 64 KiB tmpfs (mounted by
 * the test, unmounted and removed at the end even on failure); a FileStore takes commits as the
 * orchestrator gives them (commit, apply if it succeeded, compact every few commits) until the
 * disk has been full for a while: the kernel's own short writes and ENOSPC, on the journal and
 * on the snapshot's temp file. Then:
 *  - after every refused commit the journal ends on a whole line (never torn);
 *  - a fresh load works (no STATE_CORRUPT) and holds exactly the acknowledged changes;
 *  - no temp file of a failed snapshot is left holding space;
 *  - once space is freed, commits are accepted and survive a reload.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Change, NetworkRecord, State } from '../../src/driver/state.js';
import { parseNetworkOptions } from '../../src/protocol/options.js';
import { FileStore } from '../../src/store/file-store.js';
import { type StoreFs, nodeStoreFs } from '../../src/store/store-fs.js';
import { PluginError } from '../../src/errors.js';

const log = pino({ level: 'silent' });
const mnt = mkdtempSync(join(tmpdir(), 'mnt-fulldisk-'));
const stateDir = join(mnt, 'state');
const filler = join(mnt, 'filler');
const stores: FileStore[] = [];
let mounted = false;

beforeAll(() => {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'mnt-fulldisk', mnt]);
  mounted = true;
});

afterAll(async () => {
  for (const s of stores.splice(0)) await s.close();
  if (mounted) {
    try {
      execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]); // something still holds it: detach it anyway
    }
  }
  rmdirSync(mnt);
});

/** The real file operations, counting what the disk did to the writes. */
const seen = { short: 0, enospc: 0 };
const countingFs: StoreFs = {
  ...nodeStoreFs,
  writeSync: (fd, b, o, l, p) => {
    try {
      const n = nodeStoreFs.writeSync(fd, b, o, l, p);
      if (n < l) seen.short++;
      return n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') seen.enospc++;
      throw err;
    }
  },
  write: async (fd, b, o, l, p) => {
    try {
      const n = await nodeStoreFs.write(fd, b, o, l, p);
      if (n < l) seen.short++;
      return n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') seen.enospc++;
      throw err;
    }
  },
};

const open = (fs?: StoreFs): FileStore => {
  const s = new FileStore({ dir: stateDir, log, compactEvery: 16, ...(fs ? { fs } : {}) });
  stores.push(s);
  return s;
};
const close = async (s: FileStore): Promise<void> => {
  await s.close();
  stores.splice(stores.indexOf(s), 1);
};

const hex = (n: number): string => n.toString(16).padStart(8, '0').repeat(8);
const network = (n: number): NetworkRecord => ({
  id: hex(n),
  bridge: `mn-${hex(n).slice(0, 12)}`,
  options: parseNetworkOptions({}),
  ipv4: [{ pool: `10.${n >> 8}.${n & 255}.0/24`, gateway: `10.${n >> 8}.${n & 255}.1/24` }],
  ipv6: [],
  createdAt: '2026-12-02T00:00:00.000Z',
});

/** Commits as the orchestrator does; returns whether it was acknowledged. */
async function commit(s: FileStore, state: State, changes: Change[]): Promise<boolean> {
  try {
    await s.commit(changes, state);
  } catch (err) {
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).message).toContain(stateDir);
    return false;
  }
  state.apply(changes);
  await s.maybeCompact(state).catch((err: unknown) => expect((err as Error).message).toMatch(/ENOSPC/));
  return true;
}

const journalIsWhole = (): boolean => {
  const text = readFileSync(join(stateDir, 'journal.jsonl'), 'utf8');
  return text === '' || text.endsWith('\n');
};

describe('state on a full disk (64 KiB tmpfs)', () => {
  it('keeps every acknowledged change, none of the refused ones, never tears the journal, and accepts changes again once space is freed', async () => {
    writeFileSync(filler, Buffer.alloc(40 * 1024, 1)); // freed at the end: "the operator made room"
    const s = open(countingFs);
    const state = await s.load();
    const expected = new Set<string>();
    let refused = 0;
    let acked = 0;
    let n = 0;
    for (let attempt = 0; attempt < 3000 && refused < 40; attempt++) {
      // Change sets of different sizes (1-4 networks, sometimes a delete) so lines end at
      // every offset of a page and the kernel writes some of them only in part.
      const changes: Change[] = [];
      const puts: string[] = [];
      for (let k = 0; k <= attempt % 4; k++) {
        const net = network(++n);
        changes.push({ op: 'network.put', network: net });
        puts.push(net.id);
      }
      const victim = attempt % 5 === 0 ? [...expected][0] : undefined;
      if (victim) changes.push({ op: 'network.delete', id: victim });
      if (await commit(s, state, changes)) {
        acked++;
        for (const id of puts) expected.add(id);
        if (victim) expected.delete(victim);
      } else {
        refused++;
        expect(journalIsWhole(), `journal torn after refused commit ${attempt}`).toBe(true);
      }
      expect([...state.networks.keys()].sort()).toEqual([...expected].sort());
    }
    expect(refused, 'the disk filled up').toBe(40);
    expect(acked).toBeGreaterThan(10);
    expect(seen.enospc).toBeGreaterThan(0);
    expect(existsSync(join(stateDir, 'state.json.tmp')), 'no failed snapshot temp file left').toBe(false);
    await close(s);
    console.log(
      `full disk: ${acked} commits acknowledged, ${refused} refused, ${seen.short} short writes and ${seen.enospc} ENOSPC from the kernel`,
    );

    // A restart: loads cleanly and holds exactly what was acknowledged.
    const r = open();
    const loaded = await r.load();
    expect([...loaded.networks.keys()].sort()).toEqual([...expected].sort());

    // Space is freed: commits are accepted again, compaction works, all of it survives a reload.
    rmSync(filler);
    for (let k = 0; k < 10; k++) {
      const net = network(++n);
      expect(await commit(r, loaded, [{ op: 'network.put', network: net }]), `commit ${k} after space was freed`).toBe(true);
      expected.add(net.id);
    }
    await r.compact(loaded);
    await close(r);
    const again = await open().load();
    expect([...again.networks.keys()].sort()).toEqual([...expected].sort());
  });
});
