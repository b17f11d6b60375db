/**
 * Issue 22, finding 4: `mynet cluster forget` of a host that was only cut off from etcd gave its
 * addresses away, and the host, back, only logged it. The decision (forget-check.ts), the probe
 * (host/underlay-probe.ts, against a loopback listener of the test's own), and both sides through
 * the orchestrator on an in-memory etcd.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../src/cluster/keys.js';
import { underlayAnswers } from '../../../src/host/underlay-probe.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { forgetRefusal, MAX_PROBED, probeTargets } from '../../../src/multihost/forget-check.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { clusterHost, clusterNetwork } from '../../helpers/cluster-host.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';
import { clusterFindings } from '../../helpers/cluster-findings.js';

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

const self = { name: 'host-a', address: '198.18.0.1' };
const facts = {
  node: 'host-b',
  self,
  present: false,
  before: [{ key: 'k', modRevision: 7 }],
  after: [{ key: 'k', modRevision: 7 }],
  probed: [],
};

describe('forgetRefusal (pure)', () => {
  it('forgets a node with no sign of life', () => {
    expect(forgetRefusal(facts)).toBeUndefined();
    expect(forgetRefusal({ ...facts, probed: [{ address: '198.18.0.2', answers: false }] })).toBeUndefined();
  });

  it('refuses this host, a present node, a node writing its records, and one whose underlay answers, naming why', () => {
    expect(forgetRefusal({ ...facts, node: 'host-a' })).toMatch(/host-a is this host/);
    expect(forgetRefusal({ ...facts, present: true })).toMatch(/host-b is present in the cluster/);
    expect(forgetRefusal({ ...facts, after: [{ key: 'k', modRevision: 9 }] })).toMatch(
      /host-b is writing its records \(1 written while this host checked, e\.g\. k\)/,
    );
    expect(forgetRefusal({ ...facts, after: [...facts.after, { key: 'new', modRevision: 8 }] })).toMatch(/writing its records/);
    expect(forgetRefusal({ ...facts, probed: [{ address: '198.18.0.2', answers: true }] })).toMatch(
      /host-b still answers on its underlay address 198\.18\.0\.2 \(TCP to port 4789\)/,
    );
  });

  it('probes only the addresses the records name, never this host, at most a few (records are a stranger’s input)', () => {
    expect(probeTargets(['198.18.0.2', '198.18.0.2', '198.18.0.1'], self.address)).toEqual(['198.18.0.2']);
    expect(probeTargets(['198.18.0.9', '198.18.0.8', '198.18.0.7', '198.18.0.6', '198.18.0.5'], self.address)).toHaveLength(MAX_PROBED);
  });
});

describe('underlayAnswers (a listener of the test’s own on loopback)', () => {
  it('an accepting port and a closed one (a reset) both answer', async () => {
    const server: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    expect(await underlayAnswers('127.0.0.1', 1000, port)).toBe(true);
    await new Promise<void>((r) => server.close(() => r()));
    expect(await underlayAnswers('127.0.0.1', 1000, port)).toBe(true);
  });
});

describe('forget and the forgotten host through the orchestrator', () => {
  it('refused while B’s underlay answers; done once it does not; B, back, finds its address held by A: not published, shown by status and the doctor', async () => {
    const kv = new MemoryKv();
    const answers = { now: true };
    const probed: string[] = [];
    const a = clusterHost(kv, 'host-a', '198.18.0.1', {
      underlayAnswers: (address) => {
        probed.push(address);
        return Promise.resolve(answers.now);
      },
    });
    const b = clusterHost(kv, 'host-b', '198.18.0.2');
    agents.push(a.agent, b.agent);
    const poolB = await clusterNetwork(b, { network: hexId(0xb1), pool: '10.77.0.0/16', cluster: 'blue' });
    const poolA = await clusterNetwork(a, { network: hexId(0xb1), pool: '10.77.0.0/16', cluster: 'blue' });
    const ip = (await b.plugin.requestAddress({ PoolID: poolB }, log)).Address;
    await b.plugin.createEndpoint({ NetworkID: hexId(0xb1), EndpointID: hexId(0xb2), Interface: { Address: ip } }, log);
    await waitUntil("A follows B's endpoint", () => a.agent.remoteEndpoints() === 1, { ms: 2000, every: 5 });
    // B cut off from etcd: its presence gone as its lease would expire; its host still answers.
    kv.external(keys.node('host-b'), undefined);
    await expect(a.agent.forget('host-b')).rejects.toThrow(/host-b still answers on its underlay address 198\.18\.0\.2/);
    expect(probed).toEqual(['198.18.0.2']);
    expect(kv.data.has(keys.address('blue', '10.77.0.2'))).toBe(true);

    answers.now = false;
    expect(await a.agent.forget('host-b')).toEqual({ addresses: 1, endpoints: 1, memberships: 1 });
    await a.plugin.requestAddress({ PoolID: poolA, Address: '10.77.0.2' }, log);

    await b.agent.converge();
    const net = (await b.agent.status()).networks[0];
    expect(net?.lost).toEqual([{ address: '10.77.0.2', holder: 'host-a' }]);
    expect(b.agent.lostAddresses()).toBe(1);
    expect(kv.data.has(keys.endpoint('blue', hexId(0xb2))), 'B does not publish the address it lost').toBe(false);
    const shown = (await clusterFindings(b.agent, log)).find((d) => d.object === 'cluster network blue address 10.77.0.2');
    expect(shown?.detail).toMatch(/claimed in etcd by node host-a/);
    expect(shown?.fix).toEqual([]); // listed, nothing to run
  });
});
