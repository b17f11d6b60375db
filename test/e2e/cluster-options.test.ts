/**
 * Issue 23, items 2, 3 and 5, e2e tier: two real Docker hosts on this machine (helpers/hosts.ts),
 * one etcd on their underlay, and cluster networks made with the options a user gives:
 *   - `--internal`: containers reach each other across hosts; nothing reaches the outside (the
 *     underlay's etcd, which a container of a plain network on the same host reaches), and a
 *     `-p` is published nowhere;
 *   - `--ip-range`: the same range on both hosts, a different range per host (each host's
 *     containers from its own range, `--ip` outside it still given), and the gateway the two
 *     ranges would each choose refused naming --gateway;
 *   - `-o mynet.multicast=true`: a ping to 224.0.0.1 and to the subnet's broadcast address from
 *     host A is answered by a container on host B; without it only A's own container answers.
 * Names: `mnt-no-...`; underlay 198.18.120.0/24; container subnets inside 10.212.0.0/16.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerHost, type Hosts, startHosts } from './helpers/hosts.js';
import { waitFor } from './helpers/sh.js';

const SUBNET = '198.18.120';
const PORT = '80';
const serving = (token: string): string[] => ['nc', '-ll', '-p', PORT, '-e', 'echo', token];
const ask = async (h: DockerHost, from: string, target: string, port = PORT): Promise<string> => {
  const r = await h.docker('exec', from, 'nc', '-w', '3', target, port);
  return r.exitCode === 0 ? r.stdout : `(nc exited ${r.exitCode}: ${r.stderr})`;
};
const ipOn = (h: DockerHost, c: string, net: string): Promise<string> =>
  h.dockerOk('inspect', c, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
/** Whether a TCP connection from container `c` on host `h` to ip:port is made (busybox nc's exit code). */
const connects = async (h: DockerHost, c: string, ip: string, port: string): Promise<boolean> =>
  (await h.docker('exec', c, 'sh', '-c', `nc -w 2 ${ip} ${port} </dev/null`)).exitCode === 0;
/** The addresses that answered `count` pings to `target` from container `c` (busybox ping prints one line per reply). */
const answering = async (h: DockerHost, c: string, target: string): Promise<string[]> => {
  const r = await h.docker('exec', c, 'ping', '-c', '3', '-W', '2', target);
  return [...new Set([...r.stdout.matchAll(/bytes from ([\d.]+):/g)].map((m) => m[1] as string))].sort();
};
/** A container that answers pings to broadcast and multicast addresses (the kernel ignores them by default). */
const ECHO_BROADCASTS = ['--sysctl', 'net.ipv4.icmp_echo_ignore_broadcasts=0'];

