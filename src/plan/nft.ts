/**
 * mynet's own nftables table, `inet mynet`: outbound masquerade, isolation, internal networks and
 * published ports. We never edit a table we do not own; the only rules outside it are the FORWARD
 * hook (host/forward-hook.ts). What the table holds is decided in nft-model.ts, its changes are
 * built in nft-render.ts as typed commands (nft-change.ts); this module is what the rest of mynet
 * imports: the ops that carry a change to the executor, and the published ports' elements
 * (which come from plan/ports.ts).
 */
import { TABLE } from './nft-model.js';
import { type NftCommand, add, destroy, elementObj } from './nft-change.js';
import { declareSets } from './nft-render.js';
import type { HostOp } from './step.js';

export { TABLE, type NftNetwork, nftNetwork } from './nft-model.js';
export { baseCommands, networkCommands, networkTeardownCommands, policyUpdateCommands, tableTeardownCommands } from './nft-render.js';
export { reverse } from './nft-change.js';

/** One published port as map elements: which map, its key and its value. */
export interface PortElement {
  readonly map: 'pub4' | 'pub4any' | 'pub6' | 'pub6any';
  readonly key: string;
  readonly value: string;
}

/** Publishing adds the elements; unpublishing destroys them (absent ones, or their map, included). */
export function portElementCommands(op: 'add' | 'delete', els: readonly PortElement[]): NftCommand[] {
  // Grouped by map in one pass (a list copied per element made 20 000 elements quadratic).
  const byMap = new Map<string, PortElement[]>();
  for (const e of els) {
    const list = byMap.get(e.map);
    if (list) list.push(e);
    else byMap.set(e.map, [e]);
  }
  const out: NftCommand[] = op === 'delete' ? declareSets(byMap.keys()) : [];
  for (const [map, list] of byMap) {
    const o = elementObj(
      map,
      list.map((e) => ({ key: e.key, value: e.value })),
    );
    out.push(op === 'add' ? add(o) : destroy(o));
  }
  return out;
}

/** A change of mynet's table as an op: one nft transaction. */
export const nftOp = (commands: readonly NftCommand[]): HostOp => ({ kind: 'nft', table: TABLE, commands });

/**
 * A teardown change as an op: when it fails because mynet's table is gone (`nft delete table`,
 * `nft flush ruleset`), what it would remove is gone with it, and the executor counts it done.
 */
export const nftTeardown = (commands: readonly NftCommand[]): HostOp => ({ kind: 'nft', table: TABLE, commands, absentTableOk: true });
