/**
 * Address claims of this host in etcd (ClusterPort claim, settled, release): one claim at a time
 * per cluster network, the claims in flight until they are in the journal, and releases queued
 * after the answer. Its own file because the claim queues and in-flight sets are the agent's most
 * delicate ordering; the state lives in AgentCore (agent-core.ts), which convergence reads too.
 */
import type { Logger } from 'pino';
import { keys } from '../cluster/keys.js';
import type { AddressClaim } from '../cluster/records.js';
import type { ClusterBinding } from '../driver/state.js';
import { PluginError, messageOf } from '../errors.js';
import { bareAddress } from '../rules/address.js';
import { type AgentCore, refOf } from './agent-core.js';

/**
 * How long a claim of one address (`--ip`) that another host holds keeps trying before it is
 * refused. That host answers dockerd's ReleaseAddress before etcd has the release (the agent's
 * queue), so for a few milliseconds after `docker rm` there the claim is still in etcd; `docker
 * run --ip` of it here right then must not fail. A real conflict is refused this much later,
 * after a handful of compare-and-creates; the orchestrator claims outside its request lock, so
 * the wait holds up no other request (issue 22, finding 6).
 */
export const CLAIM_GRACE_MS = 1000;

/**
 * One claim at a time per cluster network (never across networks, never under the request
 * lock): a claim that this node already holds succeeds again in etcd, so two made at once could
 * both be answered the same address; one after the other, the second skips the first's.
 */
export function claim(
  a: AgentCore,
  c: ClusterBinding,
  address: string | undefined,
  candidates: () => Iterable<string>,
  log: Logger,
): Promise<string> {
  const run = (a.claimQueues.get(c.name) ?? Promise.resolve()).then(() => claimNow(a, c, address, candidates, log));
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  a.claimQueues.set(c.name, tail);
  void tail.then(() => {
    if (a.claimQueues.get(c.name) === tail) a.claimQueues.delete(c.name);
  });
  return run;
}

async function claimNow(
  a: AgentCore,
  c: ClusterBinding,
  address: string | undefined,
  candidates: () => Iterable<string>,
  log: Logger,
): Promise<string> {
  a.identityAccepted();
  const ref = refOf(c);
  // A queued release of the same address would delete the claim made now: it runs first.
  if (address !== undefined && a.releasing.has(keys.address(c.name, bareAddress(address)))) await a.ops;
  const mirror = a.planeOf(c)?.claimKnown();
  if (!mirror && a.releasing.size > 0) await a.ops;
  const known = mirror && ((key: string): boolean => a.releasing.has(key) || mirror(key));
  // A claim of this node's is idempotent in etcd: one in flight for another request would be
  // answered again. Automatic addresses skip them; a `--ip` of one is refused at the journal.
  const free = function* (this: AgentCore): Iterable<string> {
    for (const x of candidates()) if (!this.inFlight.has(keys.address(c.name, x))) yield x;
  }.bind(a);
  const claim = address !== undefined ? await claimExact(a, ref, address, log) : await a.call(a.o.store.claimAny(ref, free(), 16, known));
  a.inFlight.add(keys.address(c.name, claim.address));
  log.debug({ cluster: c.name, address: claim.address }, 'cluster: address claimed');
  return claim.address;
}

/** One address: held by another host, tried again for up to CLAIM_GRACE_MS (a release on its way). */
async function claimExact(a: AgentCore, ref: ReturnType<typeof refOf>, address: string, log: Logger): Promise<AddressClaim> {
  const end = Date.now() + (a.o.claimGraceMs ?? CLAIM_GRACE_MS);
  for (let wait = 25; ; wait *= 2) {
    try {
      return await a.call(a.o.store.claimAddress(ref, address));
    } catch (err) {
      const left = end - Date.now();
      if (!(err instanceof PluginError && err.code === 'CONFLICT') || left <= 0) throw err;
      log.debug(
        { cluster: ref.cluster, address, retryMs: Math.min(wait, left) },
        'cluster: address held by another host; trying again (its release may be on its way)',
      );
      await new Promise((r) => setTimeout(r, Math.min(wait, left)));
    }
  }
}

export function settled(a: AgentCore, c: ClusterBinding, address: string): void {
  a.inFlight.delete(keys.address(c.name, bareAddress(address)));
}

export function release(a: AgentCore, c: ClusterBinding, address: string, log: Logger): Promise<void> {
  const key = keys.address(c.name, bareAddress(address));
  a.releasing.set(key, (a.releasing.get(key) ?? 0) + 1);
  a.later(async () => {
    try {
      await a.call(a.o.store.releaseAddress(c.name, bareAddress(address)));
    } catch (err) {
      log.warn(
        { err: messageOf(err), cluster: c.name, address },
        'cluster: release not in etcd yet; the journal keeps it and it is applied when etcd answers',
      );
    } finally {
      const n = (a.releasing.get(key) ?? 1) - 1;
      if (n > 0) a.releasing.set(key, n);
      else a.releasing.delete(key);
    }
  });
  return Promise.resolve();
}
