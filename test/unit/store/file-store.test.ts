import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { PluginError } from '../../../src/errors.js';
import type { Change, PoolRecord } from '../../../src/driver/state.js';
import { State } from '../../../src/driver/state.js';
import { FileStore } from '../../../src/store/file-store.js';
import { hexId } from '../support.js';
import { networkRecord, stateDir } from './state-dir.js';

const sd = stateDir();
const store = (compactEvery?: number): FileStore => sd.store(compactEvery ? { compactEvery } : {});
const poolRec = (n: number): PoolRecord => ({ id: `p${n}`, space: 'mynet-local', pool: `10.${n}.0.0/24`, family: 4, options: {} });

/** Commits and applies, as the orchestrator does. */
async function commit(s: FileStore, state: State, changes: Change[]): Promise<void> {
  await s.commit(changes, state);
  state.apply(changes);
  await s.maybeCompact(state);
}
const sample: Change[][] = [
  [{ op: 'network.put', network: networkRecord(1) }],
  [
    { op: 'pool.put', pool: poolRec(1) },
    { op: 'address.take', pool: 'p1', address: '10.1.0.1' },
  ],
  [{ op: 'address.take', pool: 'p1', address: '10.1.0.2', cursor: true }],
  [{ op: 'address.take', pool: 'p1', address: '10.1.0.3', cursor: true }],
  [
    {
      op: 'endpoint.put',
      endpoint: {
        id: hexId(9),
        networkId: hexId(1),
        hostIf: 'mnh1',
        containerIf: 'mnc1',
        mac: '02:00:00:00:00:01',
        address: '10.1.0.2/24',
        ports: [],
      },
    },
  ],
  [{ op: 'network.put', network: networkRecord(2) }],
  [{ op: 'address.free', pool: 'p1', address: '10.1.0.2' }],
];

async function loadError(s: FileStore): Promise<PluginError> {
  try {
    await s.load();
  } catch (err) {
    if (err instanceof PluginError) return err;
    throw err;
  }
  throw new Error('expected load() to fail');
}

