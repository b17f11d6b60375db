/**
 * Issue 22, findings 5 and 15 (node ids), host tier: three hosts as namespaces on an underlay
 * bridge (198.18.197.0/24, only inside these namespaces), one real etcd on it (ports 24050/24051
 * in its namespace), a real plugin process per host (cluster-hosts-fixture.ts), containers as
 * namespaces, the protocol driven as dockerd drives it. Every name made carries the tag mnt-mntr- (the test helpers want mnt-);
 * container subnets are in 10.224.0.0/16. One world for the file: the tests run in order, each
 * leaves the hosts as it found them. The reconcile loop runs every 2 s.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type Host, leftoverNamespaces } from './cluster-hosts-fixture.js';
import { claims, clusterStatus, endpointRecords, fdbOf, following, heldBy, until } from './cluster-checks.js';
import {
  type Container,
  type Network,
  createNetwork,
  removeContainer,
  removeNetwork,
  requestAddress,
  runContainer,
} from './dockerd-moves.js';
import { refusal } from './plugin-client.js';

const TAG = 'mnt-mntr-';
let cluster: Cluster;
const host = (i: number): Host => cluster.hosts[i] as Host;
const idOf = (h: Host): string => readFileSync(join(h.plugin.stateDir, 'node-id'), 'utf8').trim();
/** Claims and endpoint records of a cluster network as `node id address`, sorted: what etcd says about ownership. */
const owners = async (cl: string): Promise<string[]> =>
  [...(await claims(cluster.etcd, cl)).values(), ...(await endpointRecords(cluster.etcd, cl)).values()]
    .map((r) => `${r.node} ${(r as { nodeId?: string }).nodeId ?? '-'} ${r.address}`)
    .sort();

/** Stops a host's plugin, changes its settings, starts it and waits until it follows etcd. */
async function restartAs(h: Host, env: Record<string, string | undefined>): Promise<void> {
  await h.plugin.stop();
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete h.plugin.overrides[k];
    else h.plugin.overrides[k] = v;
  }
  await h.plugin.start();
}

