/**
 * Issue 14 item 4: a full or failing disk. Every path of the journal append and of the snapshot
 * write, with the file operations failing as a disk does (short writes, ENOSPC, EIO from
 * fdatasync): an acknowledged change is never lost, a refused one never appears, the journal
 * is never torn, and a sequence number is never given twice.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { PluginError } from '../../../src/errors.js';
import type { Change, State } from '../../../src/driver/state.js';
import { FileStore } from '../../../src/store/file-store.js';
import { hexId } from '../support.js';
import { FaultyFs } from './faulty-fs.js';
import { networkRecord, stateDir } from './state-dir.js';

const sd = stateDir();
const store = (fs?: FaultyFs, compactEvery?: number): FileStore =>
  sd.store({ ...(fs ? { fs } : {}), ...(compactEvery ? { compactEvery } : {}) });
const put = (n: number): Change[] => [{ op: 'network.put', network: networkRecord(n) }];

/** As the orchestrator does: commit, then apply only if the commit succeeded, then maybe compact. */
async function commit(s: FileStore, state: State, changes: Change[]): Promise<PluginError | undefined> {
  try {
    await s.commit(changes, state);
  } catch (err) {
    if (err instanceof PluginError) return err;
    throw err;
  }
  state.apply(changes);
  await s.maybeCompact(state).catch(() => undefined); // the orchestrator logs it; the journal keeps the change
  return undefined;
}

const ids = (s: State): string[] => [...s.networks.keys()].sort();
const journalSeqs = async (s: FileStore): Promise<number[]> =>
  (await readFile(s.journalPath, 'utf8'))
    .split('\n')
    .filter((l) => l)
    .map((l) => (JSON.parse(l) as { seq: number }).seq);

/** Closes, and loads the directory again with the real file operations (a restart). */
async function reload(s: FileStore): Promise<State> {
  await s.close();
  return store().load();
}

