/**
 * This host's lost addresses (issue 22, finding 4): held in its journal, claimed by another node
 * in etcd. Found two ways: by a convergence's plan from the followed claims (converge.ts), and
 * at the write, when etcd refuses an endpoint record because its address's claim is not this
 * node's (cluster/claim-guard.ts) while the followed copy of the claims is a moment behind.
 */
import type { Logger } from 'pino';
import { ClaimNotOursError } from '../cluster/claim-guard.js';
import type { AgentCore } from './agent-core.js';
import type { LostAddress } from './converge.js';

/**
 * Keeps the lost addresses of a network and says so loudly when they change: two hosts use one
 * address, and only an operator can say which container keeps it.
 */
export function lostChanged(a: AgentCore, cluster: string, lost: readonly LostAddress[], log: Logger): void {
  const before = (a.lost.get(cluster) ?? []).map((l) => l.address).join();
  if (lost.length === 0) a.lost.delete(cluster);
  else a.lost.set(cluster, lost);
  if (lost.map((l) => l.address).join() === before) return;
  if (lost.length > 0)
    log.error(
      { lost },
      'cluster: addresses this host uses are claimed by another node in etcd (was this host forgotten while away?); their containers are no longer published to the other hosts: remove them, or the other node’s',
    );
  else log.info('cluster: no address of this host is claimed by another node any more');
}

/** Both lists as one, each address once, sorted. */
export function withLost(lost: readonly LostAddress[], more: readonly LostAddress[]): LostAddress[] {
  const by = new Map([...lost, ...more].map((l) => [l.address, l]));
  return [...by.values()].sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0));
}

/**
 * What a refused publish means. Another node's claim: the address is lost (answered, to be kept
 * with the others). No claim at all (forgotten, nobody took it yet): not lost, the next
 * convergence claims it again from a fresh copy. Any other error is not a refusal: undefined.
 */
export function refusal(err: unknown, log: Logger): { readonly lost?: LostAddress } | undefined {
  if (!(err instanceof ClaimNotOursError)) return undefined;
  if (err.holder !== undefined) return { lost: { address: err.address, holder: err.holder } };
  log.warn(
    { err: err.message },
    'cluster: an endpoint record was not published, its address has no claim in etcd; the next convergence claims it again',
  );
  return {};
}

/** A refused publish outside a convergence (a request, a new name): the address joins the network's lost ones. */
export function refusedAtPublish(a: AgentCore, cluster: string, err: unknown, log: Logger): void {
  const r = refusal(err, log);
  if (r?.lost) lostChanged(a, cluster, withLost(a.lost.get(cluster) ?? [], [r.lost]), log);
}
