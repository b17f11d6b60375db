/**
 * An endpoint record is put only while the claims of its addresses in etcd are this node's
 * (issue 22, finding 4): the compare and the put are one transaction (Kv.putIfValues). A host
 * forgotten while away and back decides its writes from followed copies of etcd, and a copy of
 * the claims a moment behind the endpoint records made it republish the record of an address
 * another node had claimed since. A claim gone or another node's refuses the write for good
 * (ClaimNotOursError: the address is lost, not a transient failure to retry).
 */
import { PluginError } from '../errors.js';
import { keys } from './keys.js';
import type { Kv, KvGuard } from './kv.js';
import { type NodeSelf, holderOf, ownedBy } from './owner.js';
import { readRecord } from './records.js';

/** The claim of an address a record names is not this node's: nothing of it is published. */
export class ClaimNotOursError extends PluginError {
  constructor(
    readonly cluster: string,
    readonly address: string,
    /** The claim's holder as holderOf shows it; undefined: no claim (or one that does not parse). */
    readonly holder: string | undefined,
  ) {
    super(
      'CONFLICT',
      `Address: ${address} of cluster network "${cluster}" is ${holder === undefined ? 'not claimed by this host' : `claimed by node ${holder}`} in etcd; its endpoint record is not published`,
    );
    this.name = 'ClaimNotOursError';
  }
}

export interface ClaimGuardContext {
  readonly kv: Kv;
  readonly node: NodeSelf;
  /** The values this store wrote or found its own, by key (ClusterStore.written): a first try costs no read. */
  readonly written: Map<string, string>;
}

/** The claim of `address` as etcd holds it now, if it is this node's; else ClaimNotOursError. */
async function ownClaim(x: ClaimGuardContext, cluster: string, address: string): Promise<KvGuard> {
  const key = keys.address(cluster, address);
  const it = await x.kv.get(key);
  const c = it && readRecord('address', key, it.value);
  if (!it || !c?.ok || !ownedBy(c.record, x.node)) {
    // Not ours: a compare-and-delete on the old value can only fail (releaseAddress reads then).
    x.written.delete(key);
    throw new ClaimNotOursError(cluster, address, c?.ok ? holderOf(c.record) : undefined);
  }
  x.written.set(key, it.value);
  return { key, value: it.value };
}

/** Reads and tries after the first: each failure is a claim rewritten in between (by its own host, or any etcd writer). */
export const GUARDED_PUT_TRIES = 8;

/**
 * Puts the record `key` only while every address's claim is this node's. The first try compares
 * with the claims this store knows it holds; a failed compare reads them again (a claim moved
 * to this host's new name is still its own) and tries again, until the put is made, a claim is
 * not ours, or GUARDED_PUT_TRIES reads have each been outdated by a rewrite: then a transient
 * CLUSTER_UNAVAILABLE (the next convergence publishes), so a writer rewriting a claim without
 * end cannot hold a publish in a loop.
 */
export async function putWhileClaimed(
  x: ClaimGuardContext,
  cluster: string,
  addresses: readonly string[],
  key: string,
  value: string,
): Promise<void> {
  const cached = addresses.map((a) => ({ key: keys.address(cluster, a), value: x.written.get(keys.address(cluster, a)) }));
  if (cached.every((g): g is KvGuard => g.value !== undefined) && (await x.kv.putIfValues(key, value, cached))) return;
  for (let tries = 0; tries < GUARDED_PUT_TRIES; tries++) {
    const guards: KvGuard[] = [];
    for (const a of addresses) guards.push(await ownClaim(x, cluster, a));
    if (await x.kv.putIfValues(key, value, guards)) return;
  }
  throw new PluginError(
    'CLUSTER_UNAVAILABLE',
    `cluster: the claim of ${addresses.join(', ')} in cluster network "${cluster}" changed at each of ${GUARDED_PUT_TRIES} tries; its endpoint record is published later`,
  );
}
