/**
 * Issue 23 item 4, e2e tier: a dual-stack cluster network on two real dockerds (helpers/hosts.ts)
 * over an IPv4 underlay, one etcd, one shared world for every assertion: both hosts create it
 * with the same command, a container on each, ping6 and TCP over IPv6 across hosts, AAAA from
 * the other host's mynet; and IPv6-only cluster networks: the CLI before 28 has no --ipv4 flag
 * (no IPv6-only network at all, for any driver), 28 sends no IPv4 pool and mynet refuses it
 * naming the field. Names start with mnt-mn6-; underlay 198.18.196.0/24; subnets 10.223.16.0/20
 * and fd6c:6:2::/64.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/wait.js';
import { type DockerHost, HOST_DNS, type Hosts, startHosts } from './helpers/hosts.js';

const UNDERLAY = '198.18.196';
const V4 = '10.223.16.0/20';
const V6 = 'fd6c:6:2::/64';
const PORT = '80';

const serving = (token: string): string[] => ['nc', '-ll', '-p', PORT, '-e', 'echo', token];
const ip6On = (h: DockerHost, c: string, net: string): Promise<string> =>
  h.dockerOk('inspect', c, '--format', `{{(index .NetworkSettings.Networks "${net}").GlobalIPv6Address}}`);
const ask = async (h: DockerHost, from: string, target: string): Promise<string> => {
  const r = await h.docker('exec', from, 'nc', '-w', '3', target, PORT);
  return r.exitCode === 0 ? r.stdout : `(nc exited ${r.exitCode}: ${r.stderr})`;
};

describe('issue 23 item 4: IPv6 on cluster networks', () => {
  let run0: Hosts;
  let a: DockerHost;
  let b: DockerHost;
  let cluster: string;
  let web: string;
  let cli: string;
  let major = 0;

  beforeAll(async () => {
    run0 = await startHosts({ tag: 'mn6', names: ['a', 'b'], subnet: UNDERLAY, etcd: true });
    [a, b] = run0.hosts as [DockerHost, DockerHost];
    major = Number((await a.dockerOk('version', '--format', '{{.Server.Version}}')).split('.')[0]);
    cluster = `mnt-mn6-${run0.id}`;
    const create = ['-d', 'mynet', '--ipam-driver', 'mynet', '--ipv6', '--subnet', V4, '--subnet', V6, '-o', `mynet.cluster=${cluster}`];
    await a.r.network(create, cluster);
    await b.r.network(create, cluster);
    web = await a.r.container(['--network', cluster], serving('from-a'));
    cli = await b.r.container(['--network', cluster], serving('from-b'));
  });
  afterAll(async () => {
    await run0?.destroy();
  });

  it('dual stack: each container has an IPv6 address of the subnet; ping6 and TCP over IPv6 cross hosts both ways', async () => {
    const [w6, c6] = [await ip6On(a, web, cluster), await ip6On(b, cli, cluster)];
    expect(w6).toMatch(/^fd6c:6:2::/);
    expect(c6).toMatch(/^fd6c:6:2::/);
    expect(w6).not.toBe(c6);
    await waitUntil(
      `${cli} on b to ping6 ${w6} on a`,
      async () => (await b.docker('exec', cli, 'ping', '-6', '-c', '1', '-W', '2', w6)).exitCode === 0,
      {
        ms: 15_000,
        every: 200,
        show: () => b.logs(10),
      },
    );
    expect((await a.docker('exec', web, 'ping', '-6', '-c', '1', '-W', '2', c6)).exitCode).toBe(0);
    expect(await ask(b, cli, w6)).toBe('from-a');
    expect(await ask(a, web, c6)).toBe('from-b');
  });

  it("AAAA across hosts: b's mynet answers a's container's IPv6 address, a's answers b's", async () => {
    const aaaa = async (h: DockerHost, name: string): Promise<string> =>
      (await h.inNs('dig', `@${HOST_DNS}`, '+short', '+tries=1', '+time=1', name, 'AAAA')).stdout.trim();
    const w6 = await ip6On(a, web, cluster);
    await waitUntil(`b's mynet to answer AAAA ${web}`, async () => (await aaaa(b, `${web}.${cluster}.mynet`)) === w6, {
      ms: 10_000,
      every: 100,
    });
    expect(await aaaa(a, `${cli}.${cluster}.mynet`)).toBe(await ip6On(b, cli, cluster));
  });

  it('IPv6-only: no --ipv4 flag before 28; on 28 a cluster network without an IPv4 subnet is refused naming the field', async () => {
    const r = await a.docker(
      'network',
      'create',
      '-d',
      'mynet',
      '--ipam-driver',
      'mynet',
      '--ipv4=false',
      '--ipv6',
      '--subnet',
      'fd6c:6:3::/64',
      '-o',
      `mynet.cluster=${cluster}x`,
      `${cluster}-v6only`,
    );
    expect(r.exitCode).not.toBe(0);
    if (major < 28) expect(r.stderr).toMatch(/unknown flag: --ipv4/);
    else expect(r.stderr).toMatch(/IPv4Data: a cluster network .* needs exactly one IPv4 subnet \(--subnet\), got 0/);
  });
});
