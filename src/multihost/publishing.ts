/**
 * This host's endpoint records in etcd (ClusterPort publish and withdraw) and the republishing
 * of the ones whose Docker names changed (namesChanged, for DNS on the other hosts). Its own file
 * so the record writes and the names last published (AgentCore.published) are read in one place.
 */
import type { Logger } from 'pino';
import { ClaimNotOursError } from '../cluster/claim-guard.js';
import type { ClusterBinding, EndpointRecord } from '../driver/state.js';
import { PluginError, messageOf } from '../errors.js';
import { bareAddress } from '../rules/address.js';
import { type Labels, endpointLabels } from '../rules/label.js';
import type { AgentCore } from './agent-core.js';
import { type RecordNames, namesKey, recordNames } from './dns-names.js';

/**
 * One string per published record's names and labels (AgentCore.published): what was published,
 * compared with what Docker says now (a new name, or container labels the follow learnt).
 */
export const publishedKey = (names: RecordNames, labels: Labels): string => JSON.stringify([namesKey(names), labels]);
import { refusedAtPublish } from './lost.js';

export async function publish(a: AgentCore, c: ClusterBinding, e: EndpointRecord, log: Logger): Promise<void> {
  if (!e.address)
    throw new PluginError('INVALID_REQUEST', `Interface.Address: an endpoint of cluster network "${c.name}" needs an IPv4 address`);
  a.identityAccepted();
  const names = recordNames(a.o.nameOf?.(e));
  const plane = a.planeOf(c);
  // Dual stack: the IPv6 address travels too (claimed in etcd as the IPv4 one, RequestAddress).
  const address6 = c.subnet6 !== undefined && e.addressV6 !== undefined ? bareAddress(e.addressV6) : undefined;
  plane?.ownEndpointAdded(e.id, bareAddress(e.address), e.mac, address6);
  try {
    const v6 = address6 !== undefined && { address6 };
    // Its labels travel so every host's policies can select it as a source (issue 25), its
    // container's too (rules/label.ts endpointLabels).
    const all = endpointLabels(e);
    const labels = Object.keys(all).length > 0 && { labels: all };
    await a.call(
      a.o.store.publishEndpoint({ cluster: c.name, id: e.id, address: bareAddress(e.address), ...v6, mac: e.mac, ...names, ...labels }),
    );
  } catch (err) {
    plane?.ownEndpointRemoved(e.id); // the request fails and is rolled back: no endpoint of ours
    refusedAtPublish(a, c.name, err, log); // etcd's claim of the address is another node's: shown as lost
    throw err;
  }
  a.published.set(e.id, publishedKey(names, endpointLabels(e)));
  log.debug({ cluster: c.name, endpoint: e.id }, 'cluster: endpoint published');
}

export function withdraw(a: AgentCore, c: ClusterBinding, endpointId: string, log: Logger): Promise<void> {
  a.published.delete(endpointId);
  a.planeOf(c)?.ownEndpointRemoved(endpointId);
  a.later(async () => {
    try {
      await a.call(a.o.store.withdrawEndpoint(c.name, endpointId));
    } catch (err) {
      log.warn(
        { err: messageOf(err), cluster: c.name, endpoint: endpointId },
        'cluster: withdrawal not in etcd yet; applied when etcd answers',
      );
    }
  });
  return Promise.resolve();
}

/**
 * Docker's names changed, or an endpoint's container labels (issue 25): republish the endpoints
 * whose name or labels are new (for DNS and policy on the other hosts), only if the endpoint
 * still exists when the put runs (a withdrawn endpoint must not come back). On the queue of releases and withdrawals, not under the request lock (finding
 * 6): a withdrawal asked after this is queued behind it. One put per renamed endpoint.
 * `publish` is the agent's (ClusterAgent.publish), as it was called before the split.
 */
export function namesChanged(a: AgentCore, publish: (c: ClusterBinding, e: EndpointRecord, log: Logger) => Promise<void>): void {
  const stale = (): EndpointRecord[] => {
    const state = a.o.state();
    return [...state.endpoints.values()].filter(
      (e) =>
        state.networks.get(e.networkId)?.cluster &&
        a.published.has(e.id) &&
        a.published.get(e.id) !== publishedKey(recordNames(a.o.nameOf?.(e)), endpointLabels(e)),
    );
  };
  if (stale().length === 0) return;
  a.later(async () => {
    const state = a.o.state();
    try {
      for (const e of stale()) {
        const c = state.networks.get(e.networkId)?.cluster;
        // A refused record (its address's claim is not ours) is shown as lost by publish itself.
        if (c)
          await publish(c, e, a.o.log).catch((err: unknown) => {
            if (!(err instanceof ClaimNotOursError)) throw err;
          });
      }
    } catch (err) {
      a.o.log.warn({ err: messageOf(err) }, 'cluster: a new container name or label is not in etcd yet; the next convergence publishes it');
    }
  });
}
