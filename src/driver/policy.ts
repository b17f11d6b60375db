/**
 * Network policy decisions (issue 25), pure: apply and remove policies, resolve the network a
 * policy names, and the one step that brings a network's policy objects in mynet's table from
 * what the state held to what it holds after a change (an endpoint made or deleted, a policy
 * applied or removed). Every such change is one nft transaction (plan/nft-render.ts).
 */
import { PluginError, invalid } from '../errors.js';
import { bareAddress } from '../rules/address.js';
import { endpointLabels } from '../rules/label.js';
import type { PlannedDecision } from '../decision.js';
import { compileNetwork, membershipOf, type PolicyEndpoint } from '../policy/compile.js';
import type { Policy } from '../policy/document.js';
import { networkCommands, nftNetwork, nftOp, policyUpdateCommands } from '../plan/nft.js';
import { endpointPolicyElements, policyElementCommands } from '../plan/policy-delta.js';
import { policyDestroyCommands, policyModel } from '../plan/policy-model.js';
import { type PolicyObjects, policyCounter, policyObjects } from '../plan/policy-nft.js';
import type { HostStep } from '../plan/step.js';
import { bridgeNetfilterSteps } from '../plan/sysctl.js';
import { add, chainObj, del, flush } from '../plan/nft-change.js';
import type { Change, ClusterPolicyInput, EndpointRecord, NetworkRecord, PolicyRecord, StateView } from './state.js';

type PolicyView = Pick<StateView, 'endpoints' | 'policies' | 'clusterPolicy'>;

const endpointsOf = (s: PolicyView, networkId: string): EndpointRecord[] =>
  [...s.endpoints.values()].filter((e) => e.networkId === networkId);

export const policiesOf = (s: Pick<StateView, 'policies'>, networkId: string): PolicyRecord[] =>
  [...s.policies.values()].filter((p) => p.networkId === networkId);

const policyEndpoint = (e: EndpointRecord): PolicyEndpoint => ({
  addresses: [e.address, e.addressV6].flatMap((a) => (a ? [bareAddress(a)] : [])),
  // Driver-opt labels and the container's (issue 25: a driver option wins a clash).
  labels: endpointLabels(e),
});

/**
 * The network's policy objects, or undefined while no policy names it (its chains then jump
 * nowhere). A cluster network's policies are etcd's, and its sources include the other hosts'
 * endpoints (issue 25): the same compilation and rendering as a local network's.
 */
export function policyObjectsOf(s: PolicyView, networkId: string): PolicyObjects | undefined {
  const c = s.clusterPolicy?.get(networkId);
  const ps = [...policiesOf(s, networkId), ...(c?.policies ?? [])];
  if (ps.length === 0) return undefined;
  return policyObjects(networkId, compileNetwork(ps, [...endpointsOf(s, networkId).map(policyEndpoint), ...(c?.remote ?? [])]));
}

/** The endpoints and policies as they are once `changes` are applied (the state itself is left alone). */
function after(s: PolicyView, changes: readonly Change[]): PolicyView {
  const endpoints = new Map(s.endpoints);
  const policies = new Map(s.policies);
  for (const c of changes) {
    if (c.op === 'endpoint.put') endpoints.set(c.endpoint.id, c.endpoint);
    else if (c.op === 'endpoint.delete') endpoints.delete(c.id);
    else if (c.op === 'policy.put') policies.set(c.policy.name, c.policy);
    else if (c.op === 'policy.delete') policies.delete(c.name);
  }
  return { endpoints, policies, ...(s.clusterPolicy && { clusterPolicy: s.clusterPolicy }) };
}

const same = (a: PolicyObjects | undefined, b: PolicyObjects | undefined): boolean =>
  JSON.stringify(a, (_k, v: unknown) => (v instanceof Map ? [...v] : v)) ===
  JSON.stringify(b, (_k, v: unknown) => (v instanceof Map ? [...v] : v));

/** From the objects `from` to `to`: the jump comes with the first policy and goes with the last. */
function transition(n: NetworkRecord, from: PolicyObjects | undefined, to: PolicyObjects | undefined): ReturnType<typeof nftOp> {
  if (from && to) return nftOp(policyUpdateCommands(to, from));
  // The network's chains are rewritten in the same transaction as the policy chain they jump to.
  if (to) return nftOp(networkCommands(nftNetwork(n, to)));
  if (!from) return nftOp(networkCommands(nftNetwork(n)));
  // The jump goes first, then the chain (emptied: nft deletes no chain with rules), then its sets.
  const c = chainObj(policyModel(from).chain.name);
  return nftOp([...networkCommands(nftNetwork(n)), add(c), flush(c), del(c), ...policyDestroyCommands(policyModel(from))]);
}

