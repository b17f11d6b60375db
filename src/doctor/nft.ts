/**
 * The doctor's view of mynet's nft table, pure: what the model (plan/nft-model.ts) says the
 * table holds for the stored networks and endpoints, against what `nft -j` shows
 * (host/nft-json.ts). Base chains are compared by hook and by their rules' fingerprints, in
 * order; each network by its two chains and its elements; published ports by their elements.
 * Both sides come from the same model, so a repaired table compares clean.
 */
import type { NetworkRecord, StateView } from '../driver/state.js';
import { policyObjectsOf } from '../driver/policy.js';
import { policyChain } from '../plan/policy-nft.js';
import { formatIp, parseIp } from '../ip/address.js';
import type { NftTable } from '../host/nft-json.js';
import { short } from '../plan/link-names.js';
import {
  BASE_CHAINS,
  BASE_SETS,
  RETIRED_CHAINS,
  TABLE,
  type NftChain,
  egressChain,
  ingressChain,
  networkObjects,
  nftNetwork,
} from '../plan/nft-model.js';
import { baseCommands, networkCommands, nftOp, portElementCommands } from '../plan/nft.js';
import { add, chainObj, del, elementObj, flush } from '../plan/nft-change.js';
import { portElements } from '../plan/ports.js';
import type { HostPlan } from '../plan/step.js';
import { contains, parseCidr } from '../ip/cidr.js';
import type { Difference } from './difference.js';

type NftDifference = Difference;

/** The names networkObjects gives a network's own chains: egress-/ingress- and 12 hex digits. */
const PER_NETWORK_CHAIN = /^(egress|ingress|policy)-[0-9a-f]{12}$/;

const baseFix: HostPlan = [{ what: 'program the base of the mynet table', run: nftOp(baseCommands()) }];

const firewallFix = (state: StateView, n: NetworkRecord): HostPlan => [
  {
    what: `program the firewall of ${n.bridge}`,
    run: nftOp([...baseCommands(), ...networkCommands(nftNetwork(n, policyObjectsOf(state, n.id)))]),
  },
];

/** A port element's key ("tcp . 8080", "127.0.0.1 . tcp . 8081") as an operator reads it: "8080/tcp", "127.0.0.1:8081/tcp". */
function portName(key: string): string {
  const parts = key.split(' . ');
  const [proto, port] = parts.slice(-2);
  const ip = parts.length === 3 ? (parts[0] as string) : undefined;
  return `${ip ? `${ip.includes(':') ? `[${ip}]` : ip}:` : ''}${port}/${proto}`;
}

/** An element's text with its addresses in canonical form, as nft prints them back. */
const canonical = (el: string): string =>
  el
    .split(' : ')
    .map((side) =>
      side
        .split(' . ')
        .map((part) => {
          const a = part.includes(':') || /^\d+\.\d+\.\d+\.\d+$/.test(part) ? parseIp(part) : undefined;
          return a ? formatIp(a) : part;
        })
        .join(' . '),
    )
    .join(' : ');

const keyOf = (el: string): string => (el.includes(' : ') ? el.slice(0, el.indexOf(' : ')) : el);
const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Why a chain differs from the model, or undefined when it does not. */
function chainDrift(c: NftChain, t: NftTable): string | undefined {
  if (!t.chains.has(c.name)) return 'is missing';
  const hook = t.hooks.get(c.name);
  if (
    c.hook &&
    (!hook || hook.type !== c.hook.type || hook.hook !== c.hook.hook || hook.prio !== c.hook.prio || hook.policy !== 'accept')
  ) {
    return `hooks ${hook ? `${hook.type} ${hook.hook} at priority ${hook.prio}, policy ${hook.policy}` : 'nothing'}, not ${c.hook.type} ${c.hook.hook} at priority ${c.hook.prio}, policy accept`;
  }
  if (
    !sameList(
      t.rules.get(c.name) ?? [],
      c.rules.map((r) => r.id),
    )
  )
    return 'its rules are not as mynet writes them';
  return undefined;
}

