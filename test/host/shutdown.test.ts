/**
 * SIGTERM with a client that connected to the plugin's socket and never sent a request (dockerd
 * opens connections ahead; a hostile client may never write): the real plugin (node
 * dist/main.js, in a throwaway namespace) still stops cleanly at once, exit 0 with its state
 * saved, instead of waiting for its 8 s limit and exiting 1 (src/http/drain.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNetns, destroyCreated } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'mnt-shutdown-'));
const sock = join(dir, 'p.sock');
let proc: ChildProcess | undefined;

afterAll(async () => {
  if (proc && proc.exitCode === null) proc.kill('SIGKILL');
  await destroyCreated();
  rmSync(dir, { recursive: true, force: true });
});

const answers = (socketPath: string, method: string, path: string): Promise<boolean> =>
  new Promise((res) => {
    const req = request({ socketPath, path, method }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
    });
    req.on('error', () => res(false));
    req.end(method === 'POST' ? '{}' : undefined);
  });
// main.ts listens on the admin socket last and takes SIGTERM right after: wait for it to answer.
const ready = async (): Promise<boolean> =>
  (await answers(sock, 'POST', '/Plugin.Activate')) && answers(join(dir, 'admin.sock'), 'GET', '/version');

describe('shutdown', () => {
  it('SIGTERM with a silent connection open: exit 0 within 2 s, state saved', async () => {
    const ns = await createNetns();
    proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, join(ROOT, 'dist/main.js')], {
      env: {
        ...process.env,
        MYNET_SOCKET: sock,
        MYNET_ADMIN_SOCKET: join(dir, 'admin.sock'),
        MYNET_STATE_DIR: join(dir, 'state'),
        MYNET_DNS_LISTEN: '',
        MYNET_LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitUntil('the plugin to answer on both sockets', ready, { ms: 10_000, every: 25 });
    expect(await ready()).toBe(true);
    const silent = connect(sock);
    await new Promise((r) => silent.once('connect', r));
    silent.on('error', () => undefined);
    const p = proc;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    const t0 = Date.now();
    p.kill('SIGTERM'); // ip netns exec execs node in place: this is the plugin itself
    const code = await exited;
    const ms = Date.now() - t0;
    silent.destroy();
    expect(code).toBe(0);
    expect(ms).toBeLessThan(2000);
    expect(existsSync(join(dir, 'state', 'state.json'))).toBe(true);
    expect(existsSync(sock)).toBe(false);
  });
});
