/**
 * The append side of `journal.jsonl`: one line per committed change set, written whole and
 * synced before dockerd is told OK, or not at all.
 *
 * - A write may be short (a full disk fills its last block and stops): we loop until the whole
 *   line is written. On any error the file is cut back to its length before this append and
 *   synced, so the next line never lands after a torn one (which would make the next start
 *   refuse the journal as corrupt).
 * - When fdatasync fails after a whole write, the line may or may not be on disk, and Linux may
 *   have dropped the dirty pages and will not report it again: nothing this file says can be
 *   trusted any more. The journal then refuses every append (`unsynced`) until `reset()` empties
 *   it after a good snapshot was written (file-store.ts).
 */
import { PluginError, messageOf } from '../errors.js';
import type { StoreFs } from './store-fs.js';

/** Why a journal append failed; code STATE_IO, and the change was not saved. */
export class JournalError extends PluginError {
  constructor(
    readonly file: string,
    /** `write`: cut back, the journal is fine; `unsynced`: refuses changes until a snapshot is written. */
    readonly kind: 'write' | 'unsynced',
    message: string,
    options?: { cause?: unknown },
  ) {
    super('STATE_IO', message, options);
    this.name = 'JournalError';
  }
}

const refusing = 'mynet refuses changes until a snapshot is written';

export class Journal {
  /** Set when the file can no longer be trusted: the reason, until reset() succeeds. */
  private unsyncedWhy: string | undefined;

  constructor(
    private readonly fs: StoreFs,
    readonly path: string,
    private readonly fd: number,
    /** Bytes of whole, synced lines: where the next line goes. */
    private size: number,
  ) {}

  get unsynced(): string | undefined {
    return this.unsyncedWhy;
  }

  /** The error every append gets while the journal is untrusted (`detail`: the last repair tried). */
  refusal(detail?: string): JournalError {
    return new JournalError(
      this.path,
      'unsynced',
      `state journal ${this.path} not synced: ${this.unsyncedWhy ?? 'unknown'}; ${refusing}${detail ? ` (${detail})` : ''}`,
    );
  }

  /** Writes and syncs one whole line (ending in a newline), or throws and leaves the journal as it was. */
  append(line: Buffer): void {
    if (this.unsyncedWhy !== undefined) throw this.refusal();
    const start = this.size;
    try {
      let done = 0;
      while (done < line.length) {
        const n = this.fs.writeSync(this.fd, line, done, line.length - done, start + done);
        // A regular file never answers 0 for a non-empty write; looping on it would never end.
        if (n <= 0) throw new Error(`write stored nothing after ${done} of ${line.length} bytes`);
        done += n;
      }
    } catch (err) {
      const undo = this.cutBack(start);
      if (undo === undefined) {
        throw new JournalError(
          this.path,
          'write',
          `state journal ${this.path}: cannot be written: ${messageOf(err)}; the change was not saved`,
          { cause: err },
        );
      }
      this.unsyncedWhy = `a failed write (${messageOf(err)}) could not be undone: ${undo}`;
      throw this.refusal();
    }
    try {
      this.fs.fdatasyncSync(this.fd);
    } catch (err) {
      this.unsyncedWhy = messageOf(err);
      // Best effort: without the line, a restart before the snapshot does not replay a change
      // dockerd was told failed. Whether or not this works, the journal stays untrusted.
      const undo = this.cutBack(start);
      const kept = undo === undefined ? '' : ` (its line could not be removed either: ${undo})`;
      throw new JournalError(
        this.path,
        'unsynced',
        `state journal ${this.path} not synced: ${messageOf(err)}; the change was not saved${kept}; ${refusing}`,
        { cause: err },
      );
    }
    this.size = start + line.length;
  }

  /** Empties the journal (its lines are in a snapshot now) and trusts it again. */
  reset(): void {
    try {
      this.fs.ftruncateSync(this.fd, 0);
      this.fs.fdatasyncSync(this.fd);
    } catch (err) {
      // Its length is unknown now: an append could leave a hole or land after old lines.
      this.unsyncedWhy = `emptying it after a snapshot failed: ${messageOf(err)}`;
      throw err;
    }
    this.size = 0;
    this.unsyncedWhy = undefined;
  }

  close(): void {
    this.fs.closeSync(this.fd);
  }

  /** Truncates back to `length` and syncs; returns why that failed, or undefined. */
  private cutBack(length: number): string | undefined {
    try {
      this.fs.ftruncateSync(this.fd, length);
      this.fs.fdatasyncSync(this.fd);
      this.size = length;
      return undefined;
    } catch (err) {
      return messageOf(err);
    }
  }
}