/**
 * The step that brings network `n`'s policy objects from the state `s` to the state after
 * `changes`, with its undo (the same step back); none when nothing of them changes.
 */
export function policyStep(s: PolicyView, n: NetworkRecord | undefined, changes: readonly Change[]): HostStep[] {
  if (!n) return [];
  const quick = endpointElementsStep(s, n, changes);
  if (quick) return quick;
  return stepBetween(n, policyObjectsOf(s, n.id), policyObjectsOf(after(s, changes), n.id));
}

/**
 * The step that brings cluster network `n`'s policy objects from the state `s` to etcd's news
 * `input` (policies, or the other hosts' endpoints, changed); none when nothing of them changes.
 */
export function clusterPolicyStep(s: PolicyView, n: NetworkRecord, input: ClusterPolicyInput): HostStep[] {
  const clusterPolicy = new Map(s.clusterPolicy);
  clusterPolicy.set(n.id, input);
  return stepBetween(n, policyObjectsOf(s, n.id), policyObjectsOf({ ...s, clusterPolicy }, n.id));
}

function stepBetween(n: NetworkRecord, before: PolicyObjects | undefined, next: PolicyObjects | undefined): HostStep[] {
  if (same(before, next)) return [];
  return [
    // Traffic between containers of one bridge meets the policy only through the bridge netfilter
    // hook, as ICC off needs it (no undo: a global switch other networks may rely on).
    ...(next ? bridgeNetfilterSteps(n.ipv6.length > 0) : []),
    { what: `update the network policy of ${n.bridge}`, run: transition(n, before, next), undo: transition(n, next, before) },
  ];
}

/**
 * policyStep for changes of endpoints alone (no policy applied or removed), the lifecycle's case:
 * only the changed endpoints' own elements move (plan/policy-delta.ts), read from the policies
 * and those endpoints, not from a compilation of the whole network (O(endpoints × policies) on
 * every request). Undefined when the whole comparison must decide: a policy changes, or an
 * address of the change is held by another endpoint of the network too (its elements must stay).
 */
function endpointElementsStep(s: PolicyView, n: NetworkRecord, changes: readonly Change[]): HostStep[] | undefined {
  if (changes.some((c) => c.op === 'policy.put' || c.op === 'policy.delete')) return undefined;
  // A cluster network's policies from etcd count as its own; the other hosts' endpoints are sources.
  const cluster = s.clusterPolicy?.get(n.id);
  const policies = [...policiesOf(s, n.id), ...(cluster?.policies ?? [])];
  if (policies.length === 0) return [];
  const ids = new Set(changes.flatMap((c) => (c.op === 'endpoint.put' ? [c.endpoint.id] : c.op === 'endpoint.delete' ? [c.id] : [])));
  const next = after(s, changes);
  const mine = (e: EndpointRecord | undefined): PolicyEndpoint | undefined => (e?.networkId === n.id ? policyEndpoint(e) : undefined);
  const pairs = [...ids].map((id) => [mine(s.endpoints.get(id)), mine(next.endpoints.get(id))] as const);
  const touched = new Set<string>();
  for (const side of [0, 1] as const) {
    const seen = new Set<string>();
    for (const a of pairs.flatMap((p) => p[side]?.addresses ?? [])) {
      if (seen.has(a)) return undefined;
      seen.add(a);
      touched.add(a);
    }
  }
  // One pass over the network's records, without building anything per endpoint (1 000 on every request).
  for (const e of s.endpoints.values())
    if (e.networkId === n.id && !ids.has(e.id))
      for (const a of [e.address, e.addressV6]) if (a !== undefined && touched.has(bareAddress(a))) return undefined;
  for (const r of cluster?.remote ?? []) for (const a of r.addresses) if (touched.has(a)) return undefined;
  const elements = (side: 0 | 1) =>
    pairs.flatMap((p) => {
      const e = p[side];
      return e ? endpointPolicyElements(n.id, e.addresses, membershipOf(policies, e.labels)) : [];
    });
  const [was, will] = [elements(0), elements(1)];
  const run = policyElementCommands(was, will);
  if (run.length === 0) return [];
  return [
    ...bridgeNetfilterSteps(n.ipv6.length > 0),
    { what: `update the network policy of ${n.bridge}`, run: nftOp(run), undo: nftOp(policyElementCommands(will, was)) },
  ];
}

/**
 * The stored network a policy's `network` names: its id (or an unambiguous prefix of 12 or
 * more), a cluster network's name, or Docker's name for it (`names`: id → name, read from the
 * Engine API by the caller when the Docker socket is on).
 */
