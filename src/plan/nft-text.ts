/**
 * The one place that writes firewall changes (nft-change.ts) as `nft -f` text: the executor
 * runs this text and plans print it, so a plan read as text is what nft is given. One command
 * per line (the executor's long-running `nft -i` takes a change as one line, joined by "; ").
 */
import { PluginError } from '../errors.js';
import type { NftCommand, NftItem, NftObject } from './nft-change.js';

const itemText = (it: NftItem): string => (it.value === undefined ? it.key : `${it.key} : ${it.value}`);

/** The object as `add` takes it: with its declaration (hook, type, comment, values). */
function declared(table: string, o: NftObject): string {
  switch (o.obj) {
    case 'table':
      return `table ${table}${o.comment !== undefined ? ` { comment "${o.comment}"; }` : ''}`;
    case 'chain':
      return `chain ${table} ${o.name}${o.hook ? ` { type ${o.hook.type} hook ${o.hook.hook} priority ${o.hook.prio}; policy accept; }` : ''}`;
    case 'set':
      return `${o.set.kind} ${table} ${o.set.name} { type ${o.set.type};${o.set.interval ? ' flags interval;' : ''} }`;
    case 'counter':
      return `counter ${table} ${o.name}`;
    case 'rule':
      return `rule ${table} ${o.chain} ${o.rule.text} comment "${o.rule.id}"`;
    case 'element':
      return `element ${table} ${o.set} { ${o.items.map(itemText).join(', ')} }`;
  }
}

/** The object as `flush` and `delete` name it: a set as `set` (nft takes it for maps too), elements by key. */
function named(table: string, o: NftObject): string {
  switch (o.obj) {
    case 'table':
      return `table ${table}`;
    case 'chain':
      return `chain ${table} ${o.name}`;
    case 'set':
      return `${o.set.kind} ${table} ${o.set.name}`;
    case 'counter':
      return `counter ${table} ${o.name}`;
    case 'rule':
      // nft removes a rule by its handle only; mynet never does (it flushes the chain).
      throw new PluginError('INTERNAL', `nft: a rule of ${o.chain} cannot be named on its own`);
    case 'element':
      return `element ${table} ${o.set} { ${o.items.map((it) => it.key).join(', ')} }`;
  }
}

function lines(table: string, c: NftCommand): string[] {
  const o = c.object;
  if (o.obj === 'element' && o.items.length === 0) return [];
  switch (c.verb) {
    case 'add':
      return [`add ${declared(table, o)}`];
    case 'flush':
      return [`flush ${named(table, o)}`];
    case 'delete':
      return [`delete ${named(table, o)}`];
    case 'destroy':
      // Add first, so the delete always finds it. The add of an absent table's object fails,
      // which the executor reads as "gone with its table" (HostOp absentTableOk).
      return [`add ${o.obj === 'table' ? `table ${table}` : declared(table, o)}`, `delete ${named(table, o)}`];
  }
}

/** The `nft -f` script of a change on `table` ('inet mynet'). */
export function nftScript(table: string, commands: readonly NftCommand[]): string {
  return commands.flatMap((c) => lines(table, c)).join('\n');
}
