/**
 * The WireGuard part of the doctor (issue 24), pure: the peers this host believes from etcd
 * (peer-record.ts judgePeers) against the peers its interface holds, each
 * difference with the `wg` steps that repair it (run by the executor, multihost/wireguard/host.ts).
 *
 * Only mynet's own interface is compared: one of the configured name that lacks mynet's alias
 * (plan/link-names.ts WIREGUARD_ALIAS) is someone else's, listed and never touched. While etcd is
 * not followed (no judgement), nothing is compared, so nothing is removed on stale knowledge.
 */
import { WIREGUARD_ALIAS } from '../../plan/link-names.js';
import type { HostPlan } from '../../plan/step.js';
import type { ObservedPeer, WgCommand } from './peer-plan.js';
import { endpointOf, peerDrift, removePeerCommand, setPeerCommand } from './peer-plan.js';
import type { Judged } from './peer-record.js';
import type { Difference } from '../../doctor/difference.js';

/** The interface as `ip -j link show` gave it: absent, or present with its alias. */
export type WgLink = { readonly present: false } | { readonly present: true; readonly alias: string | undefined };

const steps = (what: string, cmds: readonly WgCommand[]): HostPlan => cmds.map((c) => ({ what, run: { kind: 'wg', args: c.slice(1) } }));

const keyText = (k: string): string => `${k.slice(0, 8)}…`;

export function wireguardDifferences(
  iface: string,
  link: WgLink,
  judged: Judged | undefined,
  observed: ReadonlyMap<string, ObservedPeer>,
): Difference[] {
  const object = `wireguard ${iface}`;
  if (!link.present)
    return [{ kind: 'missing', object, detail: 'the interface is gone (the next encrypted network or a restart makes it again)', fix: [] }];
  if (link.alias !== WIREGUARD_ALIAS)
    return [
      {
        kind: 'orphan',
        object,
        detail: `does not carry mynet's alias "${WIREGUARD_ALIAS}" (it has ${link.alias === undefined ? 'none' : JSON.stringify(link.alias)}): not mynet's, not compared and not touched`,
        fix: [],
      },
    ];
  if (!judged) return [];
  const out: Difference[] = [];
  const believed = new Set(judged.peers.map((p) => p.publicKey));
  // A key no record names, at a believed peer's endpoint, is that peer holding an old or wrong key.
  const strangers = [...observed.entries()].filter(([k]) => !believed.has(k)).sort(([a], [b]) => a.localeCompare(b));
  const replaced = new Set<string>();
  for (const p of judged.peers) {
    const peer = `${object} peer of node ${p.node}`;
    const o = observed.get(p.publicKey);
    if (o) {
      const drift = peerDrift(p, o);
      if (drift) out.push({ kind: 'drift', object: peer, detail: drift, fix: steps(`${peer} as etcd says`, [setPeerCommand(iface, p)]) });
      continue;
    }
    const old = strangers.find(([k, s]) => !replaced.has(k) && s.endpoint === endpointOf(p));
    if (old) {
      replaced.add(old[0]);
      out.push({
        kind: 'drift',
        object: peer,
        detail: `holds key ${keyText(old[0])}, not ${keyText(p.publicKey)} (etcd's)`,
        fix: steps(`${peer} with etcd's key`, [removePeerCommand(iface, old[0]), setPeerCommand(iface, p)]),
      });
    } else
      out.push({
        kind: 'missing',
        object: peer,
        detail: `not on the interface: etcd says ${keyText(p.publicKey)} at ${endpointOf(p)}`,
        fix: steps(`${peer} as etcd says`, [setPeerCommand(iface, p)]),
      });
  }
  for (const [k, s] of strangers)
    if (!replaced.has(k))
      out.push({
        kind: 'orphan',
        object: `${object} peer ${keyText(k)}`,
        detail: `no believed record has this key (endpoint ${s.endpoint ?? 'none'}): --fix removes it`,
        fix: steps(`${object}: remove peer ${keyText(k)}`, [removePeerCommand(iface, k)]),
      });
  for (const r of judged.refused)
    out.push({
      kind: 'orphan',
      object: `${object} record of node ${r.record.node}`,
      detail: `refused (${r.reason}): ${r.detail}`,
      fix: [],
    });
  return out;
}
