/**
 * Issue 17, e2e tier: two real Docker hosts on this machine (helpers/hosts.ts: each dockerd in
 * its own network namespace with its own data root, exec root, socket and plugin directory, each
 * with its own mynet), one etcd on their underlay, and one mynet cluster network made with the
 * same command on both. Containers on the two hosts talk over it by address and by name.
 *
 * How a container's lookups reach mynet's DNS (as the README says, tested here as written): the
 * host's resolver configuration lists mynet's address, `nameserver 127.0.0.153` in
 * /etc/resolv.conf (each host here has its own, bound over /etc/resolv.conf in its dockerd's
 * mount namespace). dockerd's embedded DNS (127.0.0.11 in every container on a user-defined
 * network) answers container names itself and forwards the rest to the host's nameservers; it
 * sends to a loopback one from the host's network namespace, where mynet listens. mynet refuses
 * names outside its zone, and dockerd then asks the host's next nameserver, so mynet goes first
 * and the host's own resolver stays after it. A nameserver given with `docker run --dns
 * 127.0.0.153` is asked from the container's own namespace instead, where nothing listens.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE } from './global-setup.js';
import { type DockerHost, HOST_UPSTREAM_DNS, type Hosts, startHosts } from './helpers/hosts.js';
import { ok, waitFor } from './helpers/sh.js';
import { UPSTREAM_NAME, startUpstreamDns } from './helpers/upstream-dns.js';

const CLI = resolve(import.meta.dirname, '../../dist/cli/main.js');
// The underlay of this file's hosts (198.18.0.0/15, only inside the namespaces it makes).
const SUBNET = '198.18.20';
const PORT = '80';

/** A container that answers every TCP connection on PORT with `token` (busybox nc, persistent). */
const serving = (token: string): string[] => ['nc', '-ll', '-p', PORT, '-e', 'echo', token];
/** What `target`:PORT answers to a TCP connection made from inside container `from` on host `h`. */
const ask = async (h: DockerHost, from: string, target: string): Promise<string> => {
  const r = await h.docker('exec', from, 'nc', '-w', '3', target, PORT);
  return r.exitCode === 0 ? r.stdout : `(nc exited ${r.exitCode}: ${r.stderr})`;
};
const ipOn = (h: DockerHost, c: string, net: string): Promise<string> =>
  h.dockerOk('inspect', c, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
/** etcd's keys under `prefix`, read through its JSON gateway from inside the underlay namespace. */
const ETCD_KEYS = `const [url, p] = process.argv.slice(1); const b = (s) => Buffer.from(s).toString('base64');
  const end = p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
  const r = await fetch(url + '/v3/kv/range', { method: 'POST', body: JSON.stringify({ key: b(p), range_end: b(end), keys_only: true }) });
  if (!r.ok) throw new Error('etcd answered ' + r.status);
  console.log(((await r.json()).kvs ?? []).map((k) => Buffer.from(k.key, 'base64').toString()).join('\\n'));`;
const etcdKeys = async (run: Hosts, prefix: string): Promise<string[]> => {
  const e = run.etcd as NonNullable<Hosts['etcd']>;
  return (
    await ok('ip', ['netns', 'exec', e.netns as string, process.execPath, '--input-type=module', '-e', ETCD_KEYS, e.endpoint, prefix])
  )
    .split('\n')
    .filter(Boolean);
};
/** mynet's links (its netdev group) in a host's namespace. */
const mynetLinks = async (h: DockerHost): Promise<string[]> =>
  (JSON.parse((await ok('ip', ['-n', h.ns, '-j', 'link', 'show', 'group', '28014'])) || '[]') as { ifname?: string }[]).flatMap((l) =>
    l.ifname ? [l.ifname] : [],
  );

describe('two Docker hosts on one mynet cluster network', () => {
  let run: Hosts;
  let a: DockerHost;
  let b: DockerHost;
  let cluster: string;

  beforeAll(async () => {
    const t0 = Date.now();
    run = await startHosts({ tag: 'mhe', names: ['a', 'b'], subnet: SUBNET, etcd: true });
    [a, b] = run.hosts as [DockerHost, DockerHost];
    cluster = `mnt-mhe-${run.id}`;
    console.log(
      `[multihost] 2 hosts, etcd and plugins up in ${((Date.now() - t0) / 1000).toFixed(1)} s (dockerd ${await a.dockerOk('version', '--format', '{{.Server.Version}}')})`,
    );
  });
  afterAll(async () => {
    await run?.destroy();
  });

  it('each host is a Docker host of its own: a local mynet network, TCP by container name and by mynet DNS name', async () => {
    for (const [i, h] of [a, b].entries()) {
      const other = h === a ? b : a;
      const n = await h.r.network(['-d', 'mynet', '--subnet', `10.78.${i}.0/24`]);
      const srv = await h.r.container(['--network', n], serving(`local-${h.name}`));
      const cli = await h.r.container(['--network', n]);
      expect(await ask(h, cli, srv), h.logs()).toBe(`local-${h.name}`); // dockerd's embedded DNS
      expect(await ask(h, cli, `${srv}.${n}.mynet`), h.logs()).toBe(`local-${h.name}`); // forwarded to mynet's DNS
      // The plugin that made this network runs in this host's namespace, and only this daemon knows it.
      expect((await mynetLinks(h)).length).toBeGreaterThan(0);
      expect(await mynetLinks(other)).toEqual([]);
      expect((await other.docker('network', 'inspect', n)).exitCode).not.toBe(0);
      await h.r.cleanup();
      expect(await mynetLinks(h)).toEqual([]);
    }
  });

  it('issue 21: a cluster MTU below 576 is refused at create naming the option, nothing of it in etcd; 1400 is made on both hosts, inside the containers too', async () => {
    const name = `${cluster}-mtu`;
    const create = (mtu: number): string[] => [
      '-d',
      'mynet',
      '--ipam-driver',
      'mynet',
      '--subnet',
      '10.79.0.0/16',
      '-o',
      `mynet.cluster=${name}`,
      '-o',
      `com.docker.network.driver.mtu=${mtu}`,
    ];
    const refused = await a.docker('network', 'create', ...create(500), name);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(
      /option com\.docker\.network\.driver\.mtu: 500 is not a whole number from 576 to 65485 \(a cluster network's MTU/,
    );
    expect(await etcdKeys(run, `/mynet/v1/networks/${name}`)).toEqual([]);
    expect((await a.docker('network', 'inspect', name)).exitCode).not.toBe(0);
    // Before the fix, A wrote mtu 500 to etcd here and B refused the definition as corrupt.
    await a.r.network(create(1400), name);
    await b.r.network(create(1400), name);
    expect(await etcdKeys(run, `/mynet/v1/networks/${name}`)).toEqual([`/mynet/v1/networks/${name}`]);
    for (const h of [a, b]) {
      const c = await h.r.container(['--network', name]);
      expect(await h.dockerOk('exec', c, 'cat', '/sys/class/net/eth0/mtu')).toBe('1400');
    }
    await a.r.cleanup();
    await b.r.cleanup();
  });

  it('the same `docker network create` on both hosts; containers reach each other across hosts by address and by <name>.<cluster>.mynet, both ways', async () => {
    const create = ['-d', 'mynet', '--ipam-driver', 'mynet', '--subnet', '10.77.0.0/16', '-o', `mynet.cluster=${cluster}`];
    await a.r.network(create, cluster);
    await b.r.network(create, cluster);
    const web = await a.r.container(['--network', cluster], serving('from-a'), 'mnt-mhe-web');
    const cli = await b.r.container(['--network', cluster], serving('from-b'), 'mnt-mhe-cli');
    const [webIp, cliIp] = [await ipOn(a, web, cluster), await ipOn(b, cli, cluster)];
    expect(webIp).toMatch(/^10\.77\./);
    expect(cliIp).toMatch(/^10\.77\./);
    expect(cliIp).not.toBe(webIp);
    // The cluster MTU: the underlay's 1500 minus VXLAN's 50, inside the containers too.
    for (const [h, c] of [
      [a, web],
      [b, cli],
    ] as const)
      expect(await h.dockerOk('exec', c, 'cat', '/sys/class/net/eth0/mtu')).toBe('1450');
    expect((await mynetLinks(a)).some((l) => l.startsWith('mnx'))).toBe(true);

    // B learns A's endpoint through etcd's watch: allow it a moment, then everything at once.
    await waitFor('host b to reach web on host a', async () => (await ask(b, cli, webIp)) === 'from-a', 10_000, 250).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}\n${a.logs()}\n${b.logs()}`);
      },
    );
    expect(await ask(b, cli, `${web}.${cluster}.mynet`)).toBe('from-a');
    expect(await ask(a, web, cliIp)).toBe('from-b');
    expect(await ask(a, web, `${cli}.${cluster}.mynet`)).toBe('from-b');
    // PTR: each host's mynet names the other host's container.
    expect((await b.inNs('dig', `@127.0.0.153`, '+short', '-x', webIp)).stdout).toBe(`${web}.${cluster}.mynet.`);
    // `mynet status` on host b (its admin socket) shows both members up, one endpoint each.
    const status = await ok(process.execPath, [CLI, '--socket', b.adminSocket, 'status']);
    expect(status).toContain(`cluster: node ${b.node} ${b.ip}, etcd up`);
    expect(status).toContain(`member ${a.node} ${a.ip} up endpoints 1`);
    expect(status).toContain(`member ${b.node} ${b.ip} up endpoints 1`);
  });

  it('`--ip` of an address another host holds is refused, naming that host; once released there, it is free here', async () => {
    const webIp = await ipOn(a, 'mnt-mhe-web', cluster);
    const name = b.r.name('dup');
    b.r.track(name); // docker run creates the container before the address is refused
    const r = await b.docker('run', '-d', '--name', name, '--network', cluster, '--ip', webIp, IMAGE, 'sleep', '600');
    console.log(`[multihost] --ip ${webIp} on ${b.node}: ${r.stderr}`);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(webIp);
    expect(r.stderr).toContain(a.node);

    await a.dockerOk('rm', '-f', 'mnt-mhe-web');
    const taken = await b.r.container(['--network', cluster, '--ip', webIp], serving('moved'));
    expect(await ipOn(b, taken, cluster)).toBe(webIp);
  });

  it("names through the host's resolv.conf: mynet first, names outside its zone from the next nameserver; not with `--dns 127.0.0.153`", async () => {
    const upstream = await startUpstreamDns(b.ns, HOST_UPSTREAM_DNS, '203.0.113.77');
    try {
      const n = await b.r.network(['-d', 'mynet', '--subnet', '10.78.9.0/24']);
      const srv = await b.r.container(['--network', n], serving('dns'));
      const viaHost = await b.r.container(['--network', n]);
      const viaFlag = await b.r.container(['--network', n, '--dns', '127.0.0.153']);
      expect(await ask(b, viaHost, `${srv}.${n}.mynet`)).toBe('dns');
      expect((await b.docker('exec', viaHost, 'nslookup', UPSTREAM_NAME)).stdout).toContain('203.0.113.77');
      expect(await ask(b, viaFlag, `${srv}.${n}.mynet`)).not.toBe('dns');
      expect(await ask(b, viaFlag, srv)).toBe('dns'); // its container names still come from dockerd
    } finally {
      upstream.kill();
    }
  });

  it('teardown: containers and the network removed on both hosts leave no mynet link in either, and no claim or endpoint in etcd', async () => {
    const claims = `/mynet/v1/addresses/${cluster}/`;
    const endpoints = `/mynet/v1/endpoints/${cluster}/`;
    expect((await etcdKeys(run, claims)).length).toBeGreaterThan(0);
    expect((await etcdKeys(run, endpoints)).length).toBeGreaterThan(0);
    await b.r.cleanup();
    await a.r.cleanup();
    expect(await mynetLinks(a)).toEqual([]);
    expect(await mynetLinks(b)).toEqual([]);
    // Withdrawals and releases reach etcd just after dockerd's answers (the agent's queue).
    const left = async (): Promise<string[]> => [...(await etcdKeys(run, claims)), ...(await etcdKeys(run, endpoints))];
    await waitFor('no claim or endpoint of the network left in etcd', async () => (await left()).length === 0, 5000, 100).catch(
      async (err: unknown) => {
        throw new Error(`${String(err)}: ${(await left()).join(', ')}`);
      },
    );
  });
});
