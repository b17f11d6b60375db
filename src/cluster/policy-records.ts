/**
 * A cluster network's policies in etcd (issue 25): one key per policy under
 * keys.policies(cluster), its value the same document a local policy is (policy/document.ts),
 * with `network` the cluster's name. Any etcd writer can write one, as any record, so each is
 * checked in full on every read, like a policy from the command line: a value that does not
 * check is refused as a whole (logged, listed by the doctor) and never reaches the kernel.
 */
import { parsePolicy, POLICY_LIMITS, policyDocument, type Policy } from '../policy/document.js';
import { invalid, messageOf, PluginError } from '../errors.js';
import type { Kv } from './kv.js';
import { keys, parseKey } from './keys.js';
import type { Checked } from './records.js';

/** A policy's bytes in etcd: the bound of a policy file (a stored one is never larger than the file it came from). */
export const POLICY_RECORD_MAX_BYTES = POLICY_LIMITS.bytes;

export function readPolicyRecord(key: string, bytes: string): Checked<Policy> {
  const where = parseKey(key);
  if (!where || where.kind !== 'policy') return { ok: false, problem: `${key}: not a policy key` };
  if (bytes.length > POLICY_RECORD_MAX_BYTES)
    return { ok: false, problem: `${key}: ${bytes.length} bytes, over the ${POLICY_RECORD_MAX_BYTES} a policy takes` };
  let data: unknown;
  try {
    data = JSON.parse(bytes);
  } catch {
    return { ok: false, problem: `${key}: not JSON` };
  }
  let p: Policy;
  try {
    p = parsePolicy('policy', data);
  } catch (err) {
    return { ok: false, problem: `${key}: ${messageOf(err)}` };
  }
  // The key is the policy's identity: a value naming another policy or network is not this one.
  if (p.name !== where.name || p.network !== where.cluster)
    return { ok: false, problem: `${key}: the policy names ${p.name} of network ${p.network}, not its key's` };
  return { ok: true, record: p };
}

/** The key and bytes of `p` as a policy of cluster network `cluster`, read back through the readers' check first. */
export function encodePolicyRecord(cluster: string, p: Policy): { key: string; value: string } {
  const key = keys.policy(cluster, p.name);
  const value = JSON.stringify(policyDocument({ ...p, network: cluster }));
  const back = readPolicyRecord(key, value);
  if (!back.ok) throw invalid('policy record', `this host would write a policy its readers refuse: ${back.problem}`);
  return { key, value };
}

/** The names of the policies etcd holds for `cluster` (those that do not check included: they take a key too). */
export async function policyNames(kv: Kv, cluster: string): Promise<string[]> {
  const prefix = keys.policies(cluster);
  return (await kv.list(prefix)).items.map((i) => i.key.slice(prefix.length));
}

/**
 * Writes `policies` of `cluster` (create-or-replace), refused as a whole when etcd would then
 * hold more than `max` (MAX_POLICIES): every host compiles each of them into its table. One put
 * per policy: etcd failing midway leaves those written, and applying the file again completes it.
 */
export async function putPolicies(kv: Kv, cluster: string, policies: readonly Policy[], max: number): Promise<void> {
  const records = policies.map((p) => encodePolicyRecord(cluster, p));
  const total = new Set([...(await policyNames(kv, cluster)), ...policies.map((p) => p.name)]).size;
  if (total > max)
    throw invalid('policy', `cluster network ${cluster} would hold ${total} policies, at most ${max}: remove some first (mynet policy rm)`);
  for (const r of records) await kv.put(r.key, r.value);
}

/** Deletes policy `name` of `cluster`; idempotent (absent: false). A write racing the delete is retried once, then refused. */
export async function deletePolicy(kv: Kv, cluster: string, name: string): Promise<boolean> {
  const key = keys.policy(cluster, name);
  for (let tries = 0; tries < 2; tries++) {
    const it = await kv.get(key);
    if (!it) return false;
    if (await kv.deleteIfAt(key, it.modRevision)) return true;
  }
  throw new PluginError('CONFLICT', `policy: ${name} of cluster network ${cluster} is being rewritten by another host; try again`);
}
