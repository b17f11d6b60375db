/**
 * The one thing mynet adds to a chain it does not own. dockerd sets the iptables FORWARD
 * policy to DROP with br_netfilter on, and an accept in our own nft table cannot overrule a drop
 * in iptables' base chain (protocol.md §0). So FORWARD jumps to MYNET-FORWARD, which accepts
 * traffic in or out of links in our netdev group only when mynet's own forward chain marked it
 * (FORWARD_MARK, plan/nft-model.ts: that chain runs first and marks what it does not drop), and
 * drops the rest of our links' traffic. The fine-grained policy (isolation, ICC, internal
 * networks, direct access) lives in mynet's nft table; if that table is gone, nothing of ours
 * is marked and our links' forwarded traffic is dropped, whatever FORWARD's policy: it fails
 * closed. Traffic of other links returns to FORWARD untouched.
 *
 * The 127/8 guard fails closed the same way. route_localnet is on for our bridges (for the
 * host's own 127.0.0.1 -> published port path), so a container that routes 127.0.0.1 through its
 * gateway would reach the host's loopback services if nothing dropped it; the drops live in
 * mynet's nft table (chain `localnet`) and, so that losing the table does not open the host's
 * loopback, also here as two iptables rules in the raw table's PREROUTING (GUARD_RULES), where
 * Docker keeps its own drop of remote traffic to loopback-published ports. IPv4 only: IPv6 has
 * no route_localnet, and the kernel drops ::1 arriving on any other link by itself.
 *
 * The jump goes right after DOCKER-USER when that exists, so users' DOCKER-USER rules apply to
 * mynet containers as they do to Docker's. Ensuring costs one `iptables-save` when all is in
 * place and one `iptables-restore --noflush` when something is missing. Safe to run twice.
 */
import type { Logger } from 'pino';
import { HostCommandError } from '../errors.js';
import { FORWARD_CHAIN, MYNET_GROUP } from '../plan/link-names.js';
import { FORWARD_MARK } from '../plan/nft-model.js';

export interface CommandRunner {
  command(argv: readonly string[], log: Logger, input?: string): Promise<string>;
}

const hex = `0x${MYNET_GROUP.toString(16)}`;
const COMMENT = 'mynet';
const mark = `0x${FORWARD_MARK.toString(16)}`;
/** In this order, as iptables-save prints them: not ours → back to FORWARD; ours and marked → accept; ours → drop. */
export const CHAIN_RULES = [
  `-A ${FORWARD_CHAIN} -m devgroup ! --src-group ${hex} ! --dst-group ${hex} -m comment --comment ${COMMENT} -j RETURN`,
  `-A ${FORWARD_CHAIN} -m mark --mark ${mark}/${mark} -m comment --comment ${COMMENT} -j ACCEPT`,
  `-A ${FORWARD_CHAIN} -m comment --comment ${COMMENT} -j DROP`,
];
const JUMP = `-m comment --comment ${COMMENT} -j ${FORWARD_CHAIN}`;
/** The 127/8 guard, as iptables-save prints it in the raw table: nothing with a loopback address comes in from our links. */
export const GUARD_RULES = [
  `-A PREROUTING -s 127.0.0.0/8 -m devgroup --src-group ${hex} -m comment --comment ${COMMENT} -j DROP`,
  `-A PREROUTING -d 127.0.0.0/8 -m devgroup --src-group ${hex} -m comment --comment ${COMMENT} -j DROP`,
];

const FAMILIES = [
  { save: 'iptables-save', restore: 'iptables-restore', guard: true },
  { save: 'ip6tables-save', restore: 'ip6tables-restore', guard: false },
] as const;

export interface HookStatus {
  readonly chain: boolean;
  readonly rules: boolean;
  readonly jump: boolean;
  /** 1-based position for a missing jump: right after DOCKER-USER, else first. */
  readonly insertAt: number;
  /** Every guard rule is in the raw table's PREROUTING (always true for a family without the guard). */
  readonly guard: boolean;
  /** The guard rules found, once per copy, so that a removal takes every copy. */
  readonly guardFound: readonly string[];
}

