/**
 * Issue 22, finding 6, e2e tier: a host-local network's lifecycle is unaffected while etcd drops
 * packets. One real Docker host (helpers/hosts.ts) with etcd on its underlay (198.18.200.0/24,
 * only inside the namespaces this file makes), a cluster network with a container on it, and then
 * local networks made, used and removed with `docker` while the underlay namespace's own nft table
 * drops 30% of the packets to and from etcd's port (this kernel has no netem). Times are printed
 * as figures, never asserted; every command must succeed, and nothing of the local networks stays.
 */
import { figures, lossScript } from '../helpers/etcd-trouble.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerHost, type Hosts, startHosts } from './helpers/hosts.js';
import { ok } from './helpers/sh.js';

const LOSS = 'mnfa_loss';
const ROUNDS = 5;
let run: Hosts;
let a: DockerHost;

beforeAll(async () => {
  run = await startHosts({ tag: 'mnfa', names: ['a'], subnet: '198.18.200', etcd: true });
  a = run.hosts[0] as DockerHost;
});
afterAll(async () => {
  await run?.destroy();
});

/** `docker network create`, a container that pings its gateway, `docker rm`, `docker network rm`. */
async function localLifecycles(what: string): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    const n = await a.r.network(['-d', 'mynet', '--subnet', '10.225.20.0/24']);
    expect(
      await a.dockerOk('run', '--rm', '--network', n, 'mynet-test/busybox:latest', 'ping', '-c', '1', '-W', '2', '10.225.20.1'),
    ).toMatch(/1 packets received/);
    await a.dockerOk('network', 'rm', n);
    times.push(performance.now() - t);
  }
  console.info(`[etcd-lossy] local network lifecycle, ${what}: ${figures(times)}`);
}

describe('finding 6: a local network while etcd drops packets', () => {
  it('every local lifecycle succeeds, with etcd healthy and with 30% of its packets dropped', async () => {
    const cl = `mnt-mnfa-${run.id}`;
    await a.r.network(['-d', 'mynet', '--ipam-driver', 'mynet', '--subnet', '10.225.21.0/24', '-o', `mynet.cluster=${cl}`], cl);
    await a.r.container(['--network', cl]);
    await localLifecycles('etcd healthy');
    const e = run.etcd as NonNullable<Hosts['etcd']>;
    const ns = e.netns as string;
    await ok('ip', ['netns', 'exec', ns, 'nft', lossScript(LOSS, e.clientPort, 30)]);
    try {
      await localLifecycles('etcd dropping 30% of its packets');
    } finally {
      await ok('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', LOSS]);
    }
    await a.r.cleanup();
    // `ip -j link show group` prints an empty object for each link outside the group.
    const links = JSON.parse((await a.inNs('ip', '-j', 'link', 'show', 'group', '28014')).stdout || '[]') as { ifname?: string }[];
    expect(links.flatMap((l) => (l.ifname ? [l.ifname] : []))).toEqual([]);
  }, 300_000);
});
