/**
 * Issue 22, finding 4, host tier: `mynet cluster forget` of a host that is only cut off from etcd
 * gave its addresses away (two containers with one IP when it returned, which it only logged;
 * status showed nothing). Two hosts as namespaces on an underlay bridge (198.18.199.0/24, only
 * inside these namespaces), real etcd (ports 24060/24061 in its namespace), a real plugin process
 * per host (cluster-hosts-fixture.ts). Every name made carries the tag mnt-mnf2-; `destroy` removes
 * what the test made. The reconcile loop runs every 2 s.
 */
import { describe, expect, it } from 'vitest';
import { type Host, clusterForFile } from './cluster-hosts-fixture.js';
import { claims, clusterStatus, endpointRecords, heldBy, until } from './cluster-checks.js';
import { createNetwork, removeContainer, removeNetwork, runContainer } from './dockerd-moves.js';
import { adminGet, adminPost } from './plugin-client.js';

const theCluster = clusterForFile({
  hosts: 2,
  tag: 'mnt-mnf2-',
  underlay: '198.18.199',
  etcdPorts: [24060, 24061],
  env: { MYNET_RECONCILE_INTERVAL: '2' },
});
const host = (i: number): Host => theCluster().hosts[i] as Host;

describe('finding 4: forget of a host that is only partitioned', () => {
  it('refused while its underlay answers; once it is gone, forgotten; back, it finds its address held by another, stops publishing it and says so (status, metric, doctor)', async () => {
    const cluster = theCluster();
    const [a, b] = [host(0), host(1)];
    const cl = 'nf4';
    const na = await createNetwork(a, { subnet: '10.225.4.0/24', cluster: cl });
    const nb = await createNetwork(b, { subnet: '10.225.4.0/24', cluster: cl });
    const cb = await runContainer(nb);
    await until("B's claim and record in etcd", async () => heldBy(await endpointRecords(cluster.etcd, cl), b.nodeName).length === 1);
    const member = async (name: string): Promise<boolean | undefined> =>
      (await clusterStatus(a.plugin.adminSocket)).members.find((m) => m.name === name)?.up;

    // B cut off from etcd only (a blackhole route to etcd's address): its lease runs out, its
    // host still answers on the underlay.
    await b.ns.run(['ip', 'route', 'add', 'blackhole', `${cluster.etcdAddress}/32`]);
    await until('B shown down on A', async () => (await member(b.nodeName)) === false, 20_000);
    const refused = await adminPost(a.plugin.adminSocket, `/cluster/forget?node=${b.nodeName}`);
    expect(refused.status, refused.body).not.toBe(200);
    expect(refused.body).toContain(`still answers on its underlay address ${b.address}`);
    expect(heldBy(await claims(cluster.etcd, cl), b.nodeName)).toEqual([cb.ip]);

    // B gone from the underlay too: nothing answers, forget goes through.
    await b.ns.run(['ip', 'link', 'set', cluster.underlayIf, 'down']);
    const started = Date.now();
    const forgot = await adminPost(a.plugin.adminSocket, `/cluster/forget?node=${b.nodeName}`);
    const forgetMs = Date.now() - started;
    expect(forgot.status, forgot.body).toBe(200);
    const ca = await runContainer(na, { ip: cb.ip });
    expect(heldBy(await claims(cluster.etcd, cl), a.nodeName)).toEqual([cb.ip]);

    // B back: its journal still holds cb.ip, which A now holds.
    await b.ns.run(['ip', 'link', 'set', cluster.underlayIf, 'up']);
    await b.ns.run(['ip', 'route', 'del', 'blackhole', `${cluster.etcdAddress}/32`]);
    const lostOnB = async (): Promise<unknown> => (await clusterStatus(b.plugin.adminSocket)).networks.find((n) => n.cluster === cl);
    await until(
      'B shows the address it lost',
      async () => JSON.stringify(await lostOnB()).includes(`"lost":[{"address":"${cb.ip}"`),
      30_000,
      async () => JSON.stringify(await lostOnB()),
    );
    expect(JSON.stringify(await lostOnB())).toContain(`"holder":"${a.nodeName}`);
    // B publishes nothing of that address: the only record of it in etcd is A's.
    expect(heldBy(await endpointRecords(cluster.etcd, cl), b.nodeName)).toEqual([]);
    expect(heldBy(await claims(cluster.etcd, cl), a.nodeName)).toEqual([cb.ip]);
    expect(await adminGet(b.plugin.adminSocket, '/metrics')).toMatch(/^mynet_cluster_addresses_lost 1$/m);
    const doctor = await adminGet(b.plugin.adminSocket, '/doctor');
    expect(doctor).toContain(`address ${cb.ip}`);
    console.log(`[figure] forget of a host gone from the underlay took ${forgetMs} ms (one 1 s probe)`);

    await removeContainer(ca);
    await removeContainer(cb);
    await removeNetwork(na);
    await removeNetwork(nb);
  }, 120_000);
});
