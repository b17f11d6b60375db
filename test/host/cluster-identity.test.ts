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
import { describe, expect, it } from 'vitest';
import { peerSet } from '../../src/plan/vxlan-firewall.js';
import { type Host, clusterForFile } from './cluster-hosts-fixture.js';
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
const cluster = clusterForFile({
  hosts: 3,
  tag: TAG,
  underlay: '198.18.197',
  etcdPorts: [24050, 24051],
  env: { MYNET_RECONCILE_INTERVAL: '2' },
});
const host = (i: number): Host => cluster().hosts[i] as Host;
const idOf = (h: Host): string => readFileSync(join(h.plugin.stateDir, 'node-id'), 'utf8').trim();
/** Claims and endpoint records of a cluster network as `node id address`, sorted: what etcd says about ownership. */
const owners = async (cl: string): Promise<string[]> =>
  [...(await claims(cluster().etcd, cl)).values(), ...(await endpointRecords(cluster().etcd, cl)).values()]
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

/** A cluster network on hosts x and y with a container on each (y's at `ip`), all in etcd. */
async function twoHosts(
  cl: string,
  subnet: string,
  x: Host,
  y: Host,
  ip?: string,
): Promise<{ nx: Network; ny: Network; cx: Container; cy: Container }> {
  const nx = await createNetwork(x, { subnet, cluster: cl });
  const ny = await createNetwork(y, { subnet, cluster: cl });
  const cy = await runContainer(ny, ip ? { ip } : {});
  const cx = await runContainer(nx);
  await until('both claims and records in etcd', async () => (await owners(cl)).length === 4);
  return { nx, ny, cx, cy };
}

/** Removes the containers and the networks, and waits until etcd holds nothing of the cluster network. */
async function removeAll(cl: string, containers: readonly Container[], networks: readonly Network[]): Promise<void> {
  for (const c of containers) await removeContainer(c);
  for (const n of networks) await removeNetwork(n);
  await until('the network empty in etcd', async () => (await owners(cl)).length === 0);
}

describe('node ids: names are labels, ids are identity', () => {
  it("finding 5: a second host given another's MYNET_NODE_NAME is refused, takes none of its --ip, and its convergence deletes none of its records", async () => {
    const [b, c] = [host(1), host(2)];
    const cl = 'mntr5';
    const { nx: nc, ny: nb, cx: cc, cy: cb } = await twoHosts(cl, '10.224.5.0/24', c, b, '10.224.5.50');
    const before = await owners(cl);

    // C is given B's name by mistake (its own id, its own journal with cc in it).
    await restartAs(c, { MYNET_NODE_NAME: b.nodeName });
    // 30 s: a restarted plugin on a loaded CI machine (the e2e tier alongside) took over 10 s to answer its admin socket.
    await following(c.plugin.adminSocket, 30_000);
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
    await removeAll(cl, [cc, cb], [nc, nb]);
  }, 120_000);

  it('finding 15: a host renamed moves its claims and records to its new name (none left under the old one) and stays reachable', async () => {
    const [a, b] = [host(0), host(1)];
    const cl = 'mntr15';
    const { nx: na, ny: nb, cx: ca, cy: cb } = await twoHosts(cl, '10.224.15.0/24', a, b);

    await restartAs(a, { MYNET_NODE_NAME: `${TAG}a2` });
    await until(
      "A's claim and record moved to its new name",
      async () =>
        heldBy(await claims(cluster().etcd, cl), `${TAG}a2`).length === 1 &&
        heldBy(await endpointRecords(cluster().etcd, cl), `${TAG}a2`).length === 1,
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

    // Renamed back: the same move again, then everything removed under A's own name.
    await restartAs(a, { MYNET_NODE_NAME: undefined });
    await removeAll(cl, [ca, cb], [na, nb]);
  }, 120_000);

  it('an upgrade: records and a state directory from a mynet before ids are taken over by name and rewritten with the new id, nothing released', async () => {
    const [a, b] = [host(0), host(1)];
    const cl = 'mntr16';
    const { nx: na, ny: nb, cx: ca, cy: cb } = await twoHosts(cl, '10.224.16.0/24', a, b);

    // B as an older mynet left it: no node-id file, its records in etcd without ids.
    await b.plugin.stop();
    rmSync(join(b.plugin.stateDir, 'node-id'));
    for (const prefix of [`/mynet/v1/addresses/${cl}/`, `/mynet/v1/endpoints/${cl}/`]) {
      for (const [key, value] of await cluster().etcd.get(prefix)) {
        const { nodeId, ...old } = value as { node: string; nodeId?: string };
        if (old.node === b.nodeName && nodeId !== undefined) await cluster().etcd.put(key, JSON.stringify(old));
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
    await removeAll(cl, [ca, cb], [na, nb]);
  }, 120_000);

  it("finding 11: a dead host's underlay leaves the VXLAN guard of the others when its presence expires, and is admitted again when it is back", async () => {
    const [a, b] = [host(0), host(1)];
    const cl = 'mntr11';
    const na: Network = await createNetwork(a, { subnet: '10.224.11.0/24', cluster: cl });
    const nb: Network = await createNetwork(b, { subnet: '10.224.11.0/24', cluster: cl });
    const cb: Container = await runContainer(nb);
    const admitted = async (): Promise<string> => a.ns.run(['nft', 'list', 'set', 'inet', 'mynet', peerSet(na.id)]);
    await until("A admits B's VXLAN", async () => (await admitted()).includes(b.address));
    const member = async (): Promise<boolean | undefined> =>
      (await clusterStatus(a.plugin.adminSocket)).members.find((m) => m.name === b.nodeName)?.up;

    await b.plugin.kill9();
    await until('B shown down on A (its lease expired)', async () => (await member()) === false, 25_000);
    await until("B's underlay out of A's VXLAN guard", async () => !(await admitted()).includes(b.address), 10_000, admitted);
    // Its claim stays (a lost lease frees nothing): only the guard follows presence.
    expect(heldBy(await claims(cluster().etcd, cl), b.nodeName)).toEqual([cb.ip]);

    await b.plugin.start();
    await until("B's underlay admitted again", async () => (await admitted()).includes(b.address), 15_000, admitted);
    await removeAll(cl, [cb], [nb, na]);
  }, 120_000);
});
