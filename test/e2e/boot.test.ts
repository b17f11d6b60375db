/**
 * Issue: reliability. A host "reboot" and boot order, with `--restart always` containers on
 * mynet networks and a published port:
 * - reboot: dockerd stops, the plugin dies (SIGKILL, as at power loss), and everything of ours
 *   in the kernel goes (bridges, the nft table, the FORWARD jump and chain); the state directory
 *   stays. Then the plugin starts first and dockerd after it (the systemd unit's order).
 * - the other order: dockerd starts first and the plugin 5 s later. dockerd looks for a missing
 *   legacy plugin for about 15 s (retries after 1, 2, 4 and 8 s) per container it restarts, then
 *   gives that container up for good; so the plugin must come up within that window.
 * Either way, every container comes back, peers reach each other by name, the port answers.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startDockerd, stopDockerd } from './helpers/dockerd.js';
import { httpGet } from './helpers/net.js';
import { type PluginHandle, removeStateDir, startPlugin } from './helpers/plugin.js';
import { Resources, exec, mynetLinks } from './helpers/resources.js';
import { dockerOk, ok, sh, sleep, waitFor } from './helpers/sh.js';

const HTTPD = ['httpd', '-f', '-p', '80', '-h', '/www'];
const PORT = 8097;
const ping = (from: string, to: string): Promise<boolean> => exec(from, 'ping', '-c', '1', '-W', '2', to).then((r) => r.exitCode === 0);

/** What a reboot takes from the kernel, limited to what is ours (mark, table, our chain). */
async function forgetOurKernelState(): Promise<void> {
  for (const l of await mynetLinks()) await ok('ip', ['link', 'del', l]);
  await sh('nft', ['delete', 'table', 'inet', 'mynet']);
  for (const ipt of ['iptables', 'ip6tables']) {
    while ((await sh(ipt, ['-w', '-D', 'FORWARD', '-m', 'comment', '--comment', 'mynet', '-j', 'MYNET-FORWARD'])).exitCode === 0);
    await sh(ipt, ['-w', '-F', 'MYNET-FORWARD']);
    await sh(ipt, ['-w', '-X', 'MYNET-FORWARD']);
  }
  expect(await mynetLinks()).toEqual([]);
  expect((await sh('nft', ['list', 'table', 'inet', 'mynet'])).exitCode).not.toBe(0);
}

describe('host reboot and boot order with --restart always containers', () => {
  let plugin: PluginHandle | undefined;
  let stateDir = '';
  const r = new Resources('boot');
  let web = '';
  let peer = '';
  let both = '';

  beforeAll(async () => {
    if (!inject('dockerdOwned')) {
      throw new Error(
        'this test stops and starts dockerd, and the dockerd running here was not started by the tests: stop it (the e2e tier then starts its own) and run again',
      );
    }
    plugin = await startPlugin();
    stateDir = plugin.stateDir;
  });
  afterAll(async () => {
    if (!plugin) plugin = await startPlugin({ stateDir });
    await r.cleanup();
    await plugin.stop();
    removeStateDir(plugin);
  });

  async function allBack(): Promise<void> {
    const running = async (): Promise<boolean> =>
      (await dockerOk('ps', '-q', '--filter', 'label=mnt-boot', '--filter', 'status=running')).split('\n').filter(Boolean).length === 3;
    await waitFor('all three containers running', running, 90_000, 500);
    await waitFor('the published port', async () => (await httpGet('127.0.0.1', PORT)) === 'mynet-e2e', 20_000, 500);
    expect(await ping(peer, web)).toBe(true);
    expect(await ping(both, web)).toBe(true);
    expect(await ping(both, peer)).toBe(true);
  }

  it('before: two networks, three --restart always containers, a published port', async () => {
    const n1 = await r.network(['-d', 'mynet', '--subnet', '10.94.0.0/24']);
    const n2 = await r.network(['-d', 'mynet', '--subnet', '10.94.1.0/24']);
    const always = ['--restart', 'always', '--label', 'mnt-boot'];
    web = await r.container(['--network', n1, ...always, '-p', `${PORT}:80`], HTTPD);
    peer = await r.container(['--network', n1, ...always]);
    both = await r.container(['--network', n2, ...always]);
    await dockerOk('network', 'connect', n1, both);
    await allBack();
  });

  it('reboot: our kernel state gone, state kept; plugin first, then dockerd: everything comes back', async () => {
    await stopDockerd();
    await plugin?.kill();
    plugin = undefined;
    await forgetOurKernelState();
    plugin = await startPlugin({ stateDir });
    await startDockerd();
    await allBack();
  });

  it('reboot again, dockerd first and the plugin 5 s later: everything comes back', async () => {
    await stopDockerd();
    await plugin?.kill();
    plugin = undefined;
    await forgetOurKernelState();
    // dockerd answers its API only after it has tried to restart containers, so don't wait for
    // it: start the plugin 5 s after dockerd itself.
    const dockerdUp = startDockerd();
    await sleep(5000);
    plugin = await startPlugin({ stateDir });
    await dockerdUp;
    await allBack();
  });
});