/**
 * Reads the filter table and, for IPv4, the raw table as iptables-save prints them; `raw`
 * undefined means a family without the 127/8 guard (IPv6). Pure, so it is unit-tested.
 */
export function hookStatus(save: string, raw?: string): HookStatus {
  const lines = save.split('\n');
  const chain = lines.some((l) => l.startsWith(`:${FORWARD_CHAIN} `));
  const ours = lines.filter((l) => l.startsWith(`-A ${FORWARD_CHAIN} `));
  // Order matters: the drop must come last.
  const rules = ours.length === CHAIN_RULES.length && CHAIN_RULES.every((r, i) => ours[i] === r);
  const forward = lines.filter((l) => l.startsWith('-A FORWARD '));
  const jump = forward.some((l) => l.endsWith(`-j ${FORWARD_CHAIN}`));
  const du = forward.findIndex((l) => l === '-A FORWARD -j DOCKER-USER');
  const rawLines = raw === undefined ? [] : raw.split('\n');
  const guardFound = rawLines.filter((l) => GUARD_RULES.includes(l));
  const guard = raw === undefined || GUARD_RULES.every((r) => guardFound.includes(r));
  return { chain, rules, jump, insertAt: du >= 0 ? du + 2 : 1, guard, guardFound };
}

/** The raw-table part of a script, or nothing when it has no rule. */
const rawSection = (rules: readonly string[]): string[] => (rules.length ? ['*raw', ...rules, 'COMMIT'] : []);

/** The iptables-restore --noflush script that brings `status` to the hook, or '' if none is needed. */
export function ensureScript(status: HookStatus): string {
  const out: string[] = [];
  if (!status.chain || !status.rules || !status.jump) {
    out.push('*filter');
    // Declaring the chain in --noflush mode creates it, or flushes it when it exists, so a chain
    // whose rules drifted is rewritten whole.
    if (!status.chain || !status.rules) out.push(`:${FORWARD_CHAIN} - [0:0]`, ...CHAIN_RULES);
    if (!status.jump) out.push(`-I FORWARD ${status.insertAt} ${JUMP}`);
    out.push('COMMIT');
  }
  // First in PREROUTING, so no earlier ACCEPT of someone else's lets a loopback packet by.
  if (!status.guard) {
    out.push(
      ...rawSection(GUARD_RULES.filter((r) => !status.guardFound.includes(r)).map((r) => r.replace('-A PREROUTING', '-I PREROUTING 1'))),
    );
  }
  return out.length ? [...out, ''].join('\n') : '';
}

export function removeScript(status: HookStatus): string {
  const out: string[] = [];
  if (status.chain || status.jump) {
    out.push('*filter');
    if (status.jump) out.push(`-D FORWARD ${JUMP}`);
    if (status.chain) out.push(`-F ${FORWARD_CHAIN}`, `-X ${FORWARD_CHAIN}`);
    out.push('COMMIT');
  }
  out.push(...rawSection(status.guardFound.map((r) => r.replace('-A PREROUTING', '-D PREROUTING'))));
  return out.length ? [...out, ''].join('\n') : '';
}

async function forEachFamily(run: CommandRunner, log: Logger, script: (s: HookStatus) => string): Promise<void> {
  for (const fam of FAMILIES) {
    let save: string;
    try {
      save = await run.command([fam.save, '-t', 'filter'], log);
    } catch (err) {
      // IPv6 netfilter may be absent (ipv6.disable=1); IPv4 must work.
      if (fam.save === 'ip6tables-save' && err instanceof HostCommandError) {
        log.warn({ err }, 'ip6tables unavailable; IPv6 FORWARD hook not managed');
        continue;
      }
      throw err;
    }
    const raw = fam.guard ? await run.command([fam.save, '-t', 'raw'], log) : undefined;
    const text = script(hookStatus(save, raw));
    if (text) await run.command([fam.restore, '-w', '--noflush'], log, text);
  }
}

export const ensureForwardHook = (run: CommandRunner, log: Logger): Promise<void> => forEachFamily(run, log, ensureScript);
export const removeForwardHook = (run: CommandRunner, log: Logger): Promise<void> => forEachFamily(run, log, removeScript);