/** The table's own objects: maps and sets, base chains, and no chain a newer mynet retired. */
function baseDifferences(t: NftTable): NftDifference[] {
  const out: NftDifference[] = [];
  for (const s of BASE_SETS) {
    const seen = t.sets.get(s.name);
    const detail = !seen
      ? 'is missing'
      : seen.kind !== s.kind || seen.type !== s.type || seen.interval !== s.interval
        ? `is a ${seen.kind} of ${seen.type}, not a ${s.kind} of ${s.type}`
        : undefined;
    if (detail) out.push({ kind: seen ? 'drift' : 'missing', object: `nft ${s.kind} ${s.name}`, detail, fix: baseFix });
  }
  for (const c of BASE_CHAINS) {
    const detail = chainDrift(c, t);
    if (detail) out.push({ kind: detail === 'is missing' ? 'missing' : 'drift', object: `nft chain ${c.name}`, detail, fix: baseFix });
  }
  for (const name of RETIRED_CHAINS) {
    if (t.chains.has(name)) out.push({ kind: 'drift', object: `nft chain ${name}`, detail: 'was left by an older mynet', fix: baseFix });
  }
  return out;
}

/** The stored network whose subnet holds a port element's target ("10.1.0.2 . 80"), if any. */
function networkOfTarget(state: StateView, element: string): NetworkRecord | undefined {
  const addr = parseIp(element.slice(element.indexOf(' : ') + 3).split(' . ')[0] ?? '');
  if (!addr) return undefined;
  return [...state.networks.values()].find((n) =>
    [...n.ipv4, ...n.ipv6].some((s) => {
      const c = parseCidr(s.pool);
      return c.ok && contains(c.cidr, addr);
    }),
  );
}

