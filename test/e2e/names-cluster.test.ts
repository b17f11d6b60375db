/**
 * Issue 23.1, e2e tier: names across hosts inside containers, with two real Docker hosts
 * (helpers/hosts.ts) on one etcd, their resolv.conf listing mynet's 127.0.0.153 first (the one
 * host-wide step the README asks for). What dockerd's embedded DNS does with a name (libnetwork
 * resolver.go, sandbox.go, at v20.10.24, v26.1.5 and v28.5.2): a name one of the container's
 * own host's endpoints holds on the network is answered from that host's records only
 * (svcRecords; only swarm-scope networks of a swarm node share them between hosts) and never
 * forwarded; any other name, a single label too (unless the user set ndots), is forwarded to
 * the host's nameservers, a loopback one asked from the host's namespace, where mynet answers.
 * So: a bare name or alias held only on other hosts answers every one of their addresses, and an
 * alias held on this host too answers this host's address only (asserted as such below);
 * `<alias>.<cluster>.mynet` answers every host's.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/wait.js';
import { IMAGE } from './global-setup.js';
import { type DockerHost, HOST_DNS, type Hosts, startHosts } from './helpers/hosts.js';
import { run } from './helpers/packaging.js';

// This file's underlay and container subnets (only inside the namespaces it makes).
const UNDERLAY = '198.18.110';
const SUBNET = '10.211.0.0/20';
const PORT = '80';
/** Presence lease of each host: short, so that a stopped host shows as dead within seconds. */
const TTL_S = 3;
const COMPOSE_V2 = process.env.MNT_COMPOSE_V2 || '/var/cache/mynet-engines/compose-v2';

const serving = (token: string): string[] => ['nc', '-ll', '-p', PORT, '-e', 'echo', token];
const ask = async (h: DockerHost, from: string, target: string): Promise<string> => {
  const r = await h.docker('exec', from, 'nc', '-w', '3', target, PORT);
  return r.exitCode === 0 ? r.stdout : `(nc exited ${r.exitCode}: ${r.stderr})`;
};
const ipOn = (h: DockerHost, c: string, net: string): Promise<string> =>
  h.dockerOk('inspect', c, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
/** The IPv4 addresses a container's own lookup of `name` gets (busybox nslookup through 127.0.0.11). */
const lookupIn = async (h: DockerHost, c: string, name: string): Promise<string[]> => {
  const r = await h.docker('exec', c, 'nslookup', '-type=a', name);
  // The answer section follows the server's lines: "Name: x" then "Address: ip".
  const answer = r.stdout
    .split(/\n\s*\n/)
    .slice(1)
    .join('\n');
  return [...answer.matchAll(/Address:\s*(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1] as string).sort();
};
/** What host h's mynet answers for `name` (A records), asked as dockerd asks it: from h's namespace. */
const mynetAnswers = async (h: DockerHost, name: string): Promise<string[]> =>
  (await h.inNs('dig', `@${HOST_DNS}`, '+short', '+tries=1', '+time=1', name, 'A')).stdout
    .split('\n')
    .filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l))
    .sort();

