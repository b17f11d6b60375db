/**
 * A firewall change as typed data: a list of commands (add, flush, delete, destroy) on typed
 * objects of one table (the table itself, chains, sets and maps, named counters, rules,
 * elements). Plans carry these to the executor; nft-text.ts is the one place that writes them
 * as `nft -f` text, and test/helpers/fake-nft.ts applies them to an in-memory table.
 *
 * As in moby's nftables layer and knftables, a change is built from objects, not from text, so
 * what a change touches is read from its fields (`nftResources`) and its undo is computed
 * (`reverse`) instead of written by hand.
 *
 * `destroy` is "delete, and absent counts as done" (nft 1.0.6 has no `destroy` command:
 * nft-text.ts writes it as an add followed by a delete, in the same transaction).
 */
import { PluginError } from '../errors.js';
import { parseIp } from '../ip/address.js';
import type { NftHook, NftRule, NftSet } from './nft-rule.js';

/** One element of a set (`key`) or map (`key : value`), in nft's own text (see NftElement). */
export interface NftItem {
  readonly key: string;
  readonly value?: string;
}

export type NftObject =
  | { readonly obj: 'table'; readonly comment?: string }
  /** A base chain has a hook (policy accept, always); a regular chain has none. */
  | { readonly obj: 'chain'; readonly name: string; readonly hook?: NftHook }
  | { readonly obj: 'set'; readonly set: NftSet }
  | { readonly obj: 'counter'; readonly name: string }
  /** Rules are only added: one goes with its chain (flushed or deleted), never alone. */
  | { readonly obj: 'rule'; readonly chain: string; readonly rule: NftRule }
  /** Elements of one set or map (a delete needs only their keys). */
  | { readonly obj: 'element'; readonly set: string; readonly items: readonly NftItem[] };

export type NftVerb = 'add' | 'flush' | 'delete' | 'destroy';

export interface NftCommand {
  readonly verb: NftVerb;
  readonly object: NftObject;
}

export const add = (object: NftObject): NftCommand => ({ verb: 'add', object });
export const flush = (object: NftObject): NftCommand => ({ verb: 'flush', object });
export const del = (object: NftObject): NftCommand => ({ verb: 'delete', object });
export const destroy = (object: NftObject): NftCommand => ({ verb: 'destroy', object });

export const tableObj = (comment?: string): NftObject => ({ obj: 'table', ...(comment !== undefined ? { comment } : {}) });
export const chainObj = (name: string, hook?: NftHook): NftObject => ({ obj: 'chain', name, ...(hook ? { hook } : {}) });
export const setObj = (set: NftSet): NftObject => ({ obj: 'set', set });
export const counterObj = (name: string): NftObject => ({ obj: 'counter', name });
export const ruleObj = (chain: string, rule: NftRule): NftObject => ({ obj: 'rule', chain, rule });
export const elementObj = (set: string, items: readonly NftItem[]): NftObject => ({ obj: 'element', set, items });

/** The name an object is known by in its table ('' for the table itself). */
function nameOf(o: NftObject): string {
  switch (o.obj) {
    case 'table':
      return '';
    case 'chain':
    case 'counter':
      return o.name;
    case 'set':
      return o.set.name;
    case 'rule':
      return o.chain;
    case 'element':
      return o.set;
  }
}

/**
 * The undo of a change that added what it names: its additions removed, last first. What lives
 * inside an object the reverse removes goes with it (a rule with its chain, everything with the
 * table), and a flush has nothing to give back, so both are left out. A change that deletes, or
 * adds a rule to a chain it did not add, has no reverse (the rule's handle is not known): that
 * is a programming error, refused here rather than undone by half.
 */
export function reverse(commands: readonly NftCommand[]): NftCommand[] {
  const addsTable = commands.some((c) => c.verb === 'add' && c.object.obj === 'table');
  if (addsTable) return [destroy(tableObj())];
  const addedChains = new Set(commands.flatMap((c) => (c.verb === 'add' && c.object.obj === 'chain' ? [c.object.name] : [])));
  const out: NftCommand[] = [];
  for (const c of [...commands].reverse()) {
    if (c.verb === 'flush') continue;
    if (c.verb !== 'add')
      throw new PluginError('INTERNAL', `an nft change with "${c.verb} ${c.object.obj} ${nameOf(c.object)}" has no reverse`);
    if (c.object.obj === 'rule') {
      if (addedChains.has(c.object.chain)) continue;
      throw new PluginError('INTERNAL', `an nft change adding a rule to chain ${c.object.chain}, which it does not add, has no reverse`);
    }
    out.push(destroy(c.object));
  }
  return out;
}

/**
 * Something an nft change touches (plan/step.ts Resource): `link:` an interface name, `addr:` a
 * bare address, `port:` proto/port. Read from the typed fields: element keys and values are
 * atoms joined by " . " (names quoted, addresses bare, a published port is `proto . port`), and
 * a rule names interfaces only in quotes.
 */
export type NftResource = `link:${string}` | `addr:${string}` | `port:${string}`;

const PROTOS = new Set(['tcp', 'udp', 'sctp']);

function atomsOf(text: string, out: NftResource[]): void {
  const atoms = text.split(' . ');
  atoms.forEach((a, i) => {
    if (a.length > 1 && a.startsWith('"') && a.endsWith('"')) out.push(`link:${a.slice(1, -1)}`);
    else if (PROTOS.has(a) && /^\d+$/.test(atoms[i + 1] ?? '')) out.push(`port:${a}/${atoms[i + 1] as string}`);
    else if (!a.includes('/') && parseIp(a)) out.push(`addr:${a}`);
  });
}

export function nftResources(commands: readonly NftCommand[]): NftResource[] {
  const out: NftResource[] = [];
  for (const { object: o } of commands) {
    if (o.obj === 'element') {
      for (const it of o.items) {
        atomsOf(it.key, out);
        if (it.value !== undefined) atomsOf(it.value, out);
      }
    } else if (o.obj === 'rule') {
      for (const word of o.rule.text.split(/[\s,{}]+/))
        if (word.length > 1 && word.startsWith('"') && word.endsWith('"')) out.push(`link:${word.slice(1, -1)}`);
    }
  }
  return out;
}