/** Everything of the table for the stored state, with each difference's repair. */
export function nftDifferences(state: StateView, t: NftTable | undefined): NftDifference[] {
  if (!t) {
    if (state.networks.size === 0) return [];
    const ports = [...state.endpoints.values()].flatMap((e) => portElements(e, e.ports));
    return [
      {
        kind: 'missing',
        object: `nft table ${TABLE}`,
        detail: 'the table is gone (a firewall flush?)',
        fix: [
          ...[...state.networks.values()].flatMap((n) => firewallFix(state, n)),
          ...(ports.length ? [{ what: 'publish every port again', run: nftOp(portElementCommands('add', ports)) }] : []),
        ],
      },
    ];
  }
  const out: NftDifference[] = state.networks.size > 0 ? baseDifferences(t) : [];
  const expected = new Map<string, Set<string>>();
  const expect = (set: string, el: string): void => {
    expected.set(set, (expected.get(set) ?? new Set()).add(el));
  };
  // Sets, not lists: a host with 20 000 published ports must not cost 20 000² comparisons.
  const seen = new Map([...t.elements].map(([set, els]) => [set, new Set(els)]));
  const has = (set: string, el: string): boolean => seen.get(set)?.has(el) ?? false;

  /** The published ports of network n's endpoints, each in its map. */
  const portDifferences = (n: NetworkRecord): void => {
    for (const e of [...state.endpoints.values()].filter((x) => x.networkId === n.id)) {
      for (const p of portElements(e, e.ports)) {
        const el = canonical(`${p.key} : ${p.value}`);
        expect(p.map, el);
        if (!has(p.map, el)) {
          out.push({
            kind: 'missing',
            scope: 'ports',
            object: `port ${portName(p.key)}`,
            detail: `published port of ${short(e.id)} is not in ${p.map}`,
            fix: [
              {
                what: `publish ${portName(p.key)}`,
                run: nftOp([add(elementObj(p.map, [{ key: keyOf(el), value: el.slice(keyOf(el).length + 3) }]))]),
              },
            ],
          });
        }
      }
    }
  };

  for (const n of state.networks.values()) {
    const o = networkObjects(nftNetwork(n, policyObjectsOf(state, n.id)));
    const els = o.elements.map((e) => [e.set, e.value === undefined ? e.key : `${e.key} : ${e.value}`] as const);
    els.forEach(([set, el]) => expect(set, el));
    // A cluster network's policies are etcd's (issue 25), not the journal's: after a start, until
    // its plane has read them, the policy the table holds is kept, not compared. Repaired towards
    // "no policy" (the start's reconcile knows only the journal), the network would be open to
    // every source until etcd answers. Its published ports below are still compared.
    if (n.cluster && !state.clusterPolicy?.has(n.id) && t.chains.has(policyChain(n.id))) {
      portDifferences(n);
      continue;
    }
    const chainsGone = o.chains.some((c) => !t.chains.has(c.name));
    const gone = chainsGone || o.sets.some((x) => !t.sets.has(x.name));
    const drift = o.chains.flatMap((c) => (chainDrift(c, t) ? [c.name] : []));
    const missing = els.filter(([set, el]) => !has(set, el));
    // An address left in a policy set would keep access no record gives it: drift, refilled.
    const extra = o.sets.flatMap((x) =>
      [...(seen.get(x.name) ?? [])].filter((el) => !expected.get(x.name)?.has(el)).map((el) => `${x.name} ${el}`),
    );
    if (extra.length && !gone && !missing.length) drift.push(`sets (${extra.join(', ')} no record explains)`);
    if (gone || missing.length) {
      out.push({
        kind: 'missing',
        object: `firewall of ${n.bridge}`,
        detail: gone
          ? `its ${chainsGone ? 'chains' : 'policy sets'} are missing`
          : `missing ${missing.map(([set, el]) => `${set} ${el}`).join(', ')}`,
        fix: firewallFix(state, n),
      });
    } else if (drift.length) {
      out.push({
        kind: 'drift',
        object: `firewall of ${n.bridge}`,
        detail: `the rules of ${drift.join(', ')} are not as mynet writes them`,
        fix: firewallFix(state, n),
      });
    }
    portDifferences(n);
  }
  // A network's chains that no record knows (its network was deleted while its teardown could
  // not run, or the state was lost): orphans, with the map elements that jump to them, which
  // must go first (nft refuses to delete a chain still referenced).
  const known = new Set([...state.networks.values()].flatMap((n) => [egressChain(n.id), ingressChain(n.id), policyChain(n.id)]));
  const orphanChains = [...t.chains].filter((c) => PER_NETWORK_CHAIN.test(c) && !known.has(c)).sort();
  const jumpsTo = (c: string): [string, string][] =>
    ['egress', 'ingress'].flatMap((set) =>
      [...(t.elements.get(set) ?? [])]
        .filter((el) => el.endsWith(` : jump ${c}`) || el.endsWith(` : goto ${c}`))
        .map((el) => [set, el] as [string, string]),
    );
  const takenWithChain = new Set<string>();
  for (const c of orphanChains) {
    const refs = jumpsTo(c);
    refs.forEach(([set, el]) => takenWithChain.add(`${set} ${el}`));
    const commands = [...refs.map(([set, el]) => del(elementObj(set, [{ key: keyOf(el) }]))), flush(chainObj(c)), del(chainObj(c))];
    out.push({
      kind: 'orphan',
      object: `nft chain ${c}`,
      detail: `in mynet's table but no record has network ${c.slice(c.indexOf('-') + 1)}`,
      fix: [{ what: `remove chain ${c}`, run: nftOp(commands) }],
    });
  }
  // Only the maps keyed by records are judged: an unknown subnet in a shared set is not listed.
  for (const [set, els] of t.elements) {
    if (!/^(pub[46](any)?|egress|ingress)$/.test(set)) continue;
    for (const el of els) {
      if (expected.get(set)?.has(el) || takenWithChain.has(`${set} ${el}`)) continue;
      const key = keyOf(el);
      const fix: HostPlan = [{ what: `remove ${set} ${key}`, run: nftOp([del(elementObj(set, [{ key }]))]) }];
      // A published port into a stored network that no record publishes: a crash between the
      // nft change and the save (it would block that host port for good).
      const into = set.startsWith('pub') ? networkOfTarget(state, el) : undefined;
      if (into)
        out.push({
          kind: 'leftover',
          scope: 'ports',
          object: `${set} element ${key}`,
          detail: `points into network ${short(into.id)} but no record publishes it`,
          fix,
        });
      else out.push({ kind: 'orphan', object: `${set} element ${key}`, detail: "in mynet's table but in no record", fix });
    }
  }
  return out;
}