describe('issue 23.1: names across hosts inside containers', () => {
  let run0: Hosts;
  let a: DockerHost;
  let b: DockerHost;
  let cluster: string;
  let web: string;
  let cli: string;

  beforeAll(async () => {
    run0 = await startHosts({
      tag: 'nq',
      names: ['a', 'b'],
      subnet: UNDERLAY,
      etcd: true,
      env: { MYNET_CLUSTER_PRESENCE_TTL: String(TTL_S) },
    });
    [a, b] = run0.hosts as [DockerHost, DockerHost];
    cluster = `mnt-nq-${run0.id}`;
    const create = ['-d', 'mynet', '--ipam-driver', 'mynet', '--subnet', SUBNET, '-o', `mynet.cluster=${cluster}`];
    await a.r.network(create, cluster);
    await b.r.network(create, cluster);
    web = await a.r.container(['--network', cluster], serving('from-a'));
    cli = await b.r.container(['--network', cluster], serving('from-b'));
    console.log(`[names-cluster] dockerd ${await a.dockerOk('version', '--format', '{{.Server.Version}}')}`);
  });
  afterAll(async () => {
    await run0?.destroy();
  });

  it("a container on B reaches a container on A by its bare name, and A reaches B's the same way", async () => {
    await waitUntil(`host b to reach ${web} by its bare name`, async () => (await ask(b, cli, web)) === 'from-a', {
      ms: 15_000,
      every: 200,
      show: () => b.logs(10),
    });
    expect(await ask(a, web, cli)).toBe('from-b');
    expect(await lookupIn(b, cli, web)).toEqual([await ipOn(a, web, cluster)]);
    // <name>.<cluster>.mynet keeps working.
    expect(await ask(b, cli, `${web}.${cluster}.mynet`)).toBe('from-a');
  });

  it("aliases: one held on A only answers from B; one on two containers of A answers both; one on A and on B answers B's own only (dockerd never forwards it), and <alias>.<cluster>.mynet answers both", async () => {
    const pair = [
      await a.r.container(['--network', cluster, '--network-alias', 'nq-pair'], serving('pair')),
      await a.r.container(['--network', cluster, '--network-alias', 'nq-pair'], serving('pair')),
    ];
    const pairIps = (await Promise.all(pair.map((c) => ipOn(a, c, cluster)))).sort();
    const apiA = await a.r.container(['--network', cluster, '--network-alias', 'nq-api'], serving('api-a'));
    const apiB = await b.r.container(['--network', cluster, '--network-alias', 'nq-api'], serving('api-b'));
    const [ipA, ipB] = [await ipOn(a, apiA, cluster), await ipOn(b, apiB, cluster)];
    await waitUntil(
      "B's mynet to answer both nq-pair addresses",
      async () => (await mynetAnswers(b, 'nq-pair')).join() === pairIps.join(),
      { ms: 15_000, every: 100 },
    );
    expect(await lookupIn(b, cli, 'nq-pair')).toEqual(pairIps);
    expect(await ask(b, cli, 'nq-pair')).toBe('pair');
    await waitUntil(
      "B's mynet to answer nq-api of both hosts",
      async () => (await mynetAnswers(b, `nq-api.${cluster}.mynet`)).join() === [ipA, ipB].sort().join(),
      { ms: 15_000, every: 100 },
    );
    // The limit of a driver outside swarm: dockerd on B knows nq-api itself and answers only B's.
    expect(await lookupIn(b, cli, 'nq-api')).toEqual([ipB]);
    expect(await lookupIn(a, web, 'nq-api')).toEqual([ipA]);
    expect(await lookupIn(b, cli, `nq-api.${cluster}.mynet`)).toEqual([ipA, ipB].sort());
  });

  it("a container stopped or removed on A is out of B's answers within 1 s", async () => {
    const ips = await mynetAnswers(b, 'nq-pair');
    expect(ips).toHaveLength(2);
    const holders = (await a.dockerOk('ps', '--format', '{{.Names}}')).split('\n').filter(Boolean);
    const byIp = new Map<string, string>();
    for (const c of holders) byIp.set(await ipOn(a, c, cluster), c);
    const [first, second] = ips.map((ip) => byIp.get(ip) as string) as [string, string];
    await a.dockerOk('stop', '-t', '0', first);
    const stopped = await waitUntil(
      "the stopped one out of B's answers",
      async () => (await mynetAnswers(b, 'nq-pair')).join() === (ips[1] as string),
      { ms: 1000, every: 20 },
    );
    await a.dockerOk('rm', '-f', second);
    const removed = await waitUntil("the removed one out of B's answers", async () => (await mynetAnswers(b, 'nq-pair')).length === 0, {
      ms: 1000,
      every: 20,
    });
    console.log(`[names-cluster] out of B's answers ${stopped.toFixed(0)} ms after docker stop, ${removed.toFixed(0)} ms after docker rm`);
    // From inside B's container too: the name is now nobody's.
    expect(await lookupIn(b, cli, 'nq-pair')).toEqual([]);
  });

  it('a dead host (its presence lease expired) has its names left out until it is back', async () => {
    const webIp = await ipOn(a, web, cluster);
    expect(await mynetAnswers(b, web)).toEqual([webIp]);
    const pid = a.plugin.proc.pid as number;
    process.kill(pid, 'SIGSTOP'); // host A's mynet stops renewing its lease, as a dead host would
    try {
      await waitUntil("A's names left out on B", async () => (await mynetAnswers(b, web)).length === 0, {
        ms: (TTL_S + 10) * 1000,
        every: 200,
      });
      expect(await lookupIn(b, cli, web)).toEqual([]);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitUntil("A's names back on B", async () => (await mynetAnswers(b, web)).join() === webIp, { ms: 20_000, every: 200 });
    expect(await ask(b, cli, web)).toBe('from-a');
  });

  interface Compose {
    readonly name: string;
    readonly cmd: string;
    readonly pre: readonly string[];
    readonly env: Record<string, string>;
  }
  const COMPOSES: readonly Compose[] = [
    { name: 'docker compose v2', cmd: 'docker', pre: ['compose'], env: { DOCKER_CONFIG: COMPOSE_V2 } },
    { name: 'docker-compose 1.29', cmd: 'docker-compose', pre: [], env: {} },
  ];
  it.each(COMPOSES)(
    'compose across two hosts with $name: the same file, one service on each host, each reaches the other by service name',
    async (c) => {
      if (c.env.DOCKER_CONFIG && !existsSync(join(COMPOSE_V2, 'cli-plugins', 'docker-compose')))
        throw new Error(`no compose v2 in ${COMPOSE_V2}: run scripts/engines.sh fetch`);
      const tag = c.pre.length ? 'v2' : 'v1';
      const project = `mnt-nq-${run0.id}-${tag}`;
      const file = join(a.dir, '..', `compose-${tag}.yml`);
      writeFileSync(
        file,
        [
          'services:',
          '  web:',
          `    image: ${IMAGE}`,
          `    command: [nc, -ll, -p, "${PORT}", -e, echo, web-on-a]`,
          '    networks: [blue]',
          '  cli:',
          `    image: ${IMAGE}`,
          `    command: [nc, -ll, -p, "${PORT}", -e, echo, cli-on-b]`,
          '    networks: [blue]',
          'networks:',
          '  blue:',
          '    driver: mynet',
          `    driver_opts: { mynet.cluster: ${project} }`,
          `    ipam: { driver: mynet, config: [{ subnet: ${tag === 'v2' ? '10.211.16.0/20' : '10.211.32.0/20'} }] }`,
          '',
        ].join('\n'),
      );
      const compose = (h: DockerHost, ...args: string[]): ReturnType<typeof run> =>
        run(c.cmd, [...c.pre, '-f', file, '-p', project, ...args], {
          env: { ...c.env, DOCKER_HOST: `unix://${h.socket}` },
          timeoutMs: 120_000,
        });
      const composeOk = async (h: DockerHost, ...args: string[]): Promise<string> => {
        const r = await compose(h, ...args);
        if (r.exitCode !== 0) throw new Error(`${c.name} ${args.join(' ')} on ${h.name} exited ${r.exitCode}: ${r.stderr}\n${h.logs(15)}`);
        return r.stdout;
      };
      const from = async (h: DockerHost, service: string, target: string): Promise<string> =>
        (await compose(h, 'exec', '-T', service, 'nc', '-w', '3', target, PORT)).stdout;
      try {
        await composeOk(a, 'up', '-d', 'web');
        await composeOk(b, 'up', '-d', 'cli');
        await waitUntil('cli on B to reach web on A by service name', async () => (await from(b, 'cli', 'web')) === 'web-on-a', {
          ms: 20_000,
          every: 250,
        });
        expect(await from(a, 'web', 'cli')).toBe('cli-on-b');
      } finally {
        await compose(b, 'down');
        await compose(a, 'down');
      }
    },
  );
});
