/**
 * Operability with a real dockerd: the `mynet` command (the built CLI) shows what `docker port`
 * and `docker network inspect` cannot (containers by name with their veths, ports published by a
 * plugin); the reconcile loop repairs a firewall flush of mynet's own rules within its interval,
 * without a restart; /metrics on the admin socket is valid Prometheus text that counts what
 * happened. The admin socket is a temp path, so nothing here touches /run/mynet.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { adminGet as adminGetFrom } from './helpers/admin.js';
import { httpGet, httpGetFrom } from './helpers/net.js';
import { type Outside, makeOutside } from './helpers/outside.js';
import { type PluginHandle, removeStateDir, startPlugin } from './helpers/plugin.js';
import { Resources, exec } from './helpers/resources.js';
import { type RunResult, dockerOk, ok, sh, sleep } from './helpers/sh.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');
const HTTPD = ['httpd', '-f', '-p', '80', '-h', '/www'];
const INTERVAL_S = 2;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface EndpointFacts {
  ip: string;
  mac: string;
  endpointId: string;
  veth: string;
}

describe('the mynet command, the reconcile loop and /metrics with a real dockerd', () => {
  const r = new Resources('op');
  const tmp = mkdtempSync(join(tmpdir(), 'mnt-op-'));
  const admin = join(tmp, 'admin.sock');
  let plugin: PluginHandle;
  let outside: Outside;
  let net: string;
  let netId: string;
  let web: string;
  let client: string;
  const facts = new Map<string, EndpointFacts>();

  /** The built CLI, as an operator runs it (stdout is a pipe: no colour). */
  const mynet = (...args: string[]): Promise<RunResult> => sh(process.execPath, [CLI, ...args], { timeoutMs: 30_000 });
  const mynetOk = async (...args: string[]): Promise<string> => {
    const res = await mynet(...args, '--socket', admin);
    if (res.exitCode !== 0) throw new Error(`mynet ${args.join(' ')} exited ${res.exitCode}: ${res.stderr}`);
    return res.stdout;
  };

  const adminGet = (path: string): ReturnType<typeof adminGetFrom> => adminGetFrom(admin, path);

  beforeAll(async () => {
    plugin = await startPlugin({ env: { MYNET_RECONCILE_INTERVAL: String(INTERVAL_S), MYNET_ADMIN_SOCKET: admin } });
    outside = await makeOutside(7);
    net = await r.network(['-d', 'mynet', '--subnet', '10.131.0.0/24']);
    netId = await dockerOk('network', 'inspect', net, '--format', '{{.Id}}');
    web = await r.container(['--network', net, '-p', '8095:80'], HTTPD);
    client = await r.container(['--network', net]);
    for (const c of [web, client]) {
      const s = JSON.parse(await dockerOk('inspect', c, '--format', `{{json (index .NetworkSettings.Networks "${net}")}}`)) as {
        IPAddress: string;
        MacAddress: string;
        EndpointID: string;
      };
      facts.set(c, { ip: s.IPAddress, mac: s.MacAddress, endpointId: s.EndpointID, veth: `mnh${s.EndpointID.slice(0, 12)}` });
    }
  });
  afterAll(async () => {
    await r.cleanup();
    await outside?.destroy();
    await plugin?.stop();
    if (plugin) removeStateDir(plugin);
    rmSync(tmp, { recursive: true, force: true });
  });

  it("mynet status: the network by Docker's name, each container with its address, MAC and host veth, and health ok", async () => {
    const out = await mynetOk('status');
    const lines = out.split('\n');
    expect(lines[0]).toBe('names: on, from the Docker API at /var/run/docker.sock');
    expect(lines[1]).toBe(`${net}  ${netId.slice(0, 12)}  bridge mn-${netId.slice(0, 12)}  10.131.0.0/24  gateway 10.131.0.1`);
    expect(lines[3]).toMatch(/^ {2}CONTAINER +ADDRESSES +MAC +HOST VETH +PORTS +LABELS +POLICIES$/);
    for (const [c, f] of facts) {
      expect(lines.find((l) => l.startsWith(`  ${c} `))?.split(/ {2,}/)).toEqual([
        '',
        c,
        `${f.ip}/24`,
        f.mac,
        f.veth,
        c === web ? '1' : '0',
        '-', // no labels
        '-', // no policy selects it
      ]);
      // The veth it names is real, ours, and on the network's bridge.
      const [link] = JSON.parse(await ok('ip', ['-j', '-d', 'link', 'show', 'dev', f.veth])) as { master?: string; group?: string }[];
      expect(link).toMatchObject({ master: `mn-${netId.slice(0, 12)}`, group: '28014' });
    }
    expect(lines.at(-1)).toBe('health: ok, the kernel matches the state');
    expect(out).not.toContain('\u001b[');

    const json = JSON.parse(await mynetOk('status', '--json')) as {
      networks: {
        id: string;
        name?: string;
        endpoints: { id: string; container?: string; addresses: string[]; mac: string; hostVeth: string }[];
      }[];
      differences: number;
    };
    expect(json.differences).toBe(0);
    const n = json.networks.find((x) => x.id === netId);
    expect(n?.name).toBe(net);
    expect(n?.endpoints.map((e) => [e.container, e.addresses, e.mac, e.hostVeth]).sort()).toEqual(
      [...facts].map(([c, f]) => [c, [`${f.ip}/24`], f.mac, f.veth]).sort(),
    );
  });

  it('mynet ports: 8095/tcp goes to the container by name, port 80 (which `docker port` cannot show)', async () => {
    const webIp = facts.get(web)?.ip as string;
    expect((await dockerOk('port', web)).trim()).toBe(''); // dockerd cannot read a plugin's ports
    const out = await mynetOk('ports');
    expect(out.split('\n')[0]).toMatch(/^HOST +PROTO +CONTAINER +CONTAINER PORT +NETWORK$/);
    const row = out.split('\n').find((l) => /:8095 /.test(l));
    expect(row?.split(/ {2,}/)).toEqual([expect.stringMatching(/^(\*|0\.0\.0\.0):8095$/), 'tcp', web, `${webIp}:80`, net]);

    const json = JSON.parse(await mynetOk('ports', '--json')) as {
      ports: {
        hostPort: number;
        proto: string;
        container?: string;
        containerIp: string;
        containerPort: number;
        network: string;
        endpoint: string;
      }[];
    };
    expect(json.ports).toEqual([
      expect.objectContaining({
        hostPort: 8095,
        proto: 'tcp',
        container: web,
        containerIp: webIp,
        containerPort: 80,
        network: net,
        endpoint: facts.get(web)?.endpointId,
      }),
    ]);
    // And it is what answers.
    expect(await httpGet(outside.hostIp, 8095, outside.ns)).toBe('mynet-e2e');
  });

  it('mynet version prints the package version; mynet doctor finds nothing and exits 0', async () => {
    expect(await mynetOk('version')).toBe(`mynet ${VERSION} (node ${process.version})`);
    expect(await mynetOk('doctor')).toBe('no differences: the kernel matches the state');
    expect(JSON.parse(await mynetOk('version', '--json'))).toEqual({ version: VERSION, node: process.version });
  });

  it("a flush of mynet's firewall (its FORWARD jump and its nft table) is repaired by the reconcile loop, without a restart", async () => {
    const webIp = facts.get(web)?.ip as string;
    const reachable = async (): Promise<boolean> =>
      (await exec(client, 'ping', '-c', '1', '-W', '1', webIp)).exitCode === 0 &&
      (await httpGetFrom(client, webIp, 80)) === 'mynet-e2e' &&
      (await httpGet(outside.hostIp, 8095, outside.ns)) === 'mynet-e2e';
    expect(await reachable()).toBe(true);
    const pid = plugin.proc.pid;
    const logBefore = plugin.logs().length;

    // Only what is ours: dockerd's rules in FORWARD stay as they are (no `iptables -F FORWARD`).
    const dockerRules = (await ok('iptables', ['-S', 'FORWARD'])).split('\n').filter((l) => !l.includes('MYNET-FORWARD'));
    await ok('iptables', ['-w', '-D', 'FORWARD', '-m', 'comment', '--comment', 'mynet', '-j', 'MYNET-FORWARD']);
    await ok('nft', ['delete', 'table', 'inet', 'mynet']);
    const flushed = Date.now();

    // Back within the interval (polled for up to 3 intervals, plus the time a check itself takes).
    let back = false;
    while (!back && Date.now() - flushed < 3 * INTERVAL_S * 1000 + 5000) {
      back =
        (await sh('nft', ['list', 'table', 'inet', 'mynet'])).exitCode === 0 &&
        (await ok('iptables', ['-S', 'FORWARD'])).includes('-j MYNET-FORWARD') &&
        (await reachable());
      if (!back) await sleep(250);
    }
    expect(back, `not repaired within ${Date.now() - flushed} ms`).toBe(true);
    expect(Date.now() - flushed).toBeLessThan(3 * INTERVAL_S * 1000 + 5000);
    expect(plugin.proc.pid).toBe(pid);
    expect(plugin.proc.exitCode).toBeNull();
    // It was the reconcile loop: the doctor logged both differences as repaired.
    const log = plugin.logs().slice(logBefore);
    const found = log
      .split('\n')
      .filter((l) => l.includes('"doctor found differences"'))
      .map((l) => JSON.parse(l) as { differences: { object: string; repaired: boolean }[] });
    const repaired = found.flatMap((f) => f.differences.filter((d) => d.repaired).map((d) => d.object));
    expect(repaired).toEqual(expect.arrayContaining(['nft table inet mynet', 'FORWARD hook']));
    // dockerd's own FORWARD rules are untouched, and ours is back after DOCKER-USER.
    const now = (await ok('iptables', ['-S', 'FORWARD'])).split('\n');
    expect(now.filter((l) => !l.includes('MYNET-FORWARD'))).toEqual(dockerRules);
    const du = now.indexOf('-A FORWARD -j DOCKER-USER');
    if (du >= 0) expect(now[du + 1]).toBe('-A FORWARD -m comment --comment mynet -j MYNET-FORWARD');
    expect(await mynetOk('doctor')).toBe('no differences: the kernel matches the state');
  });

  it('/metrics on the admin socket is Prometheus text and counts the endpoints created', async () => {
    const res = await adminGet('/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    // Every non-comment line is `name{labels} value`.
    for (const line of res.body.split('\n')) {
      if (line && !line.startsWith('#')) expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+$/);
    }
    const m = parsePrometheus(res.body);
    for (const name of [
      'mynet_requests_total',
      'mynet_request_duration_seconds',
      'mynet_host_commands_total',
      'mynet_networks',
      'mynet_endpoints',
      'mynet_published_ports',
      'mynet_doctor_differences_total',
    ]) {
      expect(m.help.has(name), `HELP ${name}`).toBe(true);
      expect(m.type.has(name), `TYPE ${name}`).toBe(true);
    }
    expect(sampleValue(m, 'mynet_requests_total', { route: '/NetworkDriver.CreateEndpoint', outcome: 'ok' })).toBe(facts.size);
    expect(sampleValue(m, 'mynet_request_duration_seconds_count', { route: '/NetworkDriver.CreateEndpoint' })).toBe(facts.size);
    expect(sampleValue(m, 'mynet_networks')).toBe(1);
    expect(sampleValue(m, 'mynet_endpoints')).toBe(facts.size);
    expect(sampleValue(m, 'mynet_published_ports')).toBe(1);
    expect(sampleValue(m, 'mynet_doctor_differences_total', { kind: 'missing' })).toBeGreaterThanOrEqual(2);
    expect(sampleValue(m, 'mynet_host_commands_total', { command: 'nft', outcome: 'ok' })).toBeGreaterThan(0);
  });

  it('with the plugin stopped, the command says so and exits 1', async () => {
    await r.cleanup();
    // The test's plugin runs beside this dockerd's socket, so host names are on.
    expect(await mynetOk('status')).toBe('names: on, from the Docker API at /var/run/docker.sock\nno mynet networks');
    expect(await plugin.stop()).toBe(0);
    for (const sub of ['status', 'ports', 'doctor', 'version']) {
      const res = await mynet(sub, '--socket', admin);
      expect(res.exitCode, sub).toBe(1);
      expect(res.stderr).toBe(`mynet: the plugin is not running (nothing answers on ${admin})`);
      expect(res.stdout).toBe('');
    }
  });
});
