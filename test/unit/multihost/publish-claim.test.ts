/**
 * Issue 22, finding 4, at the write: an endpoint record is put only while the claims of its
 * addresses in etcd are this node's (one transaction). B, back after being forgotten, decides its
 * convergence from followed copies; with its copy of the endpoint records re-listed (forget
 * deleted B's record) and its copy of the claims still holding B's old claim (A's claim not seen
 * yet), it republished the record of the address A holds (a host-tier run once saw it:
 * `expected [ '10.225.4.2' ] to deeply equal []`).
 */
import { clusterFindings } from '../../helpers/cluster-findings.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ClaimNotOursError, GUARDED_PUT_TRIES } from '../../../src/cluster/claim-guard.js';
import { ClusterStore } from '../../../src/cluster/cluster-store.js';
import { keys } from '../../../src/cluster/keys.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { clusterHost, clusterNetwork } from '../../helpers/cluster-host.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

const A = { name: 'host-a', address: '198.18.0.1' };
const B = { name: 'host-b', address: '198.18.0.2' };
const dual = { cluster: 'dual', subnet: '10.77.0.0/16', gateway: '10.77.0.1', subnet6: 'fd6c:6:1::/64', gateway6: 'fd6c:6:1::1' };
const ep = (address6?: string) => ({
  cluster: 'dual',
  id: hexId(0xe1),
  address: '10.77.0.2',
  ...(address6 !== undefined && { address6 }),
  mac: '02:42:0a:4d:00:02',
});

describe('ClusterStore.publishEndpoint: only while its addresses are claimed by this node', () => {
  it('a claim rewritten (still its own) before every compare: bounded tries, then a transient error, nothing put', async () => {
    const kv = new MemoryKv();
    const b = new ClusterStore(kv, B);
    await b.claimAddress(dual, '10.77.0.2');
    const claim = keys.address('dual', '10.77.0.2');
    const record = keys.endpoint('dual', hexId(0xe1));
    // A writer that rewrites the claim with new bytes of the same owner just before each transaction.
    const put = kv.putIfValues.bind(kv);
    let rewrites = 0;
    kv.putIfValues = (key, value, guards) => {
      const now = kv.data.get(claim)?.value as string;
      kv.external(claim, now.replace(/}$/, `,"x${++rewrites}":1}`).replace(/,"x\d+":1(?=,)/, ''));
      return put(key, value, guards);
    };
    await expect(b.publishEndpoint(ep())).rejects.toMatchObject({ code: 'CLUSTER_UNAVAILABLE' });
    expect(rewrites).toBe(GUARDED_PUT_TRIES + 1);
    expect(kv.data.has(record)).toBe(false);
  });

  it('no claim, another node’s claim (IPv4, or the IPv6 one of a dual-stack record): refused, nothing put; its own: put, one transaction', async () => {
    const kv = new MemoryKv();
    const a = new ClusterStore(kv, A);
    const b = new ClusterStore(kv, B);
    const record = keys.endpoint('dual', hexId(0xe1));
    await expect(b.publishEndpoint(ep())).rejects.toMatchObject({ name: 'ClaimNotOursError', holder: undefined });
    await a.claimAddress(dual, '10.77.0.2');
    await expect(b.publishEndpoint(ep())).rejects.toThrow(/10\.77\.0\.2 of cluster network "dual" is claimed by node host-a in etcd/);
    expect(kv.data.has(record)).toBe(false);

    await a.releaseAddress('dual', '10.77.0.2');
    await b.claimAddress(dual, '10.77.0.2');
    await a.claimAddress(dual, 'fd6c:6:1::2');
    const refused = await b.publishEndpoint(ep('fd6c:6:1::2')).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ClaimNotOursError);
    expect(refused).toMatchObject({ address: 'fd6c:6:1::2', holder: 'host-a', code: 'CONFLICT' });
    expect(kv.data.has(record)).toBe(false);

    await a.releaseAddress('dual', 'fd6c:6:1::2');
    await b.claimAddress(dual, 'fd6c:6:1::2');
    kv.calls.length = 0;
    await b.publishEndpoint(ep('fd6c:6:1::2'));
    expect(kv.calls, 'the claims b wrote are compared, not read again').toEqual([`put ${record}`]);
    expect(kv.data.get(record)?.value).toContain('"address6":"fd6c:6:1::2"');
  });
});

describe('B back after being forgotten, its copy of the claims behind its copy of the records', () => {
  it('its convergence publishes no record of the address A holds: lost (status, metric, doctor), and again at the next one', async () => {
    const kv = new MemoryKv();
    const answers = { now: false };
    const a = clusterHost(kv, 'host-a', '198.18.0.1', { underlayAnswers: () => Promise.resolve(answers.now) });
    const b = clusterHost(kv, 'host-b', '198.18.0.2');
    agents.push(a.agent, b.agent);
    const before = kv.watches.length;
    const poolB = await clusterNetwork(b, { network: hexId(0xb1), pool: '10.77.0.0/16', cluster: 'blue' });
    const claimsOfB = () => kv.watches.slice(before).filter((w) => w.prefix === keys.addresses('blue'));
    await waitUntil("B's claims followed", () => claimsOfB().length === 1, { ms: 2000, every: 5 });
    const silenced = claimsOfB();
    const poolA = await clusterNetwork(a, { network: hexId(0xb1), pool: '10.77.0.0/16', cluster: 'blue' });
    const ip = (await b.plugin.requestAddress({ PoolID: poolB }, log)).Address;
    await b.plugin.createEndpoint({ NetworkID: hexId(0xb1), EndpointID: hexId(0xb2), Interface: { Address: ip } }, log);
    await waitUntil("A follows B's endpoint", () => a.agent.remoteEndpoints() === 1, { ms: 2000, every: 5 });

    // B's copy of the claims stops hearing (its watch silent, still "synced"): the order the host tier saw.
    for (const w of silenced) w.live = false;
    kv.external(keys.node('host-b'), undefined);
    expect(await a.agent.forget('host-b')).toEqual({ addresses: 1, endpoints: 1, memberships: 1 });
    await a.plugin.requestAddress({ PoolID: poolA, Address: '10.77.0.2' }, log);
    const record = keys.endpoint('blue', hexId(0xb2));

    for (let run = 0; run < 2; run++) {
      await b.agent.converge();
      expect(kv.data.has(record), `B publishes no record of the address A holds (convergence ${run + 1})`).toBe(false);
      expect((await b.agent.status()).networks[0]?.lost).toEqual([{ address: '10.77.0.2', holder: 'host-a' }]);
      expect(b.agent.lostAddresses()).toBe(1);
    }
    const shown = (await clusterFindings(b.agent, log)).find((d) => d.object === 'cluster network blue address 10.77.0.2');
    expect(shown?.detail).toMatch(/claimed in etcd by node host-a/);
  });
});
