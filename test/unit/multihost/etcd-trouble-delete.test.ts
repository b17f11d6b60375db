/**
 * Issue 22, finding 6, DeleteNetwork's part: a cluster network's delete stops its follower under
 * the request lock, and each watch's cancel is an etcd round trip. With etcd stopped or lossy the
 * cancels took 3 s each (their bound), and every request of every network waited behind them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterAgent } from '../../../src/multihost/agent.js';
import { MemoryKv } from '../../helpers/memory-kv.js';
import { clusterHost, clusterNetwork } from '../../helpers/cluster-host.js';
import { waitUntil } from '../../helpers/wait.js';
import { hexId, silentLog as log } from '../support.js';

const GW = { RequestAddressType: 'com.docker.network.gateway' };
const agents: ClusterAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

describe('DeleteNetwork of a cluster network with etcd not answering (issue 22, finding 6)', () => {
  it("answers without waiting for the watches' cancels, and a local network's lifecycle meanwhile does not wait for them either", async () => {
    const kv = new MemoryKv();
    const a = clusterHost(kv, 'host-a', '198.18.0.1');
    agents.push(a.agent);
    const net = hexId(0xb1);
    await clusterNetwork(a, { network: net, pool: '10.77.0.0/16', cluster: 'blue' });
    const followed = (): number => kv.watches.filter((w) => w.live && w.prefix.includes('/blue')).length;
    await waitUntil('the network followed', () => followed() === 3, { ms: 2000, every: 5 });
    let confirm = (): void => undefined;
    kv.cancelStall = new Promise((r) => (confirm = r));
    const order: string[] = [];
    const deleted = a.plugin.deleteNetwork({ NetworkID: net }, log).then(() => order.push('cluster network deleted'));
    const lp = await a.plugin.requestPool({ Pool: '10.99.0.0/24' }, log);
    const lgw = await a.plugin.requestAddress({ PoolID: lp.PoolID, Options: GW }, log);
    await a.plugin.createNetwork({ NetworkID: hexId(0x11), Options: {}, IPv4Data: [{ Pool: '10.99.0.0/24', Gateway: lgw.Address }] }, log);
    const lip = await a.plugin.requestAddress({ PoolID: lp.PoolID }, log);
    await a.plugin.createEndpoint({ NetworkID: hexId(0x11), EndpointID: hexId(0x12), Interface: { Address: lip.Address } }, log);
    await a.plugin.deleteEndpoint({ NetworkID: hexId(0x11), EndpointID: hexId(0x12) }, log);
    await a.plugin.deleteNetwork({ NetworkID: hexId(0x11) }, log);
    order.push('local lifecycle');
    await deleted;
    // The three cancels (endpoints, claims, policies) were asked and neither has been confirmed: nothing above waited for them.
    expect(kv.calls.filter((c) => c.startsWith('cancel ') && c.includes('/blue'))).toHaveLength(3);
    expect(order).toEqual(['cluster network deleted', 'local lifecycle']);
    expect(a.plugin.state.networks.has(net)).toBe(false);
    expect(a.agent.planes.size).toBe(0);
    confirm();
  });
});