describe('journal append on a full or failing disk', () => {
  it('short writes are continued until the whole line is written', async () => {
    const fs = new FaultyFs().fail('writeSync', { short: 1 }, { short: 7 }, { short: 30 });
    const a = store(fs);
    const state = await a.load();
    expect(await commit(a, state, put(1))).toBeUndefined();
    expect(fs.pending()).toEqual([]);
    expect(fs.calls.filter((c) => c === 'writeSync').length).toBeGreaterThanOrEqual(4);
    expect(ids(await reload(a))).toEqual([hexId(1)]);
  });

  it('ENOSPC after a partial write: the line is cut back, the commit fails naming the file, the next one is saved', async () => {
    const fs = new FaultyFs();
    const a = store(fs);
    const state = await a.load();
    expect(await commit(a, state, put(1))).toBeUndefined();
    const before = await readFile(a.journalPath);
    fs.fail('writeSync', { short: 20 }, 'ENOSPC');
    const e = await commit(a, state, put(2));
    expect(e?.code).toBe('STATE_IO');
    expect(e?.message).toContain(a.journalPath);
    expect(e?.message).toMatch(/cannot be written: ENOSPC.*not saved/);
    expect(fs.pending()).toEqual([]);
    expect(await readFile(a.journalPath)).toEqual(before);
    expect(state.seq).toBe(1);
    // Space is back: accepted again at once (the journal was never untrusted).
    expect(await commit(a, state, put(3))).toBeUndefined();
    expect(await journalSeqs(a)).toEqual([1, 3]);
    expect(ids(await reload(a))).toEqual([hexId(1), hexId(3)]);
  });

  it('ENOSPC on the first byte: nothing is written, the commit fails', async () => {
    const fs = new FaultyFs();
    const a = store(fs);
    const state = await a.load();
    fs.fail('writeSync', 'ENOSPC');
    expect((await commit(a, state, put(1)))?.message).toMatch(/ENOSPC/);
    expect(await readFile(a.journalPath, 'utf8')).toBe('');
    expect(await commit(a, state, put(2))).toBeUndefined();
    expect(ids(await reload(a))).toEqual([hexId(2)]);
  });

  it('a failed write that cannot be cut back: commits are refused until a snapshot is written', async () => {
    const fs = new FaultyFs();
    const a = store(fs);
    const state = await a.load();
    expect(await commit(a, state, put(1))).toBeUndefined();
    fs.fail('writeSync', { short: 10 }, 'EIO').fail('ftruncateSync', 'EIO');
    const e = await commit(a, state, put(2));
    expect(e?.message).toMatch(/not synced: a failed write \(EIO.*could not be undone.*refuses changes until a snapshot is written/);
    // The next commit writes the snapshot first, then is saved.
    expect(await commit(a, state, put(3))).toBeUndefined();
    expect(fs.pending()).toEqual([]);
    expect(existsSync(a.snapshotPath)).toBe(true);
    expect(ids(await reload(a))).toEqual([hexId(1), hexId(3)]);
  });

  it('EIO from fdatasync: this commit and every further one fail until a snapshot is written; nothing acknowledged is lost', async () => {
    const fs = new FaultyFs();
    const a = store(fs);
    const state = await a.load();
    expect(await commit(a, state, put(1))).toBeUndefined();
    fs.fail('fdatasyncSync', 'EIO');
    const e = await commit(a, state, put(2));
    expect(e?.code).toBe('STATE_IO');
    expect(e?.message).toMatch(
      new RegExp(`^state journal ${a.journalPath} not synced: EIO.*mynet refuses changes until a snapshot is written`),
    );
    expect(state.networks.has(hexId(2))).toBe(false);
    expect(state.seq).toBe(1);
    // The snapshot cannot be written either (the disk is full now): refused, and no temp file stays.
    fs.fail('write', { short: 100 }, 'ENOSPC');
    const e2 = await commit(a, state, put(3));
    expect(e2?.message).toMatch(
      /not synced: EIO.*refuses changes until a snapshot is written \(writing a snapshot failed: state file .*state\.json: cannot be written: ENOSPC/,
    );
    expect(existsSync(`${a.snapshotPath}.tmp`)).toBe(false);
    expect(existsSync(a.snapshotPath)).toBe(false);
    // The disk works again: the snapshot is written, the journal emptied, the change saved.
    expect(await commit(a, state, put(4))).toBeUndefined();
    expect(fs.pending()).toEqual([]);
    const snap = JSON.parse(await readFile(a.snapshotPath, 'utf8')) as { seq: number; networks: { id: string }[] };
    expect(snap.networks.map((n) => n.id)).toEqual([hexId(1)]);
    expect(snap.seq).toBe(2); // number 2 went to the refused change; the next one refused never got one
    expect(await journalSeqs(a)).toEqual([3]);
    expect(await commit(a, state, put(5))).toBeUndefined();
    const loaded = await reload(a);
    expect(ids(loaded)).toEqual([hexId(1), hexId(4), hexId(5)]);
    expect(loaded.seq).toBe(4);
  });

  it('EIO from fdatasync and the line cannot be removed: it never shadows a later change (its number is not reused)', async () => {
    // Before the fix the refused line stayed, the next change got the same number, and the
    // load skipped that acknowledged change as "already applied".
    const fs = new FaultyFs();
    const a = store(fs);
    const state = await a.load();
    expect(await commit(a, state, put(1))).toBeUndefined();
    fs.fail('fdatasyncSync', 'EIO').fail('ftruncateSync', 'EIO');
    expect((await commit(a, state, put(2)))?.message).toMatch(/not synced: EIO.*its line could not be removed either/);
    expect(await journalSeqs(a)).toEqual([1, 2]);
    // The snapshot is written, but emptying the journal fails: still refused.
    fs.fail('ftruncateSync', 'EIO');
    expect((await commit(a, state, put(3)))?.message).toMatch(/not synced: emptying it after a snapshot failed: EIO/);
    expect(fs.pending()).toEqual([]);
    // A restart now: the snapshot covers the left-over line's number, so the line is skipped.
    const loaded = await reload(a);
    expect(ids(loaded)).toEqual([hexId(1)]);
    expect(loaded.seq).toBe(2);
  });

  it('EIO from fdatasync, then a restart before any snapshot: the load is clean and the refused change is absent', async () => {
    const fs = new FaultyFs();
    const a = store(fs);
    const state = await a.load();
    expect(await commit(a, state, put(1))).toBeUndefined();
    fs.fail('fdatasyncSync', 'EIO');
    expect(await commit(a, state, put(2))).toBeInstanceOf(PluginError);
    const b = await reload(a);
    expect(ids(b)).toEqual([hexId(1)]);
  });
});

describe('snapshot write on a full or failing disk', () => {
  /** Commits 3 changes with compaction after each 2, with `faults` armed before the second compaction. */
  async function compactWith(arm: (fs: FaultyFs) => void, expectMsg: RegExp): Promise<void> {
    const fs = new FaultyFs();
    const a = store(fs, 2);
    const state = await a.load();
    for (const n of [1, 2]) expect(await commit(a, state, put(n))).toBeUndefined();
    const oldSnap = await readFile(a.snapshotPath);
    expect(await commit(a, state, put(3))).toBeUndefined();
    arm(fs);
    const e = await a.compact(state).then(
      () => undefined,
      (err: unknown) => err as PluginError,
    );
    expect(e?.code).toBe('STATE_IO');
    expect(e?.message).toMatch(expectMsg);
    expect(fs.pending()).toEqual([]);
    expect(existsSync(`${a.snapshotPath}.tmp`)).toBe(false);
    expect(await journalSeqs(a)).toEqual([3]); // the journal keeps what the snapshot does not hold
    if (!/directory/.test(expectMsg.source)) expect(await readFile(a.snapshotPath)).toEqual(oldSnap);
    // Commits go on; a later compaction works.
    expect(await commit(a, state, put(4))).toBeUndefined();
    await a.compact(state);
    expect(await readFile(a.journalPath, 'utf8')).toBe('');
    expect(ids(await reload(a))).toEqual([1, 2, 3, 4].map((n) => hexId(n)).sort());
  }

  it('ENOSPC after a partial write of the temp file', () =>
    compactWith(
      (fs) => fs.fail('write', { short: 50 }, 'ENOSPC'),
      /state\.json: cannot be written: ENOSPC.*previous snapshot is unchanged/,
    ));
  it('ENOSPC when the temp file is created', () =>
    compactWith((fs) => fs.fail('open', 'ENOSPC'), /state\.json: cannot be written: ENOSPC/));
  it('EIO from fsync of the temp file', () => compactWith((fs) => fs.fail('fsync', 'EIO'), /state\.json: cannot be written: EIO/));
  it('a failed rename', () => compactWith((fs) => fs.fail('rename', 'EIO'), /state\.json: cannot be written: EIO/));
  it('EIO from fsync of the directory after the rename', () =>
    compactWith((fs) => fs.fail('fsyncSync', 'EIO'), /renamed into place but its directory could not be synced: EIO/));

  it('a temp file that cannot be removed is named in the error', async () => {
    const fs = new FaultyFs();
    const a = store(fs);
    const state = await a.load();
    expect(await commit(a, state, put(1))).toBeUndefined();
    fs.fail('write', 'ENOSPC').fail('unlink', 'EIO');
    await expect(a.compact(state)).rejects.toThrow(/cannot be written: ENOSPC.*removing .*state\.json\.tmp: EIO/);
  });

  it('short writes of the snapshot are continued', async () => {
    const fs = new FaultyFs().fail('write', { short: 3 }, { short: 100 });
    const a = store(fs);
    const state = await a.load();
    for (const n of [1, 2, 3]) expect(await commit(a, state, put(n))).toBeUndefined();
    await a.compact(state);
    expect(fs.pending()).toEqual([]);
    expect(await readFile(a.journalPath, 'utf8')).toBe('');
    expect(ids(await reload(a))).toEqual([1, 2, 3].map((n) => hexId(n)).sort());
  });

  it('a left-over temp file from a crash does not block the next snapshot', async () => {
    const a = store();
    const state = await a.load();
    await writeFile(`${a.snapshotPath}.tmp`, 'x'.repeat(10_000));
    expect(await commit(a, state, put(1))).toBeUndefined();
    await a.compact(state);
    expect(existsSync(`${a.snapshotPath}.tmp`)).toBe(false);
    expect(ids(await reload(a))).toEqual([hexId(1)]);
  });
});
