/**
 * Issue 22, finding 6, host tier: etcd trouble never touches local networks. One host (a real
 * plugin process in a namespace, cluster-hosts-fixture.ts) and a real etcd on an underlay of this
 * test's own (198.18.199.0/24, only inside its namespaces; etcd on 24063 there). A cluster
 * network's containers come and go all the time while local networks live their whole lifecycle,
 * with etcd healthy, then dropping 30% of its packets (nft `numgen` in the underlay namespace's
 * own table, on etcd's port only), then frozen. Times are printed as figures, never asserted:
 * what is asserted is that every local lifecycle succeeds, and that one completes while a cluster
 * network is made and removed while cluster claims are stalled on etcd (it could not while a
 * cluster call held the request lock).
 * Every name carries the tag mnt-mnfa-; `destroy` removes the namespaces, etcd and the temp dir.
 */
import { figures, lossScript } from '../helpers/etcd-trouble.js';
import { afterAll, describe, expect, it } from 'vitest';
import { Cluster, type Host, leftoverNamespaces } from './cluster-hosts-fixture.js';
import { createNetwork, removeContainer, removeNetwork, requestAddress, runContainer } from './dockerd-moves.js';

const TAG = 'mnt-mnfa-'; // the netns helper wants mnt-; mnfa is this file's own
const ETCD_PORT = 24063;
const LOSS = 'mnfa_loss';
const ROUNDS = 10;
let cluster: Cluster;

afterAll(async () => {
  await cluster?.destroy();
  expect(await leftoverNamespaces(TAG)).toEqual([]);
});

/** One local network's whole life: create, a container in and out, delete. */
async function localLifecycle(h: Host): Promise<number> {
  const t = performance.now();
  const net = await createNetwork(h, { subnet: '10.225.2.0/24' });
  const c = await runContainer(net);
  await removeContainer(c);
  await removeNetwork(net);
  return performance.now() - t;
}

/** Cluster containers made and removed one after another until `stop`; their failures counted, not thrown. */
function clusterChurn(net: Parameters<typeof runContainer>[0]): { stop: () => Promise<{ ok: number; failed: number }> } {
  let going = true;
  const n = { ok: 0, failed: 0 };
  const loop = (async () => {
    while (going) {
      try {
        await removeContainer(await runContainer(net));
        n.ok++;
      } catch {
        n.failed++; // etcd lossy or frozen: the cluster side may fail; only the local side is judged
      }
    }
  })();
  return {
    stop: async () => {
      going = false;
      await loop;
      return n;
    },
  };
}

async function lifecycles(h: Host, what: string): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) times.push(await localLifecycle(h));
  console.info(`finding 6, local lifecycle, ${what}: ${figures(times)}`);
}

describe('finding 6: a local network beside a cluster network whose etcd is in trouble', () => {
  it('every local lifecycle succeeds with etcd healthy, lossy and frozen; one completes while a cluster claim is stalled', async () => {
    cluster = await Cluster.start({ hosts: 1, tag: TAG, underlay: '198.18.199', etcdPorts: [ETCD_PORT, 24064] });
    const h = cluster.hosts[0] as Host;
    const blue = await createNetwork(h, { subnet: '10.225.1.0/24', cluster: 'mnfa-blue' });

    let churn = clusterChurn(blue);
    await lifecycles(h, 'etcd healthy');
    console.info(`finding 6, cluster containers meanwhile: ${JSON.stringify(await churn.stop())}`);

    const ul = cluster.underlay;
    await ul.run(['nft', lossScript(LOSS, ETCD_PORT, 30)]);
    try {
      churn = clusterChurn(blue);
      await lifecycles(h, 'etcd dropping 30% of its packets');
      console.info(`finding 6, cluster containers meanwhile: ${JSON.stringify(await churn.stop())}`);
    } finally {
      await ul.run(['nft', 'delete', 'table', 'inet', LOSS]);
    }

    // etcd frozen: three cluster addresses asked at once wait in the network's claim queue, each
    // up to its 3 s bound (9 s in all); a local network is made and removed meanwhile. Under a
    // request lock held across cluster calls, it would have waited for all three.
    cluster.etcd.freeze();
    try {
      const order: string[] = [];
      const asked = [1, 2, 3].map(() =>
        requestAddress(blue).then(
          () => void order.push('cluster address'),
          () => void order.push('cluster address refused'),
        ),
      );
      const local = await createNetwork(h, { subnet: '10.225.3.0/24' });
      await removeNetwork(local);
      order.push('local network made and removed');
      await Promise.all(asked);
      expect(order[0]).toBe('local network made and removed');
      const t = performance.now();
      await removeNetwork(blue);
      console.info(`finding 6, DeleteNetwork of the cluster network with etcd frozen: ${Math.round(performance.now() - t)} ms`);
      await lifecycles(h, 'etcd frozen, after the cluster network was deleted');
    } finally {
      cluster.etcd.thaw();
    }
  }, 240_000);
});
