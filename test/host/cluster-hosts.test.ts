/**
 * Issue 17, host tier: three hosts as network namespaces on an underlay bridge, one real etcd on
 * it, a real plugin process per host (cluster-hosts-fixture.ts), containers as namespaces, the
 * protocol driven as dockerd drives it (dockerd-moves.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pings } from './plugin-fixture.js';
import { Cluster, ETCD_ADDRESS, type Host, leftoverNamespaces } from './cluster-hosts-fixture.js';
import { createNetwork, removeContainer, removeNetwork, runContainer } from './dockerd-moves.js';

let cluster: Cluster;
const host = (i: number): Host => cluster.hosts[i] as Host;

beforeAll(async () => {
  cluster = await Cluster.start({ env: { MYNET_RECONCILE_INTERVAL: '5' } });
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe('fixture', () => {
  it('every host reaches etcd on the underlay; each plugin runs its own host-local networks', async () => {
    for (const h of cluster.hosts) expect(await h.ns.succeeds(['curl', '-sS', '--max-time', '2', `http://${ETCD_ADDRESS}:2379/health`])).toBe(true);
    expect(await cluster.etcd.get('/mnt-nothing/')).toEqual(new Map());
    // The same subnet on every host: local networks are each host's own.
    const nets = await Promise.all(cluster.hosts.map((h) => createNetwork(h, { subnet: '10.88.0.0/24' })));
    const pairs = await Promise.all(nets.map(async (n) => [await runContainer(n), await runContainer(n)] as const));
    for (const [x, y] of pairs) expect(await pings(x.box, y.ip)).toBe(true);
    // kill -9 and restart: the containers still talk, a new one joins.
    await host(0).plugin.kill9();
    await host(0).plugin.start();
    const [x0, y0] = pairs[0] as (typeof pairs)[0];
    expect(await pings(x0.box, y0.ip)).toBe(true);
    const z0 = await runContainer(nets[0] as (typeof nets)[0]);
    expect(await pings(z0.box, x0.ip)).toBe(true);
    await removeContainer(z0);
    // reboot: the links are gone; the plugin rebuilds the network from its state, dockerd
    // removes the dead containers' endpoints and starts new ones.
    await cluster.reboot(host(1));
    const [x1, y1] = pairs[1] as (typeof pairs)[1];
    for (const c of [x1, y1]) await removeContainer(c, { gone: true });
    const [p1, q1] = [await runContainer(nets[1] as (typeof nets)[1]), await runContainer(nets[1] as (typeof nets)[1])];
    expect(await pings(p1.box, q1.ip)).toBe(true);
    for (const c of [p1, q1, x0, y0, ...(pairs[2] as (typeof pairs)[2])]) await removeContainer(c);
    for (const n of nets) await removeNetwork(n);
  });
});

describe('cleanup', () => {
  it('everything of ours is removed at the end', async () => {
    await cluster.destroy();
    expect(await leftoverNamespaces()).toEqual([]);
  });
});
