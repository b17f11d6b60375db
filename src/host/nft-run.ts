/**
 * The executor's nft part: runs one typed firewall change (plan/nft-change.ts) as one nft
 * transaction, written as text by plan/nft-text.ts (the one renderer). A change of a few lines
 * (a published port, a member of a VXLAN guard) goes to the long-running `nft -i` as one line;
 * longer ones (a table's definition) to `nft -f -`. A teardown (`absentTableOk`) that fails
 * while its table does not exist had nothing left to remove.
 */
import type { Logger } from 'pino';
import { HostCommandError } from '../errors.js';
import { nftScript } from '../plan/nft-text.js';
import type { HostOp } from '../plan/step.js';
import type { GroupResult } from './coprocess.js';

type NftOp = Extract<HostOp, { kind: 'nft' }>;

export interface NftRunDeps {
  /** Runs a command (in the executor's namespace) and answers stdout; HostCommandError on failure. */
  readonly command: (argv: readonly string[], log: Logger, input?: string) => Promise<string>;
  /** Runs lines on nft's coprocess; undefined when nft runs one-shot here. */
  readonly coprocess: (lines: readonly string[], log: Logger) => Promise<GroupResult | undefined>;
  readonly onCommand?: (argv: readonly string[], ms: number, ok: boolean) => void;
}

/** The most a change joined into one coprocess line may be. */
const NFT_LINE_MAX = 32 * 1024;

export async function runNft(d: NftRunDeps, op: NftOp, log: Logger): Promise<void> {
  const script = nftScript(op.table, op.commands);
  if (script === '') return;
  try {
    await runScript(d, script, log);
  } catch (err) {
    if (op.absentTableOk && err instanceof HostCommandError && !(await tableExists(d, op.table, log))) {
      log.debug({ table: op.table }, 'nft teardown: the table is gone, so is everything in it');
      return;
    }
    throw err;
  }
}

async function runScript(d: NftRunDeps, script: string, log: Logger): Promise<void> {
  // nft-text.ts writes one command per line, each whole: "; " joins them into one nft -i line.
  const line = script.split('\n').join('; ');
  const started = performance.now();
  const r = line.length <= NFT_LINE_MAX ? await d.coprocess([line], log) : undefined;
  if (r === undefined) {
    await d.command(['nft', '-f', '-'], log, `${script}\n`);
    return;
  }
  const ms = performance.now() - started;
  d.onCommand?.(['nft', '-f', '-'], ms, !r.failed);
  log.debug({ argv: ['nft', '-i'], ms: Math.round(ms * 100) / 100, coprocess: true }, 'host command');
  if (r.failed) throw new HostCommandError(['nft', '-f', '-'], 1, r.failed.stderr);
}

/** Whether an nft table ('inet mynet') exists; nft says "No such file or directory" when not. */
export async function tableExists(d: NftRunDeps, table: string, log: Logger): Promise<boolean> {
  try {
    await d.command(['nft', 'list', 'table', ...table.split(' ')], log);
    return true;
  } catch (err) {
    if (err instanceof HostCommandError && /No such file or directory/.test(err.stderr)) return false;
    throw err;
  }
}