describe('cluster network options across two Docker hosts (issue 23)', () => {
  let run: Hosts;
  let a: DockerHost;
  let b: DockerHost;
  let tag: string;
  const cluster = (what: string): string => `mnt-no-${tag}-${what}`;
  const create = (name: string, subnet: string, ...more: string[]): string[] => [
    '-d',
    'mynet',
    '--ipam-driver',
    'mynet',
    '--subnet',
    subnet,
    '-o',
    `mynet.cluster=${name}`,
    ...more,
  ];

  beforeAll(async () => {
    run = await startHosts({ tag: 'no', names: ['a', 'b'], subnet: SUBNET, etcd: true });
    [a, b] = run.hosts as [DockerHost, DockerHost];
    tag = run.id;
  });
  afterAll(async () => {
    await run?.destroy();
  });

  it('--internal: containers reach each other across hosts; nothing reaches the outside a plain network reaches; -p publishes nothing', async () => {
    const name = cluster('int');
    await a.r.network(create(name, '10.212.1.0/24', '--internal'), name);
    await b.r.network(create(name, '10.212.1.0/24', '--internal'), name);
    const web = await a.r.container(['--network', name, '-p', '18080:80'], serving('from-a'));
    const cli = await b.r.container(['--network', name], serving('from-b'));
    const webIp = await ipOn(a, web, name);
    await waitFor('host b to reach web on host a', async () => (await ask(b, cli, webIp)) === 'from-a', 10_000, 250).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}\n${a.logs()}\n${b.logs()}`);
      },
    );
    expect(await ask(a, web, await ipOn(b, cli, name))).toBe('from-b');
    // The outside: etcd on the underlay. A plain (local) network's container on host A reaches it.
    const etcd = new URL((run.etcd as NonNullable<Hosts['etcd']>).endpoint);
    const plain = await a.r.network(['-d', 'mynet', '--subnet', '10.212.4.0/24']);
    const control = await a.r.container(['--network', plain]);
    expect(await connects(a, control, etcd.hostname, etcd.port), a.logs()).toBe(true);
    expect(await connects(a, web, etcd.hostname, etcd.port)).toBe(false);
    expect(await connects(b, cli, etcd.hostname, etcd.port)).toBe(false);
    expect(await connects(b, cli, a.ip, '18080')).toBe(false);
    // From host B's own namespace (the underlay), where a port published on A would answer.
    expect((await b.inNs('busybox', 'nc', '-w', '2', a.ip, '18080')).stdout).not.toContain('from-a');
    await a.r.cleanup();
    await b.r.cleanup();
  });

  it('--ip-range, the same range on both hosts: every address from it, none twice, reachable across hosts', async () => {
    const name = cluster('same');
    for (const h of [a, b])
      await h.r.network(create(name, '10.212.16.0/20', '--ip-range', '10.212.17.0/25', '--gateway', '10.212.16.1'), name);
    const ips: string[] = [];
    const made: [DockerHost, string][] = [];
    for (const h of [a, b, a, b]) {
      const c = await h.r.container(['--network', name], serving(`from-${h.name}`));
      made.push([h, c]);
      ips.push(await ipOn(h, c, name));
    }
    for (const ip of ips) expect(ip).toMatch(/^10\.212\.17\.([0-9]|[1-9][0-9]|1[01][0-9]|12[0-7])$/);
    expect(new Set(ips).size).toBe(4);
    const [[, onA], [, onB]] = made as [[DockerHost, string], [DockerHost, string]];
    await waitFor("host a to reach host b's container", async () => (await ask(a, onA, ips[1] as string)) === 'from-b', 10_000, 250);
    expect(await ask(b, onB, ips[2] as string)).toBe('from-a');
    await a.r.cleanup();
    await b.r.cleanup();
  });

  it("--ip-range, a range per host: each host gives from its own, --ip outside it is given, the other host's address refused; without --gateway the second range is refused naming it", async () => {
    const name = cluster('per');
    await a.r.network(create(name, '10.212.32.0/20', '--ip-range', '10.212.33.0/24', '--gateway', '10.212.32.1'), name);
    await b.r.network(create(name, '10.212.32.0/20', '--ip-range', '10.212.34.0/24', '--gateway', '10.212.32.1'), name);
    const onA = await a.r.container(['--network', name], serving('from-a'));
    const onB = await b.r.container(['--network', name], serving('from-b'));
    const [ipA, ipB] = [await ipOn(a, onA, name), await ipOn(b, onB, name)];
    expect(ipA).toMatch(/^10\.212\.33\./);
    expect(ipB).toMatch(/^10\.212\.34\./);
    const fixed = await b.r.container(['--network', name, '--ip', '10.212.33.200'], serving('fixed'));
    expect(await ipOn(b, fixed, name)).toBe('10.212.33.200');
    const dup = b.r.name('dup');
    b.r.track(dup);
    const refused = await b.docker('run', '-d', '--name', dup, '--network', name, '--ip', ipA, 'mynet-test/busybox:latest', 'sleep', '600');
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain(a.node);
    await waitFor(
      "host a to reach both of host b's containers",
      async () => (await ask(a, onA, ipB)) === 'from-b' && (await ask(a, onA, '10.212.33.200')) === 'fixed',
      10_000,
      250,
    );
    expect(await ask(b, onB, ipA)).toBe('from-a');

    // Each host's range gives its own first address as the gateway (as Docker's IPAM does): the second is refused, naming the recorded one.
    const gw = cluster('gw');
    await a.r.network(create(gw, '10.212.48.0/20', '--ip-range', '10.212.49.0/24'), gw);
    expect(await b.r.networkFails(create(gw, '10.212.48.0/20', '--ip-range', '10.212.50.0/24'), gw)).toMatch(
      /already defined by node \S+ as subnet 10\.212\.48\.0\/20, gateway 10\.212\.49\.0.*--gateway 10\.212\.49\.0/,
    );
    await a.r.cleanup();
    await b.r.cleanup();
  });

  it("-o mynet.multicast=true: host B's container answers a multicast and a broadcast ping from host A; without it only host A's own container does", async () => {
    const on = cluster('mc');
    const off = cluster('nomc');
    for (const h of [a, b]) {
      await h.r.network(create(on, '10.212.2.0/24', '-o', 'mynet.multicast=true'), on);
      await h.r.network(create(off, '10.212.3.0/24'), off);
    }
    const listener = async (h: DockerHost, net: string): Promise<string> =>
      ipOn(h, await h.r.container(['--network', net, ...ECHO_BROADCASTS]), net);
    const bOn = await listener(b, on);
    const [aOff, bOff] = [await listener(a, off), await listener(b, off)];
    const senderOn = await a.r.container(['--network', on]);
    const senderOff = await a.r.container(['--network', off]);
    // B's endpoint reaches A through etcd's watch: its unicast first, then the flood entry is there too.
    await waitFor("host a to reach host b's listener", async () => (await answering(a, senderOn, bOn)).includes(bOn), 10_000, 250);
    expect(await answering(a, senderOn, '224.0.0.1'), `${a.logs()}\n${b.logs()}`).toEqual([bOn]);
    expect(await answering(a, senderOn, '10.212.2.255')).toEqual([bOn]);
    await waitFor(
      "host a to reach host b's listener (multicast off)",
      async () => (await answering(a, senderOff, bOff)).includes(bOff),
      10_000,
      250,
    );
    expect(await answering(a, senderOff, '224.0.0.1')).toEqual([aOff]);
    expect(await answering(a, senderOff, '10.212.3.255')).toEqual([aOff]);
    // The flood entry: one, to host B only, on A's VXLAN device of the multicast network.
    const fdb = (await a.inNs('bridge', 'fdb', 'show')).stdout.split('\n').filter((l) => l.startsWith('00:00:00:00:00:00'));
    expect(fdb).toHaveLength(1);
    expect(fdb[0]).toContain(`dst ${b.ip} self permanent`);
    await a.r.cleanup();
    await b.r.cleanup();
  });
});
