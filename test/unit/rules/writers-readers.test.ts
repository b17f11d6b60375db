/**
 * Issue 21, goal 1: no record written to etcd or to the journal that its own reader would
 * refuse. Requests made at random (MTU, VNI, subnet, gateway, cluster name, underlay MTU) go
 * through the real orchestrator and cluster agent on an in-memory etcd; each is either refused
 * naming the field, or everything it wrote is accepted by the readers: etcd's (readRecord, what
 * every other host runs) and the journal's (checkChange, what this host's next start runs).
 */
import { readPolicyRecord } from '../../../src/cluster/policy-records.js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseKey, PREFIX } from '../../../src/cluster/keys.js';
import { readRecord } from '../../../src/cluster/records.js';
import { PluginError } from '../../../src/errors.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { UNDERLAY_MTU_MIN } from '../../../src/rules/mtu.js';
import { checkChange } from '../../../src/store/records.js';
import { clusterHost, type ClusterHost } from '../../helpers/cluster-host.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { hexId, silentLog as log } from '../support.js';

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

/** mulberry32: small, seeded, the same sequence on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What etcd holds, each value through the reader another host runs: the problems. */
async function etcdProblems(kv: MemoryKv): Promise<string[]> {
  const all = await kv.list(PREFIX);
  return all.items.flatMap((it) => {
    const where = parseKey(it.key);
    if (!where) return [`${it.key}: not a key mynet writes`];
    const r = where.kind === 'policy' ? readPolicyRecord(it.key, it.value) : readRecord(where.kind, it.key, it.value);
    return r.ok ? [] : [r.problem];
  });
}

/** Every change this host committed, through the journal's reader: the problems. */
function journalProblems(h: ClusterHost): string[] {
  return h.store.committed.flat().flatMap((c) => {
    try {
      checkChange(JSON.parse(JSON.stringify(c)));
      return [];
    } catch (err) {
      return [`${c.op}: ${(err as Error).message}`];
    }
  });
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

describe('every record the writers produce, the readers accept', () => {
  it('the MTU case of issue 21: mtu=500 on a cluster network is refused at create naming the option; nothing reaches etcd or the journal', async () => {
    const kv = new MemoryKv();
    const h = clusterHost(kv, 'host-a', '198.18.0.1');
    agents.push(h.agent);
    const pool = await h.plugin.requestPool({ Pool: '10.77.0.0/16' }, log);
    const gw = await h.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
    const req = (mtu: string) => ({
      NetworkID: hexId(0xb1),
      Options: { 'com.docker.network.generic': { 'mynet.cluster': 'blue', 'com.docker.network.driver.mtu': mtu } },
      IPv4Data: [{ Pool: '10.77.0.0/16', Gateway: gw.Address }],
    });
    const err = await h.plugin.createNetwork(req('500'), log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).message).toMatch(
      /^option com\.docker\.network\.driver\.mtu: 500 is not a whole number from 576 to 65485 \(a cluster network's MTU/,
    );
    expect((await kv.list(PREFIX)).items.map((it) => it.key).filter((k) => !k.startsWith(`${PREFIX}nodes/`))).toEqual([]);
    expect(h.store.committed.flat().filter((c) => c.op === 'network.put')).toEqual([]);
    // The same network at 9000 is lowered to what this host's underlay carries, and readable.
    await h.plugin.createNetwork(req('9000'), log);
    const def = await kv.get(`${PREFIX}networks/blue`);
    expect(JSON.parse(def?.value ?? '{}')).toMatchObject({ mtu: 1450 });
    expect(await etcdProblems(kv)).toEqual([]);
    expect(journalProblems(h)).toEqual([]);
  });

  it('property: 150 random cluster networks, each with an endpoint: refused naming a field, or written readable everywhere', async () => {
    const seed = 20261206;
    const r = random(seed);
    let made = 0;
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      const kv = new MemoryKv();
      const underlayMtu = pick(r, [UNDERLAY_MTU_MIN, 1280, 1500, 9000, 65_535]);
      const h = clusterHost(kv, pick(r, ['host-a', 'a.b_c-d', 'H1']), pick(r, ['198.18.0.1', '203.0.113.9']), { underlayMtu });
      agents.push(h.agent);
      const prefix = pick(r, [8, 16, 24, 29, 30]);
      const subnet = pick(r, [`10.0.0.0/${prefix}`, `198.18.0.0/${Math.max(prefix, 15)}`]);
      const generic: Record<string, string> = {
        'mynet.cluster': pick(r, ['blue', 'a', 'x-1', '0a', 'Blue', '-a', 'a'.repeat(63), 'a'.repeat(64)]),
      };
      if (r() < 0.7)
        generic['com.docker.network.driver.mtu'] = String(
          pick(r, [0, 67, 68, 500, 575, 576, 577, 1280, 1450, 1500, 9000, 65_485, 65_486, 65_535, 65_536]),
        );
      if (r() < 0.3) generic['mynet.vni'] = String(pick(r, [0, 1, 4095, 4096, 70_000, 16_777_215, 16_777_216]));
      try {
        const pool = await h.plugin.requestPool({ Pool: subnet }, log);
        const gw = await h.plugin.requestAddress({ PoolID: pool.PoolID, Options: GW }, log);
        const nid = hexId(0xc0 + (i % 32));
        await h.plugin.createNetwork(
          { NetworkID: nid, Options: { 'com.docker.network.generic': generic }, IPv4Data: [{ Pool: subnet, Gateway: gw.Address }] },
          log,
        );
        const ip = await h.plugin.requestAddress({ PoolID: pool.PoolID }, log);
        await h.plugin.createEndpoint({ NetworkID: nid, EndpointID: hexId(0xe0 + (i % 16)), Interface: { Address: ip.Address } }, log);
        await h.plugin.join({ NetworkID: nid, EndpointID: hexId(0xe0 + (i % 16)), SandboxKey: '/var/run/docker/netns/x' }, log);
        made++;
      } catch (err) {
        // A refusal names what was wrong, as every answer to dockerd must.
        expect(err, `seed ${seed} case ${i}: ${JSON.stringify({ subnet, generic, underlayMtu })}`).toBeInstanceOf(PluginError);
        expect((err as Error).message).toMatch(/^(option [a-z.]+|Pool|Gateway|mynet\.[a-z]+): /);
        refused++;
      }
      const ctx = `seed ${seed} case ${i}: ${JSON.stringify({ subnet, generic, underlayMtu })}`;
      expect(await etcdProblems(kv), ctx).toEqual([]);
      expect(journalProblems(h), ctx).toEqual([]);
      await h.agent.stop();
    }
    // Both sides of the property were reached.
    expect(made).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(20);
  });
});
