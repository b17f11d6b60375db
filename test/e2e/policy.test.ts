/**
 * Issue 25 with a real dockerd: containers labelled through endpoint driver options on a local
 * mynet network (`docker run --network name=,driver-opt=`, or `docker network connect
 * --driver-opt` with the 20.10 CLI, and a compose v2 service's `driver_opts`), a policy applied, listed and removed with the built `mynet` command on the
 * admin socket. An allowed TCP flow passes, a denied one is dropped and counted in
 * `mynet_policy_drops_total`, `mynet status` shows each endpoint's labels and the policies that
 * select it, the doctor finds the real table as the model says, and removal restores. One
 * world. Names: mnt-mnp2-*, 10.222.50.0/24; the admin socket is a temp path.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE } from './global-setup.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { adminGet } from './helpers/admin.js';
import { httpGetFrom } from './helpers/net.js';
import { type PluginHandle, removeStateDir, startPlugin } from './helpers/plugin.js';
import { Resources } from './helpers/resources.js';
import { COMPOSE_V2, runOk } from './helpers/packaging.js';
import { type RunResult, dockerOk, sh } from './helpers/sh.js';

const CLI = join(resolve(import.meta.dirname, '../..'), 'dist/cli/main.js');
const PAGE = 'mynet-e2e'; // as sh() gives it, trimmed
/** db serves the same page on 80 (not allowed) and 5432 (allowed from web). */
const DB = ['sh', '-c', 'httpd -p 80 -h /www && exec httpd -f -p 5432 -h /www'];

describe('network policy with a real dockerd: labels as driver options, mynet policy apply/ls/rm', () => {
  const r = new Resources('mnp2');
  const tmp = mkdtempSync(join(tmpdir(), 'mnt-mnp2-'));
  const admin = join(tmp, 'admin.sock');
  let plugin: PluginHandle;
  let net: string;
  const ip = new Map<string, string>();
  let db: string;
  let web: string;
  let other: string;
  /** A compose v2 service labelled with `driver_opts` on the same (external) network. */
  const api = 'mnt-mnp2-compose-api-1';
  const composeFile = join(tmp, 'compose.yml');
  const compose = (...args: string[]): Promise<string> =>
    runOk('docker', ['compose', '-f', composeFile, '-p', 'mnt-mnp2-compose', ...args], { env: { DOCKER_CONFIG: COMPOSE_V2 } });

  const mynet = (...args: string[]): Promise<RunResult> => sh(process.execPath, [CLI, ...args, '--socket', admin], { timeoutMs: 30_000 });
  const mynetOk = async (...args: string[]): Promise<string> => {
    const res = await mynet(...args);
    if (res.exitCode !== 0) throw new Error(`mynet ${args.join(' ')} exited ${res.exitCode}: ${res.stderr}`);
    return res.stdout;
  };

  /**
   * A container whose endpoint carries `mynet.label.app=<app>`. The `--network name=,driver-opt=`
   * form is the newer CLI's (26.1 and 28.5 here); the 20.10 CLI has only `docker network
   * connect --driver-opt`, used on a created container before it starts.
   */
  async function labelled(app: string, cmd?: string[]): Promise<string> {
    const major = Number((await dockerOk('version', '--format', '{{.Client.Version}}')).split('.')[0]);
    if (major > 20) return r.container(['--network', `name=${net},driver-opt=mynet.label.app=${app}`], cmd);
    const name = r.name('c');
    r.track(name);
    await dockerOk('create', '--name', name, IMAGE, ...(cmd ?? ['sleep', '600']));
    await dockerOk('network', 'connect', '--driver-opt', `mynet.label.app=${app}`, net, name);
    await dockerOk('start', name);
    return name;
  }

  const drops = async (): Promise<number | undefined> =>
    sampleValue(parsePrometheus((await adminGet(admin, '/metrics')).body), 'mynet_policy_drops_total', { policy: 'db-from-web' });

  beforeAll(async () => {
    plugin = await startPlugin({ env: { MYNET_ADMIN_SOCKET: admin } });
    net = await r.network(['-d', 'mynet', '--subnet', '10.222.50.0/24']);
    db = await labelled('db', DB);
    web = await labelled('web');
    other = await r.container(['--network', net]);
    writeFileSync(
      composeFile,
      `services:\n  api:\n    image: ${IMAGE}\n    command: sleep 600\n    networks:\n      net: { driver_opts: { mynet.label.app: web } }\nnetworks:\n  net: { external: true, name: ${net} }\n`,
    );
    await compose('up', '-d');
    for (const c of [db, web, other, api])
      ip.set(c, await dockerOk('inspect', c, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`));
  });
  afterAll(async () => {
    await compose('down').catch((err: unknown) => console.log(`[policy] compose down: ${String(err)}`));
    await r.cleanup();
    await plugin?.stop();
    if (plugin) removeStateDir(plugin);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('allowed passes, denied is dropped and counted, ls and status show who is selected, rm restores', async () => {
    const dbIp = ip.get(db) as string;
    // No policy: everyone reaches db on every port (today's behaviour).
    expect(await httpGetFrom(other, dbIp, 5432)).toBe(PAGE);

    const file = join(tmp, 'db.yaml');
    writeFileSync(
      file,
      `name: db-from-web\nnetwork: ${net}\nselect: { app: db }\ningress:\n  - from: [ { app: web } ]\n    ports: [ tcp/5432 ]\n`,
    );
    expect(await mynetOk('policy', 'apply', '-f', file)).toBe('applied db-from-web');
    const ls = await mynetOk('policy', 'ls');
    expect(ls).toContain(`db-from-web  network ${net} (`);
    expect(ls).toContain('  allow from app=web to tcp/5432');
    expect(ls).toContain(`  selects ${db} ${dbIp}`);

    const rows = (await mynetOk('status')).split('\n');
    const row = (c: string): string[] | undefined =>
      rows
        .find((l) => l.startsWith(`  ${c} `))
        ?.split(/ {2,}/)
        .slice(-2);
    expect(rows.find((l) => l.startsWith('  CONTAINER'))).toMatch(/ LABELS +POLICIES$/);
    expect(row(db)).toEqual(['app=db', 'db-from-web']);
    expect(row(web)).toEqual(['app=web', '-']);
    expect(row(other)).toEqual(['-', '-']);
    expect(row(api)).toEqual(['app=web', '-']); // compose's driver_opts

    expect(await httpGetFrom(web, dbIp, 5432)).toBe(PAGE); // allowed, and its reply comes back
    expect(await httpGetFrom(api, dbIp, 5432)).toBe(PAGE);
    const before = (await drops()) ?? 0;
    expect(await httpGetFrom(web, dbIp, 80)).toBe(''); // not that port
    expect(await httpGetFrom(other, dbIp, 5432)).toBe(''); // not from web
    expect(await drops()).toBeGreaterThan(before);
    // The real table is what the model says (exit 0: no difference).
    expect((await mynet('doctor')).exitCode).toBe(0);

    expect(await mynetOk('policy', 'rm', 'db-from-web')).toBe('removed db-from-web');
    expect(await httpGetFrom(other, dbIp, 5432)).toBe(PAGE);
    expect(await mynetOk('policy', 'ls')).toBe('no policies');
    expect(await drops()).toBeUndefined();
  });
});
