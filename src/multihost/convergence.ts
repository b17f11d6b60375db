/**
 * The scheduling and running of the convergence of this host's records in etcd with its journal
 * (the plan itself is converge.ts, the departures departures.ts): one at a time and at most one
 * waiting, each network on its own, its writes on the queue of releases and withdrawals, each
 * checked against the journal right before it is made. Its own file because it is the agent's
 * largest job; its state (convergeQueued, converging, departureRetry) lives in AgentCore.
 */
import type { Logger } from 'pino';
import { keys } from '../cluster/keys.js';
import type { ClusterBinding, NetworkRecord, StateView } from '../driver/state.js';
import { PluginError, messageOf } from '../errors.js';
import { formatIp, parseIp } from '../ip/address.js';
import { bareAddress } from '../rules/address.js';
import { type AgentCore, refOf } from './agent-core.js';
import { type ConvergePlan, convergePlan, isEmptyPlan, type LocalEndpoint, type LostAddress } from './converge.js';
import { recordNames } from './dns-names.js';
import { publishedKey } from './publishing.js';
import { endpointLabels } from '../rules/label.js';
import { settleDepartures } from './departures.js';
import { lostChanged, refusal, withLost } from './lost.js';

/**
 * One convergence at a time, and at most one waiting: they all read the latest journal.
 * `converge` and `scheduleConverge` are the agent's (ClusterAgent), as they were called before the split.
 */
export function scheduleConverge(a: AgentCore, converge: () => Promise<void>, again: () => void): void {
  if (a.convergeQueued || a.stopped) return;
  a.convergeQueued = true;
  setTimeout(() => {
    a.convergeQueued = false;
    // Not under the request lock (finding 6): each write checks the journal again right before
    // it is made, and runs on the queue of releases and withdrawals, in order with them.
    a.converging = a.converging
      .then(() => converge())
      .then(
        () => a.departureRetry.reset(),
        (err: unknown) => {
          a.o.log.warn({ err: messageOf(err) }, 'cluster: convergence with etcd failed; retrying at the next sync');
          // Departures have no follower whose resync would bring the next try: a timer does.
          if (a.o.state().departures.size === 0 || a.stopped) return;
          clearTimeout(a.departureTimer);
          a.departureTimer = setTimeout(() => again(), a.departureRetry.next());
        },
      );
  }, 50);
}

/**
 * Takes this host's records in etcd to what its journal says (converge.ts). Without the request
 * lock: the plan is decided on the state as it is (a synchronous read), and its writes check it
 * again (convergeWrites).
 * Each network on its own: one that fails (an unreadable record, a refused write) is logged
 * and the others still converge (issue 22, finding 12); the first failure is thrown at the end.
 */
export async function converge(a: AgentCore): Promise<void> {
  // Refused as a duplicate name (finding 5): nothing in etcd is this host's to change; its
  // presence, once taken, converges again.
  if (a.refused) return;
  await a.ops;
  const state = a.o.state();
  const failures: unknown[] = [];
  for (const n of state.networks.values()) {
    const c = n.cluster;
    // At shutdown the rest waits for the next start (it converges from the journal then).
    if (!c || a.stopped) continue;
    const log = a.o.log.child({ network: n.id.slice(0, 12), cluster: c.name });
    try {
      await convergeNetwork(a, state, n, c, log);
    } catch (err) {
      log.warn({ err: messageOf(err) }, "cluster: this network's records did not converge with its journal; the others go on");
      failures.push(err);
    }
  }
  const settled = a.o.departureSettled;
  if (settled && state.departures.size > 0 && !a.stopped) {
    // On the queue of releases and withdrawals, in order with them (finding 7).
    const run = a.ops.then(() =>
      settleDepartures({
        store: a.o.store,
        call: (p) => a.call(p),
        state: a.o.state,
        settled,
        log: a.o.log,
        ...(a.o.onRefused && { onRefused: a.o.onRefused }),
      }),
    );
    a.ops = run.then(
      () => undefined,
      () => undefined,
    );
    await run.catch((err: unknown) => failures.push(err));
  }
  if (failures.length > 0) throw failures[0];
}

