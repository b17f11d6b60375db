/**
 * State on disk in MYNET_STATE_DIR: `state.json`, a full snapshot written atomically
 * (snapshot-file.ts), and `journal.jsonl`, one line per committed change set, appended and
 * fdatasynced before dockerd gets its answer (journal.ts). A commit therefore costs one small
 * append however large the state is; the journal is folded into a new snapshot every
 * `compactEvery` commits and at shutdown.
 *
 * Crash safety: a snapshot is never half-written (rename is atomic). A journal line cut short by
 * a crash is the last line, has no newline, and was never acknowledged: it is dropped with a
 * warning. Journal lines already in the snapshot (a crash between snapshot and truncation) are
 * skipped by sequence number. Anything else unreadable stops the plugin with the file's name and
 * the reason, and the file is left as it is; so does a record that fails the checks requests
 * get (records.ts): values from these files reach `ip` and `nft` text.
 *
 * Full or failing disk: an append is whole or cut back, and a failed commit throws before the
 * orchestrator applies the change (it undoes the host plan). After a failed fdatasync every
 * commit is refused until a snapshot of the acknowledged state is written and the journal
 * emptied; each later commit tries that first. Sequence numbers are never given twice.
 */
import { constants } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { PluginError, messageOf } from '../errors.js';
import { type Change, type Snapshot, State } from '../driver/state.js';
import type { StateStore } from './state-store.js';
import { isJournalEntry, snapshotProblem } from './shape.js';
import { checkChange, snapshotRecordProblem } from './records.js';
import { Journal, JournalError } from './journal.js';
import { writeSnapshotFile } from './snapshot-file.js';
import { type StoreFs, nodeStoreFs } from './store-fs.js';

export interface FileStoreOptions {
  readonly dir: string;
  readonly log: Logger;
  readonly compactEvery?: number;
  /** File operations (tests make them fail as a full or broken disk does). */
  readonly fs?: StoreFs;
}

export class FileStore implements StateStore {
  private journal: Journal | undefined;
  /**
   * The highest sequence number ever given to an append, failed ones included: a number is never
   * used twice, so a line left behind by a failed append (its sync failed, and so did cutting it
   * back) can never shadow a later acknowledged change; snapshots carry it, so such a line is
   * skipped at load.
   */
  private lastSeq = 0;
  private sinceCompact = 0;
  private readonly fs: StoreFs;
  readonly snapshotPath: string;
  readonly journalPath: string;

  constructor(private readonly opts: FileStoreOptions) {
    this.fs = opts.fs ?? nodeStoreFs;
    this.snapshotPath = join(opts.dir, 'state.json');
    this.journalPath = join(opts.dir, 'journal.jsonl');
  }

  async load(): Promise<State> {
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    const state = await this.loadSnapshot();
    const { entries, goodBytes, torn } = await this.readJournal();
    for (const e of entries) {
      if (e.seq <= state.seq) continue;
      try {
        state.apply(e.changes);
      } catch (err) {
        throw new PluginError('STATE_CORRUPT', `state file ${this.journalPath}: entry ${e.seq} cannot be applied: ${messageOf(err)}`, {
          cause: err,
        });
      }
      state.seq = e.seq;
    }
    let fd: number;
    try {
      fd = this.fs.openSync(this.journalPath, constants.O_WRONLY | constants.O_CREAT, 0o600);
      if (torn) {
        this.opts.log.warn(
          { file: this.journalPath, keptBytes: goodBytes },
          'dropping an unfinished last journal line (a crash during a write that was never acknowledged)',
        );
        this.fs.ftruncateSync(fd, goodBytes);
        this.fs.fdatasyncSync(fd);
      }
    } catch (err) {
      throw new PluginError('STATE_IO', `state file ${this.journalPath}: cannot be opened for writing: ${messageOf(err)}`, { cause: err });
    }
    this.journal = new Journal(this.fs, this.journalPath, fd, goodBytes);
    this.lastSeq = state.seq;
    this.sinceCompact = entries.length;
    return state;
  }

