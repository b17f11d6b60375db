/**
 * The plugin's start loads only what it needs (issue 26): the real plugin (node dist/main.js, in
 * a throwaway namespace), preloaded with a hook that records every module it resolves
 * (record-imports.mjs). Without cluster settings it never loads the etcd client (etcd3, gRPC,
 * cockatiel), even after restore, a request and its metrics; with MYNET_ETCD_ENDPOINTS (an etcd
 * that is not there) it does, which shows the recording sees the client when it is loaded.
 * How fast the start is lives in bench/plugin.mjs, not here.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createNetns, destroyCreated } from '../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../..');
const HOOK = join(import.meta.dirname, 'record-imports.mjs');
const dir = mkdtempSync(join(tmpdir(), 'mnt-lazy-'));
let proc: ChildProcess | undefined;

afterEach(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const p = proc;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }
  await destroyCreated();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const answers = (socketPath: string, method: string, path: string): Promise<boolean> =>
  new Promise((res) => {
    const req = request({ socketPath, path, method }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
    });
    req.on('error', () => res(false));
    req.end(method === 'POST' ? '{}' : undefined);
  });

/** Starts the plugin with `env`, waits for both sockets and a request, stops it; the packages it loaded. */
async function packagesLoaded(name: string, env: Record<string, string>, cleanExit = true): Promise<Set<string>> {
  const ns = await createNetns();
  const sock = join(dir, `${name}.sock`);
  const admin = join(dir, `${name}-admin.sock`);
  const imports = join(dir, `${name}.imports`);
  proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '--import', HOOK, join(ROOT, 'dist/main.js')], {
    env: {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      MYNET_SOCKET: sock,
      MYNET_ADMIN_SOCKET: admin,
      MYNET_STATE_DIR: join(dir, `${name}-state`),
      MYNET_DNS_LISTEN: '',
      MYNET_LOG_LEVEL: 'error',
      MNT_IMPORTS_FILE: imports,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const ready = async (): Promise<boolean> => (await answers(sock, 'POST', '/Plugin.Activate')) && answers(admin, 'GET', '/version');
  for (let i = 0; i < 400 && !(await ready()); i++) await new Promise((r) => setTimeout(r, 25));
  expect(await ready()).toBe(true);
  // A request that needs the whole app (ajv), and the metrics (prom-client).
  expect(await answers(sock, 'POST', '/IpamDriver.ReleasePool')).toBe(false); // no PoolID: 500, from ajv
  expect(await answers(admin, 'GET', '/metrics')).toBe(true);
  const p = proc;
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  p.kill('SIGTERM'); // ip netns exec execs node in place: this is the plugin itself
  // With an etcd that is not there, the lease's revoke may take the 8 s limit: exit 1 then.
  const code = await exited;
  if (cleanExit) expect(code).toBe(0);
  const urls = readFileSync(imports, 'utf8').split('\n').filter(Boolean);
  return new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []));
}

describe('start: what the plugin loads', () => {
  it('without cluster settings: never the etcd client, but the rest of the plugin', async () => {
    const loaded = await packagesLoaded('local', {});
    // The recording is real: what every plugin uses is in it.
    for (const p of ['express', 'ajv', 'prom-client']) expect(loaded, p).toContain(p);
    for (const p of ['etcd3', '@grpc/grpc-js', 'cockatiel']) expect(loaded, p).not.toContain(p);
  });

  it('with cluster settings: the etcd client is loaded (the recording sees it)', async () => {
    // The plugin's fresh namespace has no route to this etcd (a test address, on no link): the
    // client connects lazily and retries in the background, the plugin answers all the same.
    const loaded = await packagesLoaded(
      'cluster',
      { MYNET_ETCD_ENDPOINTS: 'http://198.18.0.2:2379', MYNET_NODE_ADDRESS: '198.18.0.1' },
      false,
    );
    expect(loaded).toContain('etcd3');
  });
});