async function convergeNetwork(a: AgentCore, state: StateView, n: NetworkRecord, c: ClusterBinding, log: Logger): Promise<void> {
  // etcd restored empty: the definition comes back from this host's copy.
  await a
    .call(
      a.o.store.defineNetwork({
        cluster: c.name,
        subnet: c.subnet,
        gateway: c.gateway,
        ...(c.subnet6 !== undefined && { subnet6: c.subnet6, gateway6: c.gateway6 }),
        vni: c.vni,
        mtu: c.mtu,
        ...(c.encrypt && { encrypt: c.encrypt }),
      }),
    )
    .then(
      () => a.definitionDiffers.delete(c.name),
      (err: unknown) => {
        if (!(err instanceof PluginError && err.code === 'CONFLICT')) throw err;
        a.definitionDiffers.set(c.name, err.message);
        log.error({ err: err.message }, 'cluster: etcd holds another definition of this network than this host built');
      },
    );
  const local = localOf(a, state, n, c);
  // The followed copies when they are complete (the reconcile loop converges every minute:
  // listing the whole network from etcd each time would cost every host ~0.5 KiB per endpoint).
  // A copy a moment behind this host's own last write only adds an idempotent call.
  const etcd =
    a.planes.get(n.id)?.followed() ??
    (await (async () => {
      const [claims, endpoints] = await Promise.all([a.call(a.o.store.listClaims(c.name)), a.call(a.o.store.listEndpoints(c.name))]);
      return { claims, endpoints };
    })());
  const plan = convergePlan(a.node, local, etcd);
  if (isEmptyPlan(plan)) return lostChanged(a, c.name, plan.lost, log);
  log.info(
    { withdraw: plan.withdraw.length, release: plan.release.length, claim: plan.claim.length, publish: plan.publish.length },
    "cluster: converging this host's records with its journal",
  );
  // Addresses etcd refused to publish (their claims moved since the copy): lost as well. Kept
  // after the writes, so a copy still behind does not clear them in between (the log says so once).
  const refused: LostAddress[] = [];
  const run = a.ops.then(() => convergeWrites(a, c, plan, refused, log));
  a.ops = run.catch(() => undefined); // the queue goes on; the failure is this convergence's, thrown below
  try {
    await run;
  } finally {
    lostChanged(a, c.name, withLost(plan.lost, refused), log);
  }
}

/**
 * The plan's etcd writes, each only if the journal still says so right before it (requests
 * run meanwhile: the plan was decided without the request lock).
 */
async function convergeWrites(a: AgentCore, c: ClusterBinding, plan: ConvergePlan, refused: LostAddress[], log: Logger): Promise<void> {
  const state = a.o.state();
  for (const id of plan.withdraw) if (!state.endpoints.has(id)) await a.call(a.o.store.withdrawEndpoint(c.name, id));
  for (const x of plan.release) {
    // A claim under way (requests claim outside the lock) is in etcd before it is in the
    // journal: while one runs on this network, or this address is in flight, it is not released.
    if (holds(state, c, x) || a.claimQueues.has(c.name) || a.inFlight.has(keys.address(c.name, x))) continue;
    await a.call(a.o.store.releaseAddress(c.name, x));
  }
  for (const x of plan.claim) {
    if (!holds(state, c, x)) continue;
    try {
      await a.call(a.o.store.claimAddress(refOf(c), x));
    } catch (err) {
      if (!(err instanceof PluginError && err.code === 'CONFLICT')) throw err;
      // Two hosts use one address: only an operator can say which container keeps it.
      log.error({ err: err.message, address: x }, 'cluster: an address this host uses is claimed by another host in etcd');
    }
  }
  for (const e of plan.publish) {
    if (!state.endpoints.has(e.id)) continue;
    const names = { ...(e.name !== undefined && { name: e.name }), ...(e.aliases !== undefined && { aliases: e.aliases }) };
    const v6 = e.address6 !== undefined && { address6: e.address6 };
    const labels = e.labels && { labels: e.labels };
    try {
      await a.call(a.o.store.publishEndpoint({ cluster: c.name, id: e.id, address: e.address, ...v6, mac: e.mac, ...names, ...labels }));
    } catch (err) {
      // Refused by etcd's claim of its address, not etcd trouble: never retried (finding 4).
      const r = refusal(err, log);
      if (!r) throw err;
      if (r.lost) refused.push(r.lost);
      continue;
    }
    a.published.set(e.id, publishedKey(names, e.labels ?? {}));
  }
}

/** Whether the journal holds `address` in the cluster network's pool now. */
function holds(state: StateView, c: ClusterBinding, address: string): boolean {
  const x = parseIp(address);
  if (!x) return false;
  for (const p of state.pools.values()) if (isClusterPool(p.record, c) && p.taken.has(x.value)) return true;
  return false;
}

/** A pool of the cluster network's: its IPv4 subnet's, or its IPv6 one's (dual stack: both are claimed). */
const isClusterPool = (p: { readonly family: 4 | 6; readonly pool: string }, c: ClusterBinding): boolean =>
  p.pool === (p.family === 4 ? c.subnet : c.subnet6);

function localOf(
  a: AgentCore,
  state: StateView,
  n: NetworkRecord,
  c: ClusterBinding,
): { addresses: Set<string>; endpoints: LocalEndpoint[] } {
  const addresses = new Set<string>();
  for (const p of state.pools.values()) {
    if (!isClusterPool(p.record, c)) continue;
    const family = p.record.family;
    for (const [lo, hi] of p.taken.intervals()) for (let v = lo; v <= hi; v++) addresses.add(formatIp({ family, value: v }));
  }
  addresses.delete(c.gateway);
  if (c.gateway6 !== undefined) addresses.delete(c.gateway6);
  const endpoints: LocalEndpoint[] = [];
  for (const e of state.endpoints.values()) {
    if (e.networkId !== n.id || !e.address) continue;
    endpoints.push({
      id: e.id,
      address: bareAddress(e.address),
      ...(c.subnet6 !== undefined && e.addressV6 !== undefined && { address6: bareAddress(e.addressV6) }),
      mac: e.mac,
      ...recordNames(a.o.nameOf?.(e)),
      // Driver-opt and container labels (issue 25), as publishing.ts publishes them.
      ...(Object.keys(endpointLabels(e)).length > 0 && { labels: endpointLabels(e) }),
    });
  }
  return { addresses, endpoints };
}
