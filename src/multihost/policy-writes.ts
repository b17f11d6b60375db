/**
 * `mynet policy apply` and `rm` on cluster networks (issue 25): the policies go to etcd, from
 * any host of the network, and every host follows them (policies.ts). Outside the request lock,
 * as every etcd write (finding 6): a slow etcd holds up no local request.
 */
import type { Logger } from 'pino';
import { deletePolicy, putPolicies } from '../cluster/policy-records.js';
import { MAX_POLICIES } from '../driver/policy.js';
import type { Policy } from '../policy/document.js';
import type { AgentCore } from './agent-core.js';

/** Writes each policy (create-or-replace) under its cluster network; answers their names. */
export async function applyPolicies(
  a: AgentCore,
  items: readonly { cluster: string; policy: Policy }[],
  log: Logger,
): Promise<{ applied: string[] }> {
  a.identityAccepted();
  const byCluster = new Map<string, Policy[]>();
  for (const i of items) byCluster.set(i.cluster, [...(byCluster.get(i.cluster) ?? []), i.policy]);
  for (const [cluster, ps] of byCluster) {
    await a.call(putPolicies(a.o.store.kv, cluster, ps, MAX_POLICIES));
    log.info({ cluster, policies: ps.map((p) => p.name) }, 'cluster: policies written to etcd');
  }
  return { applied: items.map((i) => i.policy.name) };
}

/** Deletes policy `name` from every cluster network this host is on; answers those that held it (none: it was gone). */
export async function removePolicy(a: AgentCore, name: string, log: Logger): Promise<string[]> {
  a.identityAccepted();
  const out: string[] = [];
  for (const cluster of new Set([...a.planes.values()].map((p) => p.binding.name)))
    if (await a.call(deletePolicy(a.o.store.kv, cluster, name))) out.push(cluster);
  log.info({ policy: name, clusters: out }, 'cluster: policy removed from etcd');
  return out;
}