export function resolveNetwork(s: Pick<StateView, 'networks'>, given: string, names: ReadonlyMap<string, string>): string {
  const nets = [...s.networks.values()];
  const exact = nets.find((n) => n.id === given);
  if (exact) return exact.id;
  const found = [
    ...new Set([
      ...(/^[0-9a-f]{12,}$/.test(given) ? nets.filter((n) => n.id.startsWith(given)) : []),
      ...nets.filter((n) => n.cluster?.name === given || names.get(n.id) === given),
    ]),
  ];
  if (found.length > 1) throw invalid('network', `${given} names ${found.length} mynet networks; give the network's id`);
  const one = found[0];
  if (!one)
    throw new PluginError(
      'NETWORK_NOT_FOUND',
      `network: no mynet network ${JSON.stringify(given)} (a name needs the Docker socket; an id or a cluster name always works)`,
    );
  return one.id;
}

/**
 * At most this many policies are stored (each is a chain's rules and sets in the kernel, every
 * policy change recompiles its network's, and an endpoint change matches its labels against each
 * of them): a script applying new names in a loop is refused rather than growing the journal and
 * the table without bound.
 */
export const MAX_POLICIES = 1024;

/** Applies policies (new, or replacing those of the same names), all or none. */
export function applyPolicies(
  s: StateView,
  policies: readonly Policy[],
  names: ReadonlyMap<string, string>,
): PlannedDecision<{ applied: string[] }> {
  const records = policies.map((p, i): PolicyRecord => {
    const networkId = resolveNetwork(s, p.network, names);
    // A cluster network's policies live in etcd, where every host reads them (clusterPolicies).
    if (s.networks.get(networkId)?.cluster)
      throw invalid(`policy[${i}].network`, `${p.network} is a cluster network: its policies are applied to etcd, not with local ones`);
    return { ...p, networkId };
  });
  const total = new Set([...s.policies.keys(), ...records.map((r) => r.name)]).size;
  if (total > MAX_POLICIES)
    throw invalid('policy', `${total} policies would be stored, at most ${MAX_POLICIES}: remove some first (mynet policy rm)`);
  const changes: Change[] = records.map((policy) => ({ op: 'policy.put', policy }));
  // A policy moved to another network leaves the old one too.
  const touched = new Set([...records.map((r) => r.networkId), ...records.flatMap((r) => s.policies.get(r.name)?.networkId ?? [])]);
  return { changes, plan: networkSteps(s, touched, changes), response: { applied: records.map((r) => r.name) } };
}

export function removePolicy(s: StateView, name: string): PlannedDecision<{ removed: string }> {
  const p = s.policies.get(name);
  if (!p) throw new PluginError('POLICY_NOT_FOUND', `policy: no policy named ${JSON.stringify(name)}`);
  const changes: Change[] = [{ op: 'policy.delete', name }];
  return { changes, plan: networkSteps(s, [p.networkId], changes), response: { removed: name } };
}

const networkSteps = (s: StateView, ids: Iterable<string>, changes: readonly Change[]): HostStep[] =>
  [...ids].flatMap((id) => policyStep(s, s.networks.get(id), changes));

/**
 * The packets each policy has dropped, from the kernel's named counters (name → packets): a
 * policy whose counter the table does not hold (flushed, not yet repaired) is left out rather
 * than shown as 0.
 */
export function policyDrops(s: Pick<StateView, 'policies' | 'clusterPolicy'>, counters: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  const cluster = [...(s.clusterPolicy ?? [])].flatMap(([networkId, c]) => c.policies.map((p) => ({ name: p.name, networkId })));
  for (const p of [...s.policies.values(), ...cluster]) {
    const n = counters.get(policyCounter(p.networkId, p.name));
    if (n !== undefined) out.set(p.name, n);
  }
  return out;
}

/**
 * The cluster network each of `policies` names, when every one names a cluster network
 * (written to etcd: multihost/agent.ts applyPolicies); undefined when none does (local ones).
 * A file mixing the two is refused: etcd and the journal cannot take it all or nothing.
 */
export function clusterPolicies(
  s: Pick<StateView, 'networks'>,
  policies: readonly Policy[],
  names: ReadonlyMap<string, string>,
): { cluster: string; policy: Policy }[] | undefined {
  const out = policies.map((p) => {
    const c = s.networks.get(resolveNetwork(s, p.network, names))?.cluster;
    return c && { cluster: c.name, policy: { ...p, network: c.name } };
  });
  const cluster = out.flatMap((x) => (x ? [x] : []));
  if (cluster.length === 0) return undefined;
  if (cluster.length < out.length)
    throw invalid('policy', 'a file applies policies of cluster networks (to etcd) or of local networks, not both: split it');
  return cluster;
}
