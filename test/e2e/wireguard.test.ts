/**
 * Issue 24, e2e tier: an encrypted cluster network between real dockerds (helpers/hosts.ts: each
 * in its own namespace with its own mynet, one etcd on their underlay 198.18.192.0/24). Hosts a
 * and b run WireGuard in user space (MYNET_WIREGUARD=userspace, wireguard-go); host c may not
 * encrypt (MYNET_WIREGUARD=off). One world: names and TCP across a and b through the tunnel,
 * the MTU inside the containers, c refused with what to set, and the interface gone with the
 * last encrypted network.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DockerHost, type Hosts, startHosts } from './helpers/hosts.js';
import { ok, waitFor } from './helpers/sh.js';
import { ask, ipOn, serving } from './helpers/serving.js';

/** One name per host: wireguard-go's control socket (/var/run/wireguard/<name>.sock) is per machine, not per namespace. */
const wgIf = (h: DockerHost): string => `mnt-mnwg-w${h.name}`;
const hasWg = async (h: DockerHost): Promise<boolean> =>
  ok('ip', ['-n', h.ns, 'link', 'show', 'dev', wgIf(h)]).then(
    () => true,
    () => false,
  );

describe('an encrypted cluster network between two Docker hosts (WireGuard, wireguard-go)', () => {
  let run: Hosts;
  let a: DockerHost;
  let b: DockerHost;
  let c: DockerHost;
  let cluster: string;
  const create = (): string[] => [
    '-d',
    'mynet',
    '--ipam-driver',
    'mynet',
    '--subnet',
    '10.221.0.0/16',
    '-o',
    `mynet.cluster=${cluster}`,
    '-o',
    'mynet.encrypt=wireguard',
  ];

  beforeAll(async () => {
    const t0 = Date.now();
    run = await startHosts({
      tag: 'mnwg',
      names: ['a', 'b', 'c'],
      subnet: '198.18.192',
      etcd: true,
      env: { MYNET_WIREGUARD: 'userspace' },
      hostEnv: {
        a: { MYNET_WIREGUARD_INTERFACE: 'mnt-mnwg-wa' },
        b: { MYNET_WIREGUARD_INTERFACE: 'mnt-mnwg-wb' },
        c: { MYNET_WIREGUARD: 'off', MYNET_WIREGUARD_INTERFACE: 'mnt-mnwg-wc' },
      },
    });
    [a, b, c] = run.hosts as [DockerHost, DockerHost, DockerHost];
    cluster = `mnt-mnwg-${run.id}`;
    console.log(`[wireguard] 3 hosts, etcd and plugins up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
  afterAll(async () => {
    await run?.destroy();
  });

  it('names and TCP across hosts through the tunnel, both ways; MTU 1390 inside the containers', async () => {
    await a.r.network(create(), cluster);
    await b.r.network(create(), cluster);
    const web = await a.r.container(['--network', cluster], serving('from-a'), 'mnt-mnwg-web');
    const cli = await b.r.container(['--network', cluster], serving('from-b'), 'mnt-mnwg-cli');
    const [webIp, cliIp] = [await ipOn(a, web, cluster), await ipOn(b, cli, cluster)];
    const t0 = Date.now();
    await waitFor('host b to reach web on host a', async () => (await ask(b, cli, webIp)) === 'from-a', 15_000, 250).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}\n${a.logs()}\n${b.logs()}`);
      },
    );
    console.log(`[wireguard] first cross-host answer ${Date.now() - t0} ms after both containers ran`);
    expect(await ask(b, cli, `${web}.${cluster}.mynet`)).toBe('from-a');
    expect(await ask(a, web, cliIp)).toBe('from-b');
    expect(await ask(a, web, `${cli}.${cluster}.mynet`)).toBe('from-b');
    for (const [h, x] of [
      [a, web],
      [b, cli],
    ] as const)
      expect(await h.dockerOk('exec', x, 'cat', '/sys/class/net/eth0/mtu')).toBe('1390');
    expect(await hasWg(a)).toBe(true);
  });

  it('a host that may not encrypt (MYNET_WIREGUARD=off) is refused with what to set, and makes nothing', async () => {
    const r = await c.docker('network', 'create', ...create(), cluster);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(
      /option mynet\.encrypt: this host cannot encrypt \(MYNET_WIREGUARD=off\); set MYNET_WIREGUARD=kernel or userspace/,
    );
    expect((await c.docker('network', 'inspect', cluster)).exitCode).not.toBe(0);
    expect(await hasWg(c)).toBe(false);
  });

  it('the last encrypted network removed takes the WireGuard interface with it', async () => {
    await b.r.cleanup();
    await a.r.cleanup();
    await waitFor('the WireGuard interfaces gone', async () => !(await hasWg(a)) && !(await hasWg(b)), 5000, 100);
  });
});
