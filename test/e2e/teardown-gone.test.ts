/**
 * Issue 22, finding 24: `nft delete table inet mynet` (or a firewall flush), then `docker rm` and
 * `docker network rm`. Before, "remove the firewall" failed on the missing table, the plugin
 * answered 500 and kept its record while dockerd had forgotten the network, so it stayed listed
 * for good. Now every removal succeeds and nothing of the network is left: not in dockerd, not
 * in mynet's state (the admin socket's status), no link, no rule. The reconcile loop is set far
 * out so that it cannot put the table back before the removal: the teardown path is what runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PluginHandle, removeStateDir, startPlugin } from './helpers/plugin.js';
import { Resources, mynetLinks } from './helpers/resources.js';
import { docker, dockerOk, ok } from './helpers/sh.js';

describe('removing networks whose firewall was deleted by hand, with a real dockerd', () => {
  const r = new Resources('gone');
  const tmp = mkdtempSync(join(tmpdir(), 'mnt-gone-'));
  const admin = join(tmp, 'admin.sock');
  let plugin: PluginHandle;

  const status = (): Promise<string> =>
    new Promise((done, fail) => {
      const req = request({ socketPath: admin, path: '/status', method: 'GET' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => done(body));
      });
      req.on('error', fail);
      req.end();
    });

  beforeAll(async () => {
    plugin = await startPlugin({ env: { MYNET_RECONCILE_INTERVAL: '3600', MYNET_ADMIN_SOCKET: admin } });
  });
  afterAll(async () => {
    await r.cleanup();
    await plugin?.stop();
    if (plugin) removeStateDir(plugin);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('nft delete table inet mynet, then docker rm and docker network rm succeed, and nothing of the networks is left', async () => {
    const one = await r.network(['-d', 'mynet', '--subnet', '10.133.0.0/24']);
    const two = await r.network(['-d', 'mynet', '--subnet', '10.133.1.0/24']);
    const ids = await Promise.all([one, two].map((n) => dockerOk('network', 'inspect', n, '--format', '{{.Id}}')));
    const c = await r.container(['--network', one, '-p', '18133:80']);
    expect(await ok('nft', ['list', 'tables'])).toContain('table inet mynet');

    await ok('nft', ['delete', 'table', 'inet', 'mynet']);

    // A container's removal (Revoke, Leave, DeleteEndpoint) and a network that is not the last.
    const rm = await docker('rm', '-f', c);
    expect(rm.stderr).toBe('');
    const first = await docker('network', 'rm', one);
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    // The table stays gone (a teardown makes nothing), and the other network is still served.
    expect(await ok('nft', ['list', 'tables'])).not.toContain('table inet mynet');
    expect(await status()).toContain((ids[1] as string).slice(0, 12));
    // The last network: the table's removal and the FORWARD hook's.
    const second = await docker('network', 'rm', two);
    expect(second.stderr).toBe('');
    expect(second.exitCode).toBe(0);

    const listed = await dockerOk('network', 'ls', '--format', '{{.ID}}');
    const state = await status();
    for (const id of ids) {
      expect(listed).not.toContain(id.slice(0, 12));
      expect(state).not.toContain(id.slice(0, 12));
    }
    expect(await mynetLinks()).toEqual([]);
    expect(await ok('nft', ['list', 'tables'])).not.toContain('table inet mynet');
    expect(await ok('iptables-save', ['-t', 'filter'])).not.toContain('MYNET-FORWARD');
  });
});
