/**
 * What this host owes etcd for the cluster networks it left (issue 22, finding 7). A network
 * removed while etcd is away leaves this host's address claims and endpoint records there; the
 * convergence (convergence.ts) only looks at the networks the journal still has, so they stayed for
 * good. DeleteNetwork now writes a departure in the same journal line as the delete
 * (driver/network.ts); here each one is settled when etcd answers: every claim and endpoint
 * record of this node in that cluster is removed, each with a compare-and-delete
 * (cluster-store.ts releaseAddress/withdrawEndpoint: a record another host wrote since, or that
 * does not parse, is left alone), and only then is the departure deleted from the journal.
 *
 * A departure is moot once the network is made here again: createNetwork deletes it in the same
 * line as the network's put, and every write below checks, right before it is made, that the
 * journal still holds the departure (a claim of the cluster needs the network, so no claim of
 * the new network can be taken for the old one's).
 *
 * Last, this host's membership of the definition leaves, and the definition with it when no
 * other host has the network (finding 21, cluster/definition-members.ts): a departure made
 * while etcd is down removes the definition later, as it does the records.
 */
import type { Logger } from 'pino';
import type { ClusterStore } from '../cluster/cluster-store.js';
import type { StateView } from '../driver/state.js';
import { convergePlan, isEmptyPlan } from './converge.js';
import type { RefusalReason } from './trust.js';

export interface DepartureDeps {
  readonly store: ClusterStore;
  /** Every etcd call goes through it (the agent keeps track of whether etcd answers). */
  readonly call: <T>(p: Promise<T>) => Promise<T>;
  readonly state: () => StateView;
  /** Deletes the departure from the journal (plugin.ts departureSettled). */
  readonly settled: (cluster: string, log: Logger) => Promise<void>;
  readonly log: Logger;
  readonly onRefused?: (reason: RefusalReason) => void;
}

/** Whether the journal still says this host owes etcd the removal of its records in `cluster`. */
const owed = (state: StateView, cluster: string): boolean =>
  state.departures.has(cluster) && ![...state.networks.values()].some((n) => n.cluster?.name === cluster);

/** Settles each departure in turn; the first failure (etcd away) is thrown after the others ran. */
export async function settleDepartures(d: DepartureDeps): Promise<number> {
  const failures: unknown[] = [];
  let done = 0;
  for (const cluster of [...d.state().departures.keys()]) {
    const log = d.log.child({ cluster, departed: true });
    try {
      await settleOne(d, cluster, log);
      done++;
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw failures[0];
  return done;
}

async function settleOne(d: DepartureDeps, cluster: string, log: Logger): Promise<void> {
  if (owed(d.state(), cluster)) {
    const [claims, endpoints] = await Promise.all([d.call(d.store.listClaims(cluster)), d.call(d.store.listEndpoints(cluster))]);
    // Nothing of this cluster is this host's any more: every record of this node's goes.
    const plan = convergePlan(d.store.node, { addresses: new Set(), endpoints: [] }, { claims, endpoints });
    if (!isEmptyPlan(plan))
      log.info(
        { withdraw: plan.withdraw.length, release: plan.release.length },
        'cluster: removing what this host left in etcd of a cluster network it removed',
      );
    // Withdrawals first: no other host may claim an address while this host's record points at it.
    for (const id of plan.withdraw) if (owed(d.state(), cluster)) await d.call(d.store.withdrawEndpoint(cluster, id));
    for (const a of plan.release) if (owed(d.state(), cluster)) await d.call(d.store.releaseAddress(cluster, a));
    if (owed(d.state(), cluster)) {
      const left = await d.call(d.store.leaveNetwork(cluster));
      for (const problem of left.refused) {
        log.warn({ problem }, 'cluster: a membership of the network in etcd is refused (not counted as a member)');
        d.onRefused?.('bad-membership');
      }
      if (left.outcome.kind === 'removed') log.info('cluster: this host was the last to have the network: its definition left etcd');
      else if (left.outcome.kind === 'kept')
        log.info({ by: left.outcome.by }, 'cluster: the network is still had by other nodes: its definition stays');
    }
  }
  if (d.state().departures.has(cluster)) await d.settled(cluster, log);
}
