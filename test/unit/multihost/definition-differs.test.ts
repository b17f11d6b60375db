/**
 * Issue 22, finding 23: a cluster network whose definition in etcd is not the one this host built
 * (another host's, or an operator's edit) was only logged by the convergence. `mynet status` and
 * the doctor show it now, and it goes when the two agree again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../../src/cluster/keys.js';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { clusterHost, clusterNetwork } from '../../helpers/cluster-host.js';
import { hexId, silentLog as log } from '../support.js';
import { clusterFindings } from '../../helpers/cluster-findings.js';

const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

describe('a definition that differs between etcd and this host (issue 22, finding 23)', () => {
  it('is shown by status and listed by the doctor (not repaired); both clear once etcd holds this host’s again', async () => {
    const kv = new MemoryKv();
    const a = clusterHost(kv, 'host-a', '198.18.0.1');
    agents.push(a.agent);
    await clusterNetwork(a, { network: hexId(0xb1), pool: '10.77.0.0/16', cluster: 'blue' });
    const key = keys.network('blue');
    const mine = kv.data.get(key)?.value as string;
    const other = JSON.stringify({ ...(JSON.parse(mine) as object), subnet: '10.78.0.0/16', gateway: '10.78.0.1' });
    kv.external(key, other);
    await a.agent.converge();
    const net = (await a.agent.status()).networks[0];
    expect(net?.definitionDiffers).toMatch(/already defined by node host-a as subnet 10\.78\.0\.0\/16/);
    const found = await clusterFindings(a.agent, log);
    const shown = found.find((d) => d.object === 'cluster network blue');
    expect(shown?.detail).toMatch(/^etcd holds another definition than this host built .*10\.78\.0\.0\/16/);
    expect(shown?.fix).toEqual([]); // listed, nothing to run
    expect(kv.data.get(key)?.value).toBe(other); // shown, not overwritten

    kv.external(key, mine);
    await a.agent.converge();
    expect((await a.agent.status()).networks[0]?.definitionDiffers).toBeUndefined();
    expect((await clusterFindings(a.agent, log)).filter((d) => d.object === 'cluster network blue')).toEqual([]);
  });
});
