/**
 * Issue 22, the cluster at its edges (finding 7), host tier: two hosts as
 * namespaces on an underlay bridge (198.18.130.0/24, only inside these namespaces), one real etcd
 * on it (ports 23801/23802 in its namespace), a real plugin process per host
 * (cluster-hosts-fixture.ts), containers as namespaces, the protocol driven as dockerd drives it.
 * Every name made carries the tag mnt-nf-; each test removes what it made, and `destroy` the rest.
 * The reconcile loop runs every 2 s.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type Host, leftoverNamespaces } from './cluster-hosts-fixture.js';
import { claims, endpointRecords, heldBy, until } from './cluster-checks.js';
import { type Container, type Network, createNetwork, removeContainer, removeNetwork, runContainer } from './dockerd-moves.js';

const TAG = 'mnt-nf-';
let cluster: Cluster;
const host = (i: number): Host => cluster.hosts[i] as Host;

beforeAll(async () => {
  cluster = await Cluster.start({
    hosts: 2,
    tag: TAG,
    underlay: '198.18.130',
    etcdPorts: [23801, 23802],
    env: { MYNET_RECONCILE_INTERVAL: '2' },
  });
}, 60_000);

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const h of cluster.hosts)
    console.error(`--- host ${h.label}: last warnings and errors of its plugin\n${h.plugin.problems().slice(-8).join('\n')}`);
});

afterAll(async () => {
  await cluster?.destroy();
  expect(await leftoverNamespaces(TAG)).toEqual([]);
});

describe('finding 7: what a host owes etcd is kept until etcd takes it', () => {
  it("a container and its network removed while etcd is down, the plugin restarted meanwhile: its claim and record leave etcd when it is back; the other host's stay", async () => {
    const [a, b] = [host(0), host(1)];
    const cl = 'nf7';
    const na: Network = await createNetwork(a, { subnet: '10.213.7.0/24', cluster: cl });
    const nb: Network = await createNetwork(b, { subnet: '10.213.7.0/24', cluster: cl });
    const ca: Container = await runContainer(na);
    const cb: Container = await runContainer(nb);
    const mine = async (node: string): Promise<string[]> => [
      ...heldBy(await claims(cluster.etcd, cl), node),
      ...heldBy(await endpointRecords(cluster.etcd, cl), node),
    ];
    await until(
      "both hosts' claims and records in etcd",
      async () => (await mine(a.nodeName)).length === 2 && (await mine(b.nodeName)).length === 2,
    );

    // etcd hung (SIGSTOP): every call of A's times out, as with a dead server or a partition.
    cluster.etcd.freeze();
    await removeContainer(ca);
    await removeNetwork(na);
    // Nothing acknowledged may be lost across a restart before etcd is back.
    await a.plugin.kill9();
    await a.plugin.start();
    cluster.etcd.thaw();

    await until(
      "A's claim and endpoint record gone from etcd",
      async () => (await mine(a.nodeName)).length === 0,
      30_000,
      async () => JSON.stringify(await mine(a.nodeName)),
    );
    // Compare-and-delete: only A's own records went.
    expect(heldBy(await claims(cluster.etcd, cl), b.nodeName)).toEqual([cb.ip]);
    expect(heldBy(await endpointRecords(cluster.etcd, cl), b.nodeName)).toEqual([cb.ip]);
    await removeContainer(cb);
    await removeNetwork(nb);
  }, 120_000);
});
