/**
 * Issue 25 across two real dockerds on one etcd (helpers/hosts.ts; each plugin has its daemon's
 * socket, so Docker's names and container labels are followed): a cluster network on hosts A and
 * B; `db` on A labelled `app=db` by endpoint driver option (`--network name=,driver-opt=`, or
 * `docker network connect --driver-opt` with the 20.10 CLI), `web` on B labelled `app=web` by a
 * container label (`docker run --label mynet.label.app=web`), `other` on B unlabelled. A policy db-from-web
 * applied on A reaches etcd and A enforces it at db with B's web, by its record's labels, as a
 * source: web reaches db's port, other does not; removed on B, other reaches db again. One
 * world. Names: mnt-mnl4-*, underlay 198.18.209.0/24, containers 10.231.0.0/16 (the cluster
 * network's /17; on 20.10, db's first network 10.231.250.0/24).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/wait.js';
import { IMAGE } from './global-setup.js';
import { type DockerHost, type Hosts, startHosts } from './helpers/hosts.js';
import { type RunResult, sh } from './helpers/sh.js';

const UNDERLAY = '198.18.209';
const SUBNET = '10.231.0.0/17';
const PORT = '5432';
const CLI = join(resolve(import.meta.dirname, '../..'), 'dist/cli/main.js');

const mynet = (h: DockerHost, ...args: string[]): Promise<RunResult> =>
  sh(process.execPath, [CLI, ...args, '--socket', h.adminSocket], { timeoutMs: 30_000 });
const mynetOk = async (h: DockerHost, ...args: string[]): Promise<string> => {
  const r = await mynet(h, ...args);
  if (r.exitCode !== 0) throw new Error(`mynet ${args.join(' ')} on ${h.name} exited ${r.exitCode}: ${r.stderr}\n${h.logs(15)}`);
  return r.stdout;
};
/** What `from` on h gets from db's port: 'db', or '' when the connection is dropped (nc gives up after 2 s). */
const ask = async (h: DockerHost, from: string, ip: string): Promise<string> =>
  (await h.docker('exec', from, 'nc', '-w', '2', ip, PORT)).stdout;
/** A row of `mynet status`: its LABELS and POLICIES columns. */
const statusOf = async (h: DockerHost, c: string): Promise<string[] | undefined> =>
  (await mynetOk(h, 'status'))
    .split('\n')
    .find((l) => l.startsWith(`  ${c} `))
    ?.split(/ {2,}/)
    .slice(-2);

/**
 * `db` on h, labelled app=db by an endpoint driver option. The `--network name=,driver-opt=`
 * form is the newer CLI's; the 20.10 CLI has only `docker network connect --driver-opt`, and
 * dockerd 20.10 run with `--bridge=none` (as these hosts are) gives a container created with
 * no network none of the interfaces connected later (only lo inside): so there it is created
 * on a local mynet network of its own first, as it would be on docker0 elsewhere.
 */
async function labelledDb(h: DockerHost, net: string): Promise<string> {
  const serve = ['nc', '-ll', '-p', PORT, '-e', 'echo', 'db'];
  const major = Number((await h.dockerOk('version', '--format', '{{.Client.Version}}')).split('.')[0]);
  if (major > 20) return h.r.container(['--network', `name=${net},driver-opt=mynet.label.app=db`], serve);
  const first = await h.r.network(['-d', 'mynet', '--subnet', '10.231.250.0/24']);
  const name = h.r.name('db');
  h.r.track(name);
  await h.dockerOk('create', '--name', name, '--network', first, IMAGE, ...serve);
  await h.dockerOk('network', 'connect', '--driver-opt', 'mynet.label.app=db', net, name);
  await h.dockerOk('start', name);
  return name;
}

describe('network policy on a cluster network across two dockerds (issue 25)', () => {
  let world: Hosts;
  let a: DockerHost;
  let b: DockerHost;
  let net: string;
  let db: string;
  let dbIp: string;
  let web: string;
  let other: string;

  beforeAll(async () => {
    world = await startHosts({ tag: 'mnl4', names: ['a', 'b'], subnet: UNDERLAY, etcd: true });
    [a, b] = world.hosts as [DockerHost, DockerHost];
    net = `mnt-mnl4-${world.id}`;
    const create = ['-d', 'mynet', '--ipam-driver', 'mynet', '--subnet', SUBNET, '-o', `mynet.cluster=${net}`];
    await a.r.network(create, net);
    await b.r.network(create, net);
    db = await labelledDb(a, net);
    dbIp = await a.dockerOk('inspect', db, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
    web = await b.r.container(['--network', net, '--label', 'mynet.label.app=web']);
    other = await b.r.container(['--network', net]);
    console.log(`[policy-cluster] dockerd ${await a.dockerOk('version', '--format', '{{.Server.Version}}')}`);
  });
  afterAll(async () => {
    await world?.destroy();
  });

  it('a policy applied on A lets in B’s container labelled by a Docker label and drops the others; removed on B, all pass again', async () => {
    // No policy: both reach db across the hosts.
    await waitUntil('other on B to reach db on A', async () => (await ask(b, other, dbIp)) === 'db', {
      ms: 20_000,
      every: 250,
      show: () => `${a.logs(15)}\n${b.logs(15)}`,
    });
    expect(await ask(b, web, dbIp)).toBe('db');
    // B's follow of its Docker learnt web's container label (no driver option gives it one).
    await waitUntil('B to show web labelled app=web', async () => (await statusOf(b, web))?.[0] === 'app=web', { ms: 10_000 });
    expect(await statusOf(b, other)).toEqual(['-', '-']);

    const file = join(a.dir, 'db.yaml');
    writeFileSync(
      file,
      `name: db-from-web\nnetwork: ${net}\nselect: { app: db }\ningress:\n  - from: [ { app: web } ]\n    ports: [ tcp/${PORT} ]\n`,
    );
    expect(await mynetOk(a, 'policy', 'apply', '-f', file)).toBe('applied db-from-web');
    // A follows etcd's copy; its doctor runs under the lock, after the table took it (exit 0: as the model says).
    await waitUntil('A to enforce db-from-web at db', async () => (await statusOf(a, db))?.[1] === 'db-from-web', { ms: 10_000 });
    expect((await mynet(a, 'doctor')).exitCode).toBe(0);
    // web, by the labels its record carries from B, is let in; then other, asked after, is dropped.
    await waitUntil('web on B to reach db with the policy on', async () => (await ask(b, web, dbIp)) === 'db', { ms: 10_000, every: 250 });
    expect(await ask(b, other, dbIp)).toBe('');
    expect(await ask(b, web, dbIp)).toBe('db');

    // Removed from B (applied on A): gone from etcd, and A lets everyone in again.
    expect(await mynetOk(b, 'policy', 'rm', 'db-from-web')).toBe('removed db-from-web');
    await waitUntil('other on B to reach db again', async () => (await ask(b, other, dbIp)) === 'db', { ms: 10_000, every: 250 });
    expect(await mynetOk(a, 'policy', 'ls')).toBe('no policies');
  });
});
