/**
 * mynet's own nftables table, `inet mynet`: outbound masquerade, isolation, internal networks and
 * published ports. We never edit a table we do not own; the only rules outside it are the FORWARD
 * hook (host/forward-hook.ts). What the table holds is decided in nft-model.ts and rendered to
 * scripts in nft-render.ts; this module is what the rest of mynet imports, plus the published
 * ports' element script (their elements come from plan/ports.ts).
 */
import { TABLE } from './nft-model.js';
import { declareSetLines } from './nft-render.js';
import type { HostOp } from './step.js';

export { TABLE, type NftNetwork, nftNetwork } from './nft-model.js';
export { baseScript, networkScript, networkTeardownScript, tableTeardownScript } from './nft-render.js';

/** One published port as map elements: which map, its key and its value. */
export interface PortElement {
  readonly map: 'pub4' | 'pub4any' | 'pub6' | 'pub6any';
  readonly key: string;
  readonly value: string;
}

export function portElementsScript(op: 'add' | 'delete', els: readonly PortElement[]): string {
  // Grouped by map in one pass (a list copied per element made 20 000 elements quadratic).
  const byMap = new Map<string, PortElement[]>();
  for (const e of els) {
    const list = byMap.get(e.map);
    if (list) list.push(e);
    else byMap.set(e.map, [e]);
  }
  const out: string[] = op === 'delete' ? declareSetLines(byMap.keys()) : [];
  for (const [map, list] of byMap) {
    const add = `add element ${TABLE} ${map} { ${list.map((e) => `${e.key} : ${e.value}`).join(', ')} }`;
    // add-then-delete keeps a delete idempotent.
    out.push(add);
    if (op === 'delete') out.push(`delete element ${TABLE} ${map} { ${list.map((e) => e.key).join(', ')} }`);
  }
  return out.join('\n');
}

/**
 * A teardown script as an op: when it fails because mynet's table is gone (`nft delete table`,
 * `nft flush ruleset`), what it would remove is gone with it, and the executor counts it done.
 */
export const nftTeardown = (script: string): HostOp => ({ kind: 'nft', script, ifTable: TABLE });