beforeAll(async () => {
  cluster = await Cluster.start({
    hosts: 3,
    tag: TAG,
    underlay: '198.18.197',
    etcdPorts: [24050, 24051],
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

describe('node ids: names are labels, ids are identity', () => {
  it("finding 5: a second host given another's MYNET_NODE_NAME is refused, takes none of its --ip, and its convergence deletes none of its records", async () => {
    const [b, c] = [host(1), host(2)];
    const cl = 'mntr5';
    const nb: Network = await createNetwork(b, { subnet: '10.224.5.0/24', cluster: cl });
    const nc: Network = await createNetwork(c, { subnet: '10.224.5.0/24', cluster: cl });
    const cb: Container = await runContainer(nb, { ip: '10.224.5.50' });
    const cc: Container = await runContainer(nc);
    await until('both claims and records in etcd', async () => (await owners(cl)).length === 4);
    const before = await owners(cl);

    // C is given B's name by mistake (its own id, its own journal with cc in it).
    await restartAs(c, { MYNET_NODE_NAME: b.nodeName });
    await following(c.plugin.adminSocket);
    // Two reconcile intervals: time for C's convergence to act on what it would believe its own.
    await new Promise((r) => setTimeout(r, 4000));
    expect(await owners(cl)).toEqual(before);
    const ip = await refusal(requestAddress(nc, cb.ip));
    expect(ip.err).toMatch(/MYNET_NODE_NAME: node "mnt-mntr-b" is already present in the cluster as node id/);
    expect(await owners(cl)).toEqual(before);
    const st = await clusterStatus(c.plugin.adminSocket);
    expect(st.refused).toMatch(/give each host its own name/);
    expect(st.nodeId).toBe(idOf(c));
    // B never noticed: its container is still reachable from A's view of etcd.
    expect((await clusterStatus(b.plugin.adminSocket)).refused).toBeUndefined();

    await restartAs(c, { MYNET_NODE_NAME: undefined });
    await following(c.plugin.adminSocket);
    await removeContainer(cc);
    await removeNetwork(nc);
    await removeContainer(cb);
    await removeNetwork(nb);
    await until('the network empty in etcd', async () => (await owners(cl)).length === 0);
  }, 120_000);

  it('finding 15: a host renamed moves its claims and records to its new name (none left under the old one) and stays reachable', async () => {
    const [a, b] = [host(0), host(1)];
    const cl = 'mntr15';
    const na: Network = await createNetwork(a, { subnet: '10.224.15.0/24', cluster: cl });
    const nb: Network = await createNetwork(b, { subnet: '10.224.15.0/24', cluster: cl });
    const ca: Container = await runContainer(na);
    const cb: Container = await runContainer(nb);
    await until('both claims and records in etcd', async () => (await owners(cl)).length === 4);

    await restartAs(a, { MYNET_NODE_NAME: `${TAG}a2` });
    await until(
      "A's claim and record moved to its new name",
      async () =>
        heldBy(await claims(cluster.etcd, cl), `${TAG}a2`).length === 1 &&
        heldBy(await endpointRecords(cluster.etcd, cl), `${TAG}a2`).length === 1,
      15_000,
      async () => JSON.stringify(await owners(cl)),
    );
    const id = idOf(a);
    expect(await owners(cl)).toEqual(
      [
        `${TAG}a2 ${id} ${ca.ip}`,
        `${TAG}a2 ${id} ${ca.ip}`,
        `${b.nodeName} ${idOf(b)} ${cb.ip}`,
        `${b.nodeName} ${idOf(b)} ${cb.ip}`,
      ].sort(),
    );
    expect((await clusterStatus(a.plugin.adminSocket)).refused).toBeUndefined();
    await until("B forwards A's container to A", async () => (await fdbOf(nb)).get(ca.mac) === a.address);

    await removeContainer(ca);
    await removeNetwork(na);
    await restartAs(a, { MYNET_NODE_NAME: undefined });
    await removeContainer(cb);
    await removeNetwork(nb);
    await until('the network empty in etcd', async () => (await owners(cl)).length === 0);
  }, 120_000);

  it('an upgrade: records and a state directory from a mynet before ids are taken over by name and rewritten with the new id, nothing released', async () => {
    const [a, b] = [host(0), host(1)];
    const cl = 'mntr16';
    const na: Network = await createNetwork(a, { subnet: '10.224.16.0/24', cluster: cl });
    const nb: Network = await createNetwork(b, { subnet: '10.224.16.0/24', cluster: cl });
    const ca: Container = await runContainer(na);
    const cb: Container = await runContainer(nb);
    await until('both claims and records in etcd', async () => (await owners(cl)).length === 4);

    // B as an older mynet left it: no node-id file, its records in etcd without ids.
    await b.plugin.stop();
    rmSync(join(b.plugin.stateDir, 'node-id'));
    for (const prefix of [`/mynet/v1/addresses/${cl}/`, `/mynet/v1/endpoints/${cl}/`]) {
      for (const [key, value] of await cluster.etcd.get(prefix)) {
        const { nodeId, ...old } = value as { node: string; nodeId?: string };
        if (old.node === b.nodeName && nodeId !== undefined) await cluster.etcd.put(key, JSON.stringify(old));
      }
    }
    expect((await owners(cl)).filter((o) => o.startsWith(`${b.nodeName} - `))).toHaveLength(2);
    await b.plugin.start();
    const id = idOf(b);
    await until(
      "B's claim and record rewritten with its new id",
      async () => (await owners(cl)).filter((o) => o === `${b.nodeName} ${id} ${cb.ip}`).length === 2,
      15_000,
      async () => JSON.stringify(await owners(cl)),
    );
    expect(await owners(cl)).toEqual(
      [
        `${a.nodeName} ${idOf(a)} ${ca.ip}`,
        `${a.nodeName} ${idOf(a)} ${ca.ip}`,
        `${b.nodeName} ${id} ${cb.ip}`,
        `${b.nodeName} ${id} ${cb.ip}`,
      ].sort(),
    );
    await until("A forwards B's container to B", async () => (await fdbOf(na)).get(cb.mac) === b.address);

    await removeContainer(ca);
    await removeNetwork(na);
    await removeContainer(cb);
    await removeNetwork(nb);
    await until('the network empty in etcd', async () => (await owners(cl)).length === 0);
  }, 120_000);
});
