/**
 * The plugin's start loads only what it needs (issue 26): the real plugin (node dist/main.js, in
 * a throwaway namespace), preloaded with a hook that records every module it resolves
 * (record-imports.mjs). Without cluster settings it never loads the etcd client (etcd3, gRPC,
 * cockatiel), even after restore, a request and its metrics; with MYNET_ETCD_ENDPOINTS (an etcd
 * that is not there) it does, which shows the recording sees the client when it is loaded.
 * How fast the start is lives in bench/plugin.mjs, not here.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createNetns, destroyCreated } from '../helpers/netns.js';
import { answersOn } from './plugin-client.js';
import { PluginProcess } from './plugin-process.js';

const HOOK = join(import.meta.dirname, 'record-imports.mjs');
const dir = mkdtempSync(join(tmpdir(), 'mnt-lazy-'));
afterEach(() => destroyCreated());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the plugin with `env`, waits for both sockets and a request, stops it; the packages it loaded. */
async function packagesLoaded(name: string, env: Record<string, string>, cleanExit = true): Promise<Set<string>> {
  const ns = await createNetns();
  const imports = join(dir, `${name}.imports`);
  const p = new PluginProcess(
    () => ns.name,
    join(dir, name),
    { MYNET_DNS_LISTEN: '', MYNET_LOG_LEVEL: 'error', MNT_IMPORTS_FILE: imports, ...env },
    ['--import', HOOK],
  );
  try {
    await p.start();
    // A request that needs the whole app (ajv), and the metrics (prom-client).
    expect(await answersOn(p.socket, '/IpamDriver.ReleasePool')).toBe(false); // no PoolID: 500, from ajv
    expect(await answersOn(p.adminSocket, '/metrics', 'GET')).toBe(true);
    // With an etcd that is not there, the lease's revoke may take the 8 s limit: exit 1 then.
    const code = await p.stop();
    if (cleanExit) expect(code, p.logTail()).toBe(0);
  } finally {
    await p.kill9();
  }
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