describe('FileStore', () => {
  it('commit then reload gives the same state', async () => {
    const a = store();
    const state = await a.load();
    expect(state.networks.size).toBe(0);
    for (const c of sample) await commit(a, state, c);
    expect(state.seq).toBe(sample.length);
    await a.close();

    const b = store();
    const loaded = await b.load();
    expect(loaded.toSnapshot()).toEqual(state.toSnapshot());
    expect(loaded.seq).toBe(sample.length);
    expect(loaded.pools.get('p1')?.cursor).toBe(state.pools.get('p1')?.cursor);
    // The journal has one line per change set.
    expect((await readFile(b.journalPath, 'utf8')).trimEnd().split('\n')).toHaveLength(sample.length);
  });

  it('an empty change set writes nothing', async () => {
    const a = store();
    const state = await a.load();
    await a.commit([], state);
    expect(state.seq).toBe(0);
    expect(await readFile(a.journalPath, 'utf8')).toBe('');
  });

  it('compaction writes a snapshot, empties the journal, and reload still gives the same state', async () => {
    const a = store(3);
    const state = await a.load();
    for (const c of sample) await commit(a, state, c);
    // 7 commits with compactEvery 3: compacted after 3 and 6, one left in the journal.
    const snap = JSON.parse(await readFile(a.snapshotPath, 'utf8')) as { seq: number };
    expect(snap.seq).toBe(6);
    expect((await readFile(a.journalPath, 'utf8')).trimEnd().split('\n')).toHaveLength(1);
    await a.compact(state);
    expect(await readFile(a.journalPath, 'utf8')).toBe('');
    await a.close();

    const b = store();
    const loaded = await b.load();
    expect(loaded.toSnapshot()).toEqual(state.toSnapshot());
    // Commits after a reload continue the sequence.
    await commit(b, loaded, [{ op: 'network.delete', id: hexId(2) }]);
    await b.close();
    const c = await store().load();
    expect(c.seq).toBe(sample.length + 1);
    expect(c.networks.has(hexId(2))).toBe(false);
  });

  it('a torn last journal line is dropped (and cut off), the rest is loaded', async () => {
    const a = store();
    const state = await a.load();
    for (const c of sample.slice(0, 3)) await commit(a, state, c);
    await a.close();
    const good = await readFile(a.journalPath);
    const torn = `${JSON.stringify({ seq: 4, changes: sample[3] })}`.slice(0, 25); // no newline
    await writeFile(a.journalPath, Buffer.concat([good, Buffer.from(torn)]));

    const b = store();
    const loaded = await b.load();
    expect(loaded.seq).toBe(3);
    expect(loaded.toSnapshot()).toEqual(state.toSnapshot());
    expect(await readFile(b.journalPath)).toEqual(good);
    // The next commit reuses the lost sequence number and the journal stays well-formed.
    await commit(b, loaded, sample[3] as Change[]);
    await b.close();
    expect((await store().load()).seq).toBe(4);
  });

  it('a journal that is only a torn line loads as empty', async () => {
    const a = store();
    await a.load();
    await a.close();
    await writeFile(a.journalPath, '{"seq":1,"chan');
    const s = await store().load();
    expect(s.seq).toBe(0);
  });

  describe('corrupt files stop the load, named, and are left byte for byte', () => {
    async function expectCorrupt(file: 'snapshot' | 'journal', content: string | Buffer, extra?: RegExp): Promise<void> {
      const a = store();
      const state = await a.load();
      for (const c of sample.slice(0, 2)) await commit(a, state, c);
      await a.compact(state);
      for (const c of sample.slice(2, 4)) await commit(a, state, c);
      await a.close();
      const path = file === 'snapshot' ? a.snapshotPath : a.journalPath;
      await writeFile(path, content);
      const otherPath = file === 'snapshot' ? a.journalPath : a.snapshotPath;
      const other = await readFile(otherPath);
      const before = await readFile(path);

      const e = await loadError(store());
      expect(e.code).toBe('STATE_CORRUPT');
      expect(e.message).toContain(path);
      if (extra) expect(e.message).toMatch(extra);
      expect(await readFile(path)).toEqual(before);
      expect(await readFile(otherPath)).toEqual(other);
    }

    it('snapshot: not JSON', () => expectCorrupt('snapshot', '{"version":1,"seq":', /not valid JSON/));
    it('snapshot: empty file', () => expectCorrupt('snapshot', ''));
    it('snapshot: wrong shape (missing fields)', () => expectCorrupt('snapshot', '{"version":1,"seq":2}', /\/networks must be an array/));
    it('snapshot: wrong version', () =>
      expectCorrupt('snapshot', '{"version":2,"seq":2,"networks":[],"endpoints":[],"pools":[]}', /\/version must be 1/));
    it('snapshot: a JSON array', () => expectCorrupt('snapshot', '[]', /\/ must be an object/));
    it('snapshot: a negative seq', () =>
      expectCorrupt('snapshot', '{"version":1,"seq":-1,"networks":[],"endpoints":[],"pools":[]}', /\/seq must be an integer >= 0/));
    it('snapshot: records without ids', () =>
      expectCorrupt(
        'snapshot',
        '{"version":1,"seq":2,"networks":[{}],"endpoints":[],"pools":[]}',
        /\/networks\/0 must be an object with a string id/,
      ));
    it('snapshot: a pool with unreadable addresses', () =>
      expectCorrupt(
        'snapshot',
        JSON.stringify({ version: 1, seq: 2, networks: [], endpoints: [], pools: [{ ...poolRec(1), taken: [['10.1.0.1', 'nope']] }] }),
        /nope/,
      ));
    it('snapshot: a pool whose taken list is not a list', () =>
      expectCorrupt(
        'snapshot',
        JSON.stringify({ version: 1, seq: 2, networks: [], endpoints: [], pools: [{ ...poolRec(1), taken: 'x' }] }),
      ));

    it('journal: a corrupt middle line', () => {
      const lines = [
        JSON.stringify({ seq: 3, changes: sample[2] }),
        '{"seq":4,"changes":[{"op":"network.put"',
        JSON.stringify({ seq: 5, changes: sample[4] }),
      ];
      return expectCorrupt('journal', `${lines.join('\n')}\n`, /line 2 is not valid JSON/);
    });

    it('journal: a middle line that is JSON but not an entry', () => {
      const lines = [
        JSON.stringify({ seq: 3, changes: sample[2] }),
        '{"seq":"4","changes":{}}',
        JSON.stringify({ seq: 5, changes: sample[4] }),
      ];
      return expectCorrupt('journal', `${lines.join('\n')}\n`, /line 2 is not a journal entry/);
    });

    it('journal: a complete last line that is garbage (it had its newline: it was acknowledged)', () => {
      return expectCorrupt('journal', `${JSON.stringify({ seq: 3, changes: sample[2] })}\n\u0000\u0000garbage\n`, /line 2/);
    });

    it('journal: an entry whose address cannot be applied', () => {
      return expectCorrupt(
        'journal',
        `${JSON.stringify({ seq: 3, changes: [{ op: 'address.take', pool: 'p1', address: 'bogus' }] })}\n`,
        /line 1 \(entry 3\), change 0 \(address\.take\): address: "bogus" is not an IPv4 or IPv6 address/,
      );
    });
  });

  it('journal entries already in the snapshot (seq <= snapshot seq) are skipped', async () => {
    await store().load(); // creates the directory
    const snapState = new State();
    snapState.apply([{ op: 'network.put', network: networkRecord(1) }]);
    snapState.seq = 2;
    const a = store();
    await writeFile(a.snapshotPath, JSON.stringify(snapState.toSnapshot()));
    // A crash between writing the snapshot and truncating the journal leaves seq 1 and 2 behind.
    const lines = [
      { seq: 1, changes: [{ op: 'network.put', network: networkRecord(7) }] },
      { seq: 2, changes: [{ op: 'network.delete', id: hexId(1) }] },
      { seq: 3, changes: [{ op: 'network.put', network: networkRecord(3) }] },
    ];
    await writeFile(a.journalPath, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    const s = await a.load();
    expect(s.seq).toBe(3);
    expect([...s.networks.keys()].sort()).toEqual([hexId(1), hexId(3)].sort());
  });

  it('creates the state directory 0700 and its files 0600', async () => {
    const a = store();
    const state = await a.load();
    expect((await stat(sd.dir())).mode & 0o777).toBe(0o700);
    expect((await stat(a.journalPath)).mode & 0o777).toBe(0o600);
    await commit(a, state, sample[0] as Change[]);
    await a.compact(state);
    expect((await stat(a.snapshotPath)).mode & 0o777).toBe(0o600);
    expect((await stat(a.journalPath)).mode & 0o777).toBe(0o600);
  });

  it('commit before load is a STATE_IO error', async () => {
    const e = await store()
      .commit(sample[0] as Change[], new State())
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(PluginError);
    expect((e as PluginError).code).toBe('STATE_IO');
  });

  it('an unreadable snapshot path (a directory) is STATE_IO, not corrupt', async () => {
    const a = store();
    await a.load();
    await a.close();
    await mkdir(a.snapshotPath);
    const e = await loadError(store());
    expect(e.code).toBe('STATE_IO');
    expect(e.message).toContain(a.snapshotPath);
  });
});