  private async loadSnapshot(): Promise<State> {
    let text: string;
    try {
      text = await readFile(this.snapshotPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new State();
      throw new PluginError('STATE_IO', `state file ${this.snapshotPath}: cannot be read: ${messageOf(err)}`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new PluginError(
        'STATE_CORRUPT',
        `state file ${this.snapshotPath}: not valid JSON (${messageOf(err)}); the file was kept as it is`,
        { cause: err },
      );
    }
    const problem = snapshotProblem(data) ?? snapshotRecordProblem(data as Snapshot);
    if (problem) throw new PluginError('STATE_CORRUPT', `state file ${this.snapshotPath}: ${problem}; the file was kept as it is`);
    try {
      return State.fromSnapshot(data as Snapshot);
    } catch (err) {
      throw new PluginError('STATE_CORRUPT', `state file ${this.snapshotPath}: ${messageOf(err)}; the file was kept as it is`, {
        cause: err,
      });
    }
  }

  private async readJournal(): Promise<{ entries: { seq: number; changes: Change[] }[]; goodBytes: number; torn: boolean }> {
    let buf: Buffer;
    try {
      buf = await readFile(this.journalPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], goodBytes: 0, torn: false };
      throw new PluginError('STATE_IO', `state file ${this.journalPath}: cannot be read: ${messageOf(err)}`, { cause: err });
    }
    const entries: { seq: number; changes: Change[] }[] = [];
    let pos = 0;
    let line = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(0x0a, pos);
      line++;
      if (nl < 0) return { entries, goodBytes: pos, torn: true }; // unfinished last line
      const text = buf.subarray(pos, nl).toString('utf8');
      let entry: unknown;
      try {
        entry = JSON.parse(text);
      } catch (err) {
        throw new PluginError(
          'STATE_CORRUPT',
          `state file ${this.journalPath}: line ${line} is not valid JSON (${messageOf(err)}); the file was kept as it is`,
          { cause: err },
        );
      }
      if (!isJournalEntry(entry)) {
        throw new PluginError(
          'STATE_CORRUPT',
          `state file ${this.journalPath}: line ${line} is not a journal entry; the file was kept as it is`,
        );
      }
      entry.changes.forEach((c, i) => {
        try {
          checkChange(c);
        } catch (err) {
          throw new PluginError(
            'STATE_CORRUPT',
            `state file ${this.journalPath}: line ${line} (entry ${entry.seq}), change ${i} (${String(c.op).slice(0, 20)}): ${messageOf(err)}; the file was kept as it is`,
            { cause: err },
          );
        }
      });
      entries.push(entry);
      pos = nl + 1;
    }
    return { entries, goodBytes: pos, torn: false };
  }

  async commit(changes: readonly Change[], state: State): Promise<void> {
    if (changes.length === 0) return;
    const journal = this.journal;
    if (!journal) throw new PluginError('STATE_IO', 'state store is not open');
    if (journal.unsynced !== undefined) {
      // The journal cannot be trusted: a snapshot of what was acknowledged replaces it, or this
      // change is refused too.
      try {
        await this.compact(state);
        this.opts.log.warn({ file: this.journalPath }, 'state journal trusted again: a snapshot was written after a failed sync');
      } catch (err) {
        throw journal.unsynced !== undefined ? journal.refusal(`writing a snapshot failed: ${messageOf(err)}`) : err;
      }
    }
    const seq = Math.max(state.seq, this.lastSeq) + 1;
    this.lastSeq = seq;
    try {
      // Synchronous on purpose: commits are serialised under the plugin's lock anyway, and one
      // append + fdatasync (~0.3 ms here) is cheaper than three thread-pool round trips.
      journal.append(Buffer.from(`${JSON.stringify({ seq, changes })}\n`));
    } catch (err) {
      this.opts.log.error(
        { err, seq, unsynced: journal.unsynced },
        err instanceof JournalError && err.kind === 'unsynced'
          ? 'state journal not synced; refusing changes until a snapshot is written'
          : 'state journal append failed; the change was not saved',
      );
      throw err;
    }
    state.seq = seq;
    this.sinceCompact++;
  }

  /** Call after the committed changes were applied to `state`. */
  async maybeCompact(state: State): Promise<void> {
    if (this.sinceCompact >= (this.opts.compactEvery ?? 1000)) await this.compact(state);
  }

  async compact(state: State): Promise<void> {
    const journal = this.journal;
    if (!journal) return;
    const seq = Math.max(state.seq, this.lastSeq);
    this.lastSeq = seq;
    await writeSnapshotFile(this.fs, this.snapshotPath, Buffer.from(JSON.stringify({ ...state.toSnapshot(), seq })));
    // Outside the plugin's lock (tests, shutdown) a commit could land while the snapshot was
    // written: its line must stay. Lines up to `seq` are skipped at load either way.
    if (this.lastSeq !== seq) return;
    try {
      journal.reset();
    } catch (err) {
      throw new PluginError('STATE_IO', `state file ${this.journalPath}: cannot be emptied after a snapshot: ${messageOf(err)}`, {
        cause: err,
      });
    }
    this.sinceCompact = 0;
  }

  close(): Promise<void> {
    this.journal?.close();
    this.journal = undefined;
    return Promise.resolve();
  }
}
